"""Runbook jobs on both account kinds: start, status, streams, output, exception, job schedules.

Azure through the real SDK over HTTPS against the emulator (its jobs scripted with
``arm.script_job``); the directory account with a stand-in for ``pwsh`` (a small Python script
with the wrapper's interface, ``RJSYNC_PWSH``) that understands a few PowerShell lines, and one
test with real PowerShell where it is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from fakes.arm_jobs import JobScript, StreamScript
from fakes.job_runbooks import stand_in as pwsh_stand_in
from rjsync.accounts.base import JobStream, LiveJobSchedule, RunbookWrite
from rjsync.errors import AccountError, OwnershipError

RUNBOOK = "rjgit-user-general-hello"
azure_only = pytest.mark.parametrize("kind", ["azure"])  # the ``runbook`` fixture of one kind

@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """A stand-in for pwsh, named by RJSYNC_PWSH."""
    path = pwsh_stand_in(tmp_path / "bin")
    monkeypatch.setenv("RJSYNC_PWSH", str(path))
    return path


@pytest.fixture
def arm_or_none(kind, request):
    return request.getfixturevalue("arm") if kind == "azure" else None


@pytest.fixture
def runbook(kind, account, request):
    """``runbook(name, lines, **outcome)`` puts a published runbook into the account whose jobs
    write ``lines`` ((type, text) pairs) and end with ``outcome`` (exception, duration): as
    PowerShell run by the stand-in for the directory account, as a script of the emulator for
    Azure."""
    if kind == "local":
        request.getfixturevalue("stand_in")
    else:
        arm = request.getfixturevalue("arm")

    def make(name: str = RUNBOOK, lines=(), exception: str | None = None, duration: float = 0.0,
             content: str | None = None) -> str:
        verbs = {"Output": "Write-Output", "Verbose": "Write-Verbose", "Warning": "Write-Warning", "Error": "Write-Error"}
        script = content if content is not None else "".join(
            [f"Start-Sleep -Seconds {duration}\n" if duration else ""]
            + [f"{verbs[t]} {text if text.startswith('$') else repr(text)}\n" for t, text in lines]
            + ([f"throw '{exception}'\n"] if exception else []))
        if kind == "local":
            account.write_runbook(RunbookWrite(name, script.encode()))
        else:
            arm.account.add_runbook(name, script.encode())
            arm.script_job(name, JobScript(streams=[StreamScript(t, text) for t, text in lines],
                                           status="Failed" if exception else "Completed", exception=exception,
                                           duration=duration))
        return name
    return make


def ended(account, job_id: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = account.job(job_id)
        if job is not None and job.finished:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end: {account.job(job_id)}")


def kinds_and_texts(streams: list[JobStream]) -> list[tuple[str, str]]:
    return [(s.stream_type, s.text) for s in streams]


# -- both kinds --------------------------------------------------------------------------------


def test_start_job_returns_at_once_then_reports_status_streams_and_output(account, runbook, kind):
    lines = [("Output", "hello"), ("Verbose", "checking"), ("Warning", "careful"), ("Error", "not found"),
             ("Output", "Ada")]
    name = runbook(lines=lines)
    started = account.start_job(name, {"Name": "Ada"})
    assert (started.runbook, started.status, started.parameters) == (name, "New", {"Name": "Ada"})
    job = ended(account, started.job_id)
    assert (job.job_id, job.status, job.exception) == (started.job_id, "Completed", None)
    assert job.created and job.started and job.ended and job.created <= job.started <= job.ended
    streams = account.job_streams(job.job_id)
    assert kinds_and_texts(streams) == lines
    assert [s.summary for s in streams] == [None, "checking", "careful", "not found", None]
    assert all(s.time is not None for s in streams)
    assert account.job_output(job.job_id) == "hello\nAda"


def test_start_job_passes_the_parameters_as_given(account, runbook, kind):
    if kind == "azure":  # the emulator does not run scripts: the parameters are what it stores
        name = runbook()
        job = account.start_job(name, {"Name": "Ada", "Count": "3"})
        assert account.job(job.job_id).parameters == {"Name": "Ada", "Count": "3"}
        return
    name = runbook(lines=[("Output", "$Name"), ("Output", "$Count")])
    job = ended(account, account.start_job(name, {"Name": "Ada Lovelace", "Count": "3"}).job_id)
    assert account.job_output(job.job_id) == "Ada Lovelace\n3"
    assert job.parameters == {"Name": "Ada Lovelace", "Count": "3"}


def test_start_job_a_failed_job_has_the_terminating_error_as_exception(account, runbook):
    name = runbook(lines=[("Output", "before")], exception="The user does not exist.")
    job = ended(account, account.start_job(name, {}).job_id)
    assert job.status == "Failed"
    assert "The user does not exist." in job.exception
    assert kinds_and_texts(account.job_streams(job.job_id)) == [("Output", "before")]


def test_job_streams_filters_by_stream_type_case_insensitively(account, runbook):
    name = runbook(lines=[("Output", "o"), ("Verbose", "v"), ("Error", "e"), ("Warning", "w")])
    job = ended(account, account.start_job(name, {}).job_id)
    assert kinds_and_texts(account.job_streams(job.job_id, {"Output"})) == [("Output", "o")]
    assert kinds_and_texts(account.job_streams(job.job_id, {"verbose", "ERROR"})) == [("Verbose", "v"), ("Error", "e")]
    assert account.job_streams(job.job_id, set()) == []
    assert account.job_streams(job.job_id, {"Debug"}) == []


def test_start_job_with_the_id_of_an_existing_job_returns_that_job(account, runbook, kind, request):
    name = runbook(lines=[("Output", "once")])
    job_id = "0b9d7c3e-6a5f-4f1e-9a43-2f6d8e1c0a11"
    first = account.start_job(name, {"Name": "a"}, job_id=job_id)
    ended(account, job_id)
    again = account.start_job(name, {"Name": "b"}, job_id=job_id)
    assert (again.job_id, again.parameters) == (first.job_id, {"Name": "a"})
    assert account.job_output(job_id) == "once"
    if kind == "azure":
        assert len(request.getfixturevalue("arm").account.jobs) == 1
    else:
        assert [p.name for p in (account.path / "jobs").glob("*.json") if not p.name.endswith(".request.json")] \
            == [f"{job_id}.json"]


def test_start_job_refuses_a_runbook_not_owned_before_any_io(account, kind, request):
    if kind == "azure":
        arm = request.getfixturevalue("arm")
        arm.account.add_runbook("Customer-Runbook", b"Write-Output 1")
    with pytest.raises(OwnershipError, match="Refusing to start runbook 'Customer-Runbook'"):
        account.start_job("Customer-Runbook", {})
    if kind == "azure":
        assert arm.server.log == [] and arm.account.jobs == {}
    else:
        assert not account.path.exists()


def test_start_job_refuses_a_runbook_the_account_does_not_hold(account, runbook):
    runbook()
    with pytest.raises(AccountError, match="Runbook 'rjgit-missing' does not exist in .*sync it before starting it"):
        account.start_job("rjgit-missing", {})


def test_start_job_refuses_a_runbook_never_published(account, kind, request):
    if kind == "azure":
        request.getfixturevalue("arm").account.add_runbook(RUNBOOK, b"", published=False)
    else:
        request.getfixturevalue("stand_in")
        account.write_runbook(RunbookWrite(RUNBOOK, b"Write-Output 1\n"))
        meta = account.path / "runbooks" / f"{RUNBOOK}.meta.json"
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "state": "New"}))
    with pytest.raises(AccountError, match=f"Runbook '{RUNBOOK}' .* has never been published"):
        account.start_job(RUNBOOK, {})


def test_start_job_refuses_parameters_over_the_services_limits_before_any_io(account):
    with pytest.raises(AccountError, match="was given 51 parameters; Azure Automation takes at most 50"):
        account.start_job(RUNBOOK, {f"P{i}": "x" for i in range(51)})
    with pytest.raises(AccountError, match="take 600 KiB; Azure Automation takes at most 512 KiB"):
        account.start_job(RUNBOOK, {"Big": "x" * 600 * 1024})
    with pytest.raises(AccountError, match="'job-1' is not a job id: a job id is a GUID"):
        account.start_job(RUNBOOK, {}, job_id="job-1")


def test_job_unknown_is_none_and_its_streams_and_output_are_a_sentence(account):
    unknown = "5b8a3960-e8ab-45f6-bec6-567df8467d1a"
    assert account.job(unknown) is None
    assert account.job("../runbooks/x") is None
    with pytest.raises(AccountError, match=f"has no job '{unknown}'"):
        account.job_streams(unknown)
    with pytest.raises(AccountError, match=f"has no job '{unknown}'"):
        account.job_output(unknown)


def test_job_status_moves_from_new_through_running_to_completed(account, runbook):
    name = runbook(lines=[("Output", "done")], duration=1.0)
    job_id = account.start_job(name, {}).job_id
    seen = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        job = account.job(job_id)
        if not seen or seen[-1] != job.status:
            seen.append(job.status)
        if job.finished:
            break
        time.sleep(0.05)
    assert seen[-1] == "Completed" and "Running" in seen
    assert seen.index("Running") < len(seen) - 1


def test_jobs_since_lists_the_jobs_created_since_with_the_lists_fields_only(account, runbook, kind, arm_or_none):
    name = runbook(lines=[("Output", "x")], exception="It broke.")
    older = ended(account, account.start_job(name, {"Name": "Ada"}).job_id)
    newer = ended(account, account.start_job(name, {"Name": "Bo"}).job_id)
    if arm_or_none is not None:
        arm_or_none.server.clear_log()
    listed = account.jobs_since(newer.created)
    assert [(j.job_id, j.runbook, j.status, j.exception, dict(j.parameters)) for j in listed] == [
        (newer.job_id, name, "Failed", None, {})]
    assert listed[0].created == newer.created and listed[0].ended is not None
    both = account.jobs_since(older.created)
    assert [j.job_id for j in both] == [newer.job_id, older.job_id]  # newest first
    assert account.jobs_since(newer.created + timedelta(seconds=1)) == []
    if arm_or_none is not None:  # one request each: the job list, filtered by the service
        lists = arm_or_none.server.requests("GET", r"/jobs$")
        assert len(arm_or_none.server.requests()) == len(lists) == 3
        assert lists[0].query["$filter"].startswith("properties/creationTime ge ") and lists[0].query["$filter"][-1] == "Z"


def test_job_schedules_are_read_sorted_with_their_parameters(account, kind, request):
    if kind == "azure":
        arm = request.getfixturevalue("arm")
        arm.account.add_runbook("rjgit-b", b"")
        arm.account.add_runbook("rjgit-a", b"")
        arm.account.add_job_schedule("11111111-1111-1111-1111-111111111111", "rjgit-b", "Nightly", {"Days": "3"})
        arm.account.add_job_schedule("22222222-2222-2222-2222-222222222222", "rjgit-a", "Weekly", {})
    else:
        account.path.mkdir(parents=True)
        (account.path / "job_schedules.json").write_text(json.dumps([
            {"id": "11111111-1111-1111-1111-111111111111", "schedule": "Nightly", "runbook": "rjgit-b",
             "parameters": {"Days": "3"}},
            {"id": "22222222-2222-2222-2222-222222222222", "schedule": "Weekly", "runbook": "rjgit-a", "parameters": {}},
        ]))
    assert account.job_schedules() == (
        LiveJobSchedule("Weekly", "rjgit-a", {}, "22222222-2222-2222-2222-222222222222"),
        LiveJobSchedule("Nightly", "rjgit-b", {"Days": "3"}, "11111111-1111-1111-1111-111111111111"),
    )


# -- Azure -------------------------------------------------------------------------------------


@azure_only
def test_azure_start_job_puts_a_new_guid_with_the_parameters_as_strings(arm, azure_account, runbook):
    name = runbook()
    first, second = azure_account.start_job(name, {"Name": "Ada"}), azure_account.start_job(name, {})
    puts = arm.server.requests("PUT", "/jobs/")
    assert [p.path.rsplit("/", 1)[1] for p in puts] == [first.job_id, second.job_id] and first.job_id != second.job_id
    assert json.loads(puts[0].body) == {"properties": {"runbook": {"name": name}, "parameters": {"Name": "Ada"},
                                                       "runOn": ""}}


@azure_only
def test_azure_start_job_whose_answer_was_lost_returns_the_job_the_first_put_made(arm, azure_account, runbook):
    # the retried PUT meets the job the lost one created: 200 with it, which the SDK refuses
    name = runbook(lines=[("Output", "once")])
    arm.server.drop(method="PUT", path="/jobs/", after=True, times=1)
    job = azure_account.start_job(name, {"Name": "Ada"})
    assert [r.status for r in arm.server.requests("PUT", "/jobs/")] == [None, 200]
    assert (job.runbook, job.parameters) == (name, {"Name": "Ada"})
    assert list(arm.account.jobs) == [job.job_id]


@azure_only
def test_azure_job_streams_lists_then_reads_each_record_filtered_by_the_service(arm, azure_account, runbook):
    name = runbook(lines=[("Output", "a"), ("Verbose", "b"), ("Output", "c")])
    job = ended(azure_account, azure_account.start_job(name, {}).job_id)
    arm.server.clear_log()
    assert kinds_and_texts(azure_account.job_streams(job.job_id, {"Output"})) == [("Output", "a"), ("Output", "c")]
    listed = arm.server.requests("GET", r"/streams$")
    assert [r.query.get("$filter") for r in listed] == ["properties/streamType eq 'Output'"]
    assert len(arm.server.requests("GET", r"/streams/.")) == 2


@azure_only
def test_azure_job_stream_values_come_from_the_stream_get(arm, azure_account, runbook):
    name = runbook()
    arm.script_job(name, JobScript(streams=[StreamScript("Error", "Boom\nat line 3", {"Exception": "Boom"})]))
    job = ended(azure_account, azure_account.start_job(name, {}).job_id)
    (record,) = azure_account.job_streams(job.job_id)
    assert (record.summary, record.text, record.value) == ("Boom", "Boom\nat line 3", {"Exception": "Boom"})


@azure_only
def test_azure_start_job_paces_itself_to_the_job_window(arm, open_azure, runbook):
    arm.job_start_limit = (4, 0.5)
    account = open_azure(jobs_per_window=4, job_window=0.5)
    name = runbook()
    begun = time.monotonic()
    for _ in range(10):
        account.start_job(name, {})
    assert arm.job_refusals == []
    assert time.monotonic() - begun >= 1.0  # 10 starts at 4 per 0.5 s: two full windows waited
    assert len(arm.account.jobs) == 10


@azure_only
def test_azure_start_job_waits_out_the_services_start_limit_reached_by_others(arm, azure_account, runbook):
    arm.job_start_limit = (3, 1.0)
    name = runbook()
    arm.account.job_starts.extend([time.monotonic()] * 3)  # someone else's starts
    job = azure_account.start_job(name, {})
    assert [(r.limit, r.retry_after) for r in arm.job_refusals] == [("starts", 1)]
    assert [r.status for r in arm.server.requests("PUT", "/jobs/")] == [429, 201]
    assert arm.account.jobs[job.job_id].runbook == name


@azure_only
def test_azure_start_job_over_the_running_job_limit_is_one_sentence(arm, open_azure, runbook):
    arm.running_job_limit = 2
    name = runbook()
    for _ in range(2):
        arm.account.add_job(name, JobScript(duration=600))
    account = open_azure(retry_status=0)
    with pytest.raises(AccountError) as caught:
        account.start_job(name, {})
    assert str(caught.value).startswith(f"Azure kept throttling requests while starting runbook '{name}'")
    assert "2 concurrently running jobs" in str(caught.value)
    assert [r.limit for r in arm.job_refusals] == ["running"]


# -- directory account -----------------------------------------------------------------------


def test_local_start_job_without_pwsh_says_powershell_7_is_needed(local_account, monkeypatch, tmp_path):
    monkeypatch.delenv("RJSYNC_PWSH", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    local_account.write_runbook(RunbookWrite(RUNBOOK, b"Write-Output 1\n"))
    with pytest.raises(AccountError, match=r"^Running a runbook in a directory account needs PowerShell 7 \(pwsh\)"):
        local_account.start_job(RUNBOOK, {})
    assert not (local_account.path / "jobs").exists()


def test_local_start_job_runs_the_content_it_had_when_started(local_account, stand_in):
    local_account.write_runbook(RunbookWrite(RUNBOOK, b"Start-Sleep -Seconds 0.5\nWrite-Output 'first'\n"))
    job_id = local_account.start_job(RUNBOOK, {}).job_id
    local_account.write_runbook(RunbookWrite(RUNBOOK, b"Write-Output 'second'\n"))
    assert local_account.job_output(ended(local_account, job_id).job_id) == "first"


def test_local_job_lines_that_are_not_records_are_output_and_an_exit_code_fails_it(local_account, stand_in):
    local_account.write_runbook(RunbookWrite(RUNBOOK, b"Console 'raw text'\nExit 3\n"))
    job = ended(local_account, local_account.start_job(RUNBOOK, {}).job_id)
    assert (job.status, job.exception) == ("Failed", "something broke")
    assert local_account.job_output(job.job_id) == "raw text"


def test_local_job_whose_runner_died_reads_failed(local_account, stand_in):
    local_account.write_runbook(RunbookWrite(RUNBOOK, b"Write-Output 'x'\n"))
    job_id = ended(local_account, local_account.start_job(RUNBOOK, {}).job_id).job_id
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = local_account.path / "jobs" / f"{job_id}.json"
    record = json.loads(path.read_text())
    record.update(status="Running", ended=None, runner={**record["runner"], "pid": gone.pid})
    path.write_text(json.dumps(record))
    job = local_account.job(job_id)
    assert (job.status, job.exception) == ("Failed", "The process that ran the job ended before the job did.")


def test_local_job_schedules_corrupt_file_is_one_sentence(local_account):
    local_account.path.mkdir(parents=True)
    (local_account.path / "job_schedules.json").write_text('[{"schedule": 3}]')
    with pytest.raises(AccountError, match="job_schedules.json are corrupt"):
        local_account.job_schedules()


@pytest.mark.skipif(shutil.which("pwsh") is None, reason="PowerShell 7 (pwsh) is not installed")
def test_local_job_with_real_pwsh_captures_every_stream_and_the_exception(local_account, monkeypatch):
    monkeypatch.delenv("RJSYNC_PWSH", raising=False)
    script = (b"param([Parameter(Mandatory)][string] $Name, [int] $Count = 1)\n"
              b"Write-Output \"Hello $Name\"\nWrite-Verbose 'checking'\nWrite-Warning 'careful'\n"
              b"Write-Error 'not found'\nWrite-Output ($Count + 1)\nthrow 'The end.'\n")
    local_account.write_runbook(RunbookWrite(RUNBOOK, script))
    job = ended(local_account, local_account.start_job(RUNBOOK, {"Name": "Ada", "Count": "2"}).job_id, timeout=60)
    assert (job.status, job.exception) == ("Failed", "The end.")
    assert kinds_and_texts(local_account.job_streams(job.job_id)) == [
        ("Output", "Hello Ada"), ("Verbose", "checking"), ("Warning", "careful"), ("Error", "not found"), ("Output", "3")]
    assert os.environ.get("RJSYNC_PWSH") is None
