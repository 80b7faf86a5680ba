"""Jobs and their streams in one SQLite file (WAL), so they outlive the server. What is written
has the credentials of any URL in it masked.

Jobs left New, Queued or Running by a previous process are marked Failed when the store opens:
nothing is applying them any more, and a new start converges (receipts make re-running safe).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from rjsync.source import redact

NEW, QUEUED, RUNNING, COMPLETED, FAILED = "New", "Queued", "Running", "Completed", "Failed"
ACTIVE = (NEW, QUEUED, RUNNING)
OUTPUT, VERBOSE, ERROR = "Output", "Verbose", "Error"
STREAM_TYPES = (OUTPUT, VERBOSE, ERROR)
RESTARTED = "the server restarted while this job was running; start it again (re-running is safe)"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    caller TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    exception TEXT
);
CREATE INDEX IF NOT EXISTS jobs_account ON jobs (account, status);
CREATE TABLE IF NOT EXISTS streams (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL REFERENCES jobs (id),
    time TEXT NOT NULL,
    type TEXT NOT NULL,
    summary TEXT NOT NULL,
    text TEXT NOT NULL,
    value TEXT
);
CREATE INDEX IF NOT EXISTS streams_job ON streams (job, seq);
CREATE TABLE IF NOT EXISTS runbook_jobs (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    runbook TEXT NOT NULL,
    caller TEXT NOT NULL,
    created REAL NOT NULL
);
"""


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


def mask(text: str) -> str:
    """``text`` with the credentials of every URL in it masked (``rjsync.source.redact``)."""
    return _URL.sub(lambda m: redact(m.group(0)), text) if "://" in text else text


def mask_value(value: Any) -> Any:
    """``mask`` on every string inside a JSON-like value (keys too)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask_value(k): mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(v) for v in value]
    return value


@dataclass(frozen=True)
class Job:
    id: str
    account: str
    caller: str
    status: str
    created: float
    started: float | None
    finished: float | None
    done: int
    total: int | None
    exception: str | None

    def to_json(self) -> dict[str, Any]:
        return {"jobID": self.id, "account": self.account, "status": self.status,
                "created": _iso(self.created), "started": _iso(self.started), "finished": _iso(self.finished),
                "progress": {"done": self.done, "total": self.total}}


@dataclass(frozen=True)
class RunbookJob:
    """A runbook job started through the service: the account it runs in, and who started it."""

    id: str
    account: str
    runbook: str
    caller: str
    created: float


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: Runbook job records kept in memory at most (then forgotten, and read from the database again).
_RUNBOOK_JOBS_KEPT = 100_000


class Store:
    """One connection shared by the server's threads, every use behind one lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._runbook_jobs: dict[str, RunbookJob] = {}  # by id: records never change
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                f"UPDATE jobs SET status = ?, exception = ?, finished = ? WHERE status IN ({','.join('?' * len(ACTIVE))})",
                (FAILED, RESTARTED, time.time(), *ACTIVE))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- jobs --

    def create(self, account: str, caller: str) -> Job:
        job_id = str(uuid.uuid4())
        with self._lock:
            self._db.execute("INSERT INTO jobs (id, account, caller, status, created) VALUES (?, ?, ?, ?, ?)",
                             (job_id, account, caller, NEW, time.time()))
        found = self.get(job_id)
        assert found is not None
        return found

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT id, account, caller, status, created, started, finished, done, total, "
                                   "exception FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job(*row) if row else None

    def active(self, account: str) -> Job | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM jobs WHERE account = ? AND status IN (?, ?, ?) ORDER BY created LIMIT 1",
                (account, *ACTIVE)).fetchone()
        return self.get(row[0]) if row else None

    def count(self, account: str | None = None) -> int:
        with self._lock:
            if account is None:
                return self._db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM jobs WHERE account = ?", (account,)).fetchone()[0]

    def update(self, job_id: str, **values: Any) -> None:
        values = {k: mask(v) if isinstance(v, str) else v for k, v in values.items()}
        columns = ", ".join(f"{k} = ?" for k in values)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {columns} WHERE id = ?", (*values.values(), job_id))

    def advance(self, job_id: str) -> tuple[int, int | None]:
        """One more step done; (done, total)."""
        with self._lock:
            self._db.execute("UPDATE jobs SET done = done + 1 WHERE id = ?", (job_id,))
            done, total = self._db.execute("SELECT done, total FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return done, total

    # -- runbook jobs (the job API): which account holds each job the service started --

    def record_runbook_job(self, job_id: str, account: str, runbook: str, caller: str) -> None:
        record = RunbookJob(job_id.lower(), account, runbook, caller, time.time())
        with self._lock:
            self._db.execute("INSERT INTO runbook_jobs (id, account, runbook, caller, created) VALUES (?, ?, ?, ?, ?)",
                             (record.id, record.account, record.runbook, record.caller, record.created))
            self._remember(record)

    def _remember(self, record: RunbookJob) -> None:
        """Keep a record in memory (they never change): status polls find it without waiting
        for the lock the starts' writes hold."""
        if len(self._runbook_jobs) >= _RUNBOOK_JOBS_KEPT:
            self._runbook_jobs.clear()
        self._runbook_jobs[record.id] = record

    def forget_runbook_job(self, job_id: str) -> None:
        """A start that failed: no job by that id exists."""
        with self._lock:
            self._db.execute("DELETE FROM runbook_jobs WHERE id = ?", (job_id.lower(),))
            self._runbook_jobs.pop(job_id.lower(), None)

    def runbook_job(self, job_id: str) -> RunbookJob | None:
        kept = self._runbook_jobs.get(job_id.lower())
        if kept is not None:
            return kept
        with self._lock:
            row = self._db.execute("SELECT id, account, runbook, caller, created FROM runbook_jobs WHERE id = ?",
                                   (job_id.lower(),)).fetchone()
            if row:
                self._remember(RunbookJob(*row))
        return RunbookJob(*row) if row else None

    # -- streams --

    def write(self, job_id: str, stream: str, text: str, *, summary: str | None = None, value: Any = None) -> None:
        text, value = mask(text), mask_value(value)  # no credentials in what is kept or shown
        summary = mask(summary) if summary is not None else (text.splitlines() or [""])[0][:200]
        with self._lock:
            self._db.execute("INSERT INTO streams (job, time, type, summary, text, value) VALUES (?, ?, ?, ?, ?, ?)",
                             (job_id, _iso(time.time()), stream, summary, text,
                              None if value is None else json.dumps(value, sort_keys=True)))

    def streams(self, job_id: str, types: tuple[str, ...] = STREAM_TYPES) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(types))
        with self._lock:
            rows = self._db.execute(f"SELECT time, summary, type, text, value FROM streams WHERE job = ? "
                                    f"AND type IN ({marks}) ORDER BY seq", (job_id, *types)).fetchall()
        return [{"time": t, "summary": s, "streamType": k, "streamText": x,
                 "value": None if v is None else json.loads(v)} for t, s, k, x, v in rows]
