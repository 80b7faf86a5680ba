"""Apply on Azure changes an existing runbook in place (PATCH, draft replace, publish, receipt
PATCH) and never PUTs it again: job schedules and webhooks hang on it, and updates that re-PUT a
runbook are reported to lose them (the emulator drops them on such a PUT). A new runbook is
still created with a PUT. The real SDK talks to the ARM emulator."""

from __future__ import annotations

from engine_support import catalog, script
from rjsync.engine.apply import DONE, apply_plan
from rjsync.engine.policy import Policy
from rjsync.sync import plan_against

POLICY = Policy(modules=False)
NAMES = [f"rjgit-org_general_runbook-{i:02}" for i in range(10)]


def files(version: str) -> dict[str, bytes]:
    return {f"org/general/runbook-{i:02}.ps1": script(f"Runbook {i}.", body=f"Write-Output '{version}'")
            for i in range(10)}


def sync(account, source):
    _, plan = plan_against(account, catalog(source), POLICY, 8)
    report = apply_plan(plan, account, source)
    account.finish()  # as the pipeline does after an apply
    return plan, report


def runbook_requests(arm) -> list[tuple[str, str]]:
    """(method, path below /runbooks/) of every runbook request, operation polls left out."""
    return [(r.method, r.path.split("/runbooks/", 1)[1]) for r in arm.server.requests(path="/runbooks/")
            if "/operationResults/" not in r.path]


def test_apply_updates_keep_job_schedules_and_webhooks_with_their_parameters(arm, azure_account):
    sync(azure_account, files("v1"))
    for i, name in enumerate(NAMES):
        arm.account.add_job_schedule(f"0f1e2d3c-0000-4000-8000-{i:012}", name, "daily", {"UserName": f"user-{i}"})
        arm.account.add_webhook(f"start-{name}", name, {"Mode": f"mode-{i}"})
    arm.server.clear_log()

    plan, report = sync(azure_account, files("v2"))

    assert [(c.action, c.aspects) for c in plan.changes] == [("update", ("content",))] * 10
    assert report.count(DONE) == 10
    for i, name in enumerate(NAMES):
        job_schedules, webhooks = arm.account.links(name)
        assert [(j.schedule, j.parameters) for j in job_schedules] == [("daily", {"UserName": f"user-{i}"})]
        assert [(w.name, w.parameters) for w in webhooks] == [(f"start-{name}", {"Mode": f"mode-{i}"})]
        assert arm.account.runbook(name).published == files("v2")[f"org/general/runbook-{i:02}.ps1"]
    writes = [(m, p) for m, p in runbook_requests(arm) if m != "GET"]
    assert not [p for m, p in writes if m == "PUT" and "/" not in p]  # no PUT on a runbook resource
    assert sorted(writes) == sorted(
        (method, path.format(name)) for name in NAMES
        for method, path in [("PATCH", "{}"), ("PUT", "{}/draft/content"), ("POST", "{}/publish"), ("PATCH", "{}")])


def test_apply_creates_a_new_runbook_with_a_put(arm, azure_account):
    sync(azure_account, files("v1"))
    arm.server.clear_log()
    source = {**files("v1"), "org/general/runbook-new.ps1": script("New.")}

    plan, report = sync(azure_account, source)

    assert [(c.action, c.name) for c in plan.changes] == [("create", "rjgit-org_general_runbook-new")]
    assert report.count(DONE) == 1
    assert [m for m, _ in runbook_requests(arm)] == ["PUT", "PUT", "POST", "PATCH"]  # no PATCH tried first
    assert runbook_requests(arm)[0] == ("PUT", "rjgit-org_general_runbook-new")

