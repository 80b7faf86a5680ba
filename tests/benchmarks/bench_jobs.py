"""Benchmark: runbook job starts through the job API (issue 16), against the ARM emulator.

Setup. The ARM emulator in this process, every request answered after ``LATENCY`` s (as
``bench_sync``), with the service's job limits on (100 starts per 30 s per account). Two
automation accounts, synced with ``tests/fakes/job_runbooks``' source. ``rjsync serve`` runs in a
process of its own (uvicorn on loopback; its accounts opened on the emulator through the SDK),
so its event loop does not share an interpreter with the emulator and the callers.

1. Starts: ``STARTS`` ``POST /runbook/{name}/start`` (valid parameters) from ``CLIENTS`` callers
   at once, on account alpha. Reported: starts per second through the API, and the check's
   cost per start (``rjsync.jobs.start.check_start``, timed in the service: snapshot, receipt,
   content, catalog from the cache, parameters), p50 and p99. The floor is Automation's: at most
   100 starts per 30 s per account (3.3 per second), which the account's pacing keeps to.
2. ``/run`` under load: ``RUNNERS`` callers each ``POST /runbook/{name}/run`` a job that runs
   ``RUN_SECONDS`` s on account beta, while one caller, a process of its own, polls
   ``GET /runbook/jobs/{id}/status`` every ``POLL_EVERY`` s. Reported: the polls' latency p50/p99/max (target: under 100 ms) and the
   /runs' durations.

Run: ``python -m tests.benchmarks.bench_jobs`` (or ``python -m tests.benchmarks``); with
``BENCH_TRACE=1`` it also prints where the service spent the slowest status polls (the store,
the account's settings, the job's GET) and their time inside the service.
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402

from fakes.accounts import GROUP, SUBSCRIPTION  # noqa: E402
from fakes.arm import ArmEmulator, StaticTokenCredential  # noqa: E402
from fakes.arm_jobs import JobScript  # noqa: E402
from fakes.job_runbooks import HELLO, write_source  # noqa: E402
from fakes.server import TestTLS  # noqa: E402

LATENCY = 0.05
STARTS, CLIENTS = 100, 8
RUNNERS, RUN_SECONDS, POLL_EVERY = 50, 2.0, 0.02
PARAMETERS = {"Name": "Ada", "Count": 3, "Mode": "b", "Loud": True}


def target(name: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.Automation/automationAccounts/{name}"


def emulator_opener(settings):
    """Opens the benchmark's accounts on the emulator ($BENCH_ARM_ENDPOINT) with a static token."""
    from rjsync.accounts import open_account
    from rjsync.accounts.azure import AzureSettings

    return open_account(settings.target, owned_prefix=settings.policy.prefix, arm_endpoint=os.environ["BENCH_ARM_ENDPOINT"],
                        credential=StaticTokenCredential("test-token"),
                        settings=AzureSettings(polling_interval=0, provisioning_poll_interval=0,
                                               max_concurrent_requests=settings.concurrency,
                                               connection_verify=os.environ["REQUESTS_CA_BUNDLE"]))


# -- the service, in its own process ----------------------------------------------------------------


def serve(work: Path, port: int) -> None:
    """``--serve WORK PORT``: the service on the benchmark's manifests, timing every check."""
    import uvicorn

    import rjsync.service.runbooks as runbooks
    from rjsync.service import ServiceConfig, create_app
    from rjsync.service.auth import Authenticator, Credential, Principal, hash_secret

    checked, lock = runbooks.check_start, threading.Lock()

    def timed(*args, **kwargs):
        began = time.perf_counter()
        try:
            return checked(*args, **kwargs)
        finally:
            with lock, open(work / "check_costs.txt", "a") as out:
                out.write(f"{time.perf_counter() - began}\n")

    runbooks.check_start = timed
    users = {"bench": Credential(Principal("bench", frozenset({"*"})), hash_secret("bench", iterations=1000))}
    config = ServiceConfig(manifests=str(work / "manifests"), database=str(work / "jobs.db"),
                           authenticator=Authenticator(users, []), opener=emulator_opener, poll_interval=1.0)
    app = create_app(config)
    if os.environ.get("BENCH_TRACE"):
        def job(self, who, job_id):
            began = time.perf_counter()
            record = self.store.runbook_job(job_id)
            t1 = time.perf_counter()
            name, settings = self.account_settings(record.account, who)
            account = self.account(name, settings, "read")
            t2 = time.perf_counter()
            live = account.job(record.id)
            t3 = time.perf_counter()
            with open(work / "job_times.txt", "a") as out:
                out.write(f"{t1 - began:.3f} {t2 - t1:.3f} {t3 - t2:.3f}\n")
            return record, account, live
        runbooks.RunbookJobs.job = job

        @app.middleware("http")
        async def trace(request, call_next):
            began = time.perf_counter()
            answer = await call_next(request)
            if request.url.path.endswith("/status"):
                with open(work / "status_times.txt", "a") as out:
                    out.write(f"{time.perf_counter() - began}\n")
            return answer
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# -- the benchmark ----------------------------------------------------------------------------------


def main() -> dict:
    from rjsync.settings import SourceSpec, SyncSettings
    from rjsync.sync import apply, prepare

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tls = TestTLS(work)
        arm = ArmEmulator(tls)
        os.environ["REQUESTS_CA_BUNDLE"] = str(tls.ca_path)
        os.environ["BENCH_ARM_ENDPOINT"] = arm.endpoint
        source = write_source(work / "src")
        (work / "manifests").mkdir()
        for name in ("alpha", "beta"):
            arm.add_account(SUBSCRIPTION, GROUP, f"aa-{name}")
            (work / "manifests" / f"{name}.yaml").write_text(f"source: {{path: {source}}}\ntarget: {target('aa-' + name)}\n")
            with prepare(SyncSettings(SourceSpec(str(source)), target(f"aa-{name}")), opener=emulator_opener) as prepared:
                assert apply(prepared).ok
        arm.script_job(HELLO, JobScript(streams=[("Output", "hello")], duration=0.0))
        arm.server.delay(LATENCY)

        port = free_port()
        service = subprocess.Popen([sys.executable, "-m", "tests.benchmarks.bench_jobs", "--serve", str(work), str(port)],
                                   cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(url + "/runbook/jobs/x/status", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            figures = measure(url, arm)
        finally:
            service.terminate()
            service.wait(timeout=30)
        costs = [float(line) for line in (work / "check_costs.txt").read_text().split()]
        if os.environ.get("BENCH_TRACE"):
            served = [float(line) for line in (work / "status_times.txt").read_text().split()]
            rows = [tuple(map(float, line.split())) for line in (work / "job_times.txt").read_text().splitlines()]
            print("slowest job reads (store, settings, GET):", sorted(rows, key=sum)[-3:])
            print("served status:", ms(percentile(served, 0.5)), ms(percentile(served, 0.99)), ms(max(served)))
        arm.close()
    start_costs = costs[:STARTS]
    figures["check_p50"], figures["check_p99"] = percentile(start_costs, 0.5), percentile(start_costs, 0.99)
    report(figures)
    return figures


def measure(url: str, arm) -> dict:
    auth = ("bench", "bench")
    # 1. starts
    local = threading.local()

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, auth=auth, timeout=120)
        return local.client

    def start(_):
        answer = client().post(f"/runbook/{HELLO}/start", params={"account": "alpha"}, json=PARAMETERS)
        assert answer.status_code == 200, answer.text
        return answer.json()["jobID"]

    began = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        started = list(pool.map(start, range(STARTS)))
    starts_seconds = time.perf_counter() - began
    assert len(set(started)) == STARTS  # a new job id for every start
    refused = len(getattr(arm, "job_refusals", []))

    # 2. /run with a RUN_SECONDS job under RUNNERS callers, status polls meanwhile, of a job that
    # runs all along (each poll must read it from the account, as a portal's poll of a live job)
    arm.script_job(HELLO, JobScript(streams=[("Output", "hello")], duration=120))
    polled = start(None)
    arm.script_job(HELLO, JobScript(streams=[("Output", "hello")], duration=RUN_SECONDS))
    # The poller is a process of its own, as a portal polling from elsewhere is: in this process
    # its timings would also hold the emulator's and the 50 callers' share of the interpreter.
    scratch = Path(tempfile.mkdtemp(prefix="bench-poll-"))
    stop_file, out_file = scratch / "stop", scratch / "latencies"
    poller = subprocess.Popen([sys.executable, "-m", "tests.benchmarks.bench_jobs", "--poll", url,
                               polled, str(stop_file), str(out_file)], cwd=ROOT)

    # The callers are other machines: their clients (each an SSL context, about 30 ms of CPU to
    # make, even for http) are made before the measurement, not inside it on the service's cores.
    runners = [httpx.Client(base_url=url, auth=auth, timeout=300) for _ in range(RUNNERS)]

    def run(c: httpx.Client):
        t = time.perf_counter()
        answer = c.post(f"/runbook/{HELLO}/run", params={"account": "beta"}, json=PARAMETERS)
        assert answer.status_code == 200 and answer.json()["status"] == "Completed", answer.text
        return time.perf_counter() - t

    time.sleep(1.0)  # the poller is up and polling
    before = len(arm.server.requests())
    try:
        with ThreadPoolExecutor(RUNNERS) as pool:
            runs = list(pool.map(run, runners))
    finally:
        stop_file.touch()
        poller.wait(timeout=60)
        for c in runners:
            c.close()
    latencies = [float(line) for line in out_file.read_text().split()]
    during = arm.server.requests()[before:]
    job_reads = sum(1 for r in during if r.method == "GET" and re.search(r"/jobs/[^/]+$", r.path))
    lists = sum(1 for r in during if r.method == "GET" and r.path.endswith("/jobs"))
    return {"starts": STARTS, "starts_seconds": starts_seconds, "refused": refused, "runs": runs,
            "polls": latencies, "requests": (len(during), job_reads, lists)}


def report(f: dict) -> None:
    rate = f["starts"] / f["starts_seconds"]
    floor = 100 / 30
    polls, runs = f["polls"], f["runs"]
    print(f"Runbook job API against the ARM emulator ({ms(LATENCY)} per request)")
    print(f"  starts: {f['starts']} in {f['starts_seconds']:.1f} s from {CLIENTS} callers = {rate:.1f} starts/s "
          f"({rate / floor:.1f} x Automation's 100 per 30 s; refused by the emulator: {f['refused']})")
    print(f"  check per start: p50 {ms(f['check_p50'])}, p99 {ms(f['check_p99'])}")
    print(f"  /run of a {RUN_SECONDS:g}-s job x {RUNNERS} callers: p50 {statistics.median(runs):.2f} s, "
          f"max {max(runs):.2f} s")
    print(f"  status polls meanwhile: {len(polls)}, p50 {ms(percentile(polls, 0.5))}, p99 {ms(percentile(polls, 0.99))}, "
          f"max {ms(max(polls))}; {sum(1 for x in polls if x >= 0.1)} of them 100 ms or more (target: under 100 ms)")
    total, job_reads, lists = f["requests"]
    print(f"  emulator requests during the /runs: {total} (GET of one job: {job_reads}, job lists: {lists})")


def poll(url: str, job_id: str, stop_file: Path, out_file: Path) -> None:
    """``--poll URL JOB STOP OUT``: GET the job's status every ``POLL_EVERY`` s until STOP exists;
    each answer's latency (s) a line of OUT, written at the end. A poll answered otherwise than
    200 ends the benchmark."""
    latencies = []
    with httpx.Client(base_url=url, auth=("bench", "bench"), timeout=30) as c:
        while not stop_file.exists():
            t = time.perf_counter()
            answer = c.get(f"/runbook/jobs/{job_id}/status")
            latencies.append(time.perf_counter() - t)
            assert answer.status_code == 200, answer.text
            time.sleep(POLL_EVERY)
    out_file.write_text("\n".join(f"{x:.6f}" for x in latencies))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(Path(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1:2] == ["--poll"]:
        poll(sys.argv[2], sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5]))
    else:
        main()

