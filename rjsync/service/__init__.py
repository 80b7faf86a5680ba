"""The HTTP backend behind the "Sync runbooks with upstream" button (``rjsync serve``).

The button only enqueues: ``POST /api/sync/start`` records a job and returns its id; one worker
per account applies it behind a lock (design.md, lesson 14). Jobs and their streams live in
SQLite, so they outlive the process.
"""

from rjsync.service.app import create_app
from rjsync.service.config import ServiceConfig, load_config

__all__ = ["ServiceConfig", "create_app", "load_config"]
