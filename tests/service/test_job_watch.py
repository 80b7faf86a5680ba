"""The watcher of waiting ``/run``s (``rjsync.service.job_watch``) over real HTTP: one list request
per interval for all the waiters of an account (counted on the ARM emulator), each waiter woken
when its own job ends, a job gone while waited on."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_service_runbooks import jobs_api, kind  # noqa: F401 - the job API's fixtures

from fakes.arm_jobs import JobScript
from fakes.job_runbooks import BROKEN, HELLO

JOB_LIST, ONE_JOB = r"/jobs$", r"/jobs/[^/]+$"


@pytest.mark.parametrize("kind", ["azure"])
def test_job_watch_reads_every_waiter_of_an_account_with_one_list_request_per_interval(jobs_api, arm):  # noqa: F811
    waiters = 12
    arm.script_job(HELLO, JobScript(streams=[("Output", "hi")], duration=1.5))
    server = jobs_api(poll_interval=0.5)
    with server.client() as client, ThreadPoolExecutor(waiters) as pool:
        arm.server.clear_log()
        began = time.monotonic()
        runs = list(pool.map(lambda _: client.post(f"/runbook/{HELLO}/run", params={"account": "alpha"},
                                                   json={"Name": "Ada"}), range(waiters)))
        took = time.monotonic() - began
    assert all(r.status_code == 200 and r.json()["status"] == "Completed" for r in runs), runs[0].text
    lists = arm.server.requests("GET", JOB_LIST)
    # no GET of a job while it runs: one each once it ended, for its exception
    assert len(arm.server.requests("GET", ONE_JOB)) == waiters
    # one list per interval for all of them: at most one a quarter second, not one per waiter
    assert 1 <= len(lists) <= took / 0.25 + 1, (len(lists), took)
    assert all(r.query["$filter"].startswith("properties/creationTime ge ") for r in lists)


@pytest.mark.parametrize("kind", ["azure"])
def test_job_watch_wakes_each_waiter_when_its_own_job_ends(jobs_api, arm):  # noqa: F811
    arm.script_job(HELLO, JobScript(streams=[("Output", "hi")], duration=0.3))
    arm.script_job(BROKEN, JobScript(streams=[("Output", "before")], status="Failed", duration=2.5,
                                     exception="The user does not exist."))
    server = jobs_api(poll_interval=0.2)
    with server.client() as client, ThreadPoolExecutor(2) as pool:
        def run(runbook: str, parameters: dict):
            began = time.monotonic()
            answer = client.post(f"/runbook/{runbook}/run", params={"account": "alpha"}, json=parameters)
            return answer, time.monotonic() - began
        slow = pool.submit(run, BROKEN, {})
        time.sleep(0.1)
        (quick, quick_took), (failed, slow_took) = pool.submit(run, HELLO, {"Name": "Ada"}).result(), slow.result()
    assert quick.status_code == 200 and quick.json()["status"] == "Completed"
    assert quick_took < 1.5, quick_took  # woken at its job's end, not at the other's
    assert failed.json()["status"] == "Failed" and failed.json()["exception"] == "The user does not exist."
    assert slow_took >= 2.5


@pytest.mark.parametrize("kind", ["azure"])
def test_job_watch_a_job_gone_while_waited_on_is_a_404(jobs_api, arm):  # noqa: F811
    arm.script_job(HELLO, JobScript(duration=30))
    server = jobs_api(poll_interval=0.2)
    with server.client() as client, ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(client.post, f"/runbook/{HELLO}/run", params={"account": "alpha"}, json={"Name": "A"})
        deadline = time.monotonic() + 10
        while not arm.account.jobs and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        (job_id,) = list(arm.account.jobs)
        del arm.account.jobs[job_id]
        answer = waiting.result(timeout=10)
    assert (answer.status_code, answer.json()) == (404, {"error": f"Job {job_id} is no longer in the account."})


@pytest.mark.parametrize("kind", ["local", "azure"])
def test_job_watch_answers_202_with_the_job_still_running_after_run_timeout(jobs_api, arm_if_azure):  # noqa: F811
    if arm_if_azure is not None:
        arm_if_azure.script_job(HELLO, JobScript(duration=3))
    server = jobs_api(run_timeout=1)
    with server.client() as client:
        began = time.monotonic()
        answer = client.post(f"/runbook/{HELLO}/run", params={"account": "alpha"},
                             json={"Name": "Ada", "Count": 3})
    assert answer.status_code == 202 and answer.json()["status"] in ("New", "Running"), answer.text
    assert 1 <= time.monotonic() - began < 2.5


@pytest.fixture
def arm_if_azure(kind, request, monkeypatch):  # noqa: F811
    if kind == "local":
        monkeypatch.setenv("STAND_IN_SLEEP", "3")
        return None
    return request.getfixturevalue("arm")


@pytest.mark.parametrize("kind", ["azure"])
def test_job_watch_reads_each_job_alone_when_the_job_list_is_refused(jobs_api, arm):  # noqa: F811
    # whether Azure takes the list's creationTime $filter is unverified: a refused list must not
    # fail the waits
    arm.script_job(HELLO, JobScript(streams=[("Output", "hi")], duration=0.6))
    arm.server.fail(400, method="GET", path=JOB_LIST)
    server = jobs_api(poll_interval=0.2)
    with server.client() as client, ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(lambda _: client.post(f"/runbook/{HELLO}/run", params={"account": "alpha"},
                                                   json={"Name": "Ada"}), range(3)))
    assert all(r.status_code == 200 and r.json()["status"] == "Completed" for r in runs), runs[0].text
    assert len(arm.server.requests("GET", JOB_LIST)) == 1  # tried once, then each job alone
