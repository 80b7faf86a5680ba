"""Runbook jobs of a directory account: the runbook runs in PowerShell 7 (``pwsh``) on this machine.

Layout, beside the account's runbooks::

    PATH/jobs/<id>.json           the job: runbook, status, times, parameters, exception, streams
    PATH/jobs/<id>.ps1            the runbook's content when the job started (what runs)
    PATH/jobs/<id>.request.json   what the wrapper reads: the script's path and the parameters
    PATH/job_schedules.json       optional: [{"schedule", "runbook", "parameters"}, ...]

``start`` writes the job (New) and hands it to a runner process (``python -m
rjsync.accounts.local_jobs``, in a session of its own, so a job outlives the command that
started it) and returns at once. The runner marks the job Running, runs

    <pwsh> -NoProfile -NonInteractive -Command <WRAPPER>

with ``RJSYNC_JOB_FILE`` naming the request file, and reads the wrapper's standard output: one
JSON object a line, ``{"type": "Output"|"Verbose"|"Warning"|"Error"|"Exception", "text": str,
"time": ISO-8601}``; a line that is not such an object counts as Output text (a script writing
to the console itself). An ``Exception`` record is the terminating error: the job ends Failed
with it as the exception; so does a non-zero exit without one (the exception is then the last
line the executable wrote to standard error). Otherwise the job ends Completed. Every change of
the job file is an atomic write (``rjsync.files``). A stand-in executable with this interface
(``RJSYNC_PWSH`` names it; else ``pwsh`` on PATH) is how tests run jobs without PowerShell.

A job the account still shows New or Running whose runner process (on this host) is gone reads
Failed: its runner was killed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping

from rjsync.accounts.base import JOB_ENDED, JobStream, LiveJob, LiveJobSchedule, check_job_id
from rjsync.errors import AccountError
from rjsync.files import atomic_write

#: The PowerShell the runner hands to ``pwsh -Command``: it runs the script with the parameters
#: (each read as JSON when it is JSON, then splatted: PowerShell converts each to the declared type) and writes every record of
#: the Output, Verbose, Warning, Error and Information streams (the last as Output) as a JSON line.
WRAPPER = r"""
$ErrorActionPreference = 'Continue'
$VerbosePreference = 'Continue'
[Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false)
$request = Get-Content -Raw -LiteralPath $env:RJSYNC_JOB_FILE | ConvertFrom-Json -AsHashtable
$parameters = $request.parameters
if ($null -eq $parameters) { $parameters = @{} }
# as Azure's sandbox does: each value that is JSON is read as JSON ('true', '3', '"text"', '["a"]'),
# any other text stays text (rjsync.jobs.parameters sends each value as JSON, as Az.Automation does)
foreach ($key in @($parameters.Keys)) {
    try { $parameters[$key] = ConvertFrom-Json -InputObject $parameters[$key] -AsHashtable -NoEnumerate -ErrorAction Stop }
    catch { }
}
function Send-RjRecord([string] $Type, $Record) {
    $text = if ($Record -is [string]) { $Record } else { ($Record | Out-String).TrimEnd() }
    $line = [ordered]@{ type = $Type; time = [DateTime]::UtcNow.ToString('o'); text = $text } | ConvertTo-Json -Compress
    [Console]::Out.WriteLine($line)
}
try {
    & $request.script @parameters 6>&1 4>&1 3>&1 2>&1 | ForEach-Object {
        $record = $_
        if ($record -is [System.Management.Automation.VerboseRecord]) { Send-RjRecord 'Verbose' $record.Message }
        elseif ($record -is [System.Management.Automation.WarningRecord]) { Send-RjRecord 'Warning' $record.Message }
        elseif ($record -is [System.Management.Automation.ErrorRecord]) { Send-RjRecord 'Error' $record.ToString() }
        elseif ($record -is [System.Management.Automation.InformationRecord]) { Send-RjRecord 'Output' $record.ToString() }
        else { Send-RjRecord 'Output' $record }
    }
} catch {
    Send-RjRecord 'Exception' $_.ToString()
    exit 1
}
exit 0
"""

_RECORD_TYPES = {"output": "Output", "verbose": "Verbose", "warning": "Warning", "error": "Error"}
_SAVE_EVERY = 0.25  # seconds between writes of a running job's file
_MTIME_MARGIN = 5.0  # seconds: file times coarser than the job's own (FAT: 2 s)


def find_pwsh() -> str:
    """The PowerShell 7 executable: ``RJSYNC_PWSH``, else ``pwsh`` on PATH."""
    named = os.environ.get("RJSYNC_PWSH")
    found = shutil.which(named) if named else shutil.which("pwsh")
    if not found:
        where = f"RJSYNC_PWSH names '{named}', which is not an executable" if named else "pwsh is not on PATH"
        raise AccountError(
            f"Running a runbook in a directory account needs PowerShell 7 (pwsh), and {where}: install "
            "PowerShell 7 or set RJSYNC_PWSH to its executable."
        )
    return found


class LocalJobs:
    """The jobs of the directory account at ``root``."""

    def __init__(self, root: Path):
        self.root = root
        self.folder = root / "jobs"
        self._schedules_file = root / "job_schedules.json"

    def start(self, runbook: str, content: bytes, parameters: Mapping[str, str], job_id: str | None,
              executable: str) -> LiveJob:
        job_id = (job_id or str(uuid.uuid4())).lower()
        existing = self._read(job_id)
        if existing is not None:  # a retried start: that job, as Azure answers a name that exists
            live = _live(existing)
            if live.runbook.lower() != runbook.lower():
                raise AccountError(f"Job '{job_id}' already exists as a job of runbook '{live.runbook}': "
                                   f"start '{runbook}' with a new job id.")
            return live
        self.folder.mkdir(parents=True, exist_ok=True)
        script = self.folder / f"{job_id}.ps1"
        atomic_write(script, content)
        request = {"script": str(script.resolve()), "parameters": dict(parameters)}
        atomic_write(self.folder / f"{job_id}.request.json", json.dumps(request).encode())
        record = {"job_id": job_id, "runbook": runbook, "status": "New", "created": _now(), "started": None,
                  "ended": None, "parameters": dict(parameters), "exception": None, "streams": [],
                  "runner": None}
        self._write(record)
        process = subprocess.Popen(
            [sys.executable, "-m", "rjsync.accounts.local_jobs", str(self.root), job_id, executable],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, cwd=self.folder)
        threading.Thread(target=process.wait, daemon=True).start()  # reaped when it ends: no zombie
        return _live(record)

    def job(self, job_id: str) -> LiveJob | None:
        try:
            check_job_id(job_id)
        except AccountError:
            return None
        record = self._read(job_id.lower())
        return _live(record) if record is not None else None

    def since(self, created: datetime) -> list[LiveJob]:
        """The jobs created at or after ``created``, as Azure's job list shows them (no exception,
        no parameters). A job's file is written when it is created, so files last modified well
        before ``created`` are not read (a margin for coarse file times)."""
        if created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        cutoff = created.timestamp() - _MTIME_MARGIN
        found = []
        try:
            paths = [p for p in self.folder.iterdir() if p.suffix == ".json" and not p.name.endswith(".request.json")]
        except FileNotFoundError:
            return []
        for path in paths:
            try:
                if path.stat().st_mtime < cutoff:
                    continue
                check_job_id(path.stem)
                record = self._read(path.stem)
            except (FileNotFoundError, AccountError):
                continue  # deleted meanwhile, or not a job's file
            if record is None:
                continue
            job = _live(record)
            if job.created is not None and job.created >= created:
                found.append(dataclasses.replace(job, exception=None, parameters={}))
        return sorted(found, key=lambda j: j.created, reverse=True)

    def streams(self, job_id: str, stream_types: set[str] | None) -> list[JobStream]:
        record = self._known(job_id)
        wanted = {t.lower() for t in stream_types} if stream_types is not None else None
        return [_stream(s) for s in record["streams"] if wanted is None or s["type"].lower() in wanted]

    def output(self, job_id: str) -> str:
        record = self._known(job_id)
        return "\n".join(s["text"] for s in record["streams"] if s["type"] == "Output")

    def schedules(self, runbooks: Iterable[str] | None = None) -> tuple[LiveJobSchedule, ...]:
        try:
            data = json.loads(self._schedules_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return ()
        except (OSError, ValueError, RecursionError) as err:
            raise AccountError(f"Cannot read {self._schedules_file}: {err}.") from err
        if not isinstance(data, list) or not all(
                isinstance(d, dict) and isinstance(d.get("schedule"), str) and isinstance(d.get("runbook"), str)
                and isinstance(d.get("parameters") or {}, dict) for d in data):
            raise AccountError(f"The job schedules {self._schedules_file} are corrupt: expected a list of "
                               "objects with a 'schedule', a 'runbook' and 'parameters'; fix or delete the file.")
        wanted = None if runbooks is None else {r.lower() for r in runbooks}
        data = [d for d in data if wanted is None or d["runbook"].lower() in wanted]
        found = [LiveJobSchedule(d["schedule"], d["runbook"], {str(k): str(v) for k, v in (d.get("parameters") or {}).items()},
                                 str(d.get("id") or "")) for d in data]
        return tuple(sorted(found, key=lambda s: (s.runbook.lower(), s.schedule.lower(), s.job_schedule_id)))

    # -- files ------------------------------------------------------------------------------------

    def _known(self, job_id: str) -> dict:
        record = None
        try:
            check_job_id(job_id)
            record = self._read(job_id.lower())
        except AccountError:
            pass
        if record is None:
            raise AccountError(f"The directory account '{self.root}' has no job '{job_id}'.")
        return record

    def _read(self, job_id: str) -> dict | None:
        path = self.folder / f"{job_id}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as err:
            raise AccountError(f"Cannot read the job {path}: {err}.") from err
        if not isinstance(record, dict) or not isinstance(record.get("streams"), list) \
                or not isinstance(record.get("status"), str):
            raise AccountError(f"The job {path} is corrupt; delete the file.")
        return _abandoned(record)

    def _write(self, record: dict) -> None:
        atomic_write(self.folder / f"{record['job_id']}.json", (json.dumps(record, indent=1) + "\n").encode())


def _abandoned(record: dict) -> dict:
    """A job not ended whose runner on this host has gone reads Failed."""
    runner = record.get("runner") or {}
    if record["status"] in JOB_ENDED or runner.get("host") != socket.gethostname() or not runner.get("pid"):
        return record
    try:
        os.kill(int(runner["pid"]), 0)
        return record
    except ProcessLookupError:
        return {**record, "status": "Failed", "ended": record.get("ended") or _now(),
                "exception": "The process that ran the job ended before the job did."}
    except (PermissionError, OSError, ValueError):
        return record


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _live(record: dict) -> LiveJob:
    return LiveJob(job_id=record["job_id"], runbook=record.get("runbook") or "", status=record["status"],
                   exception=record.get("exception"), created=_time(record.get("created")),
                   started=_time(record.get("started")), ended=_time(record.get("ended")),
                   parameters=dict(record.get("parameters") or {}))


def _stream(s: dict) -> JobStream:
    text = s.get("text") or ""
    summary = None if s["type"] == "Output" else (text.splitlines()[0] if text else "")
    return JobStream(str(s.get("id")), _time(s.get("time")), s["type"], summary, text, s.get("value"))


# -- the runner (a process of its own) ------------------------------------------------------------


def run(root: Path, job_id: str, executable: str) -> None:
    """Run job ``job_id`` of the account at ``root`` to its end with ``executable``."""
    jobs = LocalJobs(root)
    record = jobs._read(job_id)
    if record is None or record["status"] != "New":
        return
    record.update(status="Running", started=_now(), runner={"pid": os.getpid(), "host": socket.gethostname()})
    jobs._write(record)
    env = {**os.environ, "RJSYNC_JOB_FILE": str(jobs.folder / f"{job_id}.request.json")}
    exception, code, errors = None, None, ""
    try:
        process = subprocess.Popen([executable, "-NoProfile", "-NonInteractive", "-Command", WRAPPER],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   cwd=jobs.folder, env=env, text=True, encoding="utf-8", errors="replace")
    except OSError as err:
        exception = f"PowerShell could not be started ({executable}): {err.strerror or err}."
    else:
        collected: list[str] = []
        reader = threading.Thread(target=lambda: collected.append(process.stderr.read()), daemon=True)
        reader.start()
        saved = time.monotonic()
        for line in process.stdout:
            kind, text, stamp = _parse(line.rstrip("\r\n"))
            if kind == "Exception":
                exception = text
            else:
                record["streams"].append({"id": str(len(record["streams"]) + 1), "time": stamp, "type": kind,
                                          "text": text, "value": None})
            if time.monotonic() - saved >= _SAVE_EVERY:
                jobs._write(record)
                saved = time.monotonic()
        code = process.wait()
        reader.join()
        errors = "".join(collected)
    if exception is None and code not in (0, None):
        last = [line for line in errors.splitlines() if line.strip()]
        exception = last[-1].strip() if last else f"PowerShell ended with exit code {code}."
    record.update(status="Failed" if exception else "Completed", ended=_now(), exception=exception)
    jobs._write(record)


def _parse(line: str) -> tuple[str, str, str]:
    """(type, text, time) of a line the wrapper wrote; any other line is Output text."""
    try:
        data = json.loads(line)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("type"), str) and isinstance(data.get("text"), str):
        kind = "Exception" if data["type"].lower() == "exception" else _RECORD_TYPES.get(data["type"].lower())
        if kind:
            stamp = data.get("time") if isinstance(data.get("time"), str) and _time(data.get("time")) else _now()
            return kind, data["text"], stamp
    return "Output", line, _now()


if __name__ == "__main__":  # python -m rjsync.accounts.local_jobs ROOT JOB_ID EXECUTABLE
    run(Path(sys.argv[1]), sys.argv[2], sys.argv[3])
