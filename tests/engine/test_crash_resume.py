"""Invariant 5: an interrupted apply leaves nothing lost, and re-running converges.

The real command line runs as a subprocess (``python -m rjsync apply --auto-approve``) against
a directory account and is killed with SIGKILL: at random points (seeded, spread over the time
one full apply takes, so kills land before, during and after the writes), and at chosen points
inside a write (just before a file is moved into place). Half the random trials start from an
empty account, half from an account synced with an older version of the source, so creates,
updates, deletions, module imports and the runtime environment all get interrupted.

After each kill: every runbook holds either its old or its new content (never a mix), a customer
runbook is untouched; apply again (exit 0); then the plan is empty, every runbook's bytes are the
source script's bytes, and no temporary file is left in the account's runbooks/ folder.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from rjsync.cli import cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "runbooks"
SEED = 20261123
TRIALS = 12
CUSTOMER = "user_general_my-runbook"
CUSTOMER_BYTES = b"# a customer's own runbook\r\nWrite-Output 'mine'\r\n"
CUSTOMER_MTIME_NS = 1_700_000_000_000_000_000

#: Runs rjsync's command line with ``os.replace`` or ``Path.unlink`` rigged to SIGKILL the
#: process at one chosen file operation: argv is ``replace|unlink NAME NTH rjsync-args...``.
#: ``replace``: killed just before the NTH move of a temporary file onto NAME (written and
#: flushed, not yet in place); ``unlink``: killed just after NAME is deleted for the NTH time.
CRASHING_RJSYNC = r"""
import os, signal, sys
from pathlib import Path

operation, name, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.argv[1:4] = []
sys.argv[0] = "rjsync"
seen = 0

def hit(path):
    global seen
    if os.path.basename(os.fspath(path)) != name:
        return False
    seen += 1
    return seen == nth

real_replace, real_unlink = os.replace, Path.unlink

def replace(src, dst, *args, **kwargs):
    if hit(dst):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)

def unlink(self, *args, **kwargs):
    real_unlink(self, *args, **kwargs)
    if hit(self):
        os.kill(os.getpid(), signal.SIGKILL)

if operation == "replace":
    os.replace = replace
else:
    Path.unlink = unlink

from rjsync.cli import main
main()
"""


# -- helpers ---------------------------------------------------------------------------------------


def environment(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HOME=str(home), RJSYNC_CACHE=str(home / ".cache" / "rjsync"), NO_COLOR="1",
               GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def apply_args(source: Path, account: Path, *extra: str) -> list[str]:
    return ["apply", "--source", str(source), "--target", f"local:{account}", "--auto-approve", *extra]


def start(args: list[str], env: dict[str, str], prefix: tuple[str, ...] = ("-m", "rjsync")):
    return subprocess.Popen([sys.executable, *prefix, *args], env=env, cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def run_to_completion(args: list[str], env: dict[str, str]) -> str:
    proc = start(args, env)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"rjsync {' '.join(args)} exited {proc.returncode}:\n{output.decode()}"
    return output.decode()


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def catalog(source: Path) -> dict[str, bytes]:
    """Runbook name -> the source script's bytes."""
    result = invoke("catalog", source, "--format", "json")
    assert result.exit_code == 0, result.output
    return {r["name"]: (source / r["path"]).read_bytes() for r in json.loads(result.stdout)["runbooks"]}


def runbooks(account: Path) -> dict[str, bytes]:
    folder = account / "runbooks"
    return {p.stem: p.read_bytes() for p in sorted(folder.glob("*.ps1"))} if folder.is_dir() else {}


def temp_files(account: Path) -> list[str]:
    folder = account / "runbooks"
    return sorted(p.name for p in folder.glob(".*.tmp")) if folder.is_dir() else []


def add_customer_runbook(account: Path) -> None:
    path = account / "runbooks" / f"{CUSTOMER}.ps1"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(CUSTOMER_BYTES)
    os.utime(path, ns=(CUSTOMER_MTIME_NS, CUSTOMER_MTIME_NS))


def assert_customer_untouched(account: Path) -> None:
    path = account / "runbooks" / f"{CUSTOMER}.ps1"
    assert path.read_bytes() == CUSTOMER_BYTES
    assert path.stat().st_mtime_ns == CUSTOMER_MTIME_NS
    assert not (account / "runbooks" / f"{CUSTOMER}.meta.json").exists()


#: Scripts the older source has in another version (UTF-16, UTF-8 with and without BOM).
OLDER_VERSION_OF = ("device/general/sync-device-now.ps1", "device/general/update-device-category.ps1",
                    "org/general/list-inactive-guests.ps1", "user/mail/add-mail-alias.ps1")
#: Scripts only the newer source has (the first is the only one requiring Az.Storage).
NEWER_ONLY = ("org/reporting/export-licence-usage_scheduled.ps1", "group/teams/add-team-channel.ps1")


def make_older_version(new: Path, old: Path) -> None:
    """``old``: the example source some commits ago. Against it, the example updates four
    runbooks, creates two (and the module only they need) and deletes three."""
    shutil.copytree(new, old)
    for rel in OLDER_VERSION_OF:
        path = old / rel
        data = path.read_bytes()
        encoding = "utf-16-le" if data.startswith(b"\xff\xfe") else "utf-8"
        newline = "\r\n" if "\r\n".encode(encoding) in data else "\n"
        path.write_bytes(data + f"# an older version{newline}".encode(encoding))
    for rel in NEWER_ONLY:
        (old / rel).unlink()
    for n in range(3):
        legacy = old / "user" / "legacy" / f"old-job-{n}.ps1"
        legacy.parent.mkdir(parents=True, exist_ok=True)
        legacy.write_text(f"<#\n.SYNOPSIS\nOld job {n}.\n#>\nparam([string] $Name)\n"
                          "Write-Output $Name\n")


@dataclass
class World:
    """Sources, account templates and the time one full apply takes, shared by the trials."""

    new: Path
    old: Path
    new_runbooks: dict[str, bytes]
    old_runbooks: dict[str, bytes]
    empty_account: Path  # only the customer runbook
    old_account: Path  # synced with the older source, plus the customer runbook
    durations: dict[bool, float]  # from_old -> seconds one full apply of the newer source takes
    env: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("crash")
    env = environment(root / "home")
    new = Path(shutil.copytree(EXAMPLE, root / "new"))
    old = root / "old"
    make_older_version(new, old)
    new_runbooks, old_runbooks = catalog(new), catalog(old)
    assert len(new_runbooks) == 16 and len(old_runbooks) == 17
    assert sum(old_runbooks.get(name) not in (None, data) for name, data in new_runbooks.items()) == 4

    empty_account = root / "empty-account"
    add_customer_runbook(empty_account)
    old_account = root / "old-account"
    add_customer_runbook(old_account)
    run_to_completion(apply_args(old, old_account), env)
    assert runbooks(old_account) == {**old_runbooks, CUSTOMER: CUSTOMER_BYTES}

    durations = {}
    for from_old, template in ((False, empty_account), (True, old_account)):
        account = root / f"timed-{template.name}"
        shutil.copytree(template, account)
        started = time.monotonic()
        output = run_to_completion(apply_args(new, account), env)
        durations[from_old] = time.monotonic() - started
        assert "Apply complete" in output
    return World(new, old, new_runbooks, old_runbooks, empty_account, old_account, durations, env)


def converge_and_check(world: World, account: Path, temp_files_after_kill: list[str]) -> None:
    """Apply again to completion, then check the account is exactly the source."""
    result = invoke(*apply_args(world.new, account))
    assert result.exit_code == 0, result.output
    result = invoke("plan", "--source", world.new, "--target", f"local:{account}", "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("Plan: No changes: the account matches the source.\n")
    assert runbooks(account) == {**world.new_runbooks, CUSTOMER: CUSTOMER_BYTES}
    metadata = {p.name for p in (account / "runbooks").glob("*.meta.json")}
    assert metadata >= {f"{name}.meta.json" for name in world.new_runbooks}
    assert_customer_untouched(account)
    # the re-run leaves no temporary file of its own (leftovers of the kill itself: see
    # test_apply_rerun_removes_a_temporary_file_a_kill_left_behind)
    assert set(temp_files(account)) <= set(temp_files_after_kill), temp_files(account)


def assert_nothing_lost(world: World, account: Path, from_old: bool) -> None:
    """Right after a kill: each runbook holds its old or its new content, never a mix."""
    before = world.old_runbooks if from_old else {}
    for name, data in runbooks(account).items():
        if name == CUSTOMER:
            continue
        allowed = [v for v in (before.get(name), world.new_runbooks.get(name)) if v is not None]
        assert allowed, f"{name}: a runbook neither source has"
        assert data in allowed, f"{name}: its content is neither the old nor the new script"
    for name in before:
        if name in world.new_runbooks:
            assert name in runbooks(account), f"{name} was lost (it is in both versions of the source)"
    assert_customer_untouched(account)


# -- random kills ----------------------------------------------------------------------------------


def _trials():
    rng = random.Random(SEED)
    for trial in range(TRIALS):
        # a fraction of the full duration; above 1 the apply has (most likely) finished
        from_old = trial % 2 == 1
        extra = ("--concurrency", "1") if trial % 3 == 2 else ()
        yield pytest.param(from_old, rng.uniform(0.0, 1.15), extra,
                           id=f"{trial:02}-{'old' if from_old else 'empty'}")


@pytest.mark.parametrize("from_old, fraction, extra", list(_trials()))
def test_apply_converges_after_a_kill_at_a_random_point(world, tmp_path, from_old, fraction, extra):
    account = tmp_path / "account"
    shutil.copytree(world.old_account if from_old else world.empty_account, account)

    proc = start(apply_args(world.new, account, *extra), world.env)
    time.sleep(fraction * world.durations[from_old])
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode in (0, -signal.SIGKILL), proc.returncode

    assert_nothing_lost(world, account, from_old)
    converge_and_check(world, account, temp_files(account))


def test_random_kills_cover_both_starts_and_the_whole_apply():
    trials = list(_trials())
    fractions = sorted(t.values[1] for t in trials)
    assert len(trials) >= 10 and {t.values[0] for t in trials} == {True, False}
    assert fractions[0] < 0.3 and any(0.4 < f < 0.9 for f in fractions) and fractions[-1] > 0.9


# -- kills at chosen points inside a write ---------------------------------------------------------


def kill_at(world: World, account: Path, operation: str, name: str, nth: int = 1) -> None:
    proc = start([operation, name, str(nth), *apply_args(world.new, account, "--concurrency", "1")],
                 world.env, prefix=("-c", CRASHING_RJSYNC))
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"not killed at {operation} {name}:\n{output.decode()}"


UPDATED = "rjgit-device_general_update-device-category"  # in OLDER_VERSION_OF
LEGACY = "rjgit-user_legacy_old-job-0"  # only in the older source
STORAGE_USER = "rjgit-org_reporting_export-licence-usage_scheduled"  # the only one needing Az.Storage


def receipt(account: Path, name: str) -> str | None:
    meta = json.loads((account / "runbooks" / f"{name}.meta.json").read_text())
    return meta["tags"].get("rjsync.sha256")


@pytest.mark.parametrize("from_old, operation, name, nth, expect", [
    # from an empty account: killed before the runtime environment is recorded; nothing written
    pytest.param(False, "replace", "modules.json", 1, [(UPDATED, None, None), (STORAGE_USER, None, None)],
                 id="runtime-environment"),
    # from the older account: before Az.Storage is recorded; the runbook needing it is not published
    pytest.param(True, "replace", "modules.json", 1, [(STORAGE_USER, None, None)], id="module-import"),
    # an update, killed before its metadata (without the old receipt) is moved in
    pytest.param(True, "replace", f"{UPDATED}.meta.json", 1, [(UPDATED, "old", True)], id="update-not-started"),
    # its metadata without receipt in place, the old content still published
    pytest.param(True, "replace", f"{UPDATED}.ps1", 1, [(UPDATED, "old", False)], id="update-old-content"),
    # the new content in place, its receipt not yet written
    pytest.param(True, "replace", f"{UPDATED}.meta.json", 2, [(UPDATED, "new", False)], id="update-no-receipt"),
    # a create: metadata without receipt, no script yet
    pytest.param(False, "replace", f"{UPDATED}.ps1", 1, [(UPDATED, None, False)], id="create-no-content"),
    # a delete (deletions come last): the script is gone, its metadata not yet
    pytest.param(True, "unlink", f"{LEGACY}.ps1", 1, [(UPDATED, "new", True), (LEGACY, None, None)],
                 id="delete-script-not-metadata"),
])
def test_apply_converges_after_a_kill_inside_a_write(world, tmp_path, from_old, operation, name, nth, expect):
    account = tmp_path / "account"
    shutil.copytree(world.old_account if from_old else world.empty_account, account)
    kill_at(world, account, operation, name, nth)

    assert_nothing_lost(world, account, from_old)
    versions = {None: lambda n: None, "old": world.old_runbooks.get, "new": world.new_runbooks.get}
    for runbook, content, receipted in expect:
        assert runbooks(account).get(runbook) == versions[content](runbook), f"{runbook}: not {content}"
        if receipted is not None:
            assert (receipt(account, runbook) is not None) == receipted, runbook
    converge_and_check(world, account, temp_files(account))


def test_apply_rerun_removes_a_temporary_file_a_kill_left_behind(world, tmp_path):
    account = tmp_path / "account"
    shutil.copytree(world.empty_account, account)
    kill_at(world, account, "replace", f"{UPDATED}.ps1")
    left = temp_files(account)
    assert left, "the kill left no temporary file behind"
    converge_and_check(world, account, left)
    assert temp_files(account) == []


def test_apply_rerun_leaves_no_orphaned_metadata_after_a_kill_in_a_delete(world, tmp_path):
    account = tmp_path / "account"
    shutil.copytree(world.old_account, account)
    kill_at(world, account, "unlink", f"{LEGACY}.ps1")
    converge_and_check(world, account, temp_files(account))
    assert not (account / "runbooks" / f"{LEGACY}.meta.json").exists()
