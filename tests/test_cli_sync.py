"""``rjsync plan`` and ``rjsync apply`` on the command line, against directory accounts.

Exit codes and the exact lines users and automation rely on (design.md, "Command-line
contract"): 0 success, 2 changes pending with ``--detailed-exitcode``, 1 error; saved plans
refused when stale; the deletion guard; customer runbooks never written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from rjsync.cli import cli
from rjsync.engine.render import MARKDOWN_MARKER

EXAMPLE = Path(__file__).resolve().parent.parent / "runbooks"
CUSTOMER = "user_general_my-runbook"
CUSTOMER_BYTES = b"# a customer's own runbook\r\nWrite-Output 'mine'\r\n"
#: The flag each command gets in the error tests (so only the error can stop it).
ONE_SHOT = {"plan": ("--detailed-exitcode",), "apply": ("--auto-approve",)}
NO_CHANGES = "Plan: No changes: the account matches the source."
NOT_A_TTY = ("Error: Not applying: confirmation needs a terminal. Review the plan above and pass "
             "--auto-approve to apply without asking.")


# -- helpers ---------------------------------------------------------------------------------------


def invoke(*args, input: str | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def script(synopsis: str, body: str = "Write-Output $Name") -> str:
    return f"<#\n.SYNOPSIS\n{synopsis}\n#>\nparam([string] $Name)\n{body}\n"


def jobs(*numbers: int) -> dict[str, str]:
    """Scripts user/general/job-NN.ps1 (runbooks rjgit-user_general_job-NN)."""
    return {f"user/general/job-{n:02}.ps1": script(f"Job {n}.") for n in numbers}


def job(n: int) -> str:
    return f"rjgit-user_general_job-{n:02}"


def write_source(folder: Path, scripts: dict[str, str]) -> Path:
    """Make ``folder`` hold exactly ``scripts`` (relative path -> text)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for rel, text in scripts.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    return folder


def files(account: Path) -> dict[str, bytes]:
    """Every file of a directory account but its lock file, by relative path."""
    if not account.exists():
        return {}
    return {p.relative_to(account).as_posix(): p.read_bytes()
            for p in sorted(account.rglob("*")) if p.is_file() and p.name != ".rjsync.lock"}


def runbooks(account: Path) -> dict[str, bytes]:
    """Runbook name -> published content."""
    folder = account / "runbooks"
    if not folder.is_dir():
        return {}
    return {p.stem: p.read_bytes() for p in sorted(folder.glob("*.ps1"))}


def expected(source: Path) -> dict[str, bytes]:
    """Runbook name -> the source script's bytes, as the catalog maps them."""
    result = invoke("catalog", source, "--format", "json")
    catalog = json.loads(result.stdout)
    return {r["name"]: (source / r["path"]).read_bytes() for r in catalog["runbooks"]}


def add_customer_runbook(account: Path) -> Path:
    path = account / "runbooks" / f"{CUSTOMER}.ps1"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(CUSTOMER_BYTES)
    return path


def target(account: Path) -> str:
    return f"local:{account}"


def plan(source: Path, account: Path, *extra):
    return invoke("plan", "--source", source, "--target", target(account), *extra)


def apply(source: Path, account: Path, *extra):
    return invoke("apply", "--source", source, "--target", target(account), "--auto-approve", *extra)


def last_line(text: str) -> str:
    return text.rstrip("\n").splitlines()[-1]


def report(result) -> str:
    """The apply's last report line with its duration blanked: "Apply complete in _ s: ..."."""
    lines = [line for line in result.stdout.splitlines() if line.startswith("Apply ")]
    assert len(lines) == 1, result.output
    return re.sub(r" in \d+\.\d s: ", " in _ s: ", lines[0])


def ok(result, code: int = 0) -> None:
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.output}"


@pytest.fixture
def example(tmp_path) -> Path:
    """A copy of the repository's example runbooks (16 scripts, 6 modules)."""
    return Path(shutil.copytree(EXAMPLE, tmp_path / "src"))


@pytest.fixture
def src(tmp_path) -> Path:
    return tmp_path / "src"


@pytest.fixture
def account(tmp_path) -> Path:
    return tmp_path / "account"


# -- exit codes ------------------------------------------------------------------------------------


def test_plan_with_changes_exits_0_without_detailed_exitcode_and_writes_nothing(example, account):
    result = plan(example, account)
    ok(result, 0)
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        f"Source: {example}",
        f"Target: local:{account}",
        "Policy: prefix rjgit-, runtime RJ-PowerShell-7.4, modules managed, at most 10 deletions",
    ]
    assert "  + RJ-PowerShell-7.4  create (PowerShell 7.4, default packages Az 12.3.0)" in lines
    assert lines[-1] == "Plan: 23 to create."
    assert result.stderr == ""
    assert files(account) == {}


def test_plan_with_changes_exits_2_with_detailed_exitcode(example, account):
    result = plan(example, account, "--detailed-exitcode")
    ok(result, 2)
    assert last_line(result.stdout) == "Plan: 23 to create."


@pytest.mark.parametrize("flags", [(), ("--detailed-exitcode",)], ids=["plain", "detailed"])
def test_plan_without_changes_exits_0(example, account, flags):
    ok(apply(example, account))
    result = plan(example, account, *flags)
    ok(result, 0)
    assert last_line(result.stdout) == NO_CHANGES


@pytest.mark.parametrize("flags", [(), ("--detailed-exitcode",)], ids=["plain", "detailed"])
def test_plan_with_catalog_errors_exits_1(src, account, flags):
    write_source(src, {**jobs(0), "user/general/bad.ps1": "<#\n.SYNOPSIS\nA\n#>\nparam(\n"})
    result = plan(src, account, *flags)
    ok(result, 1)
    assert ("  error: user/general/bad.ps1:5: param block cannot be parsed: check its brackets, quotes "
            "and commas") in result.stdout.splitlines()
    assert last_line(result.stdout) == "Plan: 2 to create. (1 error in the catalog)"


def test_plan_usage_error_with_detailed_exitcode_exits_1(example, account):
    result = plan(example, account, "--detailed-exitcode", "--format", "yaml")
    assert "Invalid value for '--format'" in result.stderr
    assert result.exit_code == 1


def test_apply_creates_everything_and_the_next_plan_is_empty(example, account):
    result = apply(example, account)
    ok(result)
    assert report(result) == "Apply complete in _ s: 23 done, 0 failed, 0 skipped."
    assert runbooks(account) == expected(example)
    ok(plan(example, account, "--detailed-exitcode"), 0)


def test_apply_without_changes_exits_0_and_writes_nothing(src, account):
    write_source(src, jobs(0, 1))
    ok(apply(src, account))
    before = files(account)
    result = apply(src, account)
    ok(result, 0)
    assert last_line(result.stdout) == NO_CHANGES
    assert files(account) == before


# -- output formats --------------------------------------------------------------------------------


def test_plan_json_has_the_contract_keys_and_is_byte_stable(example, account):
    first = plan(example, account, "--format", "json")
    ok(first)
    doc = json.loads(first.stdout)
    assert {"source", "target", "changes", "summary", "diagnostics"} <= set(doc)
    assert doc["target"] == f"local:{account}"
    assert doc["source"]["kind"] == "folder" and doc["source"]["location"] == str(example)
    for change in doc["changes"]:
        assert {"kind", "action", "name", "reason"} <= set(change)
        assert change["kind"] in ("runbook", "module")
        assert change["action"] in ("create", "update", "replace", "delete")
    names = sorted(c["name"] for c in doc["changes"] if c["kind"] == "runbook")
    assert names == sorted(expected(example))
    summary = doc["summary"]
    assert (summary["create"], summary["environment"], summary["has_changes"]) == (22, 1, True)
    assert doc["diagnostics"] == []
    assert plan(example, account, "--format", "json").stdout == first.stdout

    ok(apply(example, account))
    synced = plan(example, account, "--format", "json")
    assert json.loads(synced.stdout)["changes"] == []
    assert plan(example, account, "--format", "json").stdout == synced.stdout


def test_plan_markdown_starts_with_the_hidden_marker(example, account):
    result = plan(example, account, "--format", "markdown", "--detailed-exitcode")
    ok(result, 2)
    assert result.stdout.startswith(MARKDOWN_MARKER + "\n")
    assert MARKDOWN_MARKER == "<!-- rjsync-plan -->"
    assert "**23 to create.**" in result.stdout.splitlines()


# -- saved plans -----------------------------------------------------------------------------------


def test_plan_out_then_apply_planfile_applies_it_and_the_next_plan_is_empty(example, account, tmp_path):
    planfile = tmp_path / "plan.json"
    result = plan(example, account, "--out", planfile)
    ok(result)
    assert last_line(result.stdout) == (f"Saved the plan to {planfile}; apply it with: "
                                        f"rjsync apply {planfile}")
    assert json.loads(planfile.read_text())["format_version"] == 1
    # --format json prints the very document --out saves
    assert plan(example, account, "--format", "json").stdout == planfile.read_text()
    assert files(account) == {}

    result = invoke("apply", planfile, "--auto-approve")
    ok(result)
    assert report(result) == "Apply complete in _ s: 23 done, 0 failed, 0 skipped."
    assert runbooks(account) == expected(example)
    ok(plan(example, account, "--detailed-exitcode"), 0)


def _saved_plan_with_changes(src: Path, account: Path, planfile: Path) -> None:
    """An account synced with jobs 0-3, then a source that updates job 0 and adds job 4."""
    write_source(src, jobs(0, 1, 2, 3))
    ok(apply(src, account))
    write_source(src, {**jobs(0, 1, 2, 3, 4), "user/general/job-00.ps1": script("Job 0, version 2.")})
    ok(plan(src, account, "--out", planfile))
    assert "Plan: 1 to create, 1 to update." in plan(src, account).stdout


def _stale(result, planfile: Path, what: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr == (f"Error: The plan is stale: {what} changed since {planfile} was made. "
                             "Plan again.\n")
    assert "stale" in result.stderr


@pytest.mark.parametrize("change", ["edited", "deleted"])
def test_apply_planfile_refuses_a_stale_plan_when_the_account_changed(src, account, tmp_path, change):
    planfile = tmp_path / "plan.json"
    _saved_plan_with_changes(src, account, planfile)
    runbook = account / "runbooks" / f"{job(1)}.ps1"
    if change == "edited":
        runbook.write_bytes(runbook.read_bytes() + b"# edited in the portal\n")
    else:
        runbook.unlink()
    before = files(account)

    result = invoke("apply", planfile, "--auto-approve")
    _stale(result, planfile, f"the account local:{account}")
    assert files(account) == before


def test_apply_planfile_applied_twice_says_it_was_applied_already(src, account, tmp_path):
    planfile = tmp_path / "plan.json"
    _saved_plan_with_changes(src, account, planfile)
    ok(invoke("apply", planfile, "--auto-approve"))
    before = files(account)

    result = invoke("apply", planfile, "--auto-approve")

    assert result.exit_code == 1, result.output
    assert result.stderr == (f"Error: The plan is stale: the account local:{account} changed since {planfile} "
                             "was made. Every change in it is already in the account: was it applied before? "
                             "Plan again.\n")
    assert files(account) == before


@pytest.mark.parametrize("change", ["edited", "added", "deleted"])
def test_apply_planfile_refuses_a_stale_plan_when_the_source_changed(src, account, tmp_path, change):
    planfile = tmp_path / "plan.json"
    _saved_plan_with_changes(src, account, planfile)
    before = files(account)
    if change == "edited":
        (src / "user/general/job-02.ps1").write_text(script("Job 2, edited after the plan."))
    elif change == "added":
        (src / "user/general/job-05.ps1").write_text(script("Job 5."))
    else:
        (src / "user/general/job-03.ps1").unlink()

    result = invoke("apply", planfile, "--auto-approve")
    _stale(result, planfile, f"the source {src}")
    assert files(account) == before


def test_apply_planfile_with_max_deletions_applies_its_deletions(src, account, tmp_path):
    write_source(src, jobs(*range(12)))
    ok(apply(src, account))
    write_source(src, jobs(0))
    planfile = tmp_path / "plan.json"
    ok(plan(src, account, "--out", planfile))
    result = invoke("apply", planfile, "--auto-approve", "--max-deletions", "11")
    ok(result)
    assert sorted(runbooks(account)) == [job(0)]


# -- confirmation ----------------------------------------------------------------------------------


def test_apply_without_auto_approve_on_a_non_tty_refuses_and_writes_nothing(src, account):
    write_source(src, jobs(0, 1))
    result = invoke("apply", "--source", src, "--target", target(account), input="y\n")
    assert result.exit_code == 1, result.output
    assert last_line(result.stdout) == "Plan: 3 to create."
    assert result.stderr == NOT_A_TTY + "\n"
    assert files(account) == {}


def test_apply_without_auto_approve_on_a_non_tty_leaves_a_synced_account_as_it_is(src, account):
    write_source(src, jobs(0, 1, 2))
    ok(apply(src, account))
    write_source(src, {**jobs(0, 1, 3), "user/general/job-00.ps1": script("Job 0, version 2.")})
    before = files(account)
    result = invoke("apply", "--source", src, "--target", target(account), input="yes\n")
    assert result.exit_code == 1, result.output
    assert last_line(result.stdout) == "Plan: 1 to create, 1 to update, 1 to delete."
    assert result.stderr == NOT_A_TTY + "\n"
    assert files(account) == before


# -- manifests -------------------------------------------------------------------------------------


def _manifest(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "manifests" / "acme.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


MANIFEST = "source:\n  path: ../src\ntarget: local:../account\npolicy:\n  max_deletions: 3\n"


def test_plan_with_a_manifest_reads_paths_relative_to_it(src, account, tmp_path, monkeypatch):
    write_source(src, jobs(0, 1))
    manifest = _manifest(tmp_path, MANIFEST)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = invoke("plan", "--manifest", manifest, "--detailed-exitcode")
    ok(result, 2)
    assert result.stdout.splitlines()[:3] == [
        f"Source: {src}",
        f"Target: local:{account}",
        "Policy: prefix rjgit-, runtime RJ-PowerShell-7.4, modules managed, at most 3 deletions",
    ]
    assert last_line(result.stdout) == "Plan: 3 to create."
    assert files(account) == {}
    assert not (elsewhere / "account").exists()


def test_apply_with_a_manifest_applies_and_the_next_plan_is_empty(src, account, tmp_path, monkeypatch):
    write_source(src, jobs(0, 1))
    manifest = _manifest(tmp_path, MANIFEST)
    monkeypatch.chdir(tmp_path / "manifests")
    result = invoke("apply", "--manifest", manifest, "--auto-approve")
    ok(result)
    assert report(result) == "Apply complete in _ s: 3 done, 0 failed, 0 skipped."
    assert runbooks(account) == expected(src)
    result = invoke("plan", "--manifest", manifest, "--detailed-exitcode")
    ok(result, 0)
    assert last_line(result.stdout) == NO_CHANGES


def test_apply_with_a_manifest_keeps_its_deletion_limit(src, account, tmp_path):
    write_source(src, jobs(0, 1, 2, 3, 4))
    manifest = _manifest(tmp_path, MANIFEST)
    ok(invoke("apply", "--manifest", manifest, "--auto-approve"))
    write_source(src, jobs(0))
    result = invoke("apply", "--manifest", manifest, "--auto-approve")
    assert result.exit_code == 1, result.output
    assert "run again with --max-deletions 4" in result.stderr
    assert len(runbooks(account)) == 5


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_manifest_with_source_is_an_error(src, account, tmp_path, command):
    write_source(src, jobs(0))
    manifest = _manifest(tmp_path, MANIFEST)
    result = invoke(command, "--manifest", manifest, "--source", src, *ONE_SHOT[command])
    assert result.exit_code == 1, result.output
    assert result.stderr == "Error: Give either --manifest or --source and --target, not both.\n"
    assert result.stdout == ""
    assert not account.exists()


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_without_target_is_an_error_naming_it(src, command):
    write_source(src, jobs(0))
    result = invoke(command, "--source", src)
    assert result.exit_code == 1, result.output
    assert result.stderr == ("Error: Missing --target: give --manifest FILE, or --source SOURCE and "
                             "--target TARGET (local:PATH or an automation account's ARM id).\n")
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_with_a_bad_target_fails_in_one_line(src, command):
    write_source(src, jobs(0))
    result = invoke(command, "--source", src, "--target", "foo:bar", *ONE_SHOT[command])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: Unknown target 'foo:bar': use local:PATH for a directory "
                                    "account, or an automation account's ARM id /subscriptions/")


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_with_a_bad_target_fails_before_the_source_is_read(tmp_path, command):
    # the source does not exist: the target's sentence comes first, nothing is fetched or read
    result = invoke(command, "--source", tmp_path / "no-such-source", "--target", "foo:bar", *ONE_SHOT[command])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: Unknown target 'foo:bar'")


US_GOVERNMENT = ("Error: Runtime environments (here 'RJ-PowerShell-7.4') are not offered in Azure Government "
                 "clouds: set 'runtime: classic' in the manifest or pass --runtime classic for Windows "
                 "PowerShell 5.1 runbooks.\n")


@pytest.fixture
def signed_in(credential, monkeypatch):
    """The CLI's identity is the emulator's static token (``--auth`` is not under test)."""
    monkeypatch.setattr("rjsync.accounts.credentials.make_credential", lambda *a, **k: credential)
    return credential


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_in_us_government_with_a_runtime_environment_stops_before_any_request(src, arm, signed_in, command):
    from fakes.accounts import ARM_ID

    write_source(src, jobs(0))
    result = invoke(command, "--source", src, "--target", ARM_ID, "--cloud", "usgovernment",
                    "--arm-endpoint", arm.endpoint, *ONE_SHOT[command])

    assert result.exit_code == 1, result.output
    assert (result.stdout, result.stderr) == ("", US_GOVERNMENT)
    assert arm.server.log == []


def test_plan_in_us_government_with_classic_runbooks_plans(src, arm, signed_in):
    from fakes.accounts import ARM_ID

    write_source(src, jobs(0))
    result = invoke("plan", "--source", src, "--target", ARM_ID, "--cloud", "usgovernment",
                    "--arm-endpoint", arm.endpoint, "--runtime", "classic", "--detailed-exitcode")

    ok(result, 2)
    assert "Plan: 1 to create." in result.stdout, result.stdout
    assert signed_in.scopes[0] == ("https://management.core.usgovcloudapi.net/.default",)

@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_auth_github_oidc_outside_a_job_with_id_token_write_fails_in_one_line(src, command, monkeypatch):
    write_source(src, jobs(0))
    monkeypatch.setenv("AZURE_TENANT_ID", "tenant")
    monkeypatch.setenv("AZURE_CLIENT_ID", "client")
    for name in ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    target = ("/subscriptions/6d3f1c2a-1b2c-4d5e-8f90-123456789abc/resourceGroups/rg/providers/"
              "Microsoft.Automation/automationAccounts/aa-test")

    result = invoke(command, "--source", src, "--target", target, "--auth", "github-oidc", *ONE_SHOT[command])

    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == (
        "Error: --auth github-oidc asks GitHub Actions for ID tokens through ACTIONS_ID_TOKEN_REQUEST_URL and "
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN, which GitHub sets only in a job of a workflow with "
        "`permissions: id-token: write`; missing: ACTIONS_ID_TOKEN_REQUEST_URL and "
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN.\n")


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_with_a_missing_source_folder_fails_in_one_line(tmp_path, account, command):
    missing = tmp_path / "no-such-folder"
    result = invoke(command, "--source", missing, "--target", target(account), *ONE_SHOT[command])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == (f"Error: source '{missing}' does not exist (give a folder, a git URL, or a "
                             "local repository path)\n")
    assert not account.exists()


def test_plan_against_a_missing_local_account_creates_nothing(src, account):
    write_source(src, jobs(0))
    ok(plan(src, account, "--detailed-exitcode"), 2)
    assert not account.exists()


# -- the deletion guard ----------------------------------------------------------------------------


def test_apply_deletes_nothing_over_the_default_limit_and_says_how_to_allow_it(src, account):
    write_source(src, jobs(*range(12)))
    ok(apply(src, account))
    before = files(account)
    write_source(src, jobs(0))

    planned = plan(src, account)
    ok(planned)
    assert ("  warning: catalog: 11 runbooks would be deleted, more than the limit of 10; apply deletes "
            "none of them unless run with --max-deletions 11") in planned.stdout.splitlines()
    assert last_line(planned.stdout) == "Plan: 11 to delete."

    result = apply(src, account)
    assert result.exit_code == 1, result.output
    assert report(result) == "Apply incomplete in _ s: 0 done, 0 failed, 11 skipped."
    assert (f"  skipped delete runbook {job(1)}: not deleted: 11 deletions exceed the limit of 10; "
            "run again with --max-deletions 11") in result.stderr.splitlines()
    assert files(account) == before


def test_apply_planfile_never_raises_the_deletion_limit_by_itself(src, account, tmp_path):
    # The plan file says "at most 11 deletions" (planned so, or edited so: it is only a file);
    # applying it deletes over the default limit only when apply itself is told to.
    write_source(src, jobs(*range(12)))
    ok(apply(src, account))
    before = files(account)
    write_source(src, jobs(0))
    saved = tmp_path / "plan.json"
    ok(plan(src, account, "--max-deletions", "11", "--out", saved))

    refused = invoke("apply", saved, "--auto-approve")
    assert refused.exit_code == 1, refused.output
    assert report(refused) == "Apply incomplete in _ s: 0 done, 0 failed, 11 skipped."
    assert "run again with --max-deletions 11" in refused.stderr
    assert files(account) == before

    done = invoke("apply", saved, "--auto-approve", "--max-deletions", "11")
    assert done.exit_code == 0, done.output
    assert set(runbooks(account)) == {job(0)}


def test_apply_with_max_deletions_deletes_over_the_default_limit(src, account):
    write_source(src, jobs(*range(12)))
    ok(apply(src, account))
    add_customer_runbook(account)
    write_source(src, jobs(0))
    result = apply(src, account, "--max-deletions", "11")
    ok(result)
    assert report(result) == "Apply complete in _ s: 11 done, 0 failed, 0 skipped."
    assert sorted(runbooks(account)) == [job(0), CUSTOMER]
    assert sorted(p.name for p in (account / "runbooks").glob("*.meta.json")) == [f"{job(0)}.meta.json"]
    ok(plan(src, account, "--detailed-exitcode"), 0)


def test_apply_with_max_deletions_below_the_count_deletes_nothing(src, account):
    write_source(src, jobs(0, 1, 2, 3))
    ok(apply(src, account))
    write_source(src, jobs(0))
    before = files(account)
    result = apply(src, account, "--max-deletions", "2")
    assert result.exit_code == 1, result.output
    assert "run again with --max-deletions 3" in result.stderr
    assert files(account) == before


def test_apply_deletes_within_the_default_limit(src, account):
    write_source(src, jobs(0, 1, 2, 3))
    ok(apply(src, account))
    write_source(src, jobs(0))
    assert last_line(plan(src, account).stdout) == "Plan: 3 to delete."
    ok(apply(src, account))
    assert sorted(runbooks(account)) == [job(0)]


def test_apply_with_an_empty_source_deletes_nothing(src, account):
    write_source(src, jobs(0, 1))
    ok(apply(src, account))
    before = files(account)
    write_source(src, {})
    planned = plan(src, account, "--detailed-exitcode")
    ok(planned, 0)
    assert (f"  {job(0)}: the catalog is empty (wrong source or contexts?): nothing is deleted"
            in planned.stdout.splitlines())
    ok(apply(src, account, "--max-deletions", "50"))
    assert files(account) == before


# -- catalogs with errors --------------------------------------------------------------------------


def test_plan_with_an_unparsable_param_block_exits_1_and_apply_deletes_nothing(src, account):
    write_source(src, jobs(0, 1, 2, 3))
    ok(apply(src, account))
    write_source(src, {**jobs(0, 1, 2, 5), "user/general/bad.ps1": "<#\n.SYNOPSIS\nA\n#>\nparam(\n"})

    planned = plan(src, account)
    ok(planned, 1)
    lines = planned.stdout.splitlines()
    assert f"  {job(3)}: the catalog has 1 error(s): nothing is deleted until they are fixed" in lines
    assert last_line(planned.stdout) == "Plan: 1 to create. (1 error in the catalog)"

    result = apply(src, account)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == (
        "Error: the catalog has 1 error (see Diagnostics): those runbooks are left as they are and nothing is "
        "deleted until they are fixed.")
    assert sorted(runbooks(account)) == [job(0), job(1), job(2), job(3), job(5)]


def test_plan_with_two_files_mapping_to_one_name_exits_1_and_apply_deletes_nothing(src, account):
    write_source(src, jobs(0, 1, 2))
    ok(apply(src, account))
    before = files(account)
    write_source(src, {**jobs(0, 1), "user/General/job-00.ps1": script("Job 0 again.")})

    planned = plan(src, account, "--format", "json")
    ok(planned, 1)
    doc = json.loads(planned.stdout)
    errors = [d for d in doc["diagnostics"] if d["severity"] == "error"]
    assert errors
    assert all("all map to the runbook 'rjgit-user_general_job-00'" in d["message"] for d in errors)
    assert doc["changes"] == []
    assert [s["name"] for s in doc["skipped"]] == [job(0), job(2)]

    result = apply(src, account)
    assert result.exit_code == 1, result.output
    assert files(account) == before


# -- customer runbooks -----------------------------------------------------------------------------


def test_apply_never_modifies_or_deletes_customer_runbooks(src, account):
    customer = add_customer_runbook(account)
    os.utime(customer, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    # the upstream runbook the customer copied: rjgit-user_general_my-runbook is another runbook
    write_source(src, {**jobs(0, 1, 2, 3), "user/general/my-runbook.ps1": script("Upstream version.")})

    def untouched() -> None:
        assert customer.read_bytes() == CUSTOMER_BYTES
        assert customer.stat().st_mtime_ns == 1_700_000_000_000_000_000
        assert not (account / "runbooks" / f"{CUSTOMER}.meta.json").exists()

    ok(apply(src, account))  # creates
    untouched()
    assert runbooks(account) == {**expected(src), CUSTOMER: CUSTOMER_BYTES}

    write_source(src, {**jobs(0, 1, 4), "user/general/job-00.ps1": script("Job 0, version 2.")})
    doc = json.loads(plan(src, account, "--format", "json").stdout)
    assert CUSTOMER not in {c["name"] for c in doc["changes"]}
    ok(apply(src, account))  # creates, updates and deletes
    untouched()

    write_source(src, jobs(9))
    ok(apply(src, account, "--max-deletions", "50"))  # deletes every owned runbook but one
    untouched()
    assert sorted(runbooks(account)) == [job(9), CUSTOMER]
    ok(plan(src, account, "--detailed-exitcode"), 0)


# -- modules ---------------------------------------------------------------------------------------


def test_plan_module_imported_without_a_version_is_not_a_major_upgrade(src, account):
    teams = "#Requires -Modules MicrosoftTeams\n"
    write_source(src, {"user/teams/assign-policy.ps1": teams + script("Assign a policy.")})
    ok(apply(src, account))
    pinned = '#Requires -Modules @{ModuleName = "MicrosoftTeams"; ModuleVersion = "5.8.0" }\n'
    write_source(src, {"user/teams/assign-policy.ps1": teams + script("Assign a policy."),
                       "group/teams/add-channel.ps1": pinned + script("Add a channel.")})
    result = plan(src, account)
    ok(result)
    assert "  +   rjgit-group_teams_add-channel  new in the source: group/teams/add-channel.ps1" in \
        result.stdout.splitlines()
    assert "major-version upgrade" not in result.stdout, result.stdout
