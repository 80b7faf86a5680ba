"""The sync service over real HTTP (uvicorn on loopback) against directory accounts."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from service_support import TOKEN, Server, make_config, write_manifests

from rjsync.accounts.base import Grants
from rjsync.service import create_app
from rjsync.service.store import RESTARTED, RUNNING, Store
from rjsync.sync import default_opener


def wait_done(client: httpx.Client, job_id: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/api/sync/jobs/{job_id}/status").text
        if status in ("Completed", "Failed"):
            return status
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


def runbooks(tmp_path: Path, account: str) -> list[str]:
    return sorted(p.stem for p in (tmp_path / "accounts" / account / "runbooks").glob("*.ps1"))


def test_service_start_status_streams_exception(serve, tmp_path):
    server = serve()
    with server.client() as client:
        started = client.post("/api/sync/start", json={"account": "alpha"})
        assert started.status_code == 200
        job_id = started.json()["jobID"]
        assert started.json()["new"] is True
        assert wait_done(client, job_id) == "Completed"
        assert client.get(f"/api/sync/jobs/{job_id}/status").headers["content-type"].startswith("text/plain")
        status = client.get(f"/api/sync/jobs/{job_id}/status", params={"format": "json"}).json()
        assert status["status"] == "Completed" and status["account"] == "alpha"
        assert status["progress"]["done"] == status["progress"]["total"] > 0
        text = client.get(f"/api/sync/jobs/{job_id}/output/text").text
        assert "Sync completed in" in text and "rjgit-" in text
        streams = client.get(f"/api/sync/jobs/{job_id}/output/streams").json()
        assert {e["streamType"] for e in streams} == {"Output", "Verbose"}
        assert set(streams[0]) == {"time", "summary", "streamType", "streamText", "value"}
        verbose = client.get(f"/api/sync/jobs/{job_id}/output/streams", params={"streamTypes": "Verbose"}).json()
        assert verbose and all(e["streamType"] == "Verbose" for e in verbose)
        assert verbose[-1]["value"] == status["progress"]
        assert client.get(f"/api/sync/jobs/{job_id}/exception/text").text == ""
    assert runbooks(tmp_path, "alpha") and not (tmp_path / "accounts" / "beta").exists()


def test_service_run_waits_and_second_run_is_in_sync(serve, tmp_path):
    server = serve()
    with server.client() as client:
        first = client.post("/api/sync/run", json={"account": "beta"}).json()
        assert first["status"] == "Completed" and first["exception"] is None
        assert any("Sync completed in" in e["streamText"] for e in first["streams"])
        second = client.post("/api/sync/run", json={"account": "beta"}).json()
        assert second["jobID"] != first["jobID"] and second["status"] == "Completed"
        assert any("the account matches the source" in e["streamText"] for e in second["streams"])


def test_service_failed_job_has_exception_text(serve, tmp_path):
    server = serve()
    (tmp_path / "manifests" / "broken.yaml").write_text(
        f"source:\n  path: {tmp_path / 'nowhere'}\ntarget: local:{tmp_path / 'accounts' / 'broken'}\n")
    with server.client() as client:
        result = client.post("/api/sync/run", json={"account": "broken"}).json()
        assert result["status"] == "Failed"
        exception = client.get(f"/api/sync/jobs/{result['jobID']}/exception/text").text
        assert "nowhere" in exception and exception == result["exception"]
        assert [e["streamText"] for e in result["streams"] if e["streamType"] == "Error"] == [exception]


def test_service_plan_writes_nothing(serve, tmp_path):
    server = serve()
    with server.client() as client:
        plan = client.post("/api/sync/plan", json={"account": "alpha"})
        assert plan.status_code == 200
        doc = plan.json()
        assert doc["summary"]["has_changes"] and doc["changes"]
    assert not (tmp_path / "accounts" / "alpha" / "runbooks").exists() or not runbooks(tmp_path, "alpha")


def test_service_sees_manifests_added_changed_and_broken_while_it_runs(serve, tmp_path):
    # the accounts are read again when a manifest file changes (and only then: FleetCache)
    server = serve()
    manifests = tmp_path / "manifests"
    with server.client() as client:
        assert client.post("/api/sync/plan", json={"account": "gamma"}).status_code == 404
        write_manifests(manifests, names=("gamma",))
        assert client.post("/api/sync/plan", json={"account": "gamma"}).status_code == 200
        (manifests / "gamma.yaml").write_text("source: [not, a, source]\n", encoding="utf-8")
        broken = client.post("/api/sync/plan", json={"account": "gamma"})
        assert broken.status_code == 422 and "manifest is broken" in broken.json()["error"]


def holding(grants: Grants):
    """An opener whose accounts' identity holds ``grants``."""

    def opener(settings):
        account = default_opener(settings)
        account.read_grants = lambda: grants
        return account

    return opener


def test_service_plan_carries_the_permissions_section(serve):
    graph = "00000003-0000-0000-c000-000000000000"
    server = serve(opener=holding(Grants("p-1", frozenset({(graph, "User.Read.All")}))))
    with server.client() as client:
        doc = client.post("/api/sync/plan", json={"account": "alpha"}).json()
    assert doc["permissions"]["status"] == "checked" and doc["permissions"]["principal_id"] == "p-1"
    assert doc["permissions"]["counts"] == {"needed": 8, "required": 7, "optional": 1, "held": 1, "missing": 6,
                                            "missing_optional": 1, "manual": 1}
    assert "User.RevokeSessions.All" in {r["name"] for g in doc["permissions"]["missing"]["app_roles"]
                                         for r in g["roles"]}


def test_service_job_shows_the_permissions_and_refuses_when_the_manifest_requires_them(serve, tmp_path):
    server = serve(opener=holding(Grants("p-1")))
    manifest = tmp_path / "manifests" / "alpha.yaml"  # the service reads it for each sync
    manifest.write_text(manifest.read_text(encoding="utf-8") + "permissions: {require: true}\n", encoding="utf-8")
    with server.client() as client:
        done = client.post("/api/sync/run", json={"account": "alpha"}).json()
    assert done["status"] == "Failed"
    assert done["exception"] == ("Not applying: 7 required grants are missing from the identity the runbooks run "
                                 "as (see Permissions): grant them, or drop --require-permissions.")
    plan_text = next(e["streamText"] for e in done["streams"] if e["streamType"] == "Output")
    assert "Permissions of the identity p-1: 8 grants needed, 0 held; 7 required missing" in plan_text
    assert not (tmp_path / "accounts" / "alpha" / "runbooks").exists() or not runbooks(tmp_path, "alpha")


def test_service_auth_basic_bearer_and_accounts(serve):
    server = serve()
    body = {"account": "alpha"}
    with httpx.Client(base_url=server.url, timeout=60) as anonymous:
        missing = anonymous.post("/api/sync/plan", json=body)
        assert missing.status_code == 401 and "Basic" in missing.headers["www-authenticate"]
        assert "missing" in missing.json()["error"]
        assert anonymous.get("/api/sync/jobs/abc/status").status_code == 401
        assert anonymous.post("/api/sync/plan", json=body, auth=("portal", "wrong")).status_code == 401
        assert anonymous.post("/api/sync/plan", json=body, auth=("nobody", "x")).status_code == 401
        assert anonymous.post("/api/sync/plan", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert anonymous.post("/api/sync/plan", json=body, headers={"Authorization": "Basic !!!"}).status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert anonymous.post("/api/sync/plan", json=body, headers=bearer).status_code == 200
    with server.client(auth=("alpha-only", "a-secret")) as limited:
        assert limited.post("/api/sync/plan", json=body).status_code == 200
        refused = limited.post("/api/sync/start", json={"account": "beta"})
        # issue 14: one answer (404) for "no such account" and "not yours", so existence is not told
        assert refused.status_code == 404
        assert refused.json()["error"] == "Unknown account 'beta'; the accounts you may sync: alpha."
    with server.client() as portal:
        job_id = portal.post("/api/sync/start", json={"account": "beta"}).json()["jobID"]
        wait_done(portal, job_id)
    with server.client(auth=("alpha-only", "a-secret")) as limited:  # another account's job is not shown
        assert limited.get(f"/api/sync/jobs/{job_id}/status").status_code == 404


def test_service_fifty_concurrent_starts_give_one_job_and_one_apply(serve, tmp_path):
    opened = []
    gate = threading.Event()

    def slow_opener(settings):
        opened.append(settings.target)
        gate.wait(timeout=30)  # the job stays Running while the starts arrive
        return default_opener(settings)

    server = serve(opener=slow_opener)
    with server.client() as client, ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda _: client.post("/api/sync/start", json={"account": "alpha"}), range(50)))
        gate.set()
        assert {r.status_code for r in responses} == {200}
        ids = {r.json()["jobID"] for r in responses}
        assert len(ids) == 1
        assert sum(r.json()["new"] for r in responses) == 1
        assert wait_done(client, ids.pop()) == "Completed"
    assert len(opened) == 1
    assert server.app.state.store.count("alpha") == 1


def test_service_accounts_run_in_parallel(serve):
    running = []
    both = threading.Barrier(2, timeout=20)

    def opener(settings):
        running.append(settings.target)
        both.wait()  # breaks (and the job fails) unless both accounts are being synced at once
        return default_opener(settings)

    server = serve(opener=opener)
    with server.client() as client:
        ids = [client.post("/api/sync/start", json={"account": a}).json()["jobID"] for a in ("alpha", "beta")]
        assert [wait_done(client, i) for i in ids] == ["Completed", "Completed"]


def test_service_job_streams_carry_the_account_notes_about_waits(serve):
    """What the account code says about waits the service imposes (the import window,
    throttling) reaches the job's Verbose stream, as it reaches apply's progress."""

    def opener(settings):
        account = default_opener(settings)
        write = account.write_runbook

        def write_noting_a_wait(spec, **options):
            logging.getLogger("rjsync.accounts.azure").info(
                "%s waits 1 s", spec.name, extra={"target": account.target})
            return write(spec, **options)

        account.write_runbook = write_noting_a_wait
        return account

    server = serve(opener=opener)
    with server.client() as client:
        done = client.post("/api/sync/run", json={"account": "alpha"}).json()
        verbose = client.get(f"/api/sync/jobs/{done['jobID']}/output/streams",
                             params={"streamTypes": "Verbose"}).json()
    assert done["status"] == "Completed"
    notes = [e["streamText"] for e in verbose if e["streamText"].startswith("note: ")]
    assert notes and all(n.startswith("note: rjgit-") and n.endswith(" waits 1 s") for n in notes)


def test_service_restart_marks_running_jobs_failed(tmp_path):
    config = make_config(tmp_path)
    first = Server(create_app(config))
    try:
        with first.client() as client:
            done = client.post("/api/sync/run", json={"account": "alpha"}).json()
    finally:
        first.stop()
    store = Store(config.database)
    stuck = store.create("beta", "portal")
    store.update(stuck.id, status=RUNNING)
    store.close()
    second = Server(create_app(make_config(tmp_path)))
    try:
        with second.client() as client:
            assert client.get(f"/api/sync/jobs/{stuck.id}/status").text == "Failed"
            assert client.get(f"/api/sync/jobs/{stuck.id}/exception/text").text == RESTARTED
            assert client.get(f"/api/sync/jobs/{done['jobID']}/status").text == "Completed"
            assert "Sync completed in" in client.get(f"/api/sync/jobs/{done['jobID']}/output/text").text
            again = client.post("/api/sync/start", json={"account": "beta"}).json()
            assert again["new"] and again["jobID"] != stuck.id
            assert wait_done(client, again["jobID"]) == "Completed"
    finally:
        second.stop()


def test_service_bad_input_gets_4xx_with_a_message(serve):
    server = serve()
    with server.client() as client:
        def check(response, status, words):
            assert response.status_code == status, response.text
            assert words in response.json()["error"]

        check(client.post("/api/sync/start", json={"account": "gamma"}), 404, "Unknown account 'gamma'")
        check(client.post("/api/sync/start", content=b"{not json", headers={"content-type": "application/json"}),
              400, "not valid JSON")
        check(client.post("/api/sync/start", json={}), 422, "account")
        check(client.post("/api/sync/start", json=["alpha"]), 422, "Invalid request")
        check(client.post("/api/sync/start", json={"account": "x" * 70_000}), 413, "larger than 65536 bytes")
        check(client.get("/api/sync/jobs/0123abcd-0000-0000-0000-000000000000/status"), 404, "Unknown job")
        check(client.get("/api/sync/jobs/not-a-job!/output/text"), 422, "jobID")
        check(client.get("/api/sync/jobs/0123/output/streams", params={"streamTypes": "Debug"}), 400,
              "Unknown stream type")
        check(client.get("/api/sync/nothing"), 404, "Not Found")
