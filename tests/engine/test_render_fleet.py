"""The fleet's renderers (rjsync/engine/render_fleet.py): pure functions of a fleet document,
``FleetReport.to_json``, whose accounts carry their plan documents."""

from __future__ import annotations

import copy
import re

from engine_support import catalog, script, snapshot
from rjsync.engine.planner import pair, plan_sync
from rjsync.engine.policy import Policy
from rjsync.engine.render import MARKDOWN_MARKER
from rjsync.engine.render_fleet import (
    changes_cell,
    fleet_summary_text,
    fleet_to_markdown,
    section_text,
    status_cell,
)
from rjsync.markdown import GITHUB_COMMENT_LIMIT


def account_plan(target: str = "local:/accounts/acct-00") -> dict:
    """The plan document of an empty account and a source of three runbooks: 4 to create (the
    runbooks and the runtime environment)."""
    files = {f"user/general/job-{n:02}.ps1": script(f"Job {n}.") for n in (1, 2, 3)}
    return plan_sync(pair(catalog(files), snapshot(environment=False), Policy()), target=target).to_json()


def account(name: str, status: str = "changes", *, plan: dict | None = None, error: str | None = None,
            applied: dict | None = None) -> dict:
    doc = {"name": name, "manifest": f"manifests/{name}.yaml", "target": plan and plan["target"],
           "status": status, "exit_code": 1 if status == "error" else 0, "plan": plan, "error": error}
    if applied is not None:
        doc["applied"] = applied
    return doc


def test_render_fleet_changes_cell_counts_the_environment_and_drift():
    plan = account_plan()
    assert changes_cell(plan) == "4 to create"
    assert changes_cell({**plan, "summary": {**plan["summary"], "delete": 1, "drift": 2}}) \
        == "4 to create, 1 to delete, 2 drifted"
    assert changes_cell(None) == "-"


def test_render_fleet_status_cell_counts_what_apply_did():
    assert status_cell(account("a", "applied", applied={"done": 4, "failed": 0, "skipped": 0})) == "applied (4 done)"
    assert status_cell(account("a", "incomplete", applied={"done": 2, "failed": 1, "skipped": 1})) \
        == "incomplete (2 done, 1 failed, 1 skipped)"
    assert status_cell(account("a", "in sync", applied={"done": 0, "failed": 0, "skipped": 0})) == "in sync"


def test_render_fleet_summary_text_aligns_the_table_and_lists_errors():
    doc = {"accounts": [account("acct-00", plan=account_plan()), account("b", "error", error="it broke")],
           "summary": {"accounts": 2, "changes": 1, "no_changes": 0, "errors": 1, "exit_code": 1}}

    assert fleet_summary_text(doc, command="plan", folder="manifests") == (
        "Summary of plan for manifests:\n"
        "  ACCOUNT  TARGET                   CHANGES      STATUS\n"
        "  acct-00  local:/accounts/acct-00  4 to create  changes\n"
        "  b        -                        -            error\n"
        "\n"
        "Errors:\n"
        "  b: it broke\n"
        "\n"
        "Fleet plan: 2 accounts: 1 with changes, 0 without changes, 1 failed.\n")


def test_render_fleet_section_text_names_the_account_and_shows_its_error():
    failed = account("b", "error", error="it broke")
    assert section_text(failed, False) == "=== b (manifests/b.yaml) ===\nError: it broke\n\n"
    assert section_text(failed, False, body="applied\n") == "=== b (manifests/b.yaml) ===\napplied\nError: it broke\n\n"
    planned = section_text(account("a", plan=account_plan()), False)
    assert planned.startswith("=== a (manifests/a.yaml) ===\nSource: ")
    assert planned.endswith("Plan: 4 to create.\n\n")


def test_render_fleet_markdown_escapes_the_summary_table():
    doc = {"accounts": [account("a|b", plan=account_plan("local:/x|y")), account("c", "error", error="a | b <c>")],
           "summary": {"accounts": 2, "changes": 1, "no_changes": 0, "errors": 1, "exit_code": 1}}

    text = fleet_to_markdown(doc, folder="man|ifests")

    assert text.startswith(f"{MARKDOWN_MARKER}\n## ❌ rjsync plan for `man\\|ifests`\n\n"
                           "**2 accounts: 1 with changes, 0 without changes, 1 failed.**\n\n"
                           "| | account | target | changes | status |\n|---|---|---|---|---|\n"
                           "| 📝 | `a\\|b` | `local:/x\\|y` | 4 to create | changes |\n"
                           "| ❌ | `c` | - | - | error |\n\n**Errors**\n\n- `c`: a \\| b &lt;c>\n\n## `a\\|b`\n\n")


def test_render_fleet_markdown_stays_under_the_github_limit():
    """40 accounts whose plans have 2,000 changes each: every account is in the summary table,
    and the plans share what is left of 65,536 characters."""
    base = account("acct-00", plan=account_plan())
    many = [{"kind": "runbook", "action": "create", "name": f"rjgit-user_generated_runbook-{i:04d}",
             "reason": f"new in the source: user/generated/runbook-{i:04d}.ps1"} for i in range(2000)]
    base["plan"]["changes"] += many
    base["plan"]["summary"]["create"] += 2000
    accounts = []
    for i in range(40):
        copied = copy.deepcopy(base)
        copied["name"] = f"customer-{i:02}"
        accounts.append(copied)
    doc = {"accounts": accounts,
           "summary": {"accounts": 40, "changes": 40, "no_changes": 0, "errors": 0, "exit_code": 0}}

    text = fleet_to_markdown(doc, folder="manifests")

    assert len(text) <= GITHUB_COMMENT_LIMIT
    assert text.count(MARKDOWN_MARKER) == 1
    assert all(f"| 📝 | `customer-{i:02}` |" in text for i in range(40))
    shown = re.findall(r"^## `(customer-\d\d)`$", text, flags=re.MULTILINE)
    assert 10 <= len(shown) < 40
    assert f"_The plans of {40 - len(shown)} accounts are not shown here (comment size limit)" in text
    assert text.count("more runbook changes not shown here (comment size limit)") == len(shown)

    small = fleet_to_markdown({**doc, "accounts": accounts[:3]}, folder="manifests")
    assert len(small) <= GITHUB_COMMENT_LIMIT
    assert re.findall(r"^## `(customer-\d\d)`$", small, flags=re.MULTILINE) == ["customer-00", "customer-01",
                                                                              "customer-02"]
    assert "are not shown here" not in small
