"""Benchmark: runbook job starts through the job API (issue 16), against the ARM emulator.

Setup. The ARM emulator in this process, every request answered after ``LATENCY`` s (as
``bench_sync``), with the service's job limits on (100 starts per 30 s per account). Two
automation accounts, synced with ``tests/fakes/job_runbooks``' source. ``rjsync serve`` runs in a
process of its own (uvicorn on loopback; its accounts opened on the emulator through the SDK),
so its event loop does not share an interpreter with the emulator and the callers.

1. Starts: ``STARTS`` ``POST /runbook/{name}/start`` (valid parameters) from ``CLIENTS`` callers
   at once, on account alpha. Reported: starts per second through the API, and the check's
   cost per start (``rjsync.jobs.start.check_start``, timed where it runs: in the service's job
   worker process; snapshot, receipt, content, catalog from the cache, parameters), p50 and p99.
   The floor is Automation's: at most 100 starts per 30 s per account (3.3 per second), which
   the account's pacing keeps to.
2. ``/run`` under load: ``RUNNERS`` callers each ``POST /runbook/{name}/run`` a job that runs
   ``RUN_SECONDS`` s on account beta, while one caller polls ``GET /runbook/jobs/{id}/status``
   of a running job every ``POLL_EVERY`` s. The callers and the poller are processes of their
   own (they stand for other machines, as the emulator stands for Resource Manager), and the
   service has read the polled job once before. Reported: the polls' latency p50/p99/max
   (target: under 100 ms; the floor is the emulator's 50 ms per request) and the /runs'
   durations.

Run: ``python -m tests.benchmarks.bench_jobs`` (or ``python -m tests.benchmarks``). With
``BENCH_TRACE=1`` it also prints, for the slowest polls, where their time went (to the service,
to the handler, to the read's thread, the read, back on the event loop, back to the poller);
``BENCH_JOB_PROCESS=0`` runs the starts in threads of the serving process, as before the job
worker process, for comparison.
"""

from __future__ import annotations

import json
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


def time_checks(out: Path) -> None:
    """Time every ``check_start`` (in whichever process runs it: the job worker's, by default),
    one line of seconds in ``out`` each."""
    import rjsync.service.job_worker as job_worker

    checked, lock = job_worker.check_start, threading.Lock()

    def timed(*args, **kwargs):
        began = time.perf_counter()
        try:
            return checked(*args, **kwargs)
        finally:
            with lock, open(out, "a") as written:
                written.write(f"{time.perf_counter() - began}\n")

    job_worker.check_start = timed


if os.environ.get("BENCH_CHECK_TIMES"):  # the service's process, and its job worker's (which imports this module)
    time_checks(Path(os.environ["BENCH_CHECK_TIMES"]))


def serve(work: Path, port: int) -> None:
    """``--serve WORK PORT``: the service on the benchmark's manifests."""
    import contextvars

    import uvicorn

    import rjsync.service.runbooks as runbooks
    from rjsync.service import ServiceConfig, create_app
    from rjsync.service.auth import Authenticator, Credential, Principal, hash_secret

    users = {"bench": Credential(Principal("bench", frozenset({"*"})), hash_secret("bench", iterations=1000))}
    config = ServiceConfig(manifests=str(work / "manifests"), database=str(work / "jobs.db"),
                           authenticator=Authenticator(users, []), opener=emulator_opener, poll_interval=1.0,
                           job_process=os.environ.get("BENCH_JOB_PROCESS", "1") == "1")
    app = create_app(config)
    app.state.runbook_jobs.worker.warm_up()
    if os.environ.get("BENCH_TRACE"):
        # where each status poll's time goes: stamps (wall clock, comparable with the poller's)
        # when the service got it, when its read's thread ran, around the job's GET, and when
        # the answer left; the poller names each poll in an x-poll header
        poll = contextvars.ContextVar("poll", default="")
        stamps: dict[str, dict[str, float]] = {}
        read = runbooks.RunbookJobs.job

        def job(self, who, job_id):
            stamps.setdefault(poll.get(), {})["thread"] = time.time()
            try:
                return read(self, who, job_id)
            finally:
                stamps.setdefault(poll.get(), {})["read"] = time.time()
        runbooks.RunbookJobs.job = job
        call = runbooks.RunbookJobs.call

        async def traced_call(self, fn, *args):
            if poll.get():
                stamps.setdefault(poll.get(), {})["call"] = time.time()
            return await call(self, fn, *args)
        runbooks.RunbookJobs.call = traced_call

        @app.middleware("http")
        async def trace(request, call_next):
            name = request.headers.get("x-poll", "")
            poll.set(name)
            stamps.setdefault(name, {})["in"] = time.time()
            answer = await call_next(request)
            if name:
                with open(work / "stamps.txt", "a") as out:
                    out.write(f"{name} {json.dumps({**stamps.pop(name), 'out': time.time()})}\n")
            return answer
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trace_polls(stamps_file: Path, sends: list[tuple[str, float, float]]) -> None:
    """The slowest polls' time, stage by stage (BENCH_TRACE)."""
    stamps = {}
    for line in stamps_file.read_text().splitlines():
        name, _, data = line.partition(" ")
        stamps[name] = json.loads(data)
    rows = []
    for name, sent, answered in sends:
        s = stamps.get(name)
        if s and {"in", "call", "thread", "read", "out"} <= set(s):
            rows.append((answered - sent, s["in"] - sent, s["call"] - s["in"], s["thread"] - s["call"], s["read"] - s["thread"],
                         s["out"] - s["read"], answered - s["out"], name))
    print("slowest status polls (ms): total, to the service, to the handler (auth), to its read's thread, the read "
          "(store, settings, GET), back on the event loop, to the poller")
    for row in sorted(rows)[-8:]:
        print(f"   #{row[-1]:<4}" + " ".join(f"{x * 1000:6.1f}" for x in row[:-1]))


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
                                   cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT),
                                                  "BENCH_CHECK_TIMES": str(work / "check_costs.txt")})
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
            trace_polls(work / "stamps.txt", figures["sends"])
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
    # a running service has read its accounts before: the first read of an account (opening it,
    # the TLS handshake) is not what the polls under load measure
    assert client().get(f"/runbook/jobs/{polled}/status").status_code == 200
    arm.script_job(HELLO, JobScript(streams=[("Output", "hello")], duration=RUN_SECONDS))
    # The poller is a process of its own, as a portal polling from elsewhere is: in this process
    # its timings would also hold the emulator's and the 50 callers' share of the interpreter.
    scratch = Path(tempfile.mkdtemp(prefix="bench-poll-"))
    stop_file, out_file = scratch / "stop", scratch / "latencies"
    poller = subprocess.Popen([sys.executable, "-m", "tests.benchmarks.bench_jobs", "--poll", url,
                               polled, str(stop_file), str(out_file)], cwd=ROOT)

    # The callers are other machines: a process of their own (in this one they would slow the
    # emulator down, whose interpreter stands for Resource Manager), their clients (each an SSL
    # context, about 30 ms of CPU to make, even for http) made before the measurement.
    ready, go, durations = scratch / "ready", scratch / "go", scratch / "runs"
    callers = subprocess.Popen([sys.executable, "-m", "tests.benchmarks.bench_jobs", "--run", url,
                                str(ready), str(go), str(durations)], cwd=ROOT)
    deadline = time.monotonic() + 60
    while not ready.exists() and callers.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # the poller is up and polling
    before = len(arm.server.requests())
    try:
        go.touch()
        if callers.wait(timeout=300) != 0:
            raise RuntimeError("a /run caller failed (see above)")
    finally:
        stop_file.touch()
        poller.wait(timeout=60)
    runs = [float(line) for line in durations.read_text().split()]
    latencies = [float(line.split()[0]) for line in out_file.read_text().splitlines()]
    sends = [(str(i), float(line.split()[1]), float(line.split()[2])) for i, line in
             enumerate(out_file.read_text().splitlines())]
    during = arm.server.requests()[before:]
    job_reads = sum(1 for r in during if r.method == "GET" and re.search(r"/jobs/[^/]+$", r.path))
    lists = sum(1 for r in during if r.method == "GET" and r.path.endswith("/jobs"))
    return {"starts": STARTS, "starts_seconds": starts_seconds, "refused": refused, "runs": runs,
            "polls": latencies, "sends": sends, "requests": (len(during), job_reads, lists)}


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


def run_callers(url: str, ready: Path, go: Path, out_file: Path) -> None:
    """``--run URL READY GO OUT``: ``RUNNERS`` callers, each with a client of its own, made before
    READY is written; once GO exists each POSTs one /run at once. Each /run's duration (s) is a
    line of OUT; a /run answered otherwise than 200 Completed fails the benchmark."""
    clients = [httpx.Client(base_url=url, auth=("bench", "bench"), timeout=300) for _ in range(RUNNERS)]
    ready.touch()
    while not go.exists():
        time.sleep(0.01)

    def run(c: httpx.Client) -> float:
        t = time.perf_counter()
        answer = c.post(f"/runbook/{HELLO}/run", params={"account": "beta"}, json=PARAMETERS)
        assert answer.status_code == 200 and answer.json()["status"] == "Completed", answer.text
        return time.perf_counter() - t

    with ThreadPoolExecutor(RUNNERS) as pool:
        runs = list(pool.map(run, clients))
    out_file.write_text("\n".join(f"{x:.6f}" for x in runs))


def poll(url: str, job_id: str, stop_file: Path, out_file: Path) -> None:
    """``--poll URL JOB STOP OUT``: GET the job's status every ``POLL_EVERY`` s until STOP exists;
    each answer's latency (s), when it was sent and answered (wall clock) a line of OUT, written
    at the end. A poll answered otherwise than 200 ends the benchmark."""
    lines = []
    with httpx.Client(base_url=url, auth=("bench", "bench"), timeout=30) as c:
        while not stop_file.exists():
            t, sent = time.perf_counter(), time.time()
            answer = c.get(f"/runbook/jobs/{job_id}/status", headers={"x-poll": str(len(lines))})
            lines.append(f"{time.perf_counter() - t:.6f} {sent:.6f} {time.time():.6f}")
            assert answer.status_code == 200, answer.text
            time.sleep(POLL_EVERY)
    out_file.write_text("\n".join(lines))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(Path(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1:2] == ["--run"]:
        run_callers(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
    elif sys.argv[1:2] == ["--poll"]:
        poll(sys.argv[2], sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5]))
    else:
        main()

