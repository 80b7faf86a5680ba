"""Account openers that can cross to another process: the job API's worker process
(``rjsync.service.job_worker``) is started with ``spawn`` and unpickles its opener, which a
closure over a test's fixtures cannot be. ``functools.partial(emulator_opener, arm.endpoint)``
can: the worker opens its accounts on the same emulator, trusting the test CA through
``REQUESTS_CA_BUNDLE`` (the ``arm`` fixture sets it; a spawned process inherits it)."""

from __future__ import annotations

import dataclasses

from fakes.accounts import FAST
from fakes.arm import StaticTokenCredential
from rjsync.accounts import open_account
from rjsync.settings import SyncSettings, gallery_url
from rjsync.sync import default_opener


def emulator_opener(arm_endpoint: str, settings: SyncSettings):
    """``settings.target`` on the ARM emulator at ``arm_endpoint`` (a directory account as
    ``default_opener`` opens it), with the test token and ``FAST`` settings."""
    if settings.target.startswith("local:"):
        return default_opener(settings)
    return open_account(settings.target, owned_prefix=settings.policy.prefix, arm_endpoint=arm_endpoint,
                        credential=StaticTokenCredential("test-token"), gallery_url=gallery_url(settings.azure),
                        settings=dataclasses.replace(FAST, max_concurrent_requests=settings.concurrency))
