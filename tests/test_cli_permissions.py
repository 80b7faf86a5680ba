"""The permissions section on the command line, and ``--require-permissions`` (flag and manifest)
for ``plan``, ``apply``, a saved plan and a fleet, against directory accounts whose identity's
grants each test sets (``LocalAccount.read_grants`` patched: the seam the account protocol gives)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rjsync.accounts.base import Grants
from rjsync.accounts.local import LocalAccount
from rjsync.cli import cli
from rjsync.errors import GrantsUnreadable

EXAMPLE = Path(__file__).resolve().parent.parent / "runbooks"
GRAPH = "00000003-0000-0000-c000-000000000000"
EXO = "00000002-0000-0ff1-ce00-000000000000"
PRINCIPAL = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
#: Every grant the example runbooks require (their three sidecars); the optional Cloud Device
#: Administrator role is not among them.
ALL_REQUIRED = Grants(PRINCIPAL, frozenset({
    (GRAPH, "DeviceManagementManagedDevices.Read.All"), (GRAPH, "DeviceManagementManagedDevices.PrivilegedOperations.All"),
    (GRAPH, "User.Read.All"), (GRAPH, "User.RevokeSessions.All"), (EXO, "Exchange.ManageAsApp")}),
    frozenset({("29232cdf-9323-42fd-ade2-1d097af3e4de", "Exchange Administrator"),
               ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator")}))
NONE = Grants(PRINCIPAL)
MISSING_7 = ("Error: 7 required grants are missing from the identity the runbooks run as (see Permissions): "
             "grant them, or drop --require-permissions.")
NOT_CHECKED = ("the identity's grants were not checked (no identity here), so --require-permissions cannot "
               "prove that the runbooks can run.")


@pytest.fixture
def holds(monkeypatch):
    """``holds(grants)``: every directory account's identity holds ``grants`` (None: unreadable)."""

    def set_grants(grants: Grants | None) -> None:
        def read_grants(self):
            if grants is None:
                raise GrantsUnreadable("no identity here.")
            return grants

        monkeypatch.setattr(LocalAccount, "read_grants", read_grants)

    return set_grants


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def ok(result, code: int = 0) -> None:
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.output}"


def manifest(tmp_path: Path, account: Path, *, require: bool | None = None) -> Path:
    path = tmp_path / "acct.yaml"
    text = f"source:\n  path: {EXAMPLE}\ntarget: local:{account}\n"
    if require is not None:
        text += f"permissions:\n  require: {str(require).lower()}\n"
    path.write_text(text, encoding="utf-8")
    return path


def runbooks(account: Path) -> list[str]:
    return sorted(p.stem for p in (account / "runbooks").glob("*.ps1"))


def test_plan_shows_the_permissions_section_and_keeps_its_exit_code_without_the_flag(holds, tmp_path):
    holds(NONE)
    result = invoke("plan", "--source", EXAMPLE, "--target", f"local:{tmp_path / 'acct'}", "--detailed-exitcode")

    ok(result, 2)
    assert (f"Permissions of the identity {PRINCIPAL}: 8 grants needed, 0 held; 7 required missing, "
            "1 optional missing.\n  Missing (required):\n    Microsoft Graph:\n") in result.stdout
    assert "      User.Read.All  (rjgit-user_security_revoke-sessions)\n" in result.stdout
    assert "  Missing (optional, for Password retrieval):\n    Directory roles:\n" in result.stdout
    assert result.stdout.endswith("Plan: 23 to create. (7 required grants missing)\n")
    doc = json.loads(invoke("plan", "--source", EXAMPLE, "--target", f"local:{tmp_path / 'acct'}",
                            "--format", "json").stdout)
    assert doc["permissions"]["counts"] == {"needed": 8, "required": 7, "optional": 1, "held": 0, "missing": 7,
                                            "missing_optional": 1, "manual": 1}


def test_plan_with_require_permissions_exits_1_when_a_required_grant_is_missing(holds, tmp_path):
    account = tmp_path / "acct"
    holds(NONE)
    result = invoke("plan", "--source", EXAMPLE, "--target", f"local:{account}", "--require-permissions")
    ok(result, 1)
    assert result.stderr == MISSING_7 + "\n"
    assert "Plan: 23 to create." in result.stdout  # the plan is shown all the same

    holds(ALL_REQUIRED)  # the optional role missing is no error
    ok(invoke("plan", "--source", EXAMPLE, "--target", f"local:{account}", "--require-permissions"), 0)
    ok(invoke("plan", "--source", EXAMPLE, "--target", f"local:{account}", "--require-permissions",
              "--detailed-exitcode"), 2)


def test_plan_with_require_permissions_from_the_manifest(holds, tmp_path):
    account = tmp_path / "acct"
    holds(NONE)
    result = invoke("plan", "--manifest", manifest(tmp_path, account, require=True))
    ok(result, 1)
    assert result.stderr == MISSING_7 + "\n"
    ok(invoke("plan", "--manifest", manifest(tmp_path, account, require=False)), 0)
    ok(invoke("plan", "--manifest", manifest(tmp_path, account, require=False), "--require-permissions"), 1)


def test_plan_grants_not_checked_goes_on_but_fails_require_permissions(holds, tmp_path):
    holds(None)
    target = f"local:{tmp_path / 'acct'}"
    result = invoke("plan", "--source", EXAMPLE, "--target", target)
    ok(result, 0)
    assert ("\nPermissions: not checked (no identity here); the runbooks need 8 grants (7 required).\n"
            "  Manual (rjsync cannot check these):\n") in result.stdout
    failed = invoke("plan", "--source", EXAMPLE, "--target", target, "--require-permissions")
    ok(failed, 1)
    assert failed.stderr == f"Error: {NOT_CHECKED}\n"


def test_apply_with_require_permissions_refuses_before_writing_anything(holds, tmp_path):
    account = tmp_path / "acct"
    holds(NONE)
    result = invoke("apply", "--source", EXAMPLE, "--target", f"local:{account}", "--require-permissions",
                    "--auto-approve")
    ok(result, 1)
    assert result.stderr == "Error: Not applying: " + MISSING_7[len("Error: "):] + "\n"
    assert runbooks(account) == []
    by_manifest = invoke("apply", "--manifest", manifest(tmp_path, account, require=True), "--auto-approve")
    ok(by_manifest, 1)
    assert runbooks(account) == []

    holds(ALL_REQUIRED)
    ok(invoke("apply", "--manifest", manifest(tmp_path, account, require=True), "--auto-approve"), 0)
    assert len(runbooks(account)) == 16


def test_apply_without_the_flag_applies_whatever_the_identity_lacks(holds, tmp_path):
    account = tmp_path / "acct"
    holds(None)
    ok(invoke("apply", "--source", EXAMPLE, "--target", f"local:{account}", "--auto-approve"), 0)
    assert len(runbooks(account)) == 16


def test_apply_planfile_rereads_the_grants_and_a_change_in_them_is_not_stale(holds, tmp_path):
    account, planfile = tmp_path / "acct", tmp_path / "plan.json"
    holds(NONE)
    ok(invoke("plan", "--source", EXAMPLE, "--target", f"local:{account}", "--out", planfile))
    assert json.loads(planfile.read_text())["permissions"]["counts"]["missing"] == 7

    holds(None)  # the grants cannot be read any more: informational, the saved plan is still current
    refused = invoke("apply", planfile, "--require-permissions", "--auto-approve")
    ok(refused, 1)
    assert refused.stderr == f"Error: Not applying: {NOT_CHECKED}\n" and runbooks(account) == []

    holds(ALL_REQUIRED)
    result = invoke("apply", planfile, "--require-permissions", "--auto-approve")
    ok(result, 0)
    assert "8 grants needed, 7 held; no required grant missing, 1 optional missing." in result.stdout
    assert len(runbooks(account)) == 16


def test_fleet_with_require_permissions_fails_the_accounts_that_lack_grants(holds, tmp_path):
    folder = tmp_path / "fleet"
    folder.mkdir()
    for name in ("alpha", "beta"):
        (folder / f"{name}.yaml").write_text(f"source:\n  path: {EXAMPLE}\ntarget: local:{tmp_path / name}\n",
                                             encoding="utf-8")
    (folder / "_defaults.yaml").write_text("permissions: {require: true}\n", encoding="utf-8")
    holds(NONE)

    result = invoke("plan", "--manifest", folder)
    ok(result, 1)
    assert f"  alpha: {MISSING_7[len('Error: '):]}\n" in result.stdout
    applied = invoke("apply", "--manifest", folder, "--auto-approve")
    ok(applied, 1)
    assert runbooks(tmp_path / "alpha") == [] and runbooks(tmp_path / "beta") == []
