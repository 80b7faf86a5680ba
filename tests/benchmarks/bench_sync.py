"""Benchmark: plan and apply ~170 runbooks and 6 modules against the ARM emulator, through the
pipeline ``rjsync apply`` runs (``rjsync.sync.prepare`` and ``apply``, the same settings and
concurrency contract), so the figures are what the command does.

Targets (issue 12), against an emulator that answers every request after 50 ms and holds every
long-running operation for 1 s:

1. a no-op plan (the account already in sync) sends at most 4 ARM requests (6 since issues 13
   and 15: the list's second page, and the GET of the account for its identity, whose grants
   the plan reads from Microsoft Graph: a fake one here, at the same latency);
2. a full first sync (empty account: plan + apply, default ``--concurrency 8``) ends within
   3 s of the floor the service sets. The import window's floor: the service starts at most 5
   imports per 30 s, so the last import cannot start before ``(ceil(imports / 5) - 1) x 30 s``
   and then takes one import (the run's shortest module step). With Resource Manager's request
   budgets enforced (``ARM_THROTTLING``: 200 writes, then 10 per s; 250 reads, then 25 per s,
   per subscription and principal), the larger of that and the write budget's floor,
   ``(writes - 200) / 10 s``. Each first-sync row prints its floors and the distance to them;
3. re-syncing 10 changed runbooks (plan + apply) takes under 5 s.

Beside them, with no target: adopting every runbook of an account another tool filled with the
same content (classic runbooks without rjsync receipts), which costs a content read and one
PATCH per runbook, and no publish; and the sequential baseline (``--concurrency 1``). With
``RJSYNC_UPSTREAM_REPO`` set to a clone of realmjoin/realmjoin-runbooks, the real upstream's
first sync too, with and without the budgets (the versions it requires are published into the
fake gallery, the Az modules depending on Az.Accounts as in the real gallery).

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
and no faster. Targets are judged on plan + apply; the time to read the source (the catalog,
~1 s) is printed beside them.

Besides the table, each sync prints where its time went: the module imports (and their wait for
the import window), and the runbook writes (requests and LRO waits per write, waves of workers).

Run: ``python -m tests.benchmarks.bench_sync`` (``--skip-baseline`` leaves out the sequential
run, which takes several minutes), or ``python -m tests.benchmarks`` for every benchmark.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))  # the fakes import each other as ``fakes.*``

from fakes.accounts import GROUP, SUBSCRIPTION  # noqa: E402
from fakes.arm import ARM_THROTTLING, ArmEmulator, system_identity  # noqa: E402
from fakes.gallery import FakeGallery  # noqa: E402
from fakes.graph import READER, FakeGraph  # noqa: E402
from fakes.server import TestTLS  # noqa: E402
from rjsync.accounts import open_account  # noqa: E402
from rjsync.accounts.azure import AzureSettings  # noqa: E402
from rjsync.engine.apply import DONE  # noqa: E402
from rjsync.engine.plan import MODULE, RUNBOOK, UPDATE  # noqa: E402
from rjsync.engine.policy import Policy  # noqa: E402
from rjsync.settings import DEFAULT_CONCURRENCY, SourceSpec, SyncSettings, writes_at_once  # noqa: E402
from rjsync.sync import ApplyEvents, apply, prepare, read_source  # noqa: E402
from tests.benchmarks.bench_catalog import make_repository  # noqa: E402

LATENCY = 0.05  # seconds per request, emulator and gallery
LRO_RETRY_AFTER = "1"  # seconds the poller waits, once per long-running operation
LRO_POLLS = 1  # polls answered 202 before the operation is done
PROVISIONING_STEPS = 0  # intermediate import states: Creating -> Succeeded after one poll
PROVISIONING_POLL_INTERVAL = 1.0  # so one module import takes ~1 s
CHANGED = 10
SERVICE_IMPORT_LIMIT = (5, 30.0)  # imports per seconds per account, enforced by the emulator

NOOP_MAX_REQUESTS = 6  # issue 13: on list items as Azure answers them (no tags, no description)
FLOOR_MARGIN = 3.0  # a first sync ends at most this long after the floor the service sets (issue 12)
RESYNC_MAX_SECONDS = 5.0
#: Subscriptions of the accounts synced within Resource Manager's budgets: each its own budget.
BUDGET_SUBSCRIPTIONS = ("0b7e5c3d-2a4f-4e6b-9c1d-000000000001", "0b7e5c3d-2a4f-4e6b-9c1d-000000000002")

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
        # Microsoft Graph, where every plan reads what the account's identity holds (the
        # permissions section): the same latency; its requests count apart from ARM's (another
        # service, other budgets). Without it the plan would wait for graph.microsoft.com.
        self.graph = FakeGraph(self.tls)
        self.graph.server.delay(LATENCY)
        self.credential = self.graph.credential(READER)  # Graph tokens for Graph, "test-token" for ARM
        self.fakes: dict = {}  # target -> the emulator's account
        self.graph_requests = 0  # Graph requests of the last no-op plan
        self.settings = AzureSettings(provisioning_poll_interval=PROVISIONING_POLL_INTERVAL,
                                      connection_verify=str(self.tls.ca_path))

    def add_account(self, name: str, subscription: str = SUBSCRIPTION) -> str:
        fake = self.arm.add_account(subscription, GROUP, name)
        self.graph.add_identity(name, system_identity(name))
        target = (f"/subscriptions/{subscription}/resourceGroups/{GROUP}/providers/"
                  f"Microsoft.Automation/automationAccounts/{name}")
        self.fakes[target] = fake
        return target

    def open(self, sync_settings: SyncSettings):
        """The account as ``rjsync.sync.default_opener`` opens it (``--concurrency`` requests in
        flight), on the emulator: its endpoint, gallery, CA and the benchmark's poll interval."""
        settings = dataclasses.replace(self.settings, max_concurrent_requests=sync_settings.concurrency)
        return open_account(sync_settings.target, owned_prefix=sync_settings.policy.prefix,
                            arm_endpoint=self.arm.endpoint, credential=self.credential,
                            graph_endpoint=self.graph.endpoint, gallery_url=self.gallery.base_url,
                            settings=settings)

    def fakes_by_name(self, name: str) -> str:
        """The target of the account called ``name``."""
        return next(t for t in self.fakes if t.endswith(f"/{name}"))

    def close(self) -> None:
        self.arm.close()
        self.gallery.close()
        self.graph.close()


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


def sync(azure: Azure, target: str, repo: Path, policy: Policy, *, concurrency: int, label: str) -> SyncRun:
    """Plan and apply through the pipeline ``rjsync apply --concurrency N --auto-approve`` runs
    (``rjsync.sync.prepare`` and ``apply``): N requests in flight, ``writes_at_once(N)`` runbook
    writes under way."""
    run = SyncRun(label, concurrency)
    run.writes_at_once = writes_at_once(concurrency)
    settings = SyncSettings(source=SourceSpec(str(repo)), target=target, policy=policy, concurrency=concurrency)
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

    azure.arm.server.clear_log()
    start = time.perf_counter()
    source = read_source(settings.source, policy)
    run.catalog_s = time.perf_counter() - start
    start = time.perf_counter()
    with prepare(settings, opener=azure.open, checkout=source) as prepared:
        run.plan_s = time.perf_counter() - start
        plan = prepared.plan
        run.plan_requests = len(azure.arm.server.requests())
        run.changes = Counter(f"{c.kind} {c.action}" for c in plan.changes)
        if plan.environment:
            run.changes["runtime environment create"] += 1
        azure.arm.server.clear_log()
        fake = azure.fakes[target]
        imports_before, refusals_before = len(fake.import_starts), len(azure.arm.import_refusals)
        run.apply_start = time.monotonic()
        result = apply(prepared, events=ApplyEvents(start=on_start, outcome=on_outcome))
        run.apply_s = result.seconds
        run.apply_requests = azure.arm.server.requests()
        run.import_starts = fake.import_starts[imports_before:]
        run.import_refusals = [r for r in azure.arm.import_refusals[refusals_before:] if r.account == fake.name]
        run.pacer_waits = list(prepared.account._pacer.waits)  # how long each import waited for the window
    if not result.ok:
        raise SystemExit(f"{label}: apply did not finish cleanly:\n  " + "\n  ".join(run.failures))
    return run


def noop_plan(azure: Azure, target: str, repo: Path, policy: Policy):
    """A plan as a new ``rjsync plan`` makes it (a fresh account), timed without reading the
    source; (seconds, requests, plan)."""
    settings = SyncSettings(source=SourceSpec(str(repo)), target=target, policy=policy)
    source = read_source(settings.source, policy)
    azure.arm.server.clear_log()
    azure.graph.server.clear_log()
    start = time.perf_counter()
    with prepare(settings, opener=azure.open, checkout=source) as prepared:
        seconds = time.perf_counter() - start
        requests = azure.arm.server.requests()
    azure.graph_requests = len(azure.graph.server.requests())
    return seconds, requests, prepared.plan


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


def one_import(run: SyncRun) -> float:
    """How long one import takes: the run's shortest module step (gallery lookup, PUT, polls)."""
    _, _, modules = run.phase(MODULE)
    return min((s.end - s.start for s in modules), default=0.0)


def import_floor(run: SyncRun) -> float:
    """The service's import window's floor under a sync: the last of its imports cannot start
    before ``(ceil(imports / 5) - 1) x 30 s``, and takes one import."""
    limit, window = SERVICE_IMPORT_LIMIT
    if not run.import_starts:
        return 0.0
    return (math.ceil(len(run.import_starts) / limit) - 1) * window + one_import(run)


def write_floor(run: SyncRun) -> tuple[int, float]:
    """Write requests Resource Manager accepted, and the least time its budget allows them in."""
    burst, refill = ARM_THROTTLING["writes"]
    writes = sum(1 for r in run.apply_requests if r.method in ("PUT", "PATCH", "POST") and r.status != 429)
    return writes, max(0.0, (writes - burst) / refill)


def first_sync_rows(run: SyncRun, refused: list | None = None) -> list[tuple[str, str, str, str]]:
    """The table rows of one first sync: its time against the larger of its floors."""
    floor = import_floor(run)
    floors = [f"import window {floor:.1f} s ({len(run.import_starts)} imports, one {one_import(run):.1f} s)"]
    if refused is not None:
        writes, budget = write_floor(run)
        floors.append(f"write budget {budget:.1f} s ({writes} writes)")
        floor = max(floor, budget)
    rows = [(f"{run.label}: plan + apply", f"{run.plan_apply_s:.1f} s", f"<= {floor + FLOOR_MARGIN:.1f} s",
             verdict(run.plan_apply_s <= floor + FLOOR_MARGIN)),
            ("  floors: " + "; ".join(floors), f"{floor:.1f} s", "", ""),
            ("  over the floor", f"{run.plan_apply_s - floor:+.1f} s", f"<= {FLOOR_MARGIN:g} s", ""),
            ("  ARM requests (plan + apply)", f"{run.requests}", "", ""),
            ("  imports refused by the service limit", f"{len(run.import_refusals)}", "0",
             verdict(not run.import_refusals))]
    if refused is not None:
        rows.append(("  requests refused by Resource Manager (429)", f"{len(refused)}", "0", verdict(not refused)))
    return rows


def publish_upstream_modules(azure: Azure, catalog) -> None:
    """Put the versions the upstream requires into the fake gallery (the Az modules depend on
    Az.Accounts, as they do in the real gallery)."""
    accounts = next((m.minimum_version for m in catalog.modules if m.name.lower() == "az.accounts"), None)
    for module in catalog.modules:
        if azure.gallery.find(module.name, module.minimum_version or "") is None:
            deps = ""
            if accounts and module.name.lower().startswith("az.") and module.name.lower() != "az.accounts":
                deps = f"Az.Accounts:[{accounts}, ):"
            azure.gallery.add(module.name, module.minimum_version or "1.0.0", deps)


def main(argv: list[str] | None = None) -> list[tuple[str, str, str, str]]:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_sync",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--skip-baseline", action="store_true",
                        help="leave out the sequential (concurrency 1) run, which takes minutes")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    policy = Policy()
    upstream = os.environ.get("RJSYNC_UPSTREAM_REPO")
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
                     if k not in ("connection_verify", "max_concurrent_requests")}
            print("AzureSettings: " + ", ".join(f"{k}={v}" for k, v in shown.items())
                  + " (connection_verify = the test CA); max_concurrent_requests = --concurrency")
            print(f"pipeline: rjsync.sync.prepare + apply, as rjsync apply runs them: --concurrency "
                  f"{DEFAULT_CONCURRENCY} = {DEFAULT_CONCURRENCY} requests in flight, "
                  f"{writes_at_once(DEFAULT_CONCURRENCY)} runbook writes under way")
            print()

            concurrent_target = azure.add_account("aa-bench-concurrent")
            full = sync(azure, concurrent_target, repo, policy, concurrency=DEFAULT_CONCURRENCY,
                        label="full first sync")
            for line in describe_sync(full):
                print(line)

            noop_s, noop_requests, noop = noop_plan(azure, concurrent_target, repo, policy)
            print(f"no-op plan: {noop_s:.2f} s, {len(noop_requests)} ARM requests "
                  f"(+ {azure.graph_requests} to Microsoft Graph for the identity's grants), "
                  f"{'no changes' if not noop.has_changes else 'CHANGES: ' + str(noop.summary())}")
            for r in noop_requests:
                query = "?$skip=" + r.query["$skip"] if "$skip" in r.query else ""
                print(f"  {r.method} {r.path}{query} -> {r.status}")

            changed = change_scripts(repo, CHANGED)
            resync = sync(azure, concurrent_target, repo, policy, concurrency=DEFAULT_CONCURRENCY,
                          label=f"re-sync of {len(changed)} changed runbooks")
            for line in describe_sync(resync):
                print(line)
            # an existing runbook is changed in place: a PUT would lose its job schedules and webhooks
            resync_puts = sum(1 for r in resync.apply_requests
                              if r.method == "PUT" and re.search(r"/runbooks/[^/]+$", r.path))
            updates = resync.changes.get(f"{RUNBOOK} {UPDATE}", 0)
            if updates != CHANGED or sum(resync.changes.values()) != CHANGED:
                raise SystemExit(f"the re-sync plan was not {CHANGED} runbook updates: {dict(resync.changes)}")
            _, after_requests, after = noop_plan(azure, concurrent_target, repo, policy)
            print(f"  plan after the re-sync: {'no changes' if not after.has_changes else 'CHANGES'} "
                  f"({len(after_requests)} ARM requests)")

            # Runbooks another tool published (RealmJoin's own sync): same content, classic
            # PowerShell 5.1, no rjsync receipt. rjsync adopts them: reads each content, then one
            # PATCH each (runtime environment, receipt), nothing uploaded or published again.
            for live in azure.fakes[concurrent_target].runbooks.values():  # moves lastModifiedTime, as Azure does
                live.tags, live.runtime_environment = {}, None
                live.modified = datetime.now(timezone.utc).isoformat()
            adopt = sync(azure, concurrent_target, repo, policy, concurrency=DEFAULT_CONCURRENCY,
                         label=f"adoption of {len(catalog.runbooks)} runbooks without receipts")
            for line in describe_sync(adopt):
                print(line)
            if adopt.changes.get(f"{RUNBOOK} {UPDATE}", 0) != len(catalog.runbooks):
                raise SystemExit(f"the adoption plan was not {len(catalog.runbooks)} updates: {dict(adopt.changes)}")
            adopt_publishes = sum(1 for r in adopt.apply_requests if r.method == "POST" and r.path.endswith("/publish"))

            def budgeted(source: Path, name: str, subscription: str, label: str) -> tuple[SyncRun, list]:
                """A first sync into a new account of a subscription of its own (a full budget),
                with the emulator enforcing Resource Manager's request budgets."""
                azure.arm.throttling = dict(ARM_THROTTLING)
                before = len(azure.arm.throttled)
                try:
                    run = sync(azure, azure.add_account(name, subscription), source, policy,
                               concurrency=DEFAULT_CONCURRENCY, label=label)
                finally:
                    azure.arm.throttling = None
                refused = azure.arm.throttled[before:]
                for line in describe_sync(run):
                    print(line)
                writes, floor = write_floor(run)
                print(f"  {writes} writes: Resource Manager's budget allows them in no less than {floor:.1f} s; "
                      f"requests it refused (429): {len(refused)}")
                return run, refused

            budget, budget_refused = budgeted(repo, "aa-bench-budget", BUDGET_SUBSCRIPTIONS[0],
                                              "full first sync within ARM's request budgets")

            upstream_runs = []
            if upstream:
                _, upstream_catalog = read_source(SourceSpec(upstream), policy)
                publish_upstream_modules(azure, upstream_catalog)
                print(f"\nupstream {upstream}: {len(upstream_catalog.runbooks)} runbooks, "
                      f"{len(upstream_catalog.modules)} modules: "
                      + ", ".join(f"{m.name} {m.minimum_version or 'newest'}" for m in upstream_catalog.modules))
                up = sync(azure, azure.add_account("aa-bench-upstream"), Path(upstream), policy,
                          concurrency=DEFAULT_CONCURRENCY, label="upstream: full first sync")
                for line in describe_sync(up):
                    print(line)
                up_budget, up_refused = budgeted(Path(upstream), "aa-bench-upstream-budget", BUDGET_SUBSCRIPTIONS[1],
                                                 "upstream: full first sync within ARM's request budgets")
                upstream_runs = [(up, None), (up_budget, up_refused)]
                up_noop_s, up_noop_requests, up_noop = noop_plan(azure, azure.fakes_by_name("aa-bench-upstream"),
                                                                 Path(upstream), policy)
                print(f"upstream no-op plan: {up_noop_s:.2f} s, {len(up_noop_requests)} ARM requests, "
                      f"{'no changes' if not up_noop.has_changes else 'CHANGES: ' + str(up_noop.summary())}")

            baseline = None
            if not args.skip_baseline:
                print("sequential baseline: runs for several minutes ...", flush=True)
                baseline = sync(azure, azure.add_account("aa-bench-sequential"), repo, policy,
                                concurrency=1, label="full first sync, concurrency 1 (baseline)")
                for line in describe_sync(baseline):
                    print(line)
            problems = azure.arm.server.errors + azure.gallery.server.errors
            if problems:
                raise SystemExit(f"the fakes failed while benchmarking:\n{problems[0]}")
        finally:
            azure.close()

    rows = [
        ("no-op plan: ARM requests", f"{len(noop_requests)}", f"<= {NOOP_MAX_REQUESTS}",
         verdict(len(noop_requests) <= NOOP_MAX_REQUESTS and not noop.has_changes)),
        ("no-op plan: seconds", f"{noop_s:.2f} s", "-", ""),
        *first_sync_rows(full),
        ("  with reading the source", f"{full.total_s:.1f} s", "", ""),
        (f"re-sync {CHANGED} changed runbooks: plan + apply", f"{resync.plan_apply_s:.2f} s",
         f"< {RESYNC_MAX_SECONDS:g} s", verdict(resync.plan_apply_s < RESYNC_MAX_SECONDS)),
        ("  ARM requests (plan + apply)", f"{resync.requests}", "", ""),
        ("  PUTs on an existing runbook", f"{resync_puts}", "0", verdict(resync_puts == 0)),
        (f"adopt {adopt.changes.get(f'{RUNBOOK} {UPDATE}', 0)} runbooks without receipts: plan + apply",
         f"{adopt.plan_apply_s:.2f} s", "-", ""),
        ("  ARM requests (plan + apply); publishes", f"{adopt.requests}; {adopt_publishes}", "", ""),
        *first_sync_rows(budget, budget_refused),
    ]
    for run, refused in upstream_runs:
        rows += first_sync_rows(run, refused)
    if upstream_runs:
        rows.append(("upstream: no-op plan: ARM requests", f"{len(up_noop_requests)}", f"<= {NOOP_MAX_REQUESTS}",
                     verdict(len(up_noop_requests) <= NOOP_MAX_REQUESTS and not up_noop.has_changes)))
    if baseline is not None:
        rows += [(f"{baseline.label}: plan + apply", f"{baseline.plan_apply_s:.1f} s", "-", ""),
                 ("  ARM requests (plan + apply)", f"{baseline.requests}", "", "")]
    print()
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>10}  {'target':>10}  result")
    for name, value, target, result in rows:
        print(f"{name:<{width}}  {value:>10}  {target:>10}  {result}")
    return rows


if __name__ == "__main__":
    main()
