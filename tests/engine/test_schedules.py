"""Job schedules in the plan: a new version that drops, renames or adds a mandatory parameter a
schedule does not pass, and deleting a scheduled runbook, warn on the change and name the
schedule, in text, markdown (the pull-request comment) and JSON; a plan that changes no content
reads no schedules. Directory accounts (PATH/job_schedules.json) through the CLI, and Azure
through the real SDK against the ARM emulator (whose list leaves the parameters out)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import rjsync.sync
from fakes.accounts import ARM_ID, FAST
from rjsync.cli import cli

NAME = "rjgit-user_general_notify"
V1 = "<#\n.SYNOPSIS\nNotify.\n#>\nparam([Parameter(Mandatory)][string] $UserName, [string] $Text = 'hi')\nWrite-Output $UserName\n"
V2 = ("<#\n.SYNOPSIS\nNotify.\n#>\nparam([Parameter(Mandatory)][string] $UserPrincipalName, [string] $Text = 'hi',\n"
      "  [Parameter(Mandatory)][string] $Channel)\nWrite-Output $UserPrincipalName\n")
DROPPED = ("job schedule 'daily' passes UserName, which the new version no longer declares (dropped or renamed): "
           "its runs fail until the schedule's parameters are changed")
REQUIRED = ("job schedule 'daily' does not pass UserPrincipalName and Channel, which the new version requires: "
            "its runs fail until the schedule gives a value")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def write(src, text: str | None) -> None:
    path = src / "user" / "general" / "notify.ps1"
    path.parent.mkdir(parents=True, exist_ok=True)
    if text is None:
        path.unlink()
        (src / "user" / "general" / "other.ps1").write_text(V1)  # an empty source deletes nothing
    else:
        path.write_text(text)


@pytest.fixture
def synced(tmp_path):
    """A directory account holding V1, with a job schedule 'daily' passing UserName and Text."""
    src, account = tmp_path / "src", tmp_path / "account"
    write(src, V1)
    result = invoke("apply", "--source", src, "--target", f"local:{account}", "--auto-approve")
    assert result.exit_code == 0, result.output
    (account / "job_schedules.json").write_text(json.dumps([
        {"schedule": "daily", "runbook": NAME, "parameters": {"UserName": "a@contoso.com", "Text": "x"}}]))
    return src, account


def test_plan_warns_when_a_new_version_drops_or_adds_a_parameter_a_schedule_needs(synced):
    src, account = synced
    write(src, V2)

    text = invoke("plan", "--source", src, "--target", f"local:{account}")
    markdown = invoke("plan", "--source", src, "--target", f"local:{account}", "--format", "markdown")
    doc = json.loads(invoke("plan", "--source", src, "--target", f"local:{account}", "--format", "json").output)

    assert text.exit_code == 0, text.output
    assert f"      ! {DROPPED}" in text.output.splitlines()
    assert f"      ! {REQUIRED}" in text.output.splitlines()
    assert "job schedule 'daily' passes UserName" in markdown.output  # the pull-request comment's warnings
    (change,) = [c for c in doc["changes"] if c["name"] == NAME]
    assert change["warnings"] == [DROPPED, REQUIRED]


def test_plan_warns_that_deleting_a_scheduled_runbook_removes_its_schedule(synced):
    src, account = synced
    write(src, None)

    result = invoke("plan", "--source", src, "--target", f"local:{account}")

    assert "      ! job schedule 'daily' starts this runbook: deleting it removes the schedule too" in (
        result.output.splitlines())


def test_plan_reads_no_schedules_when_no_content_changes(synced):
    src, account = synced
    (account / "job_schedules.json").write_text("not json")  # would be a warning if it were read

    result = invoke("plan", "--source", src, "--target", f"local:{account}")

    assert result.exit_code == 0, result.output
    assert "job schedules" not in result.output


def test_plan_says_when_the_schedules_cannot_be_read_and_goes_on(synced):
    src, account = synced
    write(src, V2)
    (account / "job_schedules.json").write_text("not json")

    result = invoke("plan", "--source", src, "--target", f"local:{account}")

    assert result.exit_code == 0, result.output
    assert "warning: catalog: job schedules not checked: Cannot read" in result.output


def test_plan_on_azure_reads_the_parameters_of_the_schedules_of_the_changed_runbooks(arm, gallery, credential,
                                                                                      monkeypatch, tmp_path):
    real = rjsync.sync.open_account

    def on_the_emulator(target, **options):
        return real(target, **{**options, "arm_endpoint": arm.endpoint, "credential": credential, "settings": FAST,
                               "gallery_url": gallery.base_url})

    monkeypatch.setattr(rjsync.sync, "open_account", on_the_emulator)
    src = tmp_path / "src"
    write(src, V1)
    assert invoke("apply", "--source", src, "--target", ARM_ID, "--auto-approve").exit_code == 0
    arm.account.add_job_schedule("0f5e8f4e-3f0a-4d7e-9c56-1a2b3c4d5e6f", NAME, "daily",
                                 {"UserName": "a@contoso.com"})
    arm.account.add_job_schedule("1f5e8f4e-3f0a-4d7e-9c56-1a2b3c4d5e6f", "CustomerRunbook", "nightly", {"X": "1"})
    before = len(arm.server.requests("GET", r"/jobSchedules"))

    unchanged = invoke("plan", "--source", src, "--target", ARM_ID)
    assert unchanged.exit_code == 0 and len(arm.server.requests("GET", r"/jobSchedules")) == before

    write(src, V2)
    result = invoke("plan", "--source", src, "--target", ARM_ID)

    assert result.exit_code == 0, result.output
    assert f"      ! {DROPPED}" in result.output.splitlines()
    gets = [r.path for r in arm.server.requests("GET", r"/jobSchedules/")]
    assert len(gets) == 1 and "0f5e8f4e" in gets[0]  # only the changed runbook's schedule is read again
