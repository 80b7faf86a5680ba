"""Benchmark: plan (and apply) a fleet of 200 directory accounts from one clone.

Setup: a git repository made from our example ``runbooks/`` (16 runbooks, 6 modules) in a temp
folder; a folder of 200 manifests whose ``_defaults.yaml`` names that repository at ``--ref``
``main``, each manifest naming only its own directory account. Every run is a whole
``rjsync`` process with a fresh cache (``$RJSYNC_CACHE``), so the clone is part of the time.

Figures (wall time of the whole process, and per account):

1. plan, 200 empty accounts (23 changes each), at ``--accounts-at-once`` 1, 4 (default) and 16;
2. apply, 200 accounts, ``--auto-approve`` (first sync);
3. plan again, 200 accounts in sync (every receipt read back, no changes).

After each run the cache must hold exactly one clone: the source is fetched once for the fleet,
not once per account.

Run: ``python -m tests.benchmarks.bench_fleet`` (``--accounts N`` for another fleet size), or
``python -m tests.benchmarks`` for every benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "runbooks"
ACCOUNTS = 200
RUNS = 3


def make_repository(target: Path) -> None:
    """A git repository holding the example runbooks on branch main."""
    shutil.copytree(EXAMPLE, target)
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "runbooks"]):
        subprocess.run(["git", *command], cwd=target, check=True, env=env)


def make_fleet(folder: Path, repository: Path, count: int) -> None:
    folder.mkdir()
    (folder / "_defaults.yaml").write_text(f"source:\n  path: {repository}\n  ref: main\n", encoding="utf-8")
    for i in range(count):
        (folder / f"customer-{i:03d}.yaml").write_text(f"target: local:../accounts/customer-{i:03d}\n",
                                                       encoding="utf-8")


class Fleet:
    def __init__(self, scratch: Path, count: int):
        self.scratch = scratch
        self.count = count
        self.manifests = scratch / "manifests"
        make_repository(scratch / "repository")
        make_fleet(self.manifests, scratch / "repository", count)

    def run(self, *args: str) -> tuple[float, subprocess.CompletedProcess]:
        """One whole rjsync process with a fresh cache; its wall time."""
        cache = self.scratch / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        env = {**os.environ, "RJSYNC_CACHE": str(cache)}
        command = [sys.executable, "-m", "rjsync", *args, "--manifest", str(self.manifests)]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - start
        if done.returncode not in (0, 2):
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
        clones = [p for p in cache.rglob("HEAD") if p.parent.name != "logs" and (p.parent / "objects").is_dir()]
        if len(clones) != 1:
            raise SystemExit(f"expected one clone in the cache, found {len(clones)}")
        return seconds, done

    def plan(self, *extra: str) -> tuple[list[float], dict]:
        timings, doc = [], {}
        for _ in range(RUNS):
            seconds, done = self.run("plan", "--format", "json", *extra)
            timings.append(seconds)
            doc = json.loads(done.stdout)
        return timings, doc


def report(label: str, timings: list[float], count: int) -> None:
    median = statistics.median(timings)
    print(f"{label}: {median:.2f} s median ({min(timings):.2f}-{max(timings):.2f} s over {len(timings)} runs), "
          f"{median / count * 1000:.1f} ms per account")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=ACCOUNTS)
    args, _ = parser.parse_known_args(argv)  # python -m tests.benchmarks passes every flag to each
    with tempfile.TemporaryDirectory() as scratch:
        fleet = Fleet(Path(scratch), args.accounts)
        runbooks = len(list(EXAMPLE.rglob("*.ps1")))
        print(f"fleet benchmark: {fleet.count} directory accounts, one git source of {runbooks} runbooks "
              f"(--ref main, cloned once per run), {os.cpu_count()} cores")
        for at_once in (1, 4, 16):
            timings, doc = fleet.plan("--accounts-at-once", str(at_once))
            assert doc["summary"]["changes"] == fleet.count, doc["summary"]
            label = f"plan, {fleet.count} empty accounts, {at_once} at once{' (default)' if at_once == 4 else ''}"
            report(label, timings, fleet.count)
        seconds, done = fleet.run("apply", "--auto-approve")
        assert f"{fleet.count} applied" in done.stdout.splitlines()[-1], done.stdout[-500:]
        report(f"apply, {fleet.count} accounts (first sync), 4 at once", [seconds], fleet.count)
        timings, doc = fleet.plan()
        assert doc["summary"]["no_changes"] == fleet.count, doc["summary"]
        report(f"plan, {fleet.count} accounts in sync, 4 at once", timings, fleet.count)


if __name__ == "__main__":
    main()
