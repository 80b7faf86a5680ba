"""The runbook job API of ``rjsync serve``: RealmJoin's job calls for the synced runbooks, under
``/runbook/...`` (RealmJoin's current paths) and ``/api/external/runbook/...`` (the older ones),
one implementation (``../shared/realmjoin.md``, "The runbook job API").

A start is recorded in the store (job id -> account, runbook, caller; forgotten if the start
fails): only callers allowed on that account read the job; for anyone else it is unknown (404).
It is then checked by ``rjsync.jobs.start`` before anything is created (403 operator access, 404
a runbook the account does not hold, 409 one not in sync with its receipt, 422 every parameter
problem) and started.

Where the account calls run: the starts (with their checks), the reads of the waiting ``/run``s
and the reads that answer a ``/run`` at its end in the job worker (``job_worker``: a process of
its own by default, so their CPU never delays a status poll); the reads a caller asks for
(status, output, streams, exception) in a pool of threads of the serving process
(``account_calls``), on accounts opened for them alone. A waiting ``/run`` holds no thread: it
waits on the event loop while its account's watcher (``job_watch``: one per account) reads the
statuses of every waited job there with one list request per interval. Accounts are opened once
per manifest and kept while its settings stay the same.
"""

from __future__ import annotations

import asyncio
import contextvars
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
    Checks,
    StartRefused,
    simple_status,
)
from rjsync.service.app import ACCOUNT_PATTERN, JOB_PATTERN, ApiError, Caller
from rjsync.service.auth import Principal
from rjsync.service.config import ServiceConfig
from rjsync.service.job_watch import JobWatch
from rjsync.service.job_worker import AccountCache, WorkerStopped, make_worker
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
#: a start or a /run whose call the job worker process had in flight when it died: 503
START_ERRORS = {**ERRORS, 503: {"model": Refusal}}
RunbookName = Annotated[str, Path(pattern=RUNBOOK_PATTERN, description="The runbook's Automation name.")]
JobID = Annotated[str, Path(pattern=JOB_PATTERN)]
AccountName = Annotated[str | None, Query(pattern=ACCOUNT_PATTERN, description=(
    "The account (a manifest name); needed when your credentials may use several."))]
Parameters = Annotated[dict[str, Any] | None, Body(description="The runbook's parameters: {\"Name\": value}.")]


class RunbookJobs:
    """What the job API keeps: the worker that starts and waits (``job_worker``), the accounts
    the caller's reads use, a pool of threads for those reads, and a watcher per account."""

    def __init__(self, config: ServiceConfig, store: Store,
                 account_settings: Callable[[str, Principal], tuple[str, SyncSettings]]) -> None:
        self.config, self.store, self.account_settings = config, store, account_settings
        opener = config.opener or default_opener
        self.worker = make_worker(config, opener)
        self.reads = AccountCache(opener)
        self._reads = ThreadPoolExecutor(config.account_calls, thread_name_prefix="rjsync-job-read")
        self._watches: dict[tuple[str, str], JobWatch] = {}  # (account, its settings) -> its watcher

    def close(self) -> None:
        self._reads.shutdown(wait=True, cancel_futures=True)
        self.worker.close()
        self.reads.close()

    async def call(self, fn: Callable, *args):
        """``fn(*args)`` in a thread of the reads' pool (in the caller's context, as starlette's
        threads run)."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._reads, lambda: context.run(fn, *args))

    async def work(self, op: str, *args):
        """``job_worker.perform(op, *args)`` in the worker; a check's refusal is the API's answer."""
        try:
            return await self.worker.run(op, *args)
        except StartRefused as refused:
            extra = {"problems": refused.problems} if refused.problems else None
            raise ApiError(STATUS_OF[refused.kind], refused.message, extra=extra) from None
        except WorkerStopped as err:
            raise ApiError(503, err.message) from None

    def resolve(self, who: Principal, name: str | None) -> tuple[str, SyncSettings]:
        """The account a start names (``?account=``), or the one the caller may use."""
        if name is None:
            if "*" in who.accounts or len(who.accounts) != 1:
                may = "any account" if "*" in who.accounts else \
                    ", ".join(sorted(who.accounts)) if who.accounts else "no account"
                raise ApiError(400, f"Name the account with ?account=NAME: your credentials may use {may}.")
            name = next(iter(who.accounts))
        return self.account_settings(name, who)

    async def start(self, who: Principal, runbook: str, values: dict[str, Any],
                    account_name: str | None) -> tuple[str, SyncSettings, LiveJob]:
        """Check and start a job (in the worker): the account's name and settings, and the job.
        The job's id is recorded first, so a job Azure created is never one the service forgot."""
        def prepare() -> tuple[str, SyncSettings, str]:
            name, settings = self.resolve(who, account_name)
            job_id = str(uuid.uuid4())
            self.store.record_runbook_job(job_id, name, runbook, who.name)
            return name, settings, job_id

        name, settings, job_id = await self.call(prepare)
        checks = Checks(customization=self.config.customization, permissions=self.config.permissions,
                        roles=who.roles, context={"CallerName": who.name})
        try:
            return name, settings, await self.work("start", name, settings, runbook, values, checks, job_id)
        except BaseException:
            self.store.forget_runbook_job(job_id)
            raise

    def job(self, who: Principal, job_id: str) -> tuple[RunbookJob, Account, LiveJob]:
        record = self.store.runbook_job(job_id)
        if record is None or not who.may(record.account):  # one answer: whose it is is not told
            raise ApiError(404, f"Unknown job {job_id!r}.")
        name, settings = self.account_settings(record.account, who)
        account = self.reads.get(name, settings)
        live = account.job(record.id)
        if live is None:
            raise ApiError(404, f"Job {record.id} is no longer in the account {name}.")
        return record, account, live

    async def wait(self, name: str, settings: SyncSettings, job: LiveJob) -> LiveJob:
        """``job`` once it has ended, or as it is when ``run_timeout`` has passed. The account's
        watcher (``job_watch``) reads the statuses of all the jobs waited on in the account with
        one list request per interval; an ended job is read once more for its exception."""
        if simple_status(job) in ENDED:
            return job
        key = (name.lower(), repr(settings))
        watch = self._watches.get(key)
        if watch is None:
            watch = self._watches[key] = JobWatch(
                settings.target, lambda method, *args: self.work("read", name, settings, method, *args),
                self.config.poll_interval)
        seen = await watch.wait(job, self.config.run_timeout)
        if seen is not None and simple_status(seen) in ENDED:
            seen = await self.work("read", name, settings, "job", job.job_id)
        if seen is None:
            raise ApiError(404, f"Job {job.job_id} is no longer in the account.")
        return seen


def add_runbook_routes(app: FastAPI, config: ServiceConfig, store: Store,
                       account_settings: Callable[[str, Principal], tuple[str, SyncSettings]]) -> RunbookJobs:
    """Add the job API to ``app`` under both path families; the returned state is closed on shutdown."""
    jobs = RunbookJobs(config, store, account_settings)
    router = APIRouter()

    @router.post("/runbook/{name}/start", response_model=JobStarted, responses=START_ERRORS,
                 summary="Check the parameters and start a job of a synced runbook; returns once it is queued")
    async def start(name: RunbookName, who: Caller, parameters: Parameters = None,
                    account: AccountName = None) -> JobStarted:
        _, _, job = await jobs.start(who, name, parameters or {}, account)
        return JobStarted(jobID=job.job_id, status=simple_status(job))

    @router.post("/runbook/{name}/run", responses={**START_ERRORS, 202: {"model": JobStarted}},
                 response_model=JobRun, summary="Start a job and wait for its end (clients need a long "
                                                "timeout); 202 with the job still running after run_timeout")
    async def run(name: RunbookName, who: Caller, parameters: Parameters = None, account: AccountName = None):
        account_name, settings, job = await jobs.start(who, name, parameters or {}, account)
        job = await jobs.wait(account_name, settings, job)
        status = simple_status(job)
        if status not in ENDED:
            return JSONResponse({"jobID": job.job_id, "status": status}, status_code=202)
        streams = await jobs.work("read", account_name, settings, "job_streams", job.job_id)
        return JobRun(jobID=job.job_id, status=status, exception=mask(job.exception) if job.exception else None,
                      streams=[StreamRecord(**record(s)) for s in streams])

    @router.get("/runbook/jobs/{jobID}/status", response_class=PlainTextResponse, responses=ERRORS,
                summary="New, Queued, Running, Completed or Failed (Azure's job states, simplified)")
    async def status(jobID: JobID, who: Caller) -> str:
        _, _, job = await jobs.call(jobs.job, who, jobID)
        return simple_status(job)

    @router.get("/runbook/jobs/{jobID}/output/text", response_class=PlainTextResponse, responses=ERRORS,
                summary="The Output stream as text")
    async def output_text(jobID: JobID, who: Caller) -> str:
        def read() -> str:
            record_, account, _ = jobs.job(who, jobID)
            return account.job_output(record_.id)
        return mask(await jobs.call(read))

    @router.get("/runbook/jobs/{jobID}/output/streams", response_model=list[StreamRecord], responses=ERRORS,
                summary="Stream records, oldest first; streamTypes=Output|Verbose|Error|Warning picks some")
    async def output_streams(jobID: JobID, who: Caller,
                             streamTypes: Annotated[str | None, Query(max_length=64)] = None) -> list[dict]:
        types = stream_types(streamTypes)

        def read() -> list[JobStream]:
            record_, account, _ = jobs.job(who, jobID)
            return account.job_streams(record_.id, types)
        return [record(s) for s in await jobs.call(read)]

    @router.get("/runbook/jobs/{jobID}/exception/text", response_class=PlainTextResponse, responses=ERRORS,
                summary="The terminating error's message; empty when there is none")
    async def exception_text(jobID: JobID, who: Caller) -> str:
        _, _, job = await jobs.call(jobs.job, who, jobID)
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
