"""Benchmark: plan and apply ~170 runbooks and 6 modules against the ARM emulator.

Targets (issue 4), against an emulator that answers every request after 50 ms and holds every
long-running operation for 1 s:

1. a no-op plan (the account already in sync) sends at most 4 ARM requests;
2. a full first sync (empty account: plan + apply, default concurrency 8) takes under 30 s;
   the sequential baseline (one request and one write at a time) is printed beside it;
3. re-syncing 10 changed runbooks (plan + apply) takes under 5 s.

Beside them, with no target: adopting every runbook of an account another tool filled with the
same content (classic runbooks without rjsync receipts), which costs a content read and one
PATCH per runbook, and no publish; and the full first sync again with the emulator enforcing
Resource Manager's request budgets per subscription and principal (``ARM_THROTTLING``: 200
writes, then 10 per s; 250 reads, then 25 per s), as a real subscription does. That one cannot
end before (writes - 200) / 10 s, and is printed with the requests Resource Manager refused (429).

Setup. The source is the catalog benchmark's generated repository (176 runbooks: 16 examples
x 11 categories, ~13 KB each). Its ``#Requires`` lines name 6 modules: Az.Accounts,
Az.Resources and Az.Storage (both depend on Az.Accounts in the fake gallery),
ExchangeOnlineManagement, MicrosoftTeams and RealmJoin.RunbookHelper; the versions they ask for
that the fake gallery's default catalog lacks are published into it here. The emulator and the
gallery answer every request after ``LATENCY`` s; draft-content replacement and publish answer
202 with ``Retry-After: 1`` and are still running at the first poll (``lro_polls=1``), so the
SDK's poller waits 1 s once per operation; a module import goes straight from Creating to
Succeeded (``provisioning_steps=0``) and is polled after ``provisioning_poll_interval=1.0`` s,
so it takes about 1 s. Every other ``AzureSettings`` value is the default, among them the
service's real import pacing of 5 imports per 30 s, and the emulator enforces the service's
limit (``import_limit = (5, 30.0)``): an import that would be the 6th to start in 30 s is
refused with 429 and ``Retry-After``. The refused imports are printed beside the figures; 0 with
the 6th import starting 30 s after the 1st shows the pacing is as fast as the service allows
and no faster. Targets are judged on plan + apply, as the issue words them; the time to read
the source (the catalog, ~0.4 s) is printed beside them.
Concurrency is what ``rjsync apply --concurrency 8`` does: at most 8 requests in flight, and
4 x 8 runbook writes under way (a write mostly waits for its two operations).

The service's import limit puts a floor under the full sync: the 6th module import cannot
start before 30 s after the first, so a first sync that imports 6 modules cannot end before
~31 s however fast the runbooks go; the output shows when the runbooks not waiting for that
module were done.
Besides the table, each sync prints where its time went: the module imports (and their wait for
the import window), and the runbook writes (requests and LRO waits per write, waves of workers).

Run: ``python -m tests.benchmarks.bench_sync`` (``--skip-baseline`` leaves out the sequential
run, which takes several minutes), or ``python -m tests.benchmarks`` for every benchmark.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))  # the fakes import each other as ``fakes.*``

from fakes.accounts import GROUP, SUBSCRIPTION  # noqa: E402
from fakes.arm import ARM_THROTTLING, ArmEmulator, StaticTokenCredential  # noqa: E402
from fakes.gallery import FakeGallery  # noqa: E402
from fakes.server import TestTLS  # noqa: E402
from rjsync.accounts import open_account  # noqa: E402
from rjsync.accounts.azure import AzureSettings  # noqa: E402
from rjsync.commands.sync import WRITES_PER_REQUEST_SLOT, plan_against, read_source  # noqa: E402
from rjsync.engine.apply import DONE, apply_plan  # noqa: E402
from rjsync.engine.plan import MODULE, RUNBOOK, UPDATE  # noqa: E402
from rjsync.engine.policy import DEFAULT_CONCURRENCY, Policy, SourceSpec  # noqa: E402
from tests.benchmarks.bench_catalog import make_repository  # noqa: E402

LATENCY = 0.05  # seconds per request, emulator and gallery
LRO_RETRY_AFTER = "1"  # seconds the poller waits, once per long-running operation
LRO_POLLS = 1  # polls answered 202 before the operation is done
PROVISIONING_STEPS = 0  # intermediate import states: Creating -> Succeeded after one poll
PROVISIONING_POLL_INTERVAL = 1.0  # so one module import takes ~1 s
CHANGED = 10
SERVICE_IMPORT_LIMIT = (5, 30.0)  # imports per seconds per account, enforced by the emulator

NOOP_MAX_REQUESTS = 4
FULL_SYNC_MAX_SECONDS = 30.0
RESYNC_MAX_SECONDS = 5.0

#: Versions the generated runbooks require that the fake gallery's default catalog lacks.
EXTRA_PACKAGES = [
    ("Az.Storage", "6.1.0", "Az.Accounts:[2.13.2, ):"),
    ("MicrosoftTeams", "5.8.0", ""),
    ("RealmJoin.RunbookHelper", "0.8.9", ""),
]
EXPECTED_MODULES = {"az.accounts", "az.resources", "az.storage", "exchangeonlinemanagement",
                    "microsoftteams", "realmjoin.runbookhelper"}

_OPERATION = re.compile(r"/operationResults/", re.IGNORECASE)


# -- the loopback Azure ----------------------------------------------------------------------------


class Azure:
    """The emulator and gallery with the benchmark's latency, and accounts opened on them."""

    def __init__(self, scratch: Path):
        self.tls = TestTLS(scratch)
        self.gallery = FakeGallery(self.tls)
        for package in EXTRA_PACKAGES:
            self.gallery.add(*package)
        self.arm = ArmEmulator(self.tls, self.gallery)
        self.arm.lro_polls = LRO_POLLS
        self.arm.lro_retry_after = LRO_RETRY_AFTER
        self.arm.provisioning_steps = PROVISIONING_STEPS
        self.arm.import_limit = SERVICE_IMPORT_LIMIT
        self.arm.server.delay(LATENCY)
        self.gallery.server.delay(LATENCY)
        self.credential = StaticTokenCredential("test-token")
        self.fakes: dict = {}  # target -> the emulator's account
        self.settings = AzureSettings(provisioning_poll_interval=PROVISIONING_POLL_INTERVAL,
                                      connection_verify=str(self.tls.ca_path))

    def add_account(self, name: str) -> str:
        fake = self.arm.add_account(SUBSCRIPTION, GROUP, name)
        target = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/"
                  f"Microsoft.Automation/automationAccounts/{name}")
        self.fakes[target] = fake
        return target

    def open(self, target: str, concurrency: int = DEFAULT_CONCURRENCY):
        settings = dataclasses.replace(self.settings, max_concurrent_requests=concurrency)
        return open_account(target, arm_endpoint=self.arm.endpoint, credential=self.credential,
                            gallery_url=self.gallery.base_url, settings=settings)

    def close(self) -> None:
        self.arm.close()
        self.gallery.close()


# -- one sync --------------------------------------------------------------------------------------


@dataclass
class Step:
    kind: str
    name: str
    start: float
    end: float = 0.0
    status: str = ""


@dataclass
class SyncRun:
    """Figures of one read-source + plan + apply."""

    label: str
    concurrency: int
    writes_at_once: int = 0
    catalog_s: float = 0.0
    plan_s: float = 0.0
    apply_s: float = 0.0
    plan_requests: int = 0
    apply_requests: list = field(default_factory=list)
    steps: dict = field(default_factory=dict)
    pacer_waits: list = field(default_factory=list)
    changes: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    apply_start: float = 0.0  # time.monotonic() when apply began
    import_starts: list = field(default_factory=list)  # time.monotonic() of the imports the emulator took
    import_refusals: list = field(default_factory=list)  # imports the emulator's limit refused (429)

    @property
    def plan_apply_s(self) -> float:
        return self.plan_s + self.apply_s

    @property
    def total_s(self) -> float:
        return self.catalog_s + self.plan_s + self.apply_s

    @property
    def requests(self) -> int:
        return self.plan_requests + len(self.apply_requests)

    def phase(self, kind: str) -> tuple[float, float, list[Step]]:
        """(first start, last end, steps) of one kind of step, in ``time.monotonic()`` seconds."""
        steps = [s for s in self.steps.values() if s.kind == kind]
        if not steps:
            return 0.0, 0.0, []
        return min(s.start for s in steps), max(s.end for s in steps), steps


def sync(azure: Azure, target: str, repo: Path, policy: Policy, *, concurrency: int,
         label: str, writes_at_once: int | None = None) -> SyncRun:
    """Plan and apply as ``rjsync apply --concurrency N`` does: N requests in flight, and
    WRITES_PER_REQUEST_SLOT x N runbook writes at once (``writes_at_once`` overrides it)."""
    run = SyncRun(label, concurrency)
    run.writes_at_once = writes_at_once or WRITES_PER_REQUEST_SLOT * concurrency
    account = azure.open(target, concurrency)
    lock = threading.Lock()

    def on_start(kind: str, action: str, name: str) -> None:
        with lock:
            run.steps[(kind, name.lower())] = Step(kind, name, time.monotonic())

    def on_outcome(outcome) -> None:
        with lock:
            step = run.steps[(outcome.kind, outcome.name.lower())]
            step.end, step.status = time.monotonic(), outcome.status
            if outcome.status != DONE:
                run.failures.append(f"{outcome.kind} {outcome.name}: {outcome.status}: {outcome.message}")

    try:
        azure.arm.server.clear_log()
        start = time.perf_counter()
        checkout, catalog = read_source(SourceSpec(str(repo)), policy)
        run.catalog_s = time.perf_counter() - start
        start = time.perf_counter()
        _, plan = plan_against(account, catalog, policy, concurrency)
        run.plan_s = time.perf_counter() - start
        run.plan_requests = len(azure.arm.server.requests())
        run.changes = Counter(f"{c.kind} {c.action}" for c in plan.changes)
        if plan.environment:
            run.changes["runtime environment create"] += 1
        azure.arm.server.clear_log()
        files = {f.path: f.data for f in checkout.files}
        fake = azure.fakes[target]
        imports_before, refusals_before = len(fake.import_starts), len(azure.arm.import_refusals)
        run.apply_start = start = time.monotonic()
        report = apply_plan(plan, account, files, concurrency=run.writes_at_once, on_start=on_start,
                            on_outcome=on_outcome)
        run.apply_s = time.monotonic() - start
        run.apply_requests = azure.arm.server.requests()
        run.import_starts = fake.import_starts[imports_before:]
        run.import_refusals = [r for r in azure.arm.import_refusals[refusals_before:] if r.account == fake.name]
        run.pacer_waits = list(account._pacer.waits)  # how long each import waited for the window
    finally:
        account.close()
    if not report.ok:
        raise SystemExit(f"{label}: apply did not finish cleanly:\n  " + "\n  ".join(run.failures))
    return run


def noop_plan(azure: Azure, target: str, repo: Path, policy: Policy):
    """A fresh account (as a new ``rjsync plan`` would open), plan only; (seconds, requests, plan)."""
    _, catalog = read_source(SourceSpec(str(repo)), policy)
    account = azure.open(target)
    try:
        azure.arm.server.clear_log()
        start = time.perf_counter()
        _, plan = plan_against(account, catalog, policy, DEFAULT_CONCURRENCY)
        seconds = time.perf_counter() - start
        requests = azure.arm.server.requests()
    finally:
        account.close()
    return seconds, requests, plan


def change_scripts(repo: Path, count: int) -> list[str]:
    """Append a line to ``count`` scripts spread over the repository; their paths."""
    scripts = sorted(repo.rglob("*.ps1"))
    stride = max(1, len(scripts) // count)
    chosen = scripts[::stride][:count]
    for script in chosen:
        script.write_bytes(script.read_bytes() + b"\n# changed for the re-sync benchmark\n")
    return [s.relative_to(repo).as_posix() for s in chosen]


# -- report ----------------------------------------------------------------------------------------


def request_kind(method: str, path: str) -> str:
    tail = re.sub(r"^.*?/automationAccounts/[^/]+", "", path, flags=re.IGNORECASE)
    if _OPERATION.search(tail):
        return "GET operation status"
    tail = re.sub(r"/runbooks/[^/]+", "/runbooks/{name}", tail, flags=re.IGNORECASE)
    tail = re.sub(r"/(packages|modules)/[^/]+", r"/\1/{name}", tail, flags=re.IGNORECASE)
    tail = re.sub(r"/runtimeEnvironments/[^/]+", "/runtimeEnvironments/{env}", tail,
                  flags=re.IGNORECASE)
    return f"{method} {tail or '/'}"


def describe_sync(run: SyncRun) -> list[str]:
    """Where the time of one sync went, in lines of text (times are seconds into the apply)."""

    def at(moment: float) -> str:
        return f"{moment - run.apply_start:.1f} s"

    lines = [
        f"{run.label} (concurrency {run.concurrency}): plan {run.plan_s:.2f} s ({run.plan_requests} ARM "
        f"requests) + apply {run.apply_s:.1f} s ({len(run.apply_requests)} ARM requests) = "
        f"{run.plan_apply_s:.1f} s; {run.total_s:.1f} s with reading the source ({run.catalog_s:.2f} s)",
        "  changes: " + ", ".join(f"{n} {k}" for k, n in sorted(run.changes.items())),
    ]
    env_start, env_end, env = run.phase("runtime_environment")
    if env:
        lines.append(f"  runtime environment: {at(env_start)} -> {at(env_end)}")
    mod_start, mod_end, modules = run.phase(MODULE)
    if modules:
        imports = [r for r in run.apply_requests
                   if r.method == "PUT" and re.search(r"/(packages|modules)/", r.path, re.IGNORECASE)]
        waits = sorted(run.pacer_waits, reverse=True) or [0.0]
        lines.append(f"  modules: {at(mod_start)} -> {at(mod_end)}, {len(modules)} modules, {len(imports)} "
                     f"imports, started together as the service allows; waiting for the import window "
                     f"(5 per 30 s): {sum(waits):.1f} s in total, longest {waits[0]:.1f} s")
        lines.append(f"    {import_limit_line(run)}")
        for step in sorted(modules, key=lambda s: s.start):
            lines.append(f"    {step.name:<26} {at(step.start):>7} -> {at(step.end):>7}")
    rb_start, rb_end, writes = run.phase(RUNBOOK)
    if writes:
        n = len(writes)
        durations = [s.end - s.start for s in writes]
        mean = statistics.mean(durations)
        requests = [r for r in run.apply_requests if re.search(r"/runbooks/", r.path, re.IGNORECASE)]
        kinds = Counter(request_kind(r.method, r.path) for r in requests)
        lro_waits = sum(1 for r in requests if _OPERATION.search(r.path) and r.status == 202)
        waves = math.ceil(n / run.writes_at_once)
        lines.append(f"  runbooks: {at(rb_start)} -> {at(rb_end)}, {n} writes; one write takes {mean:.2f} s "
                     f"on average (min {min(durations):.2f}, max {max(durations):.2f}): "
                     f"{len(requests) / n:.1f} requests x {LATENCY * 1000:.0f} ms + {lro_waits / n:.1f} LRO "
                     f"waits x {LRO_RETRY_AFTER} s; {waves} waves of {run.writes_at_once} x {mean:.2f} s = "
                     f"{waves * mean:.1f} s")
        lines.append("    requests per write: " + ", ".join(f"{kinds[k] / n:g} {k}" for k in sorted(kinds)))
        if modules:
            late = sum(1 for s in writes if s.start >= mod_end)
            early = [s.end for s in writes if s.start < mod_end]
            lines.append(f"    {late} of {n} writes started after the last module import ended; the last "
                         f"write ended {rb_end - mod_end:.1f} s after it")
            if early:
                lines.append(f"    the {len(early)} writes that started before it ended were done at "
                             f"{at(max(early))}")
    return lines


def import_limit_line(run: SyncRun) -> str:
    """How close the imports came to the emulator's (the service's) import limit."""
    limit, window = SERVICE_IMPORT_LIMIT
    starts = run.import_starts
    text = (f"imports refused by the service limit ({limit} per {window:g} s): {len(run.import_refusals)}; "
            f"{len(starts)} imports taken")
    if len(starts) > limit:
        gaps = [later - earlier for earlier, later in zip(starts, starts[limit:])]
        text += (f"; import {limit + 1} started {gaps[0]:.3f} s after import 1 (shortest such gap "
                 f"{min(gaps):.3f} s; the service allows {window:g} s)")
    for refusal in run.import_refusals:
        text += f"; refused {refusal.method} {refusal.path} at {refusal.time - run.apply_start:.1f} s"
    return text


def engine_commit() -> str:
    """The checked-out commit (and whether rjsync/ has local changes), to compare runs."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "rjsync"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit"
    return f"commit {head}" + (" with local changes in rjsync/" if dirty else "")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> list[tuple[str, str, str, str]]:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_sync",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--skip-baseline", action="store_true",
                        help="leave out the sequential (concurrency 1) run, which takes minutes")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    policy = Policy()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        repo = scratch / "runbooks"
        count = make_repository(repo)
        _, catalog = read_source(SourceSpec(str(repo)), policy)
        modules = {m.name.lower(): m for m in catalog.modules}
        if set(modules) != EXPECTED_MODULES:
            raise SystemExit(f"the generated runbooks require {sorted(modules)}, not the 6 modules this "
                             "benchmark expects; update EXPECTED_MODULES and EXTRA_PACKAGES")
        azure = Azure(scratch)
        try:
            deps = []
            for module in catalog.modules:
                minimum = module.minimum_version or "newest"
                pkg = azure.gallery.find(module.name, module.minimum_version or "")
                dep = ""
                if pkg and pkg.dependencies:
                    dep = " -> " + ", ".join(d for d, _ in pkg.parsed_dependencies())
                deps.append(f"{module.name} {minimum}{dep}")
            print(f"sync benchmark at {engine_commit()}: {count} runbooks in the source "
                  f"({len(catalog.runbooks)} in the catalog), {len(catalog.modules)} modules: "
                  + "; ".join(deps))
            print(f"emulator: {LATENCY * 1000:.0f} ms per request (ARM and gallery), LROs 202 with Retry-After: "
                  f"{LRO_RETRY_AFTER} and {LRO_POLLS} poll(s) before done, module imports "
                  f"provisioning_steps={PROVISIONING_STEPS} (Creating -> Succeeded), import limit "
                  f"{SERVICE_IMPORT_LIMIT[0]} per {SERVICE_IMPORT_LIMIT[1]:g} s per account (429 + Retry-After)")
            shown = {k: v for k, v in dataclasses.asdict(azure.settings).items()
                     if k != "connection_verify"}
            print("AzureSettings: " + ", ".join(f"{k}={v}" for k, v in shown.items())
                  + " (connection_verify = the test CA)")
            print()

            concurrent_target = azure.add_account("aa-bench-concurrent")
            full = sync(azure, concurrent_target, repo, policy, concurrency=DEFAULT_CONCURRENCY,
                        label="full first sync")
            for line in describe_sync(full):
                print(line)

            noop_s, noop_requests, noop = noop_plan(azure, concurrent_target, repo, policy)
            print(f"no-op plan: {noop_s:.2f} s, {len(noop_requests)} ARM requests, "
                  f"{'no changes' if not noop.has_changes else 'CHANGES: ' + str(noop.summary())}")
            for r in noop_requests:
                query = "?$skip=" + r.query["$skip"] if "$skip" in r.query else ""
                print(f"  {r.method} {r.path}{query} -> {r.status}")

            changed = change_scripts(repo, CHANGED)
            resync = sync(azure, concurrent_target, repo, policy, concurrency=DEFAULT_CONCURRENCY,
                          label=f"re-sync of {len(changed)} changed runbooks")
            for line in describe_sync(resync):
                print(line)
            updates = resync.changes.get(f"{RUNBOOK} {UPDATE}", 0)
            if updates != CHANGED or sum(resync.changes.values()) != CHANGED:
                raise SystemExit(f"the re-sync plan was not {CHANGED} runbook updates: {dict(resync.changes)}")
            _, after_requests, after = noop_plan(azure, concurrent_target, repo, policy)
            print(f"  plan after the re-sync: {'no changes' if not after.has_changes else 'CHANGES'} "
                  f"({len(after_requests)} ARM requests)")

            # Runbooks another tool published (RealmJoin's own sync): same content, classic
            # PowerShell 5.1, no rjsync receipt. rjsync adopts them: reads each content, then one
            # PATCH each (runtime environment, receipt), nothing uploaded or published again.
            for live in azure.fakes[concurrent_target].runbooks.values():
                live.tags, live.runtime_environment = {}, None
            adopt = sync(azure, concurrent_target, repo, policy, concurrency=DEFAULT_CONCURRENCY,
                         label=f"adoption of {len(catalog.runbooks)} runbooks without receipts")
            for line in describe_sync(adopt):
                print(line)
            if adopt.changes.get(f"{RUNBOOK} {UPDATE}", 0) != len(catalog.runbooks):
                raise SystemExit(f"the adoption plan was not {len(catalog.runbooks)} updates: {dict(adopt.changes)}")
            adopt_publishes = sum(1 for r in adopt.apply_requests if r.method == "POST" and r.path.endswith("/publish"))

            # The same first sync into a new account, with Resource Manager's request budgets.
            azure.arm.throttling = dict(ARM_THROTTLING)
            throttled_before = len(azure.arm.throttled)
            budget = sync(azure, azure.add_account("aa-bench-budget"), repo, policy,
                          concurrency=DEFAULT_CONCURRENCY,
                          label="full first sync within Resource Manager's request budgets")
            azure.arm.throttling = None
            budget_refused = azure.arm.throttled[throttled_before:]
            budget_writes = sum(1 for r in budget.apply_requests
                                if r.method in ("PUT", "PATCH", "POST") and r.status != 429)
            burst, refill = ARM_THROTTLING["writes"]
            budget_floor = max(0.0, (budget_writes - burst) / refill)
            for line in describe_sync(budget):
                print(line)
            print(f"  {budget_writes} writes: Resource Manager's budget ({burst}, then {refill:g} per s) "
                  f"allows them in no less than {budget_floor:.1f} s; requests it refused (429): "
                  f"{len(budget_refused)}")

            baseline = None
            if not args.skip_baseline:
                print("sequential baseline: runs for several minutes ...", flush=True)
                baseline = sync(azure, azure.add_account("aa-bench-sequential"), repo, policy,
                                concurrency=1, writes_at_once=1, label="full first sync, sequential baseline")
                for line in describe_sync(baseline):
                    print(line)
            problems = azure.arm.server.errors + azure.gallery.server.errors
            if problems:
                raise SystemExit(f"the fakes failed while benchmarking:\n{problems[0]}")
        finally:
            azure.close()

    def seconds(run: SyncRun | None, digits: int = 1) -> str:
        return f"{run.plan_apply_s:.{digits}f} s" if run else "skipped"

    rows = [
        ("no-op plan: ARM requests", f"{len(noop_requests)}", f"<= {NOOP_MAX_REQUESTS}",
         verdict(len(noop_requests) <= NOOP_MAX_REQUESTS and not noop.has_changes)),
        ("no-op plan: seconds", f"{noop_s:.2f} s", "-", ""),
        (f"full first sync, concurrency {DEFAULT_CONCURRENCY}: plan + apply", seconds(full),
         f"< {FULL_SYNC_MAX_SECONDS:g} s", verdict(full.plan_apply_s < FULL_SYNC_MAX_SECONDS)),
        ("  with reading the source", f"{full.total_s:.1f} s", "", ""),
        ("  ARM requests (plan + apply)", f"{full.requests}", "", ""),
        ("  imports refused by the service limit", f"{len(full.import_refusals)}", "0",
         verdict(not full.import_refusals)),
        ("full first sync, concurrency 1 (baseline)", seconds(baseline), "-", ""),
        ("  with reading the source", f"{baseline.total_s:.1f} s" if baseline else "skipped", "", ""),
        ("  ARM requests (plan + apply)", f"{baseline.requests}" if baseline else "skipped", "", ""),
        ("  imports refused by the service limit", f"{len(baseline.import_refusals)}" if baseline else "skipped",
         "0" if baseline else "", verdict(not baseline.import_refusals) if baseline else ""),
        (f"re-sync {CHANGED} changed runbooks: plan + apply", seconds(resync, 2),
         f"< {RESYNC_MAX_SECONDS:g} s", verdict(resync.plan_apply_s < RESYNC_MAX_SECONDS)),
        ("  with reading the source", f"{resync.total_s:.2f} s", "", ""),
        ("  ARM requests (plan + apply)", f"{resync.requests}", "", ""),
        ("  imports refused by the service limit", f"{len(resync.import_refusals)}", "0",
         verdict(not resync.import_refusals)),
        (f"adopt {adopt.changes.get(f'{RUNBOOK} {UPDATE}', 0)} runbooks without receipts: plan + apply",
         seconds(adopt, 2), "-", ""),
        ("  ARM requests (plan + apply); publishes", f"{adopt.requests}; {adopt_publishes}", "", ""),
        ("full first sync within ARM's request budgets", seconds(budget), "-", ""),
        (f"  floor: (writes - {burst}) / {refill:g} per s", f"{budget_floor:.1f} s", "", ""),
        ("  requests refused by Resource Manager (429)", f"{len(budget_refused)}", "0",
         verdict(not budget_refused)),
    ]
    print()
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>10}  {'target':>8}  result")
    for name, value, target, result in rows:
        print(f"{name:<{width}}  {value:>10}  {target:>8}  {result}")
    return rows


if __name__ == "__main__":
    main()
