"""Benchmark: hostile sizes (issue 14, finding 10), in process.

Targets: a script with 10,000 parameters catalogs in under 2 s; a plan with 50,000 exclude
patterns (literal names and globs, half each) over 200 runbooks in the source and 200 in the
account takes under 5 s. Before the fix: 31.8 s for the parameters (the help lookup rescanned
every token per parameter) and no plan within 120 s for 300,000 patterns (each pattern
compiled again for every runbook, past ``fnmatch``'s cache).

Run: ``python -m tests.benchmarks.bench_hostile``.
"""

from __future__ import annotations

import time

from rjsync.catalog.build import build_catalog
from rjsync.catalog.model import SourceFile, SourceInfo
from rjsync.engine.planner import pair, plan_sync
from rjsync.engine.policy import Policy
from tests.engine.engine_support import live, script, snapshot


def many_parameters(count: int) -> bytes:
    """A script whose param block declares ``count`` parameters, each with a comment above it."""
    params = ",\n".join(f"    # Value number {n}.\n    [string] $P{n}" for n in range(count))
    return f"<#\n.SYNOPSIS\nMany parameters.\n#>\nparam(\n{params}\n)\nWrite-Output 1\n".encode()


def catalog_seconds(count: int) -> tuple[float, int]:
    info = SourceInfo("folder", "/src", None, "c0ffee0")
    start = time.perf_counter()
    catalog = build_catalog(info, [SourceFile("org/general/many.ps1", many_parameters(count))])
    return time.perf_counter() - start, len(catalog.runbooks[0].parameters)


def many_patterns(count: int) -> tuple[str, ...]:
    half = count // 2
    return (tuple(f"rjgit-nothing_{n}" for n in range(half))
            + tuple(f"*nothing-{n}-*.ps1" for n in range(count - half)))


def plan_seconds(count: int, runbooks: int = 200) -> tuple[float, int]:
    files = {f"org/task/run-{n}.ps1": script() for n in range(runbooks)}
    info = SourceInfo("folder", "/src", None, "c0ffee0")
    catalog = build_catalog(info, [SourceFile(p, d) for p, d in files.items()])
    snap = snapshot(*(live(f"rjgit-org_old_{n}") for n in range(runbooks)))
    policy = Policy(exclude=many_patterns(count) + ("*_task_run-7",))
    start = time.perf_counter()
    plan = plan_sync(pair(catalog, snap, policy), target="local:/acc")
    return time.perf_counter() - start, len(plan.skipped)


def main() -> None:
    for count in (2_000, 10_000):
        seconds, found = catalog_seconds(count)
        print(f"catalog, script with {count:>6,} parameters: {seconds:6.2f} s ({found} parameters)")
    for count in (5_000, 50_000):
        seconds, skipped = plan_seconds(count)
        print(f"plan, {count:>6,} exclude patterns:         {seconds:6.2f} s ({skipped} left alone)")


if __name__ == "__main__":
    main()
