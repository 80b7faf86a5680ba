"""Renderers pinned by golden files (``RJSYNC_UPDATE_GOLDEN=1`` rewrites them after a deliberate change)."""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from engine_support import SYNCED_AT, catalog, live, receipt, script, snapshot
from rjsync.accounts.base import Grants
from rjsync.accounts.receipts import DRIFT_TOLERANCE
from rjsync.engine import render
from rjsync.engine.permissions import permission_report
from rjsync.engine.plan import Change
from rjsync.engine.planner import pair, plan_sync
from rjsync.engine.policy import Policy
from rjsync.markdown import GITHUB_COMMENT_LIMIT

GOLDEN = Path(__file__).parent / "golden"


GRAPH = "00000003-0000-0000-c000-000000000000"

#: Sidecars of rich_plan's runbooks: required and optional app roles of two resources, directory
#: roles by template id and by name, manual steps.
RESET_PERMISSIONS = b"""{"SchemaVersion": 2,
  "Permissions": [{"Name": "Microsoft Graph", "Id": "00000003-0000-0000-c000-000000000000", "AppRoleAssignments": [
    {"Value": "User.ReadWrite.All", "Reason": "Resets the password"},
    {"Value": "UserAuthenticationMethod.ReadWrite.All", "Reason": "Removes the MFA methods"},
    {"Value": "Mail.Send", "Optional": true, "Feature": "Email notification", "Reason": "Mails the new password"}]}],
  "Roles": [{"Name": "User Administrator", "TemplateId": "fe930be7-5e62-47db-91af-98c3a49a38b1",
             "Reason": "Resets passwords of administrators"}],
  "ManualPermissions": ["Exclude break-glass accounts from the password policy"]}"""
GUESTS_PERMISSIONS = b"""{"SchemaVersion": 2,
  "Permissions": [{"Name": "Microsoft Graph", "Id": "00000003-0000-0000-c000-000000000000",
                   "AppRoleAssignments": ["User.Read.All", "AuditLog.Read.All"]},
                  {"Name": "Office 365 Exchange Online", "Id": "00000002-0000-0ff1-ce00-000000000000",
                   "AppRoleAssignments": [{"Value": "Exchange.ManageAsApp", "Reason": "Reads guest mailboxes"}]}],
  "Roles": ["Teams Administrator"],
  "ManualPermissions": []}"""
#: rich_plan's identity: User.ReadWrite.All (which holds User.Read.All too) and AuditLog.Read.All.
RICH_GRANTS = Grants("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
                     frozenset({(GRAPH, "User.ReadWrite.All"), (GRAPH, "AuditLog.Read.All")}))


def rich_plan(grants=RICH_GRANTS):
    """A plan with every kind of entry: creates, updates, a replace, deletes, modules, drift,
    skips, diagnostics and permissions (some held, required and optional ones missing, manual)."""
    old = script("Old words.")
    files = {
        "user/security/reset-password.permissions.json": RESET_PERMISSIONS,
        "org/general/list-guests.permissions.json": GUESTS_PERMISSIONS,
        "user/security/reset-password.ps1": script("Resets a password.", requires=(
            "@{ModuleName='Az.Accounts'; ModuleVersion='2.13.2'}")),
        "user/general/set-usage-location.ps1": script("Sets the usage location.", body="Write-Output 2"),
        "org/general/list-guests.ps1": script("Lists guests.", requires="MicrosoftTeams"),
        "org/reporting/export-licences_scheduled.ps1": old,
        "device/general/sync-device-now.ps1": old,
        "device/general/restart-host.ps1": old,
        "user/not-in-layout.ps1": old,
    }
    later = SYNCED_AT + DRIFT_TOLERANCE + timedelta(hours=1)
    snap = snapshot(
        live("rjgit-user_general_set-usage-location", tags=receipt(script(), "user/general/set-usage-location.ps1"),
             description="Sets the usage location."),
        live("rjgit-org_reporting_export-licences_scheduled", description="Old words.",
             tags=receipt(old, "org/reporting/export-licences_scheduled.ps1"), state="Edit"),
        live("rjgit-device_general_sync-device-now", description="Old words.",
             tags=receipt(old, "device/general/sync-device-now.ps1"), modified=later),
        live("rjgit-device_general_restart-host", description="Old words.", runbook_type="PowerShell72",
             runtime_environment=None, tags=receipt(old, "device/general/restart-host.ps1")),
        live("rjgit-user_general_gone", tags=receipt(b"x", "user/general/gone.ps1")),
        live("user_general_customer-runbook"),
        live("rjgit-org_internal_tool"),
        packages={"Az.Accounts": "1.9.0"},
    )
    cat = catalog(files)
    policy = Policy(exclude=("rjgit-org_internal_*",))
    plan = plan_sync(pair(cat, snap, policy), target="local:/accounts/contoso",
                     contents={"rjgit-device_general_sync-device-now": b"Write-Output 'portal edit'"},
                     grants=grants)
    return plan


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("RJSYNC_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs; RJSYNC_UPDATE_GOLDEN=1 rewrites it"


@pytest.mark.parametrize("fmt, name", [("text", "plan.txt"), ("json", "plan.json"), ("markdown", "plan.md")])
def test_render_rich_plan_matches_golden(fmt, name):
    check_golden(name, render.RENDERERS[fmt](rich_plan().to_json()))


def test_render_text_with_colour_uses_ansi_only_when_asked():
    doc = rich_plan().to_json()
    plain, coloured = render.to_text(doc), render.to_text(doc, color=True)

    assert "\x1b[" not in plain
    assert "\x1b[32m+   rjgit-" in coloured
    assert render.to_text(doc, color=True).replace("\x1b[0m", "").count("\n") == plain.count("\n")


def test_render_json_is_byte_identical_for_identical_inputs():
    assert render.to_json(rich_plan().to_json()) == render.to_json(rich_plan().to_json())
    assert json.loads(render.to_json(rich_plan().to_json()))["summary"]["replace"] == 1


def test_render_empty_plan_says_no_changes():
    plan = plan_sync(pair(catalog({"user/general/a.ps1": script()}), snapshot(
        live("rjgit-user_general_a", tags=receipt(script(), "user/general/a.ps1"))), Policy()), target="local:x")

    assert render.to_text(plan.to_json()).endswith("Plan: No changes: the account matches the source.\n")
    assert "### ✅ rjsync plan for `local:x`" in render.to_markdown(plan.to_json())


def test_render_summary_line_counts_like_terraform():
    doc = rich_plan().to_json()
    unchecked = {k: v for k, v in doc.items() if k != "permissions"}  # a plan made without the grants
    assert render.summary_line(unchecked) == "3 to create, 4 to update, 1 to replace, 1 to delete. (2 drifted)"
    errored = {**unchecked, "summary": {**doc["summary"], "errors": 2, "drift": 0}}
    assert render.summary_line(errored) == "3 to create, 4 to update, 1 to replace, 1 to delete. (2 errors in the catalog)"
    assert render.summary_line(doc) == ("3 to create, 4 to update, 1 to replace, 1 to delete. "
                                        "(2 drifted, 4 required grants missing)")


def test_render_markdown_stays_under_the_github_limit_with_2000_changes():
    plan = rich_plan()
    many = tuple(Change("runbook", "create", f"rjgit-user_generated_runbook-number-{i:04d}",
                        f"new in the source: user/generated/runbook-number-{i:04d}.ps1 | with a pipe")
                 for i in range(2000))
    doc = dataclasses.replace(plan, changes=plan.changes + many).to_json()

    text = render.to_markdown(doc)

    assert len(text) <= GITHUB_COMMENT_LIMIT
    assert text.startswith(render.MARKDOWN_MARKER)
    assert "more runbook changes not shown here (comment size limit)" in text
    assert "**2003 to create, 4 to update, 1 to replace, 1 to delete." in text  # the summary is never cut
    assert text.count("| create | `rjgit-user_generated_runbook-number-") > 100
    assert "\\| with a pipe" in text  # table cells are escaped


def test_render_markdown_fits_exactly_when_small():
    doc = rich_plan().to_json()
    full = render.to_markdown(doc)
    assert "not shown here" not in full
    assert render.to_markdown(doc, limit=len(full)) == full
    assert len(render.to_markdown(doc, limit=len(full) - 1)) < len(full)


def test_render_permissions_not_checked_says_why_and_what_the_runbooks_need():
    doc = rich_plan("no identity here").to_json()

    text = render.to_text(doc)
    assert ("Permissions: not checked (no identity here); the runbooks need 8 grants (7 required).\n"
            "  Manual (rjsync cannot check these):\n"
            "    Exclude break-glass accounts from the password policy  (rjgit-user_security_reset-password)\n\n"
            "Diagnostics:") in text
    assert text.endswith("Plan: 3 to create, 4 to update, 1 to replace, 1 to delete. (2 drifted)\n")
    markdown = render.to_markdown(doc)
    assert ("<details><summary>Permissions: not checked (no identity here); the runbooks need 8 grants "
            "(7 required).</summary>") in markdown
    assert "missing grant" not in markdown and "| Exclude break-glass accounts" in markdown


def test_render_permissions_all_held_and_none_needed_are_one_line():
    held = Grants("p", frozenset(
        {(GRAPH, v) for v in ("User.ReadWrite.All", "AuditLog.Read.All", "UserAuthenticationMethod.ReadWrite.All")}
        | {("00000002-0000-0ff1-ce00-000000000000", "Exchange.ManageAsApp")}),
        frozenset({("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"), ("t", "teams administrator")}))
    text = render.to_text(rich_plan(held).to_json())
    assert ("Permissions of the identity p: 8 grants needed, 7 held; no required grant missing, "
            "1 optional missing.\n  Missing (optional, for Email notification):\n") in text
    none = dataclasses.replace(rich_plan(), permissions=permission_report([], Grants("p"))).to_json()
    assert "\nPermissions of the identity p: the runbooks name no grants.\n\n" in render.to_text(none)
    assert "\nPermissions: the runbooks name no grants.\n" in render.to_markdown(none)


def test_render_environment_to_create_shows_its_default_packages_briefly():
    plan = plan_sync(pair(catalog({"user/general/a.ps1": script()}), snapshot(environment=False), Policy()),
                     target="local:x")
    doc = plan.to_json()

    assert "  + RJ-PowerShell-7.4  create (PowerShell 7.4, default packages Az 12.3.0)\n" in render.to_text(doc)
    assert ("| Runtime environment | 1 (RJ-PowerShell-7.4: PowerShell 7.4, default packages Az 12.3.0) "
            "| 0 | 0 | 0 |") in render.to_markdown(doc)
    del doc["environment"]["default_packages"]  # a plan saved before they were planned
    assert "  + RJ-PowerShell-7.4  create (PowerShell 7.4)\n" in render.to_text(doc)
