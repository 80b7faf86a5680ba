"""Runbook jobs of an Azure Automation account, through the SDK's ``job``, ``job_stream`` and
``job_schedule`` operations (api-version 2024-10-23). ``AzureAccount`` delegates to it.

- A start is PUT ``/jobs/{GUID}`` with ``{"properties": {"runbook": {"name"}, "parameters":
  {name: string}, "runOn": ""}}`` (the REST specification's example ``job/createJob.json``);
  the service answers 201 with the job New. A name that exists answers 200 with that job (shared
  notes, "Jobs"); the SDK accepts only 201 and raises on that 200, so the job is read from the
  answer's body: a retried start (its first answer lost) is the job the first one made.
- Before the PUT, the runbook is read once: one the account does not hold, or that was never
  published, is refused with a sentence (what the service answers then is unverified).
- Starts are paced by ``pacing.JobStartPacing`` (100 per 30 s per account) in the client's
  pipeline; a 429 of the service's own job limits is retried by azure-core, then becomes a
  sentence.
- Streams: the list (``$filter`` on one stream type) has no text; each record's text and value
  come from a GET of it (``job/listJobStreamsByJob.json``, ``job/getJobStream.json``), a few at
  once. The output is the service's text (``job/getJobOutput.json``: ``text/plain``).
- The jobs created since a time: the job list (GET ``/jobs?$filter=properties/creationTime ge
  <time>``, ``job/listJobsByAutomationAccount.json``, paged), whose items carry the status,
  runbook and times but no exception and no parameters. The filter is OData's, as Az.Automation
  writes its job filters (azure-powershell ``AutomationPSClient.GetJobFilterString``:
  ``properties/startTime ge <time>``, the time unquoted, ISO 8601 in UTC) on the item's
  ``creationTime``.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Iterable, Mapping

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.automation.models import Job

from rjsync.accounts.azure_errors import translate
from rjsync.accounts.azure_values import text
from rjsync.accounts.base import STATE_NEW, JobStream, LiveJob, LiveJobSchedule, check_job_id
from rjsync.errors import AccountError


class AzureJobs:
    """The job operations of one account. ``errors(action, not_found=None)`` is the account's
    error translation; ``where`` names the account in sentences."""

    def __init__(self, client, resource_group: str, account: str, *, errors, where, concurrency: int = 8):
        self._client, self._rg, self._name = client, resource_group, account
        self._errors, self._where = errors, where
        self._concurrency = max(1, concurrency)

    def start(self, runbook: str, parameters: Mapping[str, str], job_id: str | None) -> LiveJob:
        c, rg, acc = self._client, self._rg, self._name
        name = job_id or str(uuid.uuid4())
        try:
            with self._errors(f"reading runbook '{runbook}'", not_found=ResourceNotFoundError):
                held = c.runbook.get(rg, acc, runbook)
        except ResourceNotFoundError:
            raise AccountError(
                f"Runbook '{runbook}' does not exist in automation account '{acc}': sync it before starting it."
            ) from None
        state = text(held.properties.state) if held.properties else ""
        if state.lower() == STATE_NEW.lower():
            raise AccountError(
                f"Runbook '{held.name}' in automation account '{acc}' has never been published: there is "
                "no version to run; sync it first."
            )
        body = {"properties": {"runbook": {"name": held.name}, "parameters": dict(parameters), "runOn": ""}}
        action = f"starting runbook '{held.name}'"
        try:
            with self._errors(action, not_found=HttpResponseError):
                job = c.job.create(rg, acc, name, body)
        except HttpResponseError as err:
            if err.status_code != 200 or err.response is None:
                raise translate(err, action, self._where) from None
            # the name exists: the service answers 200 with that job, which the SDK refuses
            job = Job(err.response.json())
        live = live_job(job, name)
        if live.runbook.lower() != held.name.lower():
            raise AccountError(
                f"Job '{name}' already exists in automation account '{acc}' as a job of runbook "
                f"'{live.runbook}': start '{held.name}' with a new job id."
            )
        return live

    def job(self, job_id: str) -> LiveJob | None:
        try:
            check_job_id(job_id)
        except AccountError:
            return None  # no job has such a name
        try:
            with self._errors(f"reading job '{job_id}'", not_found=ResourceNotFoundError):
                return live_job(self._client.job.get(self._rg, self._name, job_id), job_id)
        except ResourceNotFoundError:
            return None

    def since(self, created: datetime) -> list[LiveJob]:
        query = f"properties/creationTime ge {odata_time(created)}"
        with self._errors("listing the jobs"):
            return [listed_job(item) for item in
                    self._client.job.list_by_automation_account(self._rg, self._name, filter=query)]

    def streams(self, job_id: str, stream_types: set[str] | None) -> list[JobStream]:
        wanted = {t.lower() for t in stream_types} if stream_types is not None else None
        if wanted is not None and not wanted:
            return []
        self._known(job_id)
        only = next(iter(stream_types)) if stream_types is not None and len(stream_types) == 1 else None
        query = f"properties/streamType eq '{only}'" if only and only.isalpha() else None
        with self._not_found(job_id, f"listing the streams of job '{job_id}'"):
            listed = [s for s in self._client.job_stream.list_by_job(self._rg, self._name, job_id, filter=query)
                      if wanted is None or text(s.properties.stream_type).lower() in wanted]
        ids = [s.properties.job_stream_id for s in listed]
        with ThreadPoolExecutor(max_workers=max(1, min(self._concurrency, len(ids) or 1))) as pool:
            records = list(pool.map(lambda stream_id: self._stream(job_id, stream_id), ids))
        return sorted(records, key=lambda r: (r.time is None, r.time, r.stream_id))

    def _stream(self, job_id: str, stream_id: str) -> JobStream:
        with self._not_found(job_id, f"reading a stream of job '{job_id}'"):
            got = self._client.job_stream.get(self._rg, self._name, job_id, stream_id)
        p = got.properties
        value = p.value if isinstance(p.value, Mapping) else None
        return JobStream(p.job_stream_id or stream_id, p.time, text(p.stream_type), p.summary, p.stream_text,
                         dict(value) if value is not None else None)

    def output(self, job_id: str) -> str:
        self._known(job_id)
        with self._not_found(job_id, f"reading the output of job '{job_id}'"):
            return self._client.job.get_output(self._rg, self._name, job_id) or ""

    def schedules(self, runbooks: Iterable[str] | None = None) -> tuple[LiveJobSchedule, ...]:
        """The list leaves each job schedule's parameters out (``"parameters": null`` in the REST
        spec's listAllJobSchedulesByAutomationAccount.json; getJobSchedule.json has them): every
        job schedule of ``runbooks`` is read again with a GET, a few at once."""
        wanted = None if runbooks is None else {r.lower() for r in runbooks}
        with self._errors("listing the job schedules"):
            listed = [item for item in self._client.job_schedule.list_by_automation_account(self._rg, self._name)
                      if item.properties is not None and (wanted is None or (
                          item.properties.runbook is not None and (item.properties.runbook.name or "").lower() in wanted))]

        def read(item):
            if item.properties.parameters is not None:
                return item
            with self._errors("reading a job schedule"):
                return self._client.job_schedule.get(self._rg, self._name, item.properties.job_schedule_id or item.name)

        with ThreadPoolExecutor(max_workers=4) as pool:
            listed = list(pool.map(read, listed))
        schedules = []
        for item in listed:
            p = item.properties
            schedules.append(LiveJobSchedule(
                schedule=(p.schedule.name if p.schedule else None) or "",
                runbook=(p.runbook.name if p.runbook else None) or "",
                parameters={str(k): "" if v is None else str(v) for k, v in (p.parameters or {}).items()},
                job_schedule_id=p.job_schedule_id or item.name or "",
            ))
        return tuple(sorted(schedules, key=lambda s: (s.runbook.lower(), s.schedule.lower(), s.job_schedule_id)))

    # -- helpers --------------------------------------------------------------------------------

    def _known(self, job_id: str) -> None:
        try:
            check_job_id(job_id)
        except AccountError:
            raise self._no_job(job_id) from None

    def _not_found(self, job_id: str, action: str):
        return _NotFound(self._errors(action, not_found=ResourceNotFoundError), self._no_job(job_id))

    def _no_job(self, job_id: str) -> AccountError:
        return AccountError(f"Automation account '{self._name}' has no job '{job_id}'.")


class _NotFound:
    """The account's error translation, with a 404 turned into ``missing``."""

    def __init__(self, translation, missing: AccountError):
        self._translation, self._missing = translation, missing

    def __enter__(self):
        self._translation.__enter__()
        return self

    def __exit__(self, kind, err, trace):
        if isinstance(err, ResourceNotFoundError):
            raise self._missing from None
        return self._translation.__exit__(kind, err, trace)


def live_job(job: Job, name: str) -> LiveJob:
    """A job as the SDK reads it; ``name``: the job's name (its id in the job API)."""
    p = job.properties
    if p is None:
        return LiveJob(job.name or name, "", "")
    return LiveJob(
        job_id=job.name or name,
        runbook=(p.runbook.name if p.runbook else None) or "",
        status=text(p.status),
        exception=p.exception or None,
        created=p.creation_time,
        started=p.start_time,
        ended=p.end_time,
        parameters={str(k): "" if v is None else str(v) for k, v in (p.parameters or {}).items()},
    )


def listed_job(item) -> LiveJob:
    """A job as the job list shows it: no exception, no parameters."""
    p = item.properties
    return LiveJob(
        job_id=item.name or (p.job_id if p else "") or "",
        runbook=(p.runbook.name if p and p.runbook else None) or "",
        status=text(p.status) if p else "",
        created=p.creation_time if p else None,
        started=p.start_time if p else None,
        ended=p.end_time if p else None,
    )


def odata_time(stamp: datetime) -> str:
    """``stamp`` as an OData date-time literal in UTC (``2024-05-01T10:00:00.123456Z``); a naive
    one is taken as UTC."""
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
