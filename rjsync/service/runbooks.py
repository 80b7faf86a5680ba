"""The runbook job API of ``rjsync serve``: RealmJoin's job calls for the synced runbooks, under
``/runbook/...`` (RealmJoin's current paths) and ``/api/external/runbook/...`` (the older ones),
one implementation (``../shared/realmjoin.md``, "The runbook job API").

A start is checked by ``rjsync.jobs.start`` before anything is created (403 operator access, 404
a runbook the account does not hold, 409 one not in sync with its receipt, 422 every parameter
problem), then recorded in the store (job id -> account, runbook, caller): only callers allowed
on that account read the job; for anyone else it is unknown (404).

Account calls block, so each runs in a bounded pool of threads: starts (with their checks) in
one (``account_calls``), the reads of a job (status, output, streams, exception) in another of
the same size, so a burst of starts never makes a status poll wait for a thread. A waiting
``/run`` holds no thread: it waits on the event loop while its account's watcher
(``job_watch``: one per account) reads the statuses of every waited job there with one list
request per interval, in a pool of its own (``waiting_calls``), so many waiters never slow the
other calls down. Accounts are
opened once per manifest and kept while its settings stay the same: one for starts and the
waits of ``/run``, one for the job reads (status, output, streams), so that reads never queue
behind a burst of starts for the client's requests in flight.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Annotated, Any, Callable

from fastapi import APIRouter, Body, FastAPI, Path, Query
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from rjsync.accounts.base import STREAM_TYPES, Account, JobStream, LiveJob
from rjsync.jobs.start import (
    ENDED,
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    NOT_IN_SYNC,
    CatalogCache,
    Checks,
    StartRefused,
    check_start,
    simple_status,
)
from rjsync.jobs.start import start as start_job
from rjsync.service.app import ACCOUNT_PATTERN, JOB_PATTERN, ApiError, Caller
from rjsync.service.auth import Principal
from rjsync.service.config import ServiceConfig
from rjsync.service.job_watch import JobWatch
from rjsync.service.store import RunbookJob, Store, mask, mask_value
from rjsync.settings import SyncSettings
from rjsync.sync import default_opener

RUNBOOK_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,127}$"
STATUS_OF = {FORBIDDEN: 403, NOT_FOUND: 404, NOT_IN_SYNC: 409, INVALID: 422}


class StreamRecord(BaseModel):
    time: str | None
    summary: str
    streamType: str
    streamText: str | None
    value: object | None = None


class JobStarted(BaseModel):
    jobID: str
    status: str


class JobRun(BaseModel):
    jobID: str
    status: str
    exception: str | None
    streams: list[StreamRecord]


class Refusal(BaseModel):
    error: str
    problems: list[str] | None = None


ERRORS = {status: {"model": Refusal} for status in (400, 401, 403, 404, 409, 413, 422)}
RunbookName = Annotated[str, Path(pattern=RUNBOOK_PATTERN, description="The runbook's Automation name.")]
JobID = Annotated[str, Path(pattern=JOB_PATTERN)]
AccountName = Annotated[str | None, Query(pattern=ACCOUNT_PATTERN, description=(
    "The account (a manifest name); needed when your credentials may use several."))]
Parameters = Annotated[dict[str, Any] | None, Body(description="The runbook's parameters: {\"Name\": value}.")]


class RunbookJobs:
    """What the job API keeps: open accounts, the catalog cache, the two pools of threads."""

    def __init__(self, config: ServiceConfig, store: Store,
                 account_settings: Callable[[str, Principal], tuple[str, SyncSettings]]) -> None:
        self.config, self.store, self.account_settings = config, store, account_settings
        self.opener = config.opener or default_opener
        self.cache = CatalogCache()
        self._calls = ThreadPoolExecutor(config.account_calls, thread_name_prefix="rjsync-job-call")
        self._reads = ThreadPoolExecutor(config.account_calls, thread_name_prefix="rjsync-job-read")
        self._waits = ThreadPoolExecutor(config.waiting_calls, thread_name_prefix="rjsync-job-wait")
        self._lock = threading.Lock()
        self._accounts: dict[str, tuple[str, Account]] = {}
        self._retired: list[Account] = []
        self._watches: dict[int, JobWatch] = {}  # id(account) -> its watcher (accounts are kept open)

    def close(self) -> None:
        self._calls.shutdown(wait=True, cancel_futures=True)
        self._reads.shutdown(wait=True, cancel_futures=True)
        self._waits.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for account in [a for _, a in self._accounts.values()] + self._retired:
                account.close()
            self._accounts.clear()

    async def call(self, fn: Callable, *args, pool: str = "start"):
        """``fn(*args)`` in a worker thread of the ``pool`` ("start", "read" or "wait")."""
        loop = asyncio.get_running_loop()
        executor = {"start": self._calls, "read": self._reads, "wait": self._waits}[pool]
        return await loop.run_in_executor(executor, lambda: fn(*args))

    # -- accounts --------------------------------------------------------------------------------

    def account(self, name: str, settings: SyncSettings, purpose: str = "start") -> Account:
        """The account of manifest ``name`` for ``purpose`` ("start" or "read"), opened once while
        its settings stay the same."""
        key = repr((settings.target, settings.policy.prefix, settings.azure, settings.concurrency))
        name = f"{purpose}:{name}"
        with self._lock:
            held = self._accounts.get(name.lower())
            if held is not None and held[0] == key:
                return held[1]
        opened = self.opener(settings)
        with self._lock:
            held = self._accounts.get(name.lower())
            if held is not None and held[0] == key:
                self._retired.append(opened)
                return held[1]
            if held is not None:
                self._retired.append(held[1])  # other calls may still use it: closed at shutdown
            self._accounts[name.lower()] = (key, opened)
        return opened

    def resolve(self, who: Principal, name: str | None) -> tuple[str, SyncSettings]:
        """The account a start names (``?account=``), or the one the caller may use."""
        if name is None:
            if "*" in who.accounts or len(who.accounts) != 1:
                may = "any account" if "*" in who.accounts else \
                    ", ".join(sorted(who.accounts)) if who.accounts else "no account"
                raise ApiError(400, f"Name the account with ?account=NAME: your credentials may use {may}.")
            name = next(iter(who.accounts))
        return self.account_settings(name, who)

    # -- blocking work (in the pools) --------------------------------------------------------------

    def start(self, who: Principal, runbook: str, values: dict[str, Any],
              account_name: str | None) -> tuple[Account, LiveJob]:
        name, settings = self.resolve(who, account_name)
        account = self.account(name, settings)
        checks = Checks(customization=self.config.customization, permissions=self.config.permissions,
                        roles=who.roles, context={"CallerName": who.name})
        try:
            checked = check_start(account, settings, runbook, values, checks=checks, cache=self.cache)
        except StartRefused as refused:
            extra = {"problems": refused.problems} if refused.problems else None
            raise ApiError(STATUS_OF[refused.kind], refused.message, extra=extra) from None
        job_id = str(uuid.uuid4())
        self.store.record_runbook_job(job_id, name, checked.runbook, who.name)
        try:
            return account, start_job(account, checked, job_id)
        except BaseException:
            self.store.forget_runbook_job(job_id)
            raise

    def job(self, who: Principal, job_id: str) -> tuple[RunbookJob, Account, LiveJob]:
        record = self.store.runbook_job(job_id)
        if record is None or not who.may(record.account):  # one answer: whose it is is not told
            raise ApiError(404, f"Unknown job {job_id!r}.")
        name, settings = self.account_settings(record.account, who)
        account = self.account(name, settings, "read")
        live = account.job(record.id)
        if live is None:
            raise ApiError(404, f"Job {record.id} is no longer in the account {name}.")
        return record, account, live

    async def wait(self, account: Account, job: LiveJob) -> LiveJob:
        """``job`` once it has ended, or as it is when ``run_timeout`` has passed. The account's
        watcher (``job_watch``) reads the statuses of all the jobs waited on in the account with
        one list request per interval; an ended job is read once more for its exception."""
        if simple_status(job) in ENDED:
            return job
        watch = self._watches.get(id(account))
        if watch is None:
            watch = self._watches[id(account)] = JobWatch(
                account, lambda fn, *args: self.call(fn, *args, pool="wait"), self.config.poll_interval)
        seen = await watch.wait(job, self.config.run_timeout)
        if seen is not None and simple_status(seen) in ENDED:
            seen = await self.call(account.job, job.job_id, pool="wait")
        if seen is None:
            raise ApiError(404, f"Job {job.job_id} is no longer in the account.")
        return seen


def add_runbook_routes(app: FastAPI, config: ServiceConfig, store: Store,
                       account_settings: Callable[[str, Principal], tuple[str, SyncSettings]]) -> RunbookJobs:
    """Add the job API to ``app`` under both path families; the returned state is closed on shutdown."""
    jobs = RunbookJobs(config, store, account_settings)
    router = APIRouter()

    @router.post("/runbook/{name}/start", response_model=JobStarted, responses=ERRORS,
                 summary="Check the parameters and start a job of a synced runbook; returns once it is queued")
    async def start(name: RunbookName, who: Caller, parameters: Parameters = None,
                    account: AccountName = None) -> JobStarted:
        _, job = await jobs.call(jobs.start, who, name, parameters or {}, account)
        return JobStarted(jobID=job.job_id, status=simple_status(job))

    @router.post("/runbook/{name}/run", responses={**ERRORS, 202: {"model": JobStarted}},
                 response_model=JobRun, summary="Start a job and wait for its end (clients need a long "
                                                "timeout); 202 with the job still running after run_timeout")
    async def run(name: RunbookName, who: Caller, parameters: Parameters = None, account: AccountName = None):
        opened, job = await jobs.call(jobs.start, who, name, parameters or {}, account)
        job = await jobs.wait(opened, job)
        status = simple_status(job)
        if status not in ENDED:
            return JSONResponse({"jobID": job.job_id, "status": status}, status_code=202)
        streams = await jobs.call(opened.job_streams, job.job_id)
        return JobRun(jobID=job.job_id, status=status, exception=mask(job.exception) if job.exception else None,
                      streams=[StreamRecord(**record(s)) for s in streams])

    @router.get("/runbook/jobs/{jobID}/status", response_class=PlainTextResponse, responses=ERRORS,
                summary="New, Queued, Running, Completed or Failed (Azure's job states, simplified)")
    async def status(jobID: JobID, who: Caller) -> str:
        _, _, job = await jobs.call(jobs.job, who, jobID, pool="read")
        return simple_status(job)

    @router.get("/runbook/jobs/{jobID}/output/text", response_class=PlainTextResponse, responses=ERRORS,
                summary="The Output stream as text")
    async def output_text(jobID: JobID, who: Caller) -> str:
        def read() -> str:
            record_, account, _ = jobs.job(who, jobID)
            return account.job_output(record_.id)
        return mask(await jobs.call(read, pool="read"))

    @router.get("/runbook/jobs/{jobID}/output/streams", response_model=list[StreamRecord], responses=ERRORS,
                summary="Stream records, oldest first; streamTypes=Output|Verbose|Error|Warning picks some")
    async def output_streams(jobID: JobID, who: Caller,
                             streamTypes: Annotated[str | None, Query(max_length=64)] = None) -> list[dict]:
        types = stream_types(streamTypes)

        def read() -> list[JobStream]:
            record_, account, _ = jobs.job(who, jobID)
            return account.job_streams(record_.id, types)
        return [record(s) for s in await jobs.call(read, pool="read")]

    @router.get("/runbook/jobs/{jobID}/exception/text", response_class=PlainTextResponse, responses=ERRORS,
                summary="The terminating error's message; empty when there is none")
    async def exception_text(jobID: JobID, who: Caller) -> str:
        _, _, job = await jobs.call(jobs.job, who, jobID, pool="read")
        return mask(job.exception or "")

    app.include_router(router, tags=["runbook jobs"])
    app.include_router(router, prefix="/api/external", tags=["runbook jobs (older paths)"])
    return jobs


def stream_types(asked: str | None) -> set[str] | None:
    """The ``streamTypes`` query (names joined with | or ,) as the account's stream types."""
    if not asked:
        return None
    known = {t.lower(): t for t in STREAM_TYPES}
    names = [t.strip() for t in asked.replace(",", "|").split("|") if t.strip()]
    unknown = [t for t in names if t.lower() not in known]
    if unknown or not names:
        raise ApiError(400, f"Unknown stream type {', '.join(unknown) or asked!r}: use "
                            f"{', '.join(STREAM_TYPES)}, joined with |.")
    return {known[t.lower()] for t in names}


def record(stream: JobStream) -> dict[str, Any]:
    """A stream record in RealmJoin's shape (credentials in URLs masked)."""
    text = stream.text
    summary = stream.summary if stream.summary is not None else (text or "").split("\n", 1)[0][:200]
    return mask_value({"time": _iso(stream.time), "summary": summary, "streamType": stream.stream_type,
                       "streamText": text, "value": dict(stream.value) if stream.value is not None else None})


def _iso(stamp: datetime | None) -> str | None:
    if stamp is None:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
