"""The FastAPI app of the sync service: routes, authentication, and errors as 4xx JSON."""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from rjsync.errors import RjsyncError
from rjsync.fleet import Fleet, load_fleet
from rjsync.service.auth import Principal
from rjsync.service.config import ServiceConfig
from rjsync.service.jobs import JobRunner
from rjsync.service.store import COMPLETED, FAILED, STREAM_TYPES, Job, Store, mask, mask_value
from rjsync.settings import SyncSettings
from rjsync.sync import prepare

log = logging.getLogger("rjsync.service")

ACCOUNT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
JOB_PATTERN = r"^[0-9a-fA-F-]{1,64}$"


class ApiError(Exception):
    """An answer of ``status`` with ``{"error": message, **extra}`` (masked)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 extra: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers, self.extra = status, message, headers, extra or {}


class SyncRequest(BaseModel):
    account: str = Field(pattern=ACCOUNT_PATTERN, description="The account: a manifest name the server knows.")


class StartResponse(BaseModel):
    jobID: str
    status: str
    new: bool = Field(description="false when the account already had a job pending; this is that job.")


class StreamEntry(BaseModel):
    time: str
    summary: str
    streamType: Literal["Output", "Verbose", "Error"]
    streamText: str
    value: object | None = None


class Progress(BaseModel):
    done: int
    total: int | None


class JobStatus(BaseModel):
    jobID: str
    account: str
    status: str
    created: str | None
    started: str | None
    finished: str | None
    progress: Progress


class RunResponse(BaseModel):
    jobID: str
    status: str
    exception: str | None
    streams: list[StreamEntry]


class ErrorResponse(BaseModel):
    error: str


ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 404, 413, 422)}
UNAUTHORIZED = {"WWW-Authenticate": 'Basic realm="rjsync", Bearer realm="rjsync"'}


def without_values(message: str) -> str:
    """A manifest error as the service may show it: no value from the manifest (what follows
    'got'), no URL credentials; the file, line, key and expected type stay."""
    return mask(re.sub(r",? got .*$", ".", message, flags=re.DOTALL))


class _BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413 (declared or chunked), reading them
    here first (bounded) and handing the app the body in one piece."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = JSONResponse({"error": f"The request body is larger than {self.limit} bytes."}, status_code=413)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await too_big(scope, receive, send)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                return await too_big(scope, receive, send)
        whole = {"type": "http.request", "body": bytes(body), "more_body": False}

        async def replay():
            nonlocal whole
            if whole is not None:
                message, whole = whole, None
                return message
            return await receive()

        return await self.app(scope, replay, send)


_basic_scheme = HTTPBasic(auto_error=False, realm="rjsync")
_bearer_scheme = HTTPBearer(auto_error=False)


async def _caller(request: Request,
                  basic: Annotated[HTTPBasicCredentials | None, Depends(_basic_scheme)],
                  bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)]) -> Principal:
    """Who calls; 401 without valid Basic or Bearer credentials (never logged). Credentials
    checked before are answered on the event loop (an HMAC and a lookup); a first check, PBKDF2,
    runs in a worker thread."""
    authenticator = request.app.state.authenticator
    found = authenticator.remembered(basic=(basic.username, basic.password) if basic is not None else None,
                                     bearer=bearer.credentials if bearer is not None and basic is None else None)
    if found is None and basic is not None:
        found = await run_in_threadpool(authenticator.basic, basic.username, basic.password)
    elif found is None and bearer is not None:
        found = await run_in_threadpool(authenticator.bearer, bearer.credentials)
    if found is None:
        what = "missing" if basic is None and bearer is None else "not valid"
        raise ApiError(401, f"Credentials {what}: send Authorization: Basic (user and password) or "
                            "Bearer (a token).", UNAUTHORIZED)
    return found


Caller = Annotated[Principal, Depends(_caller)]
JobID = Annotated[str, Path(pattern=JOB_PATTERN)]


class FleetCache:
    """The manifest folder's accounts, read again only when one of its YAML files changed (name,
    size or modification time): every request needs them, and parsing every manifest on every
    start and status poll was the job API's largest cost under load. A folder that cannot be
    read is not kept: each request reads it again and reports why."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._seen: tuple | None = None
        self._fleet: Fleet | None = None

    def get(self) -> Fleet:
        seen = self._signature()
        with self._lock:
            if seen is not None and seen == self._seen and self._fleet is not None:
                return self._fleet
        fleet = load_fleet(self.folder)
        with self._lock:
            self._seen, self._fleet = seen, fleet
        return fleet

    def _signature(self) -> tuple | None:
        try:
            with os.scandir(self.folder) as entries:
                return tuple(sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in entries
                                    if e.name.lower().endswith((".yaml", ".yml"))))
        except OSError:
            return None


def create_app(config: ServiceConfig) -> FastAPI:
    """The sync service for ``config``; the store opens (and recovers) now, workers stop on shutdown."""
    store = Store(config.database)
    runner = JobRunner(store, accounts_at_once=config.accounts_at_once, opener=config.opener)
    authenticator = config.authenticator

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        runner.close()
        app.state.runbook_jobs.close()
        store.close()

    public = config.public_docs
    app = FastAPI(
        title="rjsync sync service",
        version="1",
        description="Starts syncs of Azure Automation accounts with their runbook sources and reports on them. "
                    "Modelled on the RealmJoin runbook job API. Every request needs Basic or Bearer credentials.",
        lifespan=lifespan,
        # the docs and the schema need credentials too, unless the config opens them (public_docs)
        docs_url="/docs" if public else None, redoc_url="/redoc" if public else None,
        openapi_url="/openapi.json" if public else None,
    )
    app.state.store, app.state.runner, app.state.config = store, runner, config
    app.state.authenticator = authenticator
    app.add_middleware(_BodyLimit, limit=config.max_body)

    if not public:
        @app.get("/openapi.json", include_in_schema=False)
        def openapi_document(who: Caller) -> JSONResponse:
            return JSONResponse(app.openapi())

        @app.get("/docs", include_in_schema=False)
        def swagger(who: Caller):
            return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - Swagger UI")

        @app.get("/redoc", include_in_schema=False)
        def redoc(who: Caller):
            return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")

    fleets = FleetCache(config.manifests)

    def account_settings(name: str, who: Principal) -> tuple[str, SyncSettings]:
        try:
            fleet = fleets.get()
        except RjsyncError as err:
            raise ApiError(404, f"Unknown account {name!r}: the server's accounts cannot be read "
                                f"({without_values(err.message)}).") from None
        entry = next((e for e in fleet.entries if e.name.lower() == name.lower()), None)
        if entry is None or not who.may(entry.name):  # one answer: whether it exists is not told
            known = ", ".join(e.name for e in fleet.entries if who.may(e.name)) or "none"
            raise ApiError(404, f"Unknown account {name!r}; the accounts you may sync: {known}.")
        if entry.settings is None:
            raise ApiError(422, f"The account {entry.name!r} cannot be synced: its manifest is broken: "
                                f"{without_values(entry.error or '')}")
        return entry.name, entry.settings

    def job_for(job_id: str, who: Principal) -> Job:
        job = store.get(job_id)
        if job is None or not who.may(job.account):
            raise ApiError(404, f"Unknown job {job_id!r}.")
        return job

    @app.post("/api/sync/start", response_model=StartResponse, responses=ERRORS,
              summary="Queue a sync of an account; returns at once")
    def start(body: SyncRequest, who: Caller) -> StartResponse:
        name, settings = account_settings(body.account, who)
        job, new = runner.start(name, settings, who.name)
        log.info("%s sync of %s: job %s (%s)", "queued" if new else "joined", name, job.id, who.name)
        return StartResponse(jobID=job.id, status=job.status, new=new)

    @app.post("/api/sync/run", response_model=RunResponse, responses=ERRORS,
              summary="Sync an account and wait for the end (clients need a long timeout)")
    async def run(body: SyncRequest, who: Caller) -> RunResponse:
        # async: a waiter holds no worker thread, so many waiters cannot starve the other requests
        name, settings = await run_in_threadpool(account_settings, body.account, who)
        job, _ = await run_in_threadpool(runner.start, name, settings, who.name)
        done = await runner.wait_async(job.id) or job
        streams = await run_in_threadpool(store.streams, done.id)
        return RunResponse(jobID=done.id, status=done.status, exception=done.exception,
                           streams=[StreamEntry(**s) for s in streams])

    @app.post("/api/sync/plan", responses=ERRORS, summary="What a sync would change (a dry run: no writes)")
    def plan(body: SyncRequest, who: Caller) -> dict:
        _, settings = account_settings(body.account, who)
        try:
            with prepare(settings, **({"opener": config.opener} if config.opener else {})) as prepared:
                return mask_value(prepared.plan.to_json())
        except RjsyncError as err:
            raise ApiError(422, f"Cannot plan {body.account!r}: {err.message}") from None

    @app.get("/api/sync/jobs/{jobID}/status", responses={**ERRORS, 200: {
        "content": {"text/plain": {}, "application/json": {"schema": JobStatus.model_json_schema()}}}},
        summary="New, Queued, Running, Completed or Failed; with format=json also the progress")
    def status(jobID: JobID, who: Caller, format: Literal["text", "json"] = "text"):
        job = job_for(jobID, who)
        if format == "json":
            return JSONResponse(job.to_json())
        return PlainTextResponse(job.status)

    @app.get("/api/sync/jobs/{jobID}/output/text", response_class=PlainTextResponse, responses=ERRORS,
             summary="The Output stream as plain text")
    def output_text(jobID: JobID, who: Caller) -> str:
        job = job_for(jobID, who)
        return "\n".join(s["streamText"] for s in store.streams(job.id, ("Output",)))

    @app.get("/api/sync/jobs/{jobID}/output/streams", response_model=list[StreamEntry], responses=ERRORS,
             summary="Stream entries, oldest first; streamTypes=Output|Verbose|Error picks some")
    def output_streams(jobID: JobID, who: Caller,
                       streamTypes: Annotated[str | None, Query(max_length=64)] = None) -> list[dict]:
        types = tuple(STREAM_TYPES)
        if streamTypes:
            asked = [t.strip() for t in streamTypes.replace(",", "|").split("|") if t.strip()]
            unknown = [t for t in asked if t.capitalize() not in STREAM_TYPES]
            if unknown or not asked:
                raise ApiError(400, f"Unknown stream type {', '.join(unknown) or streamTypes!r}: use "
                                    "Output, Verbose or Error, joined with |.")
            types = tuple(t.capitalize() for t in asked)
        return store.streams(job_for(jobID, who).id, types)

    @app.get("/api/sync/jobs/{jobID}/exception/text", response_class=PlainTextResponse, responses=ERRORS,
             summary="The terminating error's message; empty when there is none")
    def exception_text(jobID: JobID, who: Caller) -> str:
        job = job_for(jobID, who)
        return job.exception or ""

    from rjsync.service.runbooks import add_runbook_routes  # it imports this module

    app.state.runbook_jobs = add_runbook_routes(app, config, store, account_settings)

    # -- errors: always a JSON {"error": sentence}, never a stack trace --

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse({"error": mask(exc.message), **mask_value(exc.extra)}, status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"error": "The body is not valid JSON; send {\"account\": \"<name>\"}."},
                                status_code=400)
        parts = []
        for e in errors[:5]:
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return JSONResponse({"error": "Invalid request: " + "; ".join(parts) + "."}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "Request refused."
        if exc.status_code == 401:
            message = "Credentials not valid: send Authorization: Basic (user and password) or Bearer (a token)."
        return JSONResponse({"error": message}, status_code=exc.status_code,
                            headers=UNAUTHORIZED if exc.status_code == 401 else exc.headers)

    @app.exception_handler(RjsyncError)
    async def rjsync_error(request: Request, exc: RjsyncError):
        return JSONResponse({"error": mask(exc.message)}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        ref = secrets.token_hex(4)
        log.error("unexpected error %s on %s %s: %s", ref, request.method, request.url.path, type(exc).__name__,
                  exc_info=exc)
        return JSONResponse({"error": f"Internal error (reference {ref}); see the server log."}, status_code=500)

    return app


__all__ = ["COMPLETED", "FAILED", "create_app"]
