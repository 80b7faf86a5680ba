"""The owned prefix cannot be widened by any input: flag, manifest, saved plan, account."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rjsync.accounts.base import RunbookWrite
from rjsync.accounts.local import LocalAccount
from rjsync.catalog.naming import check_prefix
from rjsync.cli import cli
from rjsync.errors import PrefixError

PAYROLL = b"# the customer's payroll runbook\r\nWrite-Output 'pay'\r\n"
SENTENCE = ("The owned prefix '' is not allowed: give at least 3 characters without spaces or wildcards, "
            "ending in '-' or '_' (like 'rjgit-'), so that no customer runbook counts as owned.")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def setup(tmp_path) -> tuple[Path, Path]:
    src = tmp_path / "src" / "user" / "general"
    src.mkdir(parents=True)
    (src / "job.ps1").write_text("<#\n.SYNOPSIS\nJob.\n#>\nWrite-Output 1\n")
    account = tmp_path / "account"
    (account / "runbooks").mkdir(parents=True)
    (account / "runbooks" / "Payroll.ps1").write_bytes(PAYROLL)
    return tmp_path / "src", account


@pytest.mark.parametrize("prefix", ["", "a-", "r*", "rj git-", "rjgit", "[a-z]-", "???-"])
def test_check_prefix_refuses_what_would_own_customer_runbooks(prefix):
    with pytest.raises(PrefixError):
        check_prefix(prefix)


@pytest.mark.parametrize("prefix", ["rjgit-", "acme_", "ab-"])
def test_check_prefix_accepts_a_real_prefix(prefix):
    assert check_prefix(prefix) == prefix


def test_cli_apply_empty_prefix_leaves_payroll_untouched(setup):
    src, account = setup
    result = invoke("apply", "--prefix", "", "--source", src, "--target", f"local:{account}", "--auto-approve")
    assert result.exit_code == 1, result.output
    assert result.stderr == f"Error: {SENTENCE}\n"
    assert (account / "runbooks" / "Payroll.ps1").read_bytes() == PAYROLL
    assert sorted(p.name for p in (account / "runbooks").iterdir()) == ["Payroll.ps1"]


def test_cli_plan_wildcard_prefix_is_refused(setup):
    src, account = setup
    result = invoke("plan", "--prefix", "*", "--source", src, "--target", f"local:{account}")
    assert result.exit_code == 1, result.output
    assert "The owned prefix '*' is not allowed" in result.stderr


def test_manifest_empty_or_short_prefix_is_refused(setup, tmp_path):
    src, account = setup
    for prefix, shown in (("''", "must not be empty"), ("a-", "'a-' is not allowed: give at least 3")):
        manifest = tmp_path / "acme.yaml"
        manifest.write_text(f"source: {{path: {src}}}\ntarget: local:{account}\npolicy: {{prefix: {prefix}}}\n")
        result = invoke("apply", "--manifest", manifest, "--auto-approve")
        assert result.exit_code == 1, result.output
        assert shown in result.stderr
    assert sorted(p.name for p in (account / "runbooks").iterdir()) == ["Payroll.ps1"]


def test_saved_plan_with_empty_prefix_is_refused(setup, tmp_path):
    src, account = setup
    planfile = tmp_path / "plan.json"
    assert invoke("plan", "--source", src, "--target", f"local:{account}", "--out", planfile).exit_code == 0
    doc = json.loads(planfile.read_text())
    doc["policy"]["prefix"] = ""
    planfile.write_text(json.dumps(doc))
    result = invoke("apply", planfile, "--auto-approve")
    assert result.exit_code == 1, result.output
    assert result.stderr == f"Error: {planfile} is not a valid rjsync plan: {SENTENCE}\n"
    assert sorted(p.name for p in (account / "runbooks").iterdir()) == ["Payroll.ps1"]


def test_account_with_empty_prefix_refuses_every_write_and_delete(setup):
    _, account = setup
    with LocalAccount(account, owned_prefix="") as live:
        with pytest.raises(PrefixError):
            live.delete_runbook("Payroll")
        with pytest.raises(PrefixError):
            live.write_runbook(RunbookWrite(name="Payroll", content=b"x"))
    assert (account / "runbooks" / "Payroll.ps1").read_bytes() == PAYROLL
