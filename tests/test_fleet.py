"""Fleets: ``rjsync plan|apply --manifest FOLDER`` over many accounts.

Isolation (a broken account never stops the others), one summary at the end, the worst exit
code, folder defaults, one read of the source per (location, ref), and the JSON and markdown
forms of a fleet's plan.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import rjsync.fleet
from rjsync.cli import cli
from rjsync.commands.fleet import run_fleet_plan
from rjsync.engine.render import MARKDOWN_MARKER
from rjsync.fleet import SourceCache, load_fleet, worst
from rjsync.sync import default_opener

EXAMPLE = Path(__file__).resolve().parent.parent / "runbooks"
BROKEN = "acct-07"
UNKNOWN_KEY = ("unknown key 'polcy' (known keys: source, target, policy, azure, permissions, concurrency); "
               "did you mean 'policy'?")


# -- helpers ---------------------------------------------------------------------------------------


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def ok(result, code: int = 0) -> None:
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.output}"


def script(n: int) -> str:
    return f"<#\n.SYNOPSIS\nJob {n}.\n#>\nparam([string] $Name)\nWrite-Output $Name\n"


def write_source(folder: Path, numbers) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    for n in numbers:
        path = folder / "user" / "general" / f"job-{n:02}.ps1"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(script(n), encoding="utf-8")
    return folder


def runbooks(account: Path) -> dict[str, bytes]:
    folder = account / "runbooks"
    return {p.stem: p.read_bytes() for p in sorted(folder.glob("*.ps1"))} if folder.is_dir() else {}


def expected(source: Path) -> dict[str, bytes]:
    return {f"rjgit-user_general_{p.stem}": p.read_bytes() for p in sorted(source.rglob("*.ps1"))}


def make_fleet(tmp_path: Path, count: int, *, broken: str | None = None, defaults: str = "source:\n  path: ../src\n"
               ) -> Path:
    """manifests/acct-NN.yaml for NN < count, each targeting accounts/acct-NN; the source comes
    from manifests/_defaults.yaml. ``broken`` gets an unknown key."""
    folder = tmp_path / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "_defaults.yaml").write_text(defaults, encoding="utf-8")
    for i in range(count):
        name = f"acct-{i:02}"
        text = f"target: local:../accounts/{name}\n"
        if name == broken:
            text += "polcy:\n  max_deletions: 3\n"
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


def table(stdout: str) -> list[list[str]]:
    """The rows of the summary table, split on runs of two or more spaces."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Summary of "))
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        rows.append(re.split(r" {2,}", line.strip()))
    return rows


@pytest.fixture
def src(tmp_path) -> Path:
    return write_source(tmp_path / "src", (1, 2, 3))


# -- isolation, summary, exit code -----------------------------------------------------------------


def test_fleet_apply_20_accounts_one_broken_applies_the_19_others_and_they_converge(tmp_path, src):
    folder = make_fleet(tmp_path, 20, broken=BROKEN)
    accounts = tmp_path / "accounts"

    result = invoke("apply", "--manifest", folder, "--auto-approve")

    ok(result, 1)
    for i in range(20):
        name = f"acct-{i:02}"
        assert runbooks(accounts / name) == ({} if name == BROKEN else expected(src)), name
    rows = table(result.stdout)
    assert rows[0] == ["ACCOUNT", "TARGET", "CHANGES", "STATUS"]
    assert len(rows) == 21
    for i, row in enumerate(rows[1:]):
        name = f"acct-{i:02}"
        if name == BROKEN:
            assert row == [name, "-", "-", "error"]
        else:
            assert row == [name, f"local:{accounts / name}", "4 to create", "applied (4 done)"]
    tail = result.stdout.split("\n\nErrors:\n", 1)[1]
    assert tail == (f"  {BROKEN}: {folder}/{BROKEN}.yaml:2: {UNKNOWN_KEY}\n\n"
                    "Fleet apply: 20 accounts: 19 applied, 0 already in sync, 0 incomplete, 1 failed.\n")
    assert result.stderr.splitlines()[-1] == "Error: 1 of 20 accounts has errors (see the summary)."
    # per-account sections, in name order, each under a header line naming the account
    headers = [line for line in result.stdout.splitlines() if line.startswith("=== ")]
    assert headers == [f"=== acct-{i:02} ({folder}/acct-{i:02}.yaml) ===" for i in range(20)]
    assert result.stdout.count("Apply complete in ") == 19
    # progress lines name their account
    progress = [line for line in result.stderr.splitlines() if not line.startswith("Error: ")]
    assert len(progress) == 19 * 4
    assert all(re.match(r"acct-\d\d: \[[1-4]/4\] done    create ", line) for line in progress), progress[:3]
    assert not any(line.startswith(f"{BROKEN}: ") for line in progress)

    # the next plan: the 19 converged, the broken one still fails; the worst code wins
    result = invoke("plan", "--manifest", folder, "--detailed-exitcode")
    ok(result, 1)
    statuses = {row[0]: row[-1] for row in table(result.stdout)[1:]}
    assert statuses == {f"acct-{i:02}": "error" if i == 7 else "no changes" for i in range(20)}
    assert result.stdout.splitlines()[-1] == (
        "Fleet plan: 20 accounts: 0 with changes, 19 without changes, 1 failed.")

    # fixed: only acct-07 has changes, so --detailed-exitcode gives 2; without it, 0
    (folder / f"{BROKEN}.yaml").write_text(f"target: local:../accounts/{BROKEN}\n", encoding="utf-8")
    result = invoke("plan", "--manifest", folder, "--detailed-exitcode")
    ok(result, 2)
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1] == (
        "Fleet plan: 20 accounts: 1 with changes, 19 without changes, 0 failed.")
    ok(invoke("plan", "--manifest", folder), 0)


def test_fleet_isolates_accounts_that_fail_at_run_time(tmp_path, src):
    """A target that is a file (an AccountError) and an unexpected exception in an account's
    opener are that account's errors; the other accounts are planned."""
    folder = make_fleet(tmp_path, 4)
    (tmp_path / "accounts").mkdir()
    (tmp_path / "accounts" / "acct-01").write_text("not a folder")

    def opener(settings):
        if settings.name == "acct-02":
            raise RuntimeError("the opener broke")
        return default_opener(settings)

    fleet = load_fleet(folder)
    runner = CliRunner()
    with runner.isolation() as (out, err, _):
        code = run_fleet_plan(fleet, fmt="json", detailed_exitcode=True, opener=opener)
    doc = json.loads(out.getvalue())
    assert code == 1
    assert [(a["name"], a["status"], a["exit_code"], a["error"]) for a in doc["accounts"]] == [
        ("acct-00", "changes", 2, None),
        ("acct-01", "error", 1, f"The directory account '{tmp_path / 'accounts' / 'acct-01'}' is a file, "
                                "not a folder."),
        ("acct-02", "error", 1, "unexpected RuntimeError: the opener broke"),
        ("acct-03", "changes", 2, None),
    ]
    assert err.getvalue().decode() == "Error: 2 of 4 accounts have errors (see the summary).\n"


def test_fleet_exit_code_is_the_worst_of_the_accounts():
    assert worst([0, 2, 0]) == 2
    assert worst([2, 1, 0]) == 1
    assert worst([0, 0]) == 0
    assert worst([]) == 0


def test_fleet_apply_needs_auto_approve(tmp_path, src):
    folder = make_fleet(tmp_path, 3)
    result = invoke("apply", "--manifest", folder)
    ok(result, 1)
    assert result.stderr == (f"Error: Not applying: a folder of manifests applies to 3 accounts without asking "
                             f"each. Review 'rjsync plan --manifest {folder}' and pass --auto-approve.\n")
    assert not (tmp_path / "accounts").exists()


def test_fleet_usage_errors(tmp_path, src):
    folder = make_fleet(tmp_path, 2)
    result = invoke("plan", "--manifest", folder, "--out", tmp_path / "plan.json")
    ok(result, 1)
    assert "--out saves one account's plan; give --manifest one FILE of the folder." in result.stderr
    result = invoke("plan", "--manifest", folder / "acct-00.yaml", "--accounts-at-once", "2")
    ok(result, 1)
    assert "--accounts-at-once is for a folder of manifests (--manifest FOLDER)." in result.stderr
    result = invoke("plan", "--manifest", folder, "--source", src)
    ok(result, 1)
    assert result.stderr == "Error: Give either --manifest or --source and --target, not both.\n"


def test_fleet_folder_without_manifests_is_an_error(tmp_path):
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "_defaults.yaml").write_text("policy: {max_deletions: 1}\n")
    (folder / "notes.txt").write_text("not a manifest")
    result = invoke("plan", "--manifest", folder)
    ok(result, 1)
    assert result.stderr == (f"Error: The folder '{folder}' holds no manifests (*.yaml or *.yml files not "
                             "starting with '_').\n")


def test_fleet_two_manifests_for_one_account_fail_the_second(tmp_path, src):
    folder = make_fleet(tmp_path, 2)
    (folder / "acct-01.yml").write_text("target: local:../accounts/acct-00\n")
    fleet = load_fleet(folder)
    assert [(e.name, e.error) for e in fleet.entries] == [
        ("acct-00", None),
        ("acct-01", None),
        ("acct-01", f"{folder}/acct-01.yml: the account name 'acct-01' is taken by {folder}/acct-01.yaml; "
                    "rename one of them."),
    ]
    (folder / "acct-01.yml").rename(folder / "acct-02.yml")
    fleet = load_fleet(folder)
    assert fleet.entries[2].error == (
        f"{folder}/acct-02.yml: its target local:{tmp_path / 'accounts' / 'acct-00'} is also the target of "
        f"{folder}/acct-00.yaml; one manifest per account, or two syncs would write it at once.")


def test_fleet_flags_override_every_manifest(tmp_path, src):
    folder = make_fleet(tmp_path, 3)
    result = invoke("plan", "--manifest", folder, "--max-deletions", "5", "--accounts-at-once", "1")
    ok(result)
    policies = [line for line in result.stdout.splitlines() if line.startswith("Policy: ")]
    assert policies == ["Policy: prefix rjgit-, runtime RJ-PowerShell-7.4, modules managed, at most 5 deletions"] * 3


# -- defaults --------------------------------------------------------------------------------------


def test_fleet_defaults_are_overridden_key_by_key(tmp_path, src):
    other = write_source(tmp_path / "other", (9,))
    folder = make_fleet(tmp_path, 3, defaults=(
        "source:\n  path: ../src\npolicy:\n  max_deletions: 3\n  exclude: ['*job-01*']\n  keep_drifted: true\n"))
    (folder / "acct-01.yaml").write_text(
        "target: local:../accounts/acct-01\npolicy:\n  exclude: ['*job-02*']\n")  # a list replaces
    (folder / "acct-02.yaml").write_text(
        "source: {path: ../other}\ntarget: local:../accounts/acct-02\npolicy: {max_deletions: 0}\n")
    fleet = load_fleet(folder)
    policies = [(e.settings.source.location, e.settings.policy.exclude, e.settings.policy.max_deletions,
                 e.settings.policy.keep_drifted) for e in fleet.entries]
    assert policies == [
        (str(src), ("*job-01*",), 3, True),
        (str(src), ("*job-02*",), 3, True),
        (str(other), ("*job-01*",), 0, True),
    ]
    ok(invoke("apply", "--manifest", folder, "--auto-approve"))
    accounts = tmp_path / "accounts"
    assert sorted(runbooks(accounts / "acct-00")) == ["rjgit-user_general_job-02", "rjgit-user_general_job-03"]
    assert sorted(runbooks(accounts / "acct-01")) == ["rjgit-user_general_job-01", "rjgit-user_general_job-03"]
    assert sorted(runbooks(accounts / "acct-02")) == ["rjgit-user_general_job-09"]


def test_fleet_broken_defaults_fail_the_whole_fleet_naming_the_file(tmp_path, src):
    folder = make_fleet(tmp_path, 3, defaults="source:\n  path: ../src\npolicy:\n  max_deletions: many\n")
    result = invoke("plan", "--manifest", folder)
    ok(result, 1)
    assert result.stderr == (f"Error: {folder}/_defaults.yaml:4: policy.max_deletions: expected a whole "
                             "number >= 0, got 'many'.\n")
    assert result.stdout == ""


# -- one read per source ---------------------------------------------------------------------------


def test_fleet_reads_each_source_once_and_builds_each_catalog_once(tmp_path, src, monkeypatch):
    folder = make_fleet(tmp_path, 12)
    (folder / "acct-10.yaml").write_text("target: local:../accounts/acct-10\npolicy: {contexts: [user, org]}\n")
    other = write_source(tmp_path / "other", (5,))
    (folder / "acct-11.yaml").write_text(f"source: {{path: {other}}}\ntarget: local:../accounts/acct-11\n")
    reads, builds = [], []
    real_open, real_catalog = rjsync.fleet.open_source, rjsync.fleet.catalog_of

    def counting_open(location, ref=None):
        reads.append((location, ref))
        return real_open(location, ref)

    def counting_catalog(checkout, policy):
        builds.append((checkout.info.location, policy.contexts))
        return real_catalog(checkout, policy)

    monkeypatch.setattr(rjsync.fleet, "open_source", counting_open)
    monkeypatch.setattr(rjsync.fleet, "catalog_of", counting_catalog)

    result = invoke("plan", "--manifest", folder, "--accounts-at-once", "8")

    ok(result)
    assert sorted(reads) == [(str(other), None), (str(src), None)]
    assert sorted(builds) == [(str(other), ("device", "group", "org", "user")),
                              (str(src), ("device", "group", "org", "user")),
                              (str(src), ("user", "org"))]


def test_fleet_clones_a_git_source_once_per_ref(tmp_path, monkeypatch):
    import git

    repo_dir = write_source(tmp_path / "repo", (1, 2))
    repo = git.Repo.init(repo_dir, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "t").set_value("user", "email", "t@example.invalid")
    repo.git.add(A=True)
    repo.index.commit("one")
    repo.create_tag("v1")
    folder = make_fleet(tmp_path, 6, defaults=f"source:\n  path: {repo_dir}\n  ref: main\n")
    (folder / "acct-05.yaml").write_text("source: {ref: v1}\ntarget: local:../accounts/acct-05\n")
    fetches = []
    real_fetch = rjsync.source._fetch
    monkeypatch.setattr(rjsync.source, "_fetch", lambda *a, **k: (fetches.append(a[1]), real_fetch(*a, **k))[1])

    cache = SourceCache()
    runner = CliRunner()
    with runner.isolation() as (out, _, _):
        code = run_fleet_plan(load_fleet(folder), fmt="json", cache=cache)
    assert code == 0
    doc = json.loads(out.getvalue())
    assert {a["plan"]["source"]["ref"] for a in doc["accounts"]} == {"main", "v1"}
    assert len(fetches) == 2, fetches  # one per ref, not one per account


# -- formats ---------------------------------------------------------------------------------------


def test_fleet_plan_json_has_every_account_and_a_summary(tmp_path, src):
    folder = make_fleet(tmp_path, 3, broken="acct-01")
    result = invoke("plan", "--manifest", folder, "--format", "json", "--detailed-exitcode")
    ok(result, 1)
    doc = json.loads(result.stdout)
    assert list(doc) == ["accounts", "summary"]
    assert doc["summary"] == {"accounts": 3, "changes": 2, "no_changes": 0, "errors": 1, "exit_code": 1}
    first, broken, _ = doc["accounts"]
    assert list(first) == ["name", "manifest", "target", "status", "exit_code", "plan", "error"]
    assert (first["name"], first["manifest"], first["target"], first["status"], first["exit_code"], first["error"]) \
        == ("acct-00", f"{folder}/acct-00.yaml", f"local:{tmp_path / 'accounts' / 'acct-00'}", "changes", 2, None)
    assert first["plan"]["target"] == first["target"]
    assert first["plan"]["summary"]["create"] == 3
    assert broken == {"name": "acct-01", "manifest": f"{folder}/acct-01.yaml", "target": None, "status": "error",
                      "exit_code": 1, "plan": None, "error": f"{folder}/acct-01.yaml:2: {UNKNOWN_KEY}"}


def test_fleet_plan_markdown_has_one_marker_a_summary_and_each_account(tmp_path, src):
    folder = make_fleet(tmp_path, 3, broken="acct-02")
    result = invoke("plan", "--manifest", folder, "--format", "markdown")
    ok(result, 1)
    text = result.stdout
    assert text.startswith(f"{MARKDOWN_MARKER}\n## ❌ rjsync plan for `{folder}`\n\n"
                           "**3 accounts: 2 with changes, 0 without changes, 1 failed.**\n")
    assert text.count(MARKDOWN_MARKER) == 1
    assert f"| 📝 | `acct-00` | `local:{tmp_path / 'accounts' / 'acct-00'}` | 4 to create | changes |" in text
    assert "| ❌ | `acct-02` | - | - | error |" in text
    assert f"- `acct-02`: {folder}/acct-02.yaml:2: {UNKNOWN_KEY}" in text
    assert "## `acct-00`\n\n### 📝 rjsync plan for `local:" in text
    assert "## `acct-01`\n\n" in text
    assert "## `acct-02`" not in text
