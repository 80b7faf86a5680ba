"""The runbook job API (``rjsync.service.runbooks``) over real HTTP, against a directory account
(jobs run by the pwsh stand-in) and an Azure account (the SDK against the ARM emulator, its jobs
scripted), in both path families."""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from service_support import TOKEN, Server, authenticator

from fakes.accounts import ARM_ID
from fakes.arm_jobs import JobScript, StreamScript
from fakes.job_runbooks import BROKEN, HELLO, stand_in, write_source
from fakes.openers import emulator_opener
from rjsync.errors import RjsyncError
from rjsync.jobs.access import permissions_from_json
from rjsync.service import ServiceConfig, create_app
from rjsync.service.auth import Authenticator, Credential, Principal, hash_secret
from rjsync.service.job_worker import ProcessWorker, ThreadWorker, WorkState, make_worker, perform
from rjsync.settings import SourceSpec, SyncSettings
from rjsync.sync import apply, default_opener, prepare

FAMILIES = ["/runbook", "/api/external/runbook"]
HELLO_LINES = [("Output", "Ada"), ("Verbose", "checking"), ("Output", "3"), ("Output", "portal")]


@pytest.fixture(params=["local", "azure"])
def kind(request):
    return request.param


@pytest.fixture
def jobs_api(kind, tmp_path, monkeypatch, request):
    """``jobs_api(**config changes)`` -> a Server whose account alpha (of ``kind``) and beta (a
    directory account) hold the synced runbooks of ``fakes.job_runbooks``."""
    monkeypatch.setenv("RJSYNC_PWSH", str(stand_in(tmp_path / "bin")))
    source = write_source(tmp_path / "src")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    targets = {"alpha": ARM_ID if kind == "azure" else f"local:{tmp_path / 'accounts' / 'alpha'}",
               "beta": f"local:{tmp_path / 'accounts' / 'beta'}"}
    opener = default_opener
    if kind == "azure":
        arm = request.getfixturevalue("arm")
        # picklable, so the job API's worker process opens the accounts on the emulator too
        opener = functools.partial(emulator_opener, arm.endpoint)
        arm.script_job(HELLO, JobScript(streams=[StreamScript(t, x) for t, x in HELLO_LINES]))
        arm.script_job(BROKEN, JobScript(streams=[("Output", "before"), ("Warning", "careful")], status="Failed",
                                         exception="The user does not exist."))
    for name, target in targets.items():
        (manifests / f"{name}.yaml").write_text(f"source:\n  path: {source}\ntarget: {target}\n", encoding="utf-8")
        with prepare(SyncSettings(SourceSpec(str(source)), target), opener=opener) as prepared:
            assert apply(prepared).ok
    servers = []

    def start(**changes) -> Server:
        config = ServiceConfig(manifests=str(manifests), database=str(tmp_path / "jobs.db"),
                               authenticator=changes.pop("authenticator", authenticator()), opener=opener,
                               **{"poll_interval": 0.1, **{k: v for k, v in changes.items() if k != "cold"}})
        server = Server(create_app(config))
        servers.append(server)
        worker = server.app.state.runbook_jobs.worker
        if isinstance(worker, ProcessWorker) and not changes.get("cold"):
            worker.submit("ping").result(timeout=60)  # its imports done: timings measure the calls alone
        return server

    yield start
    for server in servers:
        server.stop()


def ended(client, family: str, job_id: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"{family}/jobs/{job_id}/status")
        assert status.status_code == 200, status.text
        if status.text in ("Completed", "Failed"):
            return status.text
        assert status.text in ("New", "Queued", "Running")
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end")


def texts(streams) -> list[tuple[str, str]]:
    return [(s["streamType"], s["streamText"]) for s in streams]


@pytest.mark.parametrize("family", FAMILIES)
def test_runbook_api_start_status_output_streams_exception(jobs_api, family):
    server = jobs_api()
    with server.client() as client:
        started = client.post(f"{family}/{HELLO}/start", params={"account": "alpha"},
                              json={"Name": "Ada", "Count": 3})
        assert started.status_code == 200, started.text
        assert set(started.json()) == {"jobID", "status"} and started.json()["status"] in ("New", "Queued")
        job_id = started.json()["jobID"]
        assert ended(client, family, job_id) == "Completed"
        response = client.get(f"{family}/jobs/{job_id}/status")
        assert response.headers["content-type"].startswith("text/plain")
        assert client.get(f"{family}/jobs/{job_id}/output/text").text == "Ada\n3\nportal"
        streams = client.get(f"{family}/jobs/{job_id}/output/streams").json()
        assert texts(streams) == HELLO_LINES
        assert all(set(s) == {"time", "summary", "streamType", "streamText", "value"} and s["time"] for s in streams)
        verbose = client.get(f"{family}/jobs/{job_id}/output/streams", params={"streamTypes": "Verbose"}).json()
        assert texts(verbose) == [("Verbose", "checking")] and verbose[0]["summary"] == "checking"
        assert client.get(f"{family}/jobs/{job_id}/exception/text").text == ""
        bad = client.get(f"{family}/jobs/{job_id}/output/streams", params={"streamTypes": "Nonsense"})
        assert bad.status_code == 400 and "Unknown stream type" in bad.json()["error"]

        failed = client.post(f"{family}/{BROKEN}/start", params={"account": "alpha"}).json()
        assert ended(client, family, failed["jobID"]) == "Failed"
        assert client.get(f"{family}/jobs/{failed['jobID']}/exception/text").text == "The user does not exist."
        assert texts(client.get(f"{family}/jobs/{failed['jobID']}/output/streams").json()) == [
            ("Output", "before"), ("Warning", "careful")]


@pytest.mark.parametrize("family", FAMILIES)
def test_runbook_api_run_waits_for_the_end_and_answers_the_streams(jobs_api, family):
    server = jobs_api()
    with server.client() as client:
        done = client.post(f"{family}/{HELLO}/run", params={"account": "alpha"}, json={"Name": "Ada", "Count": 3})
        assert done.status_code == 200, done.text
        body = done.json()
        assert (body["status"], body["exception"]) == ("Completed", None)
        assert texts(body["streams"]) == HELLO_LINES
        assert client.get(f"{family}/jobs/{body['jobID']}/status").text == "Completed"
        failed = client.post(f"{family}/{BROKEN}/run", params={"account": "alpha"}).json()
        assert (failed["status"], failed["exception"]) == ("Failed", "The user does not exist.")


def test_runbook_api_lists_every_parameter_problem_in_one_422_and_starts_nothing(jobs_api, tmp_path, kind,
                                                                                 request):
    server = jobs_api()
    with server.client() as client:
        refused = client.post(f"/runbook/{HELLO}/start", params={"account": "alpha"},
                              json={"Count": "many", "Mode": "c", "Bogus": 1, "CallerName": "me", "Loud": "yes"})
    assert refused.status_code == 422
    body = refused.json()
    assert body["error"] == f"The parameters of {HELLO} have 6 problems; nothing was started."
    problems = body["problems"]
    assert len(problems) == 6, problems
    assert problems[0].startswith('Unknown parameter "Bogus"')
    assert "Parameter CallerName is filled by the service and cannot be set by the caller." in problems
    assert "Missing mandatory parameter Name (String)." in problems
    assert any(p.startswith('Parameter Count: "many" cannot be bound to Int32') for p in problems)
    assert any(p.startswith('Parameter Mode: "c" is not one of "a", "b"') for p in problems)
    assert any(p.startswith('Parameter Loud: "yes" cannot be bound to Boolean') for p in problems)
    if kind == "local":
        assert not (tmp_path / "accounts" / "alpha" / "jobs").exists()
    else:
        assert not request.getfixturevalue("arm").server.requests("PUT", "/jobs/")


def test_runbook_api_refuses_unknown_unowned_and_out_of_sync_runbooks(jobs_api, tmp_path, kind, request):
    server = jobs_api()
    with server.client() as client:
        unknown = client.post("/runbook/rjgit-user_general_nothing/start", params={"account": "alpha"}, json={})
        assert unknown.status_code == 404
        assert unknown.json()["error"].startswith('Runbook "rjgit-user_general_nothing" is not in the account')
        assert client.post("/runbook/CustomerRunbook/start", params={"account": "alpha"}).status_code == 404
        if kind == "local":
            (tmp_path / "accounts" / "alpha" / "runbooks" / f"{BROKEN}.ps1").write_text("Write-Output 'edited'\n")
        else:
            request.getfixturevalue("arm").account.runbooks[BROKEN.lower()].published = b"Write-Output 'edited'\n"
        drifted = client.post(f"/runbook/{BROKEN}/start", params={"account": "alpha"})
    assert drifted.status_code == 409, drifted.text
    assert drifted.json()["error"].startswith(f"Runbook {BROKEN} is not in sync")


def principal(name: str, accounts, roles=()) -> tuple[str, Credential]:
    return name, Credential(Principal(name, frozenset(accounts), frozenset(roles)),
                            hash_secret(f"{name}-secret", iterations=1000))


def test_runbook_api_operator_access_is_checked_before_anything_starts(jobs_api, kind):
    users = dict([principal("helpdesk", {"alpha"}, {"Helpdesk"}), principal("nobody", {"alpha"})])
    permissions = permissions_from_json({"DisabledRunbookPatterns": ["*_broken"],
                                         "Roles": {"Helpdesk": {"AllowedRunbookPatterns": ["rjgit-user_*"]}}})
    server = jobs_api(authenticator=Authenticator(users, []), permissions=permissions)
    with server.client(auth=("helpdesk", "helpdesk-secret")) as client:
        assert client.post(f"/runbook/{HELLO}/start", json={"Name": "Ada"}).status_code == 200
        disabled = client.post(f"/runbook/{BROKEN}/start")
        assert disabled.status_code == 403
        assert disabled.json()["error"] == (f'You may not start runbook "{BROKEN}": "{BROKEN}" is disabled by the '
                                            'pattern "*_broken" of DisabledRunbookPatterns.')
        # decided on the name alone: a runbook that does not exist is refused the same way
        assert client.post("/runbook/rjgit-org_general_x/start").status_code == 403
    with server.client(auth=("nobody", "nobody-secret")) as client:
        refused = client.post(f"/runbook/{HELLO}/start", json={"Name": "Ada"})
        assert refused.status_code == 403
        assert "holds none of the roles" in refused.json()["error"]


def test_runbook_api_account_comes_from_the_credential_or_the_query(jobs_api):
    server = jobs_api()
    with server.client() as client:  # portal: every account
        missing = client.post(f"/runbook/{HELLO}/start", json={"Name": "Ada"})
        assert missing.status_code == 400
        assert missing.json()["error"] == "Name the account with ?account=NAME: your credentials may use any account."
    with server.client(auth=None, headers={"Authorization": f"Bearer {TOKEN}"}) as client:  # ci: alpha and beta
        assert client.post(f"/runbook/{HELLO}/start", json={"Name": "Ada"}).json()["error"] == (
            "Name the account with ?account=NAME: your credentials may use alpha, beta.")
        assert client.post(f"/runbook/{HELLO}/start", params={"account": "gamma"}, json={"Name": "A"}).status_code == 404
    with server.client(auth=("alpha-only", "a-secret")) as client:
        assert client.post(f"/runbook/{HELLO}/start", json={"Name": "Ada"}).status_code == 200


def test_runbook_api_a_job_of_another_account_is_unknown(jobs_api):
    server = jobs_api()
    with server.client() as client:
        job_id = client.post(f"/runbook/{HELLO}/start", params={"account": "beta"}, json={"Name": "B"}).json()["jobID"]
        assert ended(client, "/runbook", job_id) == "Completed"
    with server.client(auth=("alpha-only", "a-secret")) as client:
        for path in ("status", "output/text", "output/streams", "exception/text"):
            for family in FAMILIES:
                answer = client.get(f"{family}/jobs/{job_id}/{path}")
                assert (answer.status_code, answer.json()) == (404, {"error": f"Unknown job {job_id!r}."})
        unknown = client.get("/runbook/jobs/00000000-0000-0000-0000-000000000000/status")
        assert unknown.status_code == 404 and unknown.json()["error"].startswith("Unknown job")


@pytest.mark.parametrize("kind", ["azure"])
def test_runbook_api_run_waits_without_slowing_status_polls(jobs_api, arm):
    arm.script_job(HELLO, JobScript(streams=[StreamScript(t, x) for t, x in HELLO_LINES], duration=1.5))
    server = jobs_api(waiting_calls=2)
    with server.client() as client:
        job_id = client.post(f"/runbook/{BROKEN}/start", params={"account": "alpha"}).json()["jobID"]
        with ThreadPoolExecutor(20) as pool:
            runs = [pool.submit(client.post, f"/runbook/{HELLO}/run", params={"account": "alpha"},
                                json={"Name": "Ada"}) for _ in range(20)]
            time.sleep(0.3)
            slowest, polls = 0.0, 0
            while not all(r.done() for r in runs):
                began = time.monotonic()
                assert client.get(f"/runbook/jobs/{job_id}/status").status_code == 200
                slowest, polls = max(slowest, time.monotonic() - began), polls + 1
            answers = [r.result() for r in runs]
    assert all(a.status_code == 200 and a.json()["status"] == "Completed" for a in answers)
    # the polls answer while 20 waiters (on 2 threads) wait for a 1.5-s job: none waits for a
    # waiter (the benchmark measures the latency with the service in a process of its own)
    assert polls >= 10 and slowest < 1.0, (polls, slowest)
    assert threading.active_count() < 200


@pytest.mark.parametrize("kind", ["local"])
def test_runbook_api_run_answers_202_when_the_job_outlives_run_timeout(jobs_api, monkeypatch):
    server = jobs_api(run_timeout=0.2)
    monkeypatch.setenv("STAND_IN_SLEEP", "1")
    with server.client() as client:
        answer = client.post(f"/runbook/{HELLO}/run", params={"account": "alpha"}, json={"Name": "Ada"})
        assert answer.status_code == 202
        assert answer.json()["status"] in ("New", "Running")
        assert ended(client, "/runbook", answer.json()["jobID"]) == "Completed"


@pytest.mark.parametrize("kind", ["local"])
def test_runbook_api_a_huge_float_for_an_int_is_a_422_not_a_500(jobs_api):
    server = jobs_api()
    with server.client() as client:
        answer = client.post(f"/runbook/{HELLO}/start", params={"account": "alpha"},
                             json={"Name": "Ada", "Count": 1.0000000000000002e+28})
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize("kind", ["azure"])
def test_runbook_api_account_work_runs_in_a_worker_process_that_ends_with_the_service(jobs_api, arm):
    server = jobs_api(cold=True)
    worker = server.app.state.runbook_jobs.worker
    assert isinstance(worker, ProcessWorker) and worker.pid is None  # started by the first call
    with server.client() as client:
        run = client.post(f"/runbook/{HELLO}/run", params={"account": "alpha"}, json={"Name": "Ada", "Count": 3})
        assert run.status_code == 200 and run.json()["status"] == "Completed", run.text
        pid = worker.pid
        assert pid is not None and pid != os.getpid()
        assert client.get(f"/runbook/jobs/{run.json()['jobID']}/status").text == "Completed"
    assert len(arm.server.requests("PUT", r"/jobs/[^/]+$")) == 1
    server.stop()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the worker process outlived the service"


@pytest.mark.parametrize("kind", ["azure"])
def test_runbook_api_start_in_flight_when_the_worker_process_dies_is_503_and_the_next_start_works(jobs_api, arm):
    server = jobs_api()
    worker = server.app.state.runbook_jobs.worker
    body = {"Name": "Ada", "Count": 3}
    with server.client() as client:
        assert client.post(f"/runbook/{HELLO}/start", params={"account": "alpha"}, json=body).status_code == 200
        killed = worker.pid
        held = arm.server.delay(3, method="PUT", path=r"/jobs/[^/]+$", times=1)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(client.post, f"/runbook/{HELLO}/start", params={"account": "alpha"}, json=body)
            deadline = time.monotonic() + 20
            while not held.fired and time.monotonic() < deadline:
                time.sleep(0.02)
            assert held.fired, "the start never reached the job PUT"
            os.kill(killed, signal.SIGKILL)
            answer = pending.result(timeout=30)
        assert answer.status_code == 503, answer.text
        assert "whether a job started is not known" in answer.json()["error"]
        again = client.post(f"/runbook/{HELLO}/start", params={"account": "alpha"}, json=body)
        assert again.status_code == 200, again.text
        assert worker.pid not in (None, killed)
        assert ended(client, "/runbook", again.json()["jobID"]) == "Completed"


@pytest.mark.parametrize("kind", ["azure"])
def test_runbook_api_in_threads_of_the_serving_process_when_asked(jobs_api, arm):
    server = jobs_api(job_process=False)
    assert isinstance(server.app.state.runbook_jobs.worker, ThreadWorker)
    with server.client() as client:
        run = client.post(f"/runbook/{HELLO}/run", params={"account": "alpha"}, json={"Name": "Ada", "Count": 3})
        assert run.status_code == 200 and run.json()["status"] == "Completed", run.text
        refused = client.post(f"/runbook/{HELLO}/start", params={"account": "alpha"}, json={"Count": "many"})
        assert refused.status_code == 422 and len(refused.json()["problems"]) == 2, refused.text


def test_job_worker_process_needs_an_opener_that_can_be_pickled(tmp_path):
    def closure(settings):  # pragma: no cover - never opened
        raise AssertionError

    config = ServiceConfig(manifests=str(tmp_path), database=str(tmp_path / "jobs.db"),
                           authenticator=authenticator(), opener=closure, job_process=True)
    with pytest.raises(RjsyncError, match="job_process needs an account opener that can be pickled"):
        make_worker(config, closure)
    assert isinstance(make_worker(dataclasses.replace(config, job_process=None), closure), ThreadWorker)
    assert isinstance(make_worker(dataclasses.replace(config, job_process=None), default_opener), ProcessWorker)


def test_job_worker_reads_only_the_listed_methods_and_opens_nothing_for_others(tmp_path):
    opened = []
    state = WorkState(lambda settings: opened.append(settings))
    settings = SyncSettings(SourceSpec(str(tmp_path)), f"local:{tmp_path / 'account'}")
    for method in ("delete_runbook", "write_runbook", "start_job", "__class__"):
        with pytest.raises(RjsyncError, match="does not read"):
            perform(state, "read", ("alpha", settings, method, "Payroll"))
    with pytest.raises(RjsyncError, match="no operation"):
        perform(state, "delete", ("alpha", settings))
    assert opened == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is not running
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
