"""Renderers pinned by golden files (``RJSYNC_UPDATE_GOLDEN=1`` rewrites them after a deliberate change)."""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from engine_support import SYNCED_AT, catalog, live, receipt, script, snapshot
from rjsync.accounts.receipts import DRIFT_TOLERANCE
from rjsync.engine import render
from rjsync.engine.plan import Change
from rjsync.engine.planner import pair, plan_sync
from rjsync.engine.policy import Policy
from rjsync.markdown import GITHUB_COMMENT_LIMIT

GOLDEN = Path(__file__).parent / "golden"


def rich_plan():
    """A plan with every kind of entry: creates, updates, a replace, deletes, modules, drift,
    skips and diagnostics."""
    old = script("Old words.")
    files = {
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
                     contents={"rjgit-device_general_sync-device-now": b"Write-Output 'portal edit'"})
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
    assert render.summary_line(doc) == "3 to create, 4 to update, 1 to replace, 1 to delete. (2 drifted)"
    errored = {**doc, "summary": {**doc["summary"], "errors": 2, "drift": 0}}
    assert render.summary_line(errored) == "3 to create, 4 to update, 1 to replace, 1 to delete. (2 errors in the catalog)"


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


def test_render_environment_to_create_shows_its_default_packages_briefly():
    plan = plan_sync(pair(catalog({"user/general/a.ps1": script()}), snapshot(environment=False), Policy()),
                     target="local:x")
    doc = plan.to_json()

    assert "  + RJ-PowerShell-7.4  create (PowerShell 7.4, default packages Az 12.3.0)\n" in render.to_text(doc)
    assert ("| Runtime environment | 1 (RJ-PowerShell-7.4: PowerShell 7.4, default packages Az 12.3.0) "
            "| 0 | 0 | 0 |") in render.to_markdown(doc)
    del doc["environment"]["default_packages"]  # a plan saved before they were planned
    assert "  + RJ-PowerShell-7.4  create (PowerShell 7.4)\n" in render.to_text(doc)
