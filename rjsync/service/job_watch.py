"""One watcher per account for the waiting ``/run``s of the job API (``rjsync.service.runbooks``).

While any ``/run`` waits on an account, one asyncio task reads the statuses of all the jobs
waited on there with one list request per interval (``Account.jobs_since`` the oldest waited
job's creation: Azure's job list, filtered by the service) instead of one GET per waiter; N
waiters cost one request per interval, not N, which keeps the service's own calls quick and
Resource Manager's read budget (250, then 25 per second per subscription and principal: shared
notes, "Throttling") for everything else. The interval is a quarter second after a waiter joins,
then 1.5 times longer each time, up to ``poll_interval``. A waiter whose job has ended is woken
(the list has no exception: the waiter reads its job once more). A waited job the list does not
show (no creation time, or gone) is read with a GET: when that finds nothing, its waiter is told
the job is gone. An error of the list (already retried by the account) wakes every waiter of that
round with it. The reads run where ``call`` sends them: ``call("jobs_since", created)`` and
``call("job", job_id)`` are the account's methods of those names, run by the job worker
(``job_worker``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Awaitable, Callable

from rjsync.accounts.base import LiveJob
from rjsync.errors import RjsyncError
from rjsync.jobs.start import ENDED, simple_status

log = logging.getLogger(__name__)

FIRST_PAUSE = 0.25


@dataclasses.dataclass(eq=False)
class Waiter:
    """One waiting ``/run``: ``job`` as last read; ``woken`` once it ended, vanished (``gone``)
    or a read failed (``error``)."""

    job: LiveJob
    woken: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    gone: bool = False
    error: BaseException | None = None


class JobWatch:
    """The watcher of one account (``target``, for logs). ``call(method, *args)`` runs the
    account's ``method`` where the job API's account work runs."""

    def __init__(self, target: str, call: Callable[..., Awaitable], poll_interval: float):
        self.target, self._call = target, call
        self._poll_interval = poll_interval
        self._first = min(FIRST_PAUSE, poll_interval)
        self._waiters: set[Waiter] = set()
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._pause = self._first
        self._next = 0.0
        self._listing = True  # False once the job list failed: each job is read alone

    async def wait(self, job: LiveJob, timeout: float) -> LiveJob | None:
        """``job`` as last read once it has ended or ``timeout`` seconds have passed (still
        running then); None when the job is no longer in the account. Raises a read's error."""
        waiter = Waiter(job)
        self._join(waiter)
        try:
            await asyncio.wait_for(waiter.woken.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)
        if waiter.error is not None:
            raise waiter.error
        return None if waiter.gone else waiter.job

    def _join(self, waiter: Waiter) -> None:
        loop = asyncio.get_running_loop()
        self._waiters.add(waiter)
        self._pause = self._first  # a new waiter is read a quarter second from now, as it was alone
        self._next = min(self._next, loop.time() + self._first) if self._task else loop.time() + self._first
        self._wake.set()
        if self._task is None:
            self._task = loop.create_task(self._watch(), name=f"rjsync-job-watch:{self.target}")

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiters:
                left = self._next - loop.time()
                if left > 0:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), left)
                    except TimeoutError:
                        pass
                    continue
                await self._read(list(self._waiters))
                self._next = loop.time() + self._pause
                self._pause = min(self._pause * 1.5, self._poll_interval)
        finally:
            self._task = None

    async def _read(self, waiting: list[Waiter]) -> None:
        """One round: the list since the oldest waited job's creation, a GET for any it lacks."""
        try:
            dated = [w.job.created for w in waiting if w.job.created is not None]
            listed = []
            if dated and self._listing:
                try:
                    listed = await self._call("jobs_since", min(dated))
                except RjsyncError as err:
                    # Az.Automation itself never filters the job list on creationTime, so whether
                    # Azure takes that $filter is unverified: when the list fails, the waits go on
                    # with a GET of each job, as before the watcher, from then on.
                    log.info("%s: listing jobs failed (%s); reading each waited job alone",
                             self.target, err.message)
                    self._listing = False
            seen = {j.job_id.lower(): j for j in listed}
            lacking = [w for w in waiting if w.job.job_id.lower() not in seen]
            found = await asyncio.gather(*(self._call("job", w.job.job_id) for w in lacking))
        except Exception as err:  # noqa: BLE001 - every waiter of the round answers with it
            for w in waiting:
                w.error = err
                w.woken.set()
            return
        seen.update({w.job.job_id.lower(): job for w, job in zip(lacking, found) if job is not None})
        for w in waiting:
            now = seen.get(w.job.job_id.lower())
            if now is None:
                w.gone = True
                w.woken.set()
                continue
            w.job = dataclasses.replace(w.job, status=now.status, started=now.started or w.job.started,
                                        ended=now.ended or w.job.ended, exception=now.exception or w.job.exception)
            if simple_status(w.job) in ENDED:
                w.woken.set()
