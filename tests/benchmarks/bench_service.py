"""Benchmark: status polls against the sync service while a sync runs (issue 6).

Target: 200 status polls per second sustained while a sync runs, p99 latency reported.

Setup. A real uvicorn server on loopback (``tests/service/service_support``), accounts
``alpha`` and ``beta`` (directory accounts syncing this repository's example runbooks). A
sync of ``alpha`` is started; its account is opened only after ``HOLD`` s, so the job is Running for
the whole measurement (its worker busy in the engine; the apply itself follows the polls, and
the run checks that it completes). The polls thus measure the API and SQLite under a running
job, not contention with the apply's own stream writes. Meanwhile ``CLIENTS`` threads, each with its
own keep-alive connection, poll ``GET /api/sync/jobs/{id}/status`` (Basic credentials; the
PBKDF2 check is paid once, then remembered) on a fixed schedule of ``RATE`` polls per second in
total for ``SECONDS`` s. Reported: polls sent and answered, the rate achieved, and p50/p99/max
latency; any poll not answered 200 fails the run.

Run: ``python -m tests.benchmarks.bench_service`` (or ``python -m tests.benchmarks``).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))

from service_support import Server, make_config  # noqa: E402

from rjsync.service import create_app  # noqa: E402
from rjsync.sync import default_opener  # noqa: E402

RATE, SECONDS, CLIENTS = 200, 5.0, 8
HOLD = SECONDS + 1.0  # the sync's account opens this late: the job is Running through every poll
IMPORT_S, WRITE_S = 1.2, 2.5  # as measured against the ARM emulator (tests/benchmarks/bench_sync.py)


class AzureLikeAccount:
    """A directory account that takes as long as Azure to import a module or write a runbook."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def import_module(self, spec):
        time.sleep(IMPORT_S)
        return self.inner.import_module(spec)

    def write_runbook(self, spec, **options):
        time.sleep(WRITE_S)
        return self.inner.write_runbook(spec, **options)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        def azure_like(settings):
            time.sleep(HOLD)
            return AzureLikeAccount(default_opener(settings))

        server = Server(create_app(make_config(Path(tmp), opener=azure_like)))
        try:
            with server.client() as client:
                job_id = client.post("/api/sync/start", json={"account": "alpha"}).json()["jobID"]
            latencies: list[float] = []
            statuses: list[str] = []
            lock = threading.Lock()
            start = time.perf_counter() + 0.2
            interval = CLIENTS / RATE

            def poll(k: int) -> None:
                with server.client() as client:
                    client.get(f"/api/sync/jobs/{job_id}/status")  # connect and authenticate once
                    n = 0
                    while True:
                        due = start + k * (1 / RATE) + n * interval
                        if due - start >= SECONDS:
                            return
                        time.sleep(max(0.0, due - time.perf_counter()))
                        t0 = time.perf_counter()
                        response = client.get(f"/api/sync/jobs/{job_id}/status")
                        took = time.perf_counter() - t0
                        with lock:
                            latencies.append(took)
                            statuses.append(response.text if response.status_code == 200 else str(response.status_code))
                        n += 1

            threads = [threading.Thread(target=poll, args=(k,)) for k in range(CLIENTS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start
            with server.client() as client:
                deadline = time.monotonic() + 60
                while client.get(f"/api/sync/jobs/{job_id}/status").text not in ("Completed", "Failed"):
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                final = client.get(f"/api/sync/jobs/{job_id}/status").text
        finally:
            server.stop()
    ordered = sorted(latencies)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    bad = [s for s in statuses if s not in ("Queued", "Running")]
    print(f"Sync service: status polls while a sync runs ({CLIENTS} clients, target {RATE}/s for {SECONDS:.0f} s)")
    print(f"  polls answered    {len(latencies)} in {elapsed:.2f} s = {len(latencies) / elapsed:.0f}/s")
    print(f"  latency           p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms, max {ordered[-1] * 1000:.1f} ms "
          f"(mean {statistics.mean(ordered) * 1000:.1f} ms)")
    print(f"  job while polled  {sorted(set(statuses))}; then {final}")
    if bad or len(latencies) / elapsed < RATE * 0.95 or final != "Completed":
        raise SystemExit(f"FAILED: {len(bad)} polls not Running/Queued, rate or final status off target")


if __name__ == "__main__":
    main()
