"""The receipt index (``rjsync.accounts.azure_index``): plans stay right and cheap although
Azure's runbook list leaves out tags and descriptions (design invariant 11)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from engine.engine_support import catalog, script
from rjsync.accounts.azure_index import ReceiptIndex, variable_name
from rjsync.accounts.base import LiveRunbook
from rjsync.engine.apply import apply_plan
from rjsync.engine.policy import Policy
from rjsync.sync import plan_against

FILES = {f"org/general/task-{i:02}.ps1": script(f"Task {i}.") for i in range(12)}
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)


def live(name="rjgit-a", *, modified=T0, tags=None, description="A.") -> LiveRunbook:
    return LiveRunbook(name, "PowerShell", "RJ-PowerShell-7.4", "Published", description,
                       tags or {"rjsync.sha256": "0" * 64}, modified)


# -- the index as a value --------------------------------------------------------------------------


def test_receipt_index_vouches_only_while_the_list_shows_the_recorded_time():
    index = ReceiptIndex()
    index.record(live())
    assert index.vouch("RJGIT-A", T0).description == "A."  # names are case-insensitive
    assert index.vouch("rjgit-a", T0 + timedelta(seconds=1)) is None  # changed since
    assert index.vouch("rjgit-a", None) is None and index.vouch("rjgit-b", T0) is None


def test_receipt_index_round_trips_through_its_stored_text():
    index = ReceiptIndex()
    index.record(live(tags={"rjsync.path": "org/a.ps1", "owner": "ops"}))
    again = ReceiptIndex.parse(index.to_text())
    assert again.vouch("rjgit-a", T0.astimezone(timezone(timedelta(hours=2)))).tags == {
        "rjsync.path": "org/a.ps1", "owner": "ops"}
    assert index.changed and not again.changed


def test_receipt_index_of_mangled_or_foreign_text_is_empty():
    for text in (None, "", "not json", "[]", '{"format": 99, "runbooks": {}}',
                 '{"format": 1, "runbooks": {"rjgit-a": ["yesterday", "A.", {}]}}'):
        assert len(ReceiptIndex.parse(text)) == 0, text


def test_receipt_index_forgets_runbooks_that_are_gone():
    index = ReceiptIndex({})
    index.record(live("rjgit-a"))
    index.record(live("rjgit-b"))
    index.changed = False
    index.retain(["rjgit-B"])
    assert index.vouch("rjgit-a", T0) is None and index.vouch("rjgit-b", T0) is not None
    assert index.changed


# -- against the emulator, whose lists leave tags and descriptions out -----------------------------


def first_sync(account):
    _, plan = plan_against(account, catalog(FILES), Policy(), 8)
    report = apply_plan(plan, account, FILES)
    account.finish()
    assert report.ok, report.outcomes
    return plan


def replan(account):
    return plan_against(account, catalog(FILES), Policy(), 8)[1]


def requests(arm) -> list[tuple[str, str]]:
    return [(r.method, re.sub(r"^.*?/automationAccounts/[^/]+", "", r.path)) for r in arm.server.requests()]


def test_azure_no_op_plan_converges_on_trimmed_lists_in_four_requests(arm, azure_account):
    assert not arm.full_list_items  # the emulator answers lists as Azure does
    first_sync(azure_account)
    arm.server.clear_log()

    plan = replan(azure_account)

    assert not plan.has_changes, [c.reason for c in plan.changes]
    assert requests(arm) == [("GET", "/runbooks"), ("GET", f"/variables/{variable_name('rjgit-')}"),
                             ("GET", "/runtimeEnvironments/RJ-PowerShell-7.4"),
                             ("GET", "/runtimeEnvironments/RJ-PowerShell-7.4/packages")]


def test_azure_plan_without_the_index_reads_each_owned_runbook_once_and_stays_right(arm, azure_account):
    first_sync(azure_account)
    arm.account.add_runbook("Payroll", b"Write-Output 'customer'\n")  # a customer's: never read
    arm.account.variables.clear()
    arm.server.clear_log()

    plan = replan(azure_account)

    assert not plan.has_changes, [c.reason for c in plan.changes]
    gets = sorted(path for method, path in requests(arm) if method == "GET" and path.count("/") == 2
                  and path.startswith("/runbooks/"))
    assert gets == sorted(f"/runbooks/rjgit-org_general_task-{i:02}" for i in range(12))


def test_azure_plan_sees_a_runbook_retagged_published_or_edited_outside_rjsync(arm, azure_account, sdk_client):
    first_sync(azure_account)
    client = sdk_client()
    rg, acc = arm.account.resource_group, arm.account.name
    retagged, republished, edited = (f"rjgit-org_general_task-{i:02}" for i in (1, 2, 3))
    # someone removes the receipt tags in the portal (a PATCH replaces the whole tag map)
    client.runbook.update(rg, acc, retagged, {"tags": {"owner": "ops"}})
    # someone publishes other content
    client.runbook_draft.begin_replace_content(rg, acc, republished, "Write-Output 'portal'\n",
                                               content_type="text/powershell").result()
    client.runbook.begin_publish(rg, acc, republished).result()
    later = datetime.now(timezone.utc) + timedelta(minutes=10)  # past the planner's drift tolerance
    arm.account.runbook(republished).modified = later.isoformat()
    # someone leaves a draft in Edit
    client.runbook_draft.begin_replace_content(rg, acc, edited, "Write-Output 'draft'\n",
                                               content_type="text/powershell").result()

    plan = replan(azure_account)

    changed = {c.name: c for c in plan.changes}
    assert set(changed) == {retagged, republished, edited}, [c.reason for c in plan.changes]
    assert "adopted" in changed[retagged].reason  # no receipt any more: compared by content
    assert {d.name for d in plan.drift} == {republished, edited}


def test_azure_apply_stores_the_index_once_and_a_plan_never_writes_it(arm, azure_account):
    first_sync(azure_account)
    assert len([r for r in arm.server.requests() if r.method == "PUT" and "/variables/" in r.path]) == 1
    arm.account.variables.clear()
    arm.server.clear_log()

    replan(azure_account)  # reads every runbook again (the index is gone), and writes nothing

    assert {r.method for r in arm.server.requests()} == {"GET"}
