"""Runbook jobs in the ARM emulator (``fakes.arm``): start, status, streams, output, limits.

Shapes follow the REST specification's 2024-10-23 examples in Azure/azure-rest-api-specs
(``specification/automation/resource-manager/Microsoft.Automation/stable/2024-10-23/examples/job/``):
``createJob.json`` (PUT -> 201, ``status: New``, ``provisioningState: Processing``,
``jobRuntimeEnvironment``), ``getJob.json``, ``getJobOutput.json`` (``text/plain``),
``listJobsByAutomationAccount.json`` (the job list: items with ``jobId``, ``runbook``,
``provisioningState``, ``status`` and the times, no ``exception``, no ``parameters``; newest
first; paged with a ``nextLink``), ``listJobStreamsByJob.json`` (items ``{id, properties: {jobStreamId, summary, time,
streamType}}``, no text; ids ``{job}_{ticks}_{sequence}``) and ``getJobStream.json`` (adds
``streamText`` and ``value``; an Output record's ``summary`` is null).

Scripting, for tests: ``arm.script_job(runbook, JobScript(...))`` sets the outcome of the
runbook's next jobs (default: Completed at once, no streams). A job is New for
``queued`` seconds, Running for ``duration`` seconds, then ends ``status`` (Completed, Failed,
Stopped) with ``exception``; each stream record appears ``at`` seconds into the run (default 0).
``account.add_job(runbook, script)`` seeds a job (someone else's) without a request or a limit.

The service's job limits (MicrosoftDocs/azure-docs includes/azure-automation-service-limits.md:
"Maximum number of new jobs that can be submitted every 30 seconds per Azure Automation account
100" and "Maximum number of concurrent running jobs ... 200"; "When this limit is reached, the
subsequent requests to create a job fail. The client receives an error response."), on by
default (``arm.job_start_limit``, ``arm.running_job_limit``; None turns one off):

- over 100 starts in a sliding 30 s: 429 with the message the service answered a start with in
  microsoft/vscode-azureAutomation#64 ("You have reached the limit of allowed JobsByName API
  calls. Please retry after <time> UTC"; a maintainer: the account's job limit was reached).
  The error code and a ``Retry-After`` header are assumed (the message carries the time).
- 200 jobs not ended (New or Running): 429; the answer is not documented, so its code, message
  and ``Retry-After`` are assumed.

A refused start creates nothing and is recorded in ``arm.job_refusals``; every start is in
``account.job_starts`` (``time.monotonic()`` stamps), so a test can seed someone else's starts.
What the service answers for an unknown runbook (404 here), one never published (400), or a
parameter value that is not a string (400) is unverified.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from fakes.server import Request, Response

ENDED = ("Completed", "Failed", "Stopped")
_TICKS_AT_EPOCH = 621355968000000000  # .NET ticks (100 ns since 0001-01-01) at 1970-01-01


@dataclass
class StreamScript:
    """A stream record a scripted job writes ``at`` seconds into its run."""

    stream_type: str  # Output, Verbose, Warning, Error, Progress, Debug
    text: str = ""
    value: dict | None = None  # None: {} (getJobStream.json's Output record)
    summary: str | None = None  # None: null for Output (the examples), the text's first line else (?)
    at: float = 0.0


@dataclass
class JobScript:
    """The outcome of a job: ``streams`` (``StreamScript`` or ``(type, text)``), the final
    ``status`` and ``exception``, ``duration`` seconds Running after ``queued`` seconds New."""

    streams: list = field(default_factory=list)
    status: str = "Completed"
    exception: str | None = None
    duration: float = 0.0
    queued: float = 0.0

    def records(self) -> list[StreamScript]:
        return [s if isinstance(s, StreamScript) else StreamScript(*s) for s in self.streams]


@dataclass
class FakeJob:
    name: str
    job_id: str
    runbook: str
    parameters: dict
    script: JobScript
    runtime_environment: str | None = None
    created: float = field(default_factory=time.monotonic)
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def status(self, now: float) -> str:
        elapsed = now - self.created
        if elapsed < self.script.queued:
            return "New"
        if elapsed < self.script.queued + self.script.duration:
            return "Running"
        return self.script.status

    def ended(self, now: float) -> bool:
        return self.status(now) in ENDED

    def ends_in(self, now: float) -> float:
        return self.created + self.script.queued + self.script.duration - now

    def streams(self, now: float) -> list[tuple[str, datetime, StreamScript]]:
        """(stream id, time, record) of every record written by ``now``."""
        ran = now - self.created - self.script.queued
        ended = self.ended(now)
        shown = []
        for sequence, record in enumerate(self.script.records(), start=1):
            if ran < 0 or (record.at > ran and not ended):
                continue
            at = self.created_at + timedelta(seconds=self.script.queued + min(record.at, self.script.duration))
            ticks = _TICKS_AT_EPOCH + int(at.timestamp() * 10_000_000)
            shown.append((f"{self.job_id}_{ticks:020d}_{sequence:020d}", at, record))
        return shown


def add_job(account, runbook: str, script: JobScript | None = None, job_id: str | None = None) -> FakeJob:
    """Seed a job of ``runbook`` into ``account`` (no request, no limit)."""
    name = job_id or str(uuid.uuid4())
    job = FakeJob(name, name, runbook, {}, script or JobScript())
    account.jobs[name.lower()] = job
    return job


@dataclass
class JobRefusal:
    """A job start one of the job limits refused (429)."""

    account: str
    limit: str  # "starts" | "running"
    time: float
    retry_after: int


# -- routes (called as ``handler(emulator, request, account, **groups)``) ---------------------------


def job(arm, request: Request, account, name: str) -> Response:
    current = account.jobs.get(name.lower())
    if request.method == "GET":
        if current is None:
            return _job_not_found(name)
        return Response.json(200, _job_json(account, current))
    if request.method != "PUT":
        return Response.error(405, "MethodNotAllowed", f"{request.method} is not allowed here.")
    if current is not None:  # a name that exists starts nothing: 200 with that job (shared notes, Jobs)
        return Response.json(200, _job_json(account, current))
    props = (request.json() or {}).get("properties") or {}
    runbook_name = (props.get("runbook") or {}).get("name")
    if not runbook_name:
        return Response.error(400, "BadRequest", "properties.runbook.name is required.")
    parameters = props.get("parameters") or {}
    if not isinstance(parameters, dict) or not all(isinstance(v, str) for v in parameters.values()):
        return Response.error(400, "BadRequest", "Job parameters must be a map of strings.")
    runbook = account.runbook(runbook_name)
    if runbook is None:
        return Response.error(404, "NotFound", "The Runbook was not found.")
    if runbook.published is None:
        return Response.error(400, "BadRequest", f"Runbook '{runbook.name}' is not published.")
    refused = _refused(arm, account)
    if refused:
        return refused
    script = arm.job_scripts.get(runbook.name.lower(), JobScript())
    created = FakeJob(name, name, runbook.name, dict(parameters), script, runbook.runtime_environment)
    account.jobs[name.lower()] = created
    account.job_starts.append(created.created)
    return Response.json(201, _job_json(account, created, created=True))


#: A clause of the job list's ``$filter``: OData, as Az.Automation writes it (azure-powershell
#: ``AutomationPSClient.GetJobFilterString``: ``properties/startTime ge <time>``, ``properties/endTime
#: le <time>``, ``properties/status eq '<status>'``, ``properties/runbook/name eq '<name>'``, joined
#: by `` and ``; times unquoted ISO 8601), and ``properties/creationTime ge <time>`` (the item's
#: ``creationTime``; seen in use against the REST API as ``properties/creationTime ge
#: 2016-10-03T08:51:18%2B00:00``). Anything else answers 400 (the service's answer is assumed).
_JOB_CLAUSE = re.compile(
    r"\s*properties/(?:(?P<time>creationTime|startTime|endTime)\s+(?P<op>ge|le)\s+(?P<at>\S+)"
    r"|(?P<field>status|runbook/name)\s+eq\s+'(?P<value>[^']*)')\s*$", re.IGNORECASE)
_TIME_FIELDS = {"creationtime": "creationTime", "starttime": "startTime", "endtime": "endTime"}


def jobs(arm, request: Request, account) -> Response:
    """GET ``/jobs[?$filter=...]``: the account's jobs, newest first, as the list shows them."""
    if request.method != "GET":
        return Response.error(405, "MethodNotAllowed", f"{request.method} is not allowed here.")
    query = request.query.get("$filter") or ""
    tests = []
    for clause in re.split(r"\s+and\s+", query.strip(), flags=re.IGNORECASE) if query.strip() else []:
        m = _JOB_CLAUSE.match(clause)
        at = None
        if m and m.group("time"):
            try:
                at = datetime.fromisoformat(m.group("at").replace("Z", "+00:00"))
            except ValueError:
                m = None
            if at is not None and at.tzinfo is None:
                m = None
        if not m:  # what the service answers is assumed
            return Response.error(400, "BadRequest", f"Invalid $filter: {query!r}.")
        tests.append((m, at))
    items = []
    for current in sorted(account.jobs.values(), key=lambda j: j.created_at, reverse=True):
        shown = _job_json(account, current)["properties"]
        if all(_matches(shown, m, at) for m, at in tests):
            items.append(_listed(account, current, shown))
    skip = int(request.query.get("$skip", "0") or 0)
    body: dict = {"value": items[skip: skip + arm.page_size]}
    if skip + arm.page_size < len(items):  # the next page keeps the filter
        kept = f"&$filter={quote(query, safe='')}" if query else ""
        body["nextLink"] = (f"{arm.server.url}{request.path}?api-version={request.query.get('api-version', '')}"
                            f"{kept}&$skip={skip + arm.page_size}")
    return Response.json(200, body)


def _matches(shown: dict, m: re.Match, at: datetime | None) -> bool:
    if at is not None:
        value = shown[_TIME_FIELDS[m.group("time").lower()]]
        if value is None:  # OData: a comparison with null is false
            return False
        value = datetime.fromisoformat(value)
        return value >= at if m.group("op").lower() == "ge" else value <= at
    if m.group("field").lower() == "status":
        return shown["status"].lower() == m.group("value").lower()
    return shown["runbook"]["name"].lower() == m.group("value").lower()


def _listed(account, job: FakeJob, shown: dict) -> dict:
    """A job as the list shows it (listJobsByAutomationAccount.json): no exception, parameters,
    runOn, startedBy, statusDetails or lastStatusModifiedTime."""
    keep = ("jobId", "runbook", "provisioningState", "status", "creationTime", "startTime", "lastModifiedTime",
            "endTime", "jobRuntimeEnvironment")
    return {"id": f"{account.id}/jobs/{job.name}", "name": job.name,
            "type": "Microsoft.Automation/AutomationAccounts/Jobs", "properties": {k: shown[k] for k in keep}}


def job_output(arm, request: Request, account, name: str) -> Response:
    current = account.jobs.get(name.lower())
    if request.method != "GET":
        return Response.error(405, "MethodNotAllowed", f"{request.method} is not allowed here.")
    if current is None:
        return _job_not_found(name)
    lines = [r.text for _, _, r in current.streams(time.monotonic()) if r.stream_type == "Output"]
    return Response(200, "\n".join(lines).encode(), {"Content-Type": "text/plain; charset=utf-8"})


_FILTER_TYPE = re.compile(r"properties/streamType\s+eq\s+'([^']*)'", re.IGNORECASE)
_FILTER_TIME = re.compile(r"properties/time\s+ge\s+'?([0-9T:.+\-Z]+)'?", re.IGNORECASE)


def job_streams(arm, request: Request, account, name: str) -> Response:
    current = account.jobs.get(name.lower())
    if request.method != "GET":
        return Response.error(405, "MethodNotAllowed", f"{request.method} is not allowed here.")
    if current is None:
        return _job_not_found(name)
    query = request.query.get("$filter") or ""
    kind, since = _FILTER_TYPE.search(query), _FILTER_TIME.search(query)
    items = []
    for stream_id, at, record in current.streams(time.monotonic()):
        if kind and record.stream_type.lower() != kind.group(1).lower():
            continue
        if since and at < datetime.fromisoformat(since.group(1).replace("Z", "+00:00")):
            continue
        items.append({"id": f"{account.id}/jobs/{current.name}/streams/{stream_id}",
                      "properties": {"jobStreamId": stream_id, "summary": _summary(record),
                                     "time": at.isoformat(), "streamType": record.stream_type}})
    return arm._page(request, items)


def job_stream(arm, request: Request, account, name: str, stream: str) -> Response:
    current = account.jobs.get(name.lower())
    if request.method != "GET":
        return Response.error(405, "MethodNotAllowed", f"{request.method} is not allowed here.")
    if current is None:
        return _job_not_found(name)
    for stream_id, at, record in current.streams(time.monotonic()):
        if stream_id.lower() == stream.lower():
            return Response.json(200, {
                "id": f"{account.id}/jobs/{current.name}/streams/{stream_id}",
                "properties": {"jobStreamId": stream_id, "streamText": record.text, "streamType": record.stream_type,
                               "summary": _summary(record), "time": at.isoformat(),
                               "value": {} if record.value is None else record.value}})
    return Response.error(404, "NotFound", f"The job stream '{stream}' was not found.")


# -- helpers ---------------------------------------------------------------------------------------


def _refused(arm, account) -> Response | None:
    now = time.monotonic()
    if arm.job_start_limit is not None:
        limit, window = arm.job_start_limit
        in_window = sorted(t for t in account.job_starts if t > now - window)
        if len(in_window) >= limit:
            retry_after = max(1, math.ceil(in_window[len(in_window) - limit] + window - now))
            arm.job_refusals.append(JobRefusal(account.name, "starts", now, retry_after))
            when = (datetime.now(timezone.utc) + timedelta(seconds=retry_after)).strftime("%-m/%-d/%Y %-I:%M:%S %p")
            return Response.error(
                429, "TooManyRequests",  # the code is assumed; the message as microsoft/vscode-azureAutomation#64
                f"You have reached the limit of allowed JobsByName API calls. Please retry after {when} UTC",
                {"Retry-After": str(retry_after)})
    if arm.running_job_limit is not None:
        running = [j for j in account.jobs.values() if not j.ended(now)]
        if len(running) >= arm.running_job_limit:
            soonest = min(j.ends_in(now) for j in running)
            retry_after = max(1, math.ceil(soonest)) if soonest < 3600 else 30
            arm.job_refusals.append(JobRefusal(account.name, "running", now, retry_after))
            return Response.error(  # assumed: the limits page documents only "an error response"
                429, "TooManyRequests",
                f"The automation account '{account.name}' has reached its limit of {arm.running_job_limit} "
                "concurrently running jobs.", {"Retry-After": str(retry_after)})
    return None


def _summary(record: StreamScript) -> str | None:
    if record.summary is not None or record.stream_type == "Output":
        return record.summary
    return record.text.splitlines()[0] if record.text else ""


def _job_json(account, job: FakeJob, created: bool = False) -> dict:
    """The job as a GET shows it now; ``created``: as the PUT that created it answers (always New,
    createJob.json)."""
    now = time.monotonic()
    status = "New" if created else job.status(now)
    started = job.created_at + timedelta(seconds=job.script.queued) if status != "New" else None
    ended = job.created_at + timedelta(seconds=job.script.queued + job.script.duration) if status in ENDED else None
    changed = ended or started or job.created_at
    return {
        "id": f"{account.id}/jobs/{job.name}", "name": job.name,
        "type": "Microsoft.Automation/AutomationAccounts/Jobs",
        "properties": {
            "jobId": job.job_id, "runbook": {"name": job.runbook},
            # Processing while the job runs (createJob.json); Succeeded/Failed once it ended (the
            # spec's JobProvisioningState enum; which one a Stopped job shows is inferred (?))
            "provisioningState": "Processing" if ended is None else "Failed" if status == "Failed" else "Succeeded",
            "creationTime": job.created_at.isoformat(), "startTime": started and started.isoformat(),
            "endTime": ended and ended.isoformat(), "lastModifiedTime": changed.isoformat(),
            "lastStatusModifiedTime": changed.isoformat(), "status": status, "statusDetails": "None",
            "exception": job.script.exception if ended is not None else None,
            "parameters": job.parameters, "runOn": "", "startedBy": "",
            "jobRuntimeEnvironment": {"runtimeEnvironmentName": job.runtime_environment},
        },
    }


def _job_not_found(name: str) -> Response:
    return Response.error(404, "NotFound", f"The job '{name}' was not found.")  # wording assumed
