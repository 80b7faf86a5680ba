"""The sync service under hostile use (issue 14): waiters cannot freeze it, secrets never leave
it, and it tells a caller nothing about accounts that are not theirs."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from service_support import PASSWORD

from rjsync.sync import default_opener

SECRET = "ghp_S3cretToken0123456789"
VALUE_SECRET = "ghp_ValueSecret0123456789"


def test_service_run_waiters_hold_no_worker_so_status_answers_at_once(serve):
    """Finding 6: 50 callers waiting on /run; a status poll still answers within 100 ms."""
    gate, opened = threading.Event(), threading.Event()

    def slow_opener(settings):
        opened.set()
        gate.wait(timeout=60)  # the job stays Running while the waiters wait
        return default_opener(settings)

    server = serve(opener=slow_opener)
    with server.client() as client, ThreadPoolExecutor(max_workers=50) as pool:
        try:
            waiters = [pool.submit(client.post, "/api/sync/run", json={"account": "alpha"}) for _ in range(50)]
            assert opened.wait(timeout=30)
            time.sleep(1.5)  # every waiter has arrived and waits
            job = server.app.state.store.active("alpha")
            times = []
            with server.client(timeout=5) as poller:
                for _ in range(5):
                    began = time.monotonic()
                    assert poller.get(f"/api/sync/jobs/{job.id}/status").text == "Running"
                    times.append(time.monotonic() - began)
            assert min(times) < 0.1, times
        finally:
            gate.set()
        results = [w.result().json() for w in waiters]
    assert {(r["jobID"], r["status"]) for r in results} == {(job.id, "Completed")}

def test_service_token_in_source_url_never_reaches_streams_answers_or_database(serve, tmp_path):
    """Finding 5: a token in a manifest's source URL is masked in streams, exception and the jobs database."""
    server = serve()
    (tmp_path / "manifests" / "tokened.yaml").write_text(
        f"source:\n  url: https://x-access-token:{SECRET}@127.0.0.1:9/runbooks.git\n"
        f"target: local:{tmp_path / 'accounts' / 'tokened'}\n", encoding="utf-8")
    with server.client() as client:
        result = client.post("/api/sync/run", json={"account": "tokened"})
        job_id = result.json()["jobID"]
        answers = [result.text, client.post("/api/sync/plan", json={"account": "tokened"}).text]
        answers += [client.get(f"/api/sync/jobs/{job_id}/{what}").text
                    for what in ("output/text", "output/streams", "exception/text")]
    assert result.json()["status"] == "Failed"
    assert any("Reading https://***@127.0.0.1:9/runbooks.git" in e["streamText"] for e in result.json()["streams"])
    assert all(SECRET not in answer for answer in answers)
    db = sqlite3.connect(tmp_path / "jobs.db")
    stored = db.execute("SELECT * FROM streams").fetchall() + db.execute("SELECT * FROM jobs").fetchall()
    db.close()
    assert stored and SECRET not in repr(stored)


def test_service_broken_manifest_error_names_the_key_never_the_value(serve, tmp_path):
    """Finding 5: a secret in a wrong-typed manifest value is not echoed to callers."""
    server = serve()
    (tmp_path / "manifests" / "typo.yaml").write_text(
        f"source:\n  path: {tmp_path}\ntarget: local:{tmp_path / 'accounts' / 'typo'}\n"
        f"policy:\n  max_deletions: '{VALUE_SECRET}'\n", encoding="utf-8")
    with server.client() as client:
        refused = client.post("/api/sync/start", json={"account": "typo"})
    assert refused.status_code == 422
    assert refused.json()["error"].endswith("typo.yaml:5: policy.max_deletions: expected a whole number >= 0.")
    assert VALUE_SECRET not in refused.text


def test_service_not_yours_and_unknown_accounts_get_one_answer(serve):
    """Finding 7: a restricted caller cannot tell which accounts exist."""
    server = serve()
    with server.client(auth=("alpha-only", "a-secret")) as limited:
        not_yours = limited.post("/api/sync/run", json={"account": "beta"})
        unknown = limited.post("/api/sync/run", json={"account": "gamma"})
    assert (not_yours.status_code, unknown.status_code) == (404, 404)
    assert not_yours.json()["error"].replace("beta", "gamma") == unknown.json()["error"]


def test_service_chunked_body_over_the_limit_is_413(serve):
    """Finding 7: a body without Content-Length over the limit gets 413, like a declared one."""
    server = serve()

    def chunks():
        yield b'{"account": "'
        for _ in range(10):
            yield b"x" * 10_000
        yield b'"}'

    with server.client() as client:
        response = client.post("/api/sync/start", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "The request body is larger than 65536 bytes."


def test_service_docs_and_schema_need_credentials_unless_the_config_opens_them(serve):
    """Finding 7: /docs and /openapi.json are behind credentials by default."""
    closed = serve()
    with httpx.Client(base_url=closed.url, timeout=60) as anonymous:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert anonymous.get(path).status_code == 401, path
            assert anonymous.get(path, auth=("portal", PASSWORD)).status_code == 200, path
        schema = anonymous.get("/openapi.json", auth=("portal", PASSWORD)).json()
    assert "/api/sync/run" in schema["paths"] and "/docs" not in schema["paths"]
    opened = serve(public_docs=True)
    with httpx.Client(base_url=opened.url, timeout=60) as anonymous:
        assert anonymous.get("/docs").status_code == 200
        assert "/api/sync/run" in anonymous.get("/openapi.json").json()["paths"]
