"""``rjsync run`` and ``rjsync job``: start a synced runbook's job with the checks of the job API
(``rjsync.jobs.start``), and show a job. Everything from the account is printed through
``markdown.terminal``, so no runbook output forges a line of ours."""

from __future__ import annotations

import getpass
import json
import time
from typing import Any

import click

from rjsync.accounts.base import JobStream
from rjsync.catalog.build import load_lenient_json
from rjsync.errors import RjsyncError
from rjsync.jobs.start import (
    ENDED,
    INVALID,
    Checks,
    StartRefused,
    check_start,
    simple_status,
    start,
)
from rjsync.markdown import terminal
from rjsync.settings import SyncSettings
from rjsync.sync import AccountOpener, default_opener


def parse_params(given: tuple[str, ...]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs; a value that is JSON is read as JSON (``true``, ``3``, ``["a"]``,
    ``"3"``), any other is text."""
    values: dict[str, Any] = {}
    for item in given:
        name, equals, text = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise click.UsageError(f"--param takes NAME=VALUE, not {terminal(item)!r}.")
        if name.casefold() in {n.casefold() for n in values}:
            raise click.UsageError(f"--param {terminal(name)} is given twice.")
        try:
            values[name] = json.loads(text)
        except (ValueError, RecursionError):
            values[name] = text
    return values


def read_customization(path: str | None) -> Any:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8-sig") as handle:
            data = load_lenient_json(handle.read())
    except (OSError, UnicodeDecodeError) as err:
        raise RjsyncError(f"Cannot read the customization {path}: {getattr(err, 'strerror', None) or err}.") from None
    except (ValueError, RecursionError):
        raise RjsyncError(f"The customization {path} is not valid JSON.") from None
    if not isinstance(data, dict):
        raise RjsyncError(f"The customization {path} must be a JSON object (Runbooks, Settings, ...).")
    return data


def cli_context(values: dict[str, Any]) -> dict[str, Any]:
    """What the command fills itself, as the portal and the service do: ``CallerName`` (where the
    runbook has it) is the local user, unless ``--param CallerName=...`` names someone."""
    if any(k.casefold() == "callername" for k in values):
        return {}
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid
        user = "rjsync"
    return {"CallerName": f"{user} (rjsync run)"}


def run_job(settings: SyncSettings, name: str, values: dict[str, Any], *, wait: bool,
            customization: Any = None, opener: AccountOpener = default_opener, poll: float = 1.0) -> int:
    """Check and start a job of runbook ``name``; with ``wait``, show its streams at its end.
    Exit code: 0 started (or Completed), 1 refused or Failed."""
    account = opener(settings)
    try:
        try:
            checked = check_start(account, settings, name, values,
                                  checks=Checks(customization=customization, context=cli_context(values)))
        except StartRefused as refused:
            if refused.kind != INVALID:
                raise
            click.echo(f"Error: {refused.message}", err=True)
            for problem in refused.problems:
                click.echo(f"  - {terminal(problem)}", err=True)
            return 1
        job = start(account, checked)
        click.echo(f"Started job {job.job_id} of {checked.runbook} ({simple_status(job)}).")
        if not wait:
            return 0
        pause = min(0.25, poll)
        while simple_status(job) not in ENDED:
            time.sleep(pause)
            pause = min(pause * 1.5, poll)
            job = account.job(job.job_id) or job
        show_streams(account.job_streams(job.job_id))
        return show_end(job.job_id, simple_status(job), job.exception)
    finally:
        account.close()


def show_job(settings: SyncSettings, job_id: str, *, streams: bool, opener: AccountOpener = default_opener) -> int:
    """Show job ``job_id``: its status, its output (or every stream), its exception. Exit code:
    0 Completed or not ended yet, 1 Failed."""
    account = opener(settings)
    try:
        job = account.job(job_id)
        if job is None:
            raise RjsyncError(f"The account has no job {terminal(job_id)!r}.")
        status = simple_status(job)
        click.echo(f"Job {job.job_id} of {terminal(job.runbook)}: {status} ({terminal(job.status)} in the account).")
        if streams:
            show_streams(account.job_streams(job.job_id))
        else:
            for line in account.job_output(job.job_id).splitlines():
                click.echo(terminal(line))
        if status not in ENDED:
            return 0
        return show_end(job.job_id, status, job.exception, quiet_when_completed=True)
    finally:
        account.close()


def show_streams(records: list[JobStream]) -> None:
    for record in records:
        for i, line in enumerate((record.text or record.summary or "").splitlines() or [""]):
            label = record.stream_type if i == 0 else ""
            click.echo(f"{terminal(label):<8} {terminal(line)}".rstrip())


def show_end(job_id: str, status: str, exception: str | None, quiet_when_completed: bool = False) -> int:
    if status == "Completed":
        if not quiet_when_completed:
            click.echo(f"Job {job_id} Completed.")
        return 0
    click.echo(f"Job {job_id} Failed{': ' + terminal(exception) if exception else '.'}", err=True)
    return 1
