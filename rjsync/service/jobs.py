"""Running sync jobs: the start only enqueues; one worker per account applies behind a lock.

``start`` returns the job already New, Queued or Running for the account when there is one, so
a second click never starts a parallel apply. Different accounts run in parallel, up to
``accounts_at_once``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from rjsync.engine import render
from rjsync.engine.apply import DONE, Outcome, steps
from rjsync.errors import RjsyncError
from rjsync.service.store import (
    COMPLETED,
    ERROR,
    FAILED,
    OUTPUT,
    QUEUED,
    RUNNING,
    VERBOSE,
    Job,
    Store,
)
from rjsync.settings import SyncSettings
from rjsync.sync import (
    ApplyEvents,
    apply,
    catalog_errors,
    default_opener,
    permissions_problem,
    prepare,
)

log = logging.getLogger("rjsync.service")


class JobRunner:
    def __init__(self, store: Store, *, accounts_at_once: int, opener: Callable | None = None) -> None:
        self.store = store
        self.opener = opener or default_opener
        self._pool = ThreadPoolExecutor(max_workers=accounts_at_once, thread_name_prefix="rjsync-sync")
        self._enqueue = threading.Lock()  # check-then-create of a job is atomic
        self._account_locks: dict[str, threading.Lock] = {}
        self._finished = threading.Condition()
        self._wakers: dict[str, list[Callable[[], None]]] = {}  # async waiters, by job

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    def start(self, account: str, settings: SyncSettings, caller: str) -> tuple[Job, bool]:
        """The job for ``account`` (a new one, or the one still pending) and whether it is new."""
        with self._enqueue:
            existing = self.store.active(account)
            if existing is not None:
                return existing, False
            job = self.store.create(account, caller)
            self.store.update(job.id, status=QUEUED)
            self.store.write(job.id, VERBOSE, f"Queued a sync of {account} (requested by {caller}).")
            lock = self._account_locks.setdefault(account, threading.Lock())
        self._pool.submit(self._run, job.id, account, settings, lock)
        return self.store.get(job.id) or job, True

    def wait(self, job_id: str, timeout: float | None = None) -> Job | None:
        """The job once Completed or Failed (or as it is when ``timeout`` runs out)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._finished:
            while True:
                job = self.store.get(job_id)
                if job is None or job.status in (COMPLETED, FAILED):
                    return job
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return job
                self._finished.wait(timeout=min(left, 1.0) if left is not None else 1.0)

    async def wait_async(self, job_id: str, poll: float = 1.0) -> Job | None:
        """The job once Completed or Failed, awaited on the event loop: a waiter holds no thread
        (the worker wakes it; ``poll`` is a safety net)."""
        loop = asyncio.get_running_loop()
        finished = asyncio.Event()

        def wake() -> None:
            try:
                loop.call_soon_threadsafe(finished.set)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        with self._finished:
            self._wakers.setdefault(job_id, []).append(wake)
        try:
            while True:
                job = self.store.get(job_id)
                if job is None or job.status in (COMPLETED, FAILED):
                    return job
                try:
                    await asyncio.wait_for(finished.wait(), poll)
                except TimeoutError:
                    pass
        finally:
            with self._finished:
                wakers = self._wakers.get(job_id, [])
                if wake in wakers:
                    wakers.remove(wake)
                if not wakers:
                    self._wakers.pop(job_id, None)

    # -- the worker --

    def _run(self, job_id: str, account: str, settings: SyncSettings, lock: threading.Lock) -> None:
        with lock:  # one apply per account, whatever else happens
            status, exception = FAILED, None
            try:
                self.store.update(job_id, status=RUNNING, started=time.time())
                status, exception = self._sync(job_id, account, settings)
            except RjsyncError as err:
                exception = err.message
            except Exception as err:  # noqa: BLE001 - a job must end, and say why
                log.exception("sync job %s of %s failed", job_id, account)
                exception = f"Internal error ({type(err).__name__}): {err}"
            finally:
                if exception:
                    self.store.write(job_id, ERROR, exception)
                self.store.update(job_id, status=status, exception=exception, finished=time.time())
                with self._finished:
                    self._finished.notify_all()
                    wakers = list(self._wakers.get(job_id, []))
                for wake in wakers:
                    wake()

    def _sync(self, job_id: str, account: str, settings: SyncSettings) -> tuple[str, str | None]:
        write = self.store.write
        write(job_id, VERBOSE, f"Reading {settings.source.location}"
              f"{' at ' + settings.source.ref if settings.source.ref else ''} and {settings.target}.")
        with prepare(settings, opener=self.opener) as prepared:
            plan = prepared.plan
            doc = plan.to_json()
            total = steps(plan) if plan.has_changes else 0
            self.store.update(job_id, total=total)
            write(job_id, OUTPUT, render.to_text(doc, color=False).rstrip("\n"), value={"summary": doc["summary"]})
            write(job_id, VERBOSE, f"Progress: 0/{total} changes", value={"done": 0, "total": total})
            if settings.require_permissions and (problem := permissions_problem(plan)):
                return FAILED, f"Not applying: {problem}"
            if not plan.has_changes:
                if plan.errored:
                    return FAILED, catalog_errors(plan)
                write(job_id, OUTPUT, "Sync completed: the account matches the source.")
                return COMPLETED, None

            def outcome(o: Outcome) -> None:
                line = o.line()
                write(job_id, OUTPUT if o.status == DONE else ERROR, line, value=o.to_json())
                done, of = self.store.advance(job_id)
                write(job_id, VERBOSE, f"Progress: {done}/{of} changes", value={"done": done, "total": of})

            result = apply(prepared, events=ApplyEvents(
                outcome=outcome, note=lambda text: write(job_id, VERBOSE, f"note: {text}")))
        summary = result.report.to_json()["summary"]
        if result.ok:
            write(job_id, OUTPUT, f"Sync completed in {result.seconds:.1f} s: {result.done} done.", value=summary)
            return COMPLETED, None
        verdict = (f"Sync incomplete in {result.seconds:.1f} s: {result.done} done, {result.failed} failed, "
                   f"{result.skipped} skipped. Start it again to finish: what is done is not repeated.")
        write(job_id, OUTPUT, verdict, value=summary)
        problems = [f"{o.name}: {o.message}" for o in result.report.outcomes if o.status != DONE]
        if plan.errored:
            problems.append(catalog_errors(plan))
        return FAILED, verdict + (" Not done: " + "; ".join(problems) if problems else "")
