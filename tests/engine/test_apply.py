"""Apply against both account kinds: convergence, adoption, drift, guards, failures, ownership."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_support import catalog, script
from rjsync.accounts.base import LiveRunbook, RunbookWrite, Snapshot
from rjsync.accounts.receipts import RECEIPT_COMMIT, RECEIPT_PATH
from rjsync.engine.apply import DONE, FAILED, SKIPPED, apply_plan
from rjsync.engine.planner import pair, plan_sync
from rjsync.engine.policy import Policy
from rjsync.errors import AccountError
from rjsync.sync import plan_against

ROOT = Path(__file__).resolve().parents[2]
MODULES = "@{ModuleName='Az.Resources'; ModuleVersion='6.12.0'}"
FILES = {
    "user/security/reset-password.ps1": script("Resets a password.", requires=MODULES),
    "user/general/set-usage-location.ps1": script("Sets the usage location."),
    "org/general/list-guests.ps1": script("Lists guests.", requires="MicrosoftTeams"),
    "device/general/sync-device-now.ps1": "\ufeffparam([string] $Id)\r\nWrite-Output $Id\r\n".encode("utf-16-le"),
}
POLICY = Policy()


@pytest.fixture(params=["local", "azure"])
def kind(request):
    return request.param


@pytest.fixture
def account(kind, request):
    if kind == "azure":
        gallery = request.getfixturevalue("gallery")
        gallery.add("Az.Accounts", "2.13.2")
        gallery.add("Az.Resources", "6.12.0", "Az.Accounts:[2.13.2, ):")
        gallery.add("MicrosoftTeams", "5.8.0")
    return request.getfixturevalue(f"{kind}_account")


@pytest.fixture
def customer(kind, request):
    """``customer(name, content)`` seeds a runbook the way a customer makes one."""
    if kind == "local":
        account = request.getfixturevalue("local_account")

        def seed(name, content):
            (account.path / "runbooks").mkdir(parents=True, exist_ok=True)
            (account.path / "runbooks" / f"{name}.ps1").write_bytes(content)
    else:
        arm = request.getfixturevalue("arm")

        def seed(name, content):
            arm.account.add_runbook(name, content)
    return seed


def sync(account, files, policy=POLICY, **options):
    cat = catalog(files)
    _, plan = plan_against(account, cat, policy, 8)
    report = apply_plan(plan, account, files, **options)
    account.finish()  # as the pipeline does after an apply
    return plan, report


def replan(account, files, policy=POLICY):
    return plan_against(account, catalog(files), policy, 8)[1]


def test_apply_converges_then_the_next_plan_is_empty(account, customer):
    customer("user_general_my-runbook", b"Write-Output 'mine'")

    plan, report = sync(account, FILES)

    assert report.count(FAILED) == 0, report.outcomes
    assert [c.action for c in plan.changes].count("create") == 6  # 2 modules (dependencies: the account) + 4
    again = replan(account, FILES)
    assert not again.has_changes, again.to_json()["changes"]
    for path, data in FILES.items():
        name = catalog({path: data}).runbooks[0].name
        assert account.read_content(name) == data  # uploaded verbatim, UTF-16 included
    assert account.read_content("user_general_my-runbook") == b"Write-Output 'mine'"
    live = account.snapshot().runbook("rjgit-user_security_reset-password")
    assert (live.tags[RECEIPT_PATH], live.tags[RECEIPT_COMMIT], live.runtime_environment) == (
        "user/security/reset-password.ps1", "c0ffee0", "RJ-PowerShell-7.4")


def test_apply_updates_and_deletes_then_converges(account):
    sync(account, FILES)
    changed = {**FILES, "user/general/set-usage-location.ps1": script("Sets it.", body="Write-Output 2")}
    del changed["org/general/list-guests.ps1"]

    plan, report = sync(account, changed)

    assert [(c.action, c.name) for c in plan.changes] == [
        ("update", "rjgit-user_general_set-usage-location"), ("delete", "rjgit-org_general_list-guests")]
    assert report.count(DONE) == 2
    assert not replan(account, changed).has_changes
    assert account.read_content("rjgit-org_general_list-guests") is None


def test_apply_adopts_runbooks_written_by_someone_else(account, customer):
    data = FILES["user/general/set-usage-location.ps1"]
    customer("rjgit-user_general_set-usage-location", data.replace(b"\n", b"\r\n"))

    plan, report = sync(account, FILES)

    [adopted] = [c for c in plan.changes if c.name == "rjgit-user_general_set-usage-location"]
    assert adopted.aspects[0] == "receipt" and report.count(FAILED) == 0
    assert not replan(account, FILES).has_changes


def test_apply_adoption_writes_the_receipt_in_place_without_publishing_again(account, customer, kind, request):
    name = "rjgit-user_general_set-usage-location"
    live_bytes = FILES["user/general/set-usage-location.ps1"].replace(b"\n", b"\r\n")
    customer(name, live_bytes)
    cat = catalog(FILES)
    _, plan = plan_against(account, cat, POLICY, 8)
    if kind == "azure":
        request.getfixturevalue("arm").server.clear_log()

    report = apply_plan(plan, account, FILES)

    [outcome] = [o for o in report.outcomes if o.name == name]
    assert (outcome.status, outcome.message) == (
        DONE, "updated in place (content already current, not published again)")
    if kind == "azure":  # confirm the content, then one PATCH: no upload, no publish
        touched = [(r.method, r.path.split("/runbooks/")[1]) for r in request.getfixturevalue("arm").server.requests()
                   if f"/runbooks/{name}" in r.path]
        assert touched == [("GET", f"{name}/content"), ("PATCH", name)]
    assert account.read_content(name) == live_bytes  # equal when normalized: left as it is
    live = account.snapshot().runbook(name)
    assert live.tags[RECEIPT_PATH] == "user/general/set-usage-location.ps1"
    assert (live.runtime_environment, live.description) == ("RJ-PowerShell-7.4", "Sets the usage location.")
    assert not replan(account, FILES).has_changes


def test_apply_writes_in_full_when_the_content_changed_after_the_plan(account, customer, kind, request):
    name = "rjgit-user_general_set-usage-location"
    customer(name, FILES["user/general/set-usage-location.ps1"])
    _, plan = plan_against(account, catalog(FILES), POLICY, 8)
    assert [c.aspects for c in plan.changes if c.name == name] == [("receipt", "runtime", "metadata")]
    customer(name, b"Write-Output 'published in the portal after the plan'")

    report = apply_plan(plan, account, FILES)

    [outcome] = [o for o in report.outcomes if o.name == name]
    assert (outcome.status, outcome.message) == (DONE, "updated and published")
    assert account.read_content(name) == FILES["user/general/set-usage-location.ps1"]
    assert not replan(account, FILES).has_changes


@pytest.mark.parametrize("minutes", [-10, 10])
def test_apply_converges_when_this_machines_clock_is_off(arm, gallery, credential, minutes):
    from datetime import datetime, timedelta, timezone

    from fakes.accounts import ARM_ID, FAST
    from rjsync.accounts.azure import AzureAccount
    from rjsync.accounts.credentials import resolve_cloud
    from rjsync.accounts.targets import parse_arm_id

    gallery.add("MicrosoftTeams", "5.8.0")
    files = {"org/general/list-guests.ps1": FILES["org/general/list-guests.ps1"]}
    account = AzureAccount(parse_arm_id(ARM_ID), credential=credential, gallery_url=gallery.base_url,
                           endpoints=resolve_cloud("public", arm.endpoint), settings=FAST,
                           clock=lambda: datetime.now(timezone.utc) + timedelta(minutes=minutes))
    try:
        _, report = sync(account, files)
        assert report.count(FAILED) == 0

        # the receipt's stamp is Resource Manager's time, so the runbook does not look republished
        again = replan(account, files)
        assert not again.has_changes and not again.drift, again.to_json()

        # ... and content published in the portal 5 minutes later (service time) is drift
        live = arm.account.runbook("rjgit-org_general_list-guests")
        live.published = b"Write-Output 'published in the portal'"
        live.modified = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()
        assert [d.name for d in replan(account, files).drift] == ["rjgit-org_general_list-guests"]
    finally:
        account.close()


def test_apply_case_only_rename_keeps_one_runbook(account):
    files = {"user/security/reset-MFA.ps1": script()}
    sync(account, files)
    renamed = {"user/security/reset-mfa.ps1": script()}

    plan, report = sync(account, renamed)

    assert [(c.action, c.aspects) for c in plan.changes] == [("update", ("receipt",))]
    assert [r.name.lower() for r in account.snapshot().runbooks] == ["rjgit-user_security_reset-mfa"]
    assert not replan(account, renamed).has_changes


def test_apply_overwrites_a_portal_draft_and_converges(account, kind, request):
    sync(account, FILES)
    name = "rjgit-user_general_set-usage-location"
    if kind == "azure":  # a draft saved in the portal, not published
        request.getfixturevalue("arm").account.runbook(name).state = "Edit"
    else:
        meta = account.path / "runbooks" / f"{name}.meta.json"
        meta.write_text(meta.read_text().replace('"state": "Published"', '"state": "Edit"'))

    plan = replan(account, FILES)
    assert [(d.name, d.action) for d in plan.drift] == [(name, "overwrite")]
    kept = replan(account, FILES, dataclasses.replace(POLICY, keep_drifted=True))
    assert not kept.changes and kept.drift[0].action == "keep"

    apply_plan(plan, account, FILES)
    assert not replan(account, FILES).has_changes


def test_apply_deletion_guard_skips_deletions_over_the_limit(account):
    many = {f"user/general/tool-{i}.ps1": script() for i in range(4)}
    sync(account, {**FILES, **many})

    plan, report = sync(account, FILES, dataclasses.replace(POLICY, max_deletions=3))

    assert report.count(SKIPPED) == 4
    assert report.outcomes[-1].message == ("not deleted: 4 deletions exceed the limit of 3; run again with "
                                          "--max-deletions 4")
    assert len([r for r in account.snapshot().runbooks if "tool-" in r.name]) == 4
    _, report = sync(account, FILES, dataclasses.replace(POLICY, max_deletions=3), max_deletions=4)
    assert report.count(DONE) == 4


def test_apply_one_failure_does_not_stop_the_others(account):
    class Flaky:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def write_runbook(self, spec: RunbookWrite, **options):
            if spec.name == "rjgit-org_general_list-guests":
                raise AccountError("Azure refused creating or updating runbook 'x' (HTTP 500).")
            return self.inner.write_runbook(spec, **options)

    plan, report = sync(Flaky(account), FILES)

    assert [(o.name, o.status) for o in report.outcomes if o.status != DONE] == [
        ("rjgit-org_general_list-guests", FAILED)]
    assert report.count(DONE) == len(plan.changes) + 1 - 1  # the environment too, minus the failure
    assert [c.name for c in replan(account, FILES).changes] == ["rjgit-org_general_list-guests"]


def test_apply_refuses_content_that_changed_since_the_plan(account):
    cat = catalog(FILES)
    _, plan = plan_against(account, cat, POLICY, 8)
    edited = {**FILES, "org/general/list-guests.ps1": b"Write-Output 'edited after planning'"}

    report = apply_plan(plan, account, edited)

    [failed] = [o for o in report.outcomes if o.status == FAILED]
    assert failed.message == "org/general/list-guests.ps1 changed in the source since the plan; plan again"


def test_apply_replaces_a_runbook_of_another_classic_type(arm, gallery, azure_account):
    arm.account.add_runbook("rjgit-user_general_set-usage-location", b"old", runbook_type="PowerShell72")
    files = {"user/general/set-usage-location.ps1": FILES["user/general/set-usage-location.ps1"]}

    plan, report = sync(azure_account, files)

    assert [c.action for c in plan.changes] == ["replace"] and report.count(FAILED) == 0
    assert arm.account.runbook("rjgit-user_general_set-usage-location").runbook_type == "PowerShell"
    assert not replan(azure_account, files).has_changes


def test_apply_no_op_plan_on_azure_uses_at_most_four_requests(arm, gallery, azure_account):
    gallery.add("Az.Accounts", "2.13.2")
    gallery.add("Az.Resources", "6.12.0", "Az.Accounts:[2.13.2, ):")
    gallery.add("MicrosoftTeams", "5.8.0")
    sync(azure_account, FILES)
    arm.server.clear_log()

    plan = replan(azure_account, FILES)

    assert not plan.has_changes
    assert [(r.method, r.path.split("/aa-realmjoin-test")[1]) for r in arm.server.requests()] == [
        ("GET", "/runbooks"), ("GET", "/variables/rjgit-rjsync-index"),  # list items lack tags
        ("GET", "/runtimeEnvironments/RJ-PowerShell-7.4"),
        ("GET", "/runtimeEnvironments/RJ-PowerShell-7.4/packages")]


# -- ownership: no write ever names a runbook rjsync does not own -----------------------------------


class RecordingAccount:
    """An in-memory account that records every write and delete."""

    target = "memory:"
    owned_prefix = "rjgit-"

    def __init__(self, runbooks: list[LiveRunbook]):
        self.runbooks = runbooks
        self.touched: list[str] = []

    def snapshot(self, scope=None):
        return Snapshot(tuple(self.runbooks), (), ())

    def read_content(self, name):
        return b"content of " + name.encode()

    def write_runbook(self, spec, **options):
        self.touched.append(spec.name)

    def write_properties(self, spec):
        self.touched.append(spec.name)
        return None

    def delete_runbook(self, name):
        self.touched.append(name)

    def ensure_runtime_environment(self, name="RJ-PowerShell-7.4", **kw):
        pass

    def import_module(self, spec):
        raise AssertionError("no modules in these catalogs")

    def close(self):
        pass


_stem = st.from_regex(r"[a-zA-Z][a-zA-Z0-9-]{0,8}", fullmatch=True)
_prefix_variant = st.sampled_from(["rjgit-", "RJGIT-", "RjGit-", "rjgit", "rj-git-", "", "xrjgit-", "rjgit_"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stems=st.lists(st.tuples(st.sampled_from(["user", "org", "device", "group"]), _stem), max_size=8),
    live_names=st.lists(st.tuples(_prefix_variant, _stem), max_size=12),
    states=st.lists(st.sampled_from(["Published", "Edit", "New"]), min_size=12, max_size=12),
    with_error=st.booleans(),
    max_deletions=st.integers(0, 12),
)
def test_apply_never_writes_a_runbook_it_does_not_own(stems, live_names, states, with_error, max_deletions):
    files = {f"{ctx}/general/{stem}.ps1": script(body=f"Write-Output '{stem}'") for ctx, stem in stems}
    if with_error:
        files["user/general/broken.ps1"] = b"param([string] $x = )\n"
    live = [LiveRunbook(f"{prefix}{stem}", "PowerShell", None, states[i], "", {}, None)
            for i, (prefix, stem) in enumerate(live_names)]
    unique = list({rb.name.lower(): rb for rb in live}.values())
    account = RecordingAccount(unique)
    cat = catalog(files)
    policy = dataclasses.replace(POLICY, max_deletions=max_deletions)

    plan = plan_sync(pair(cat, account.snapshot(), policy), target="memory:",
                     contents={rb.name: account.read_content(rb.name) for rb in unique})
    apply_plan(plan, account, files, concurrency=1, max_deletions=12)

    for name in account.touched:
        assert name.lower().startswith("rjgit-"), name
    for change in plan.changes:
        if change.kind == "runbook":
            assert change.name.lower().startswith("rjgit-"), change
    if with_error or not cat.runbooks:
        assert not plan.deletions


def test_account_boundary_refuses_unowned_writes_whatever_the_plan_says(local_account):
    from rjsync.engine.plan import Change

    forged = plan_sync(pair(catalog({}), Snapshot((), (), ()), POLICY), target="x")
    forged = dataclasses.replace(forged, changes=(Change("runbook", "delete", "user_general_my-runbook", "forged"),))

    report = apply_plan(forged, local_account, {})

    assert report.outcomes[0].status == FAILED
    assert report.outcomes[0].message.startswith("Refusing to delete runbook 'user_general_my-runbook'")


def test_apply_imports_a_dependency_the_plan_also_upgrades_once_at_the_planned_version(arm, azure_account):
    """Az.Resources (needed by more runbooks, so imported first) depends on Az.Accounts >= 2.13.2,
    and a runbook needs Az.Accounts >= 3.0.0: Az.Accounts is imported once, at 3.0.0, not at
    2.13.2 as a dependency and again for itself (each import counts in the service's 5 per 30 s)."""
    resources = "@{ModuleName='Az.Resources'; ModuleVersion='6.12.0'}"
    files = {
        "user/security/reset-password.ps1": script("Resets a password.", requires=resources),
        "user/security/revoke-sessions.ps1": script("Revokes sessions.", requires=resources),
        "org/general/list-subscriptions.ps1": script("Lists subscriptions.",
                                                     requires="@{ModuleName='Az.Accounts'; ModuleVersion='3.0.0'}"),
    }

    plan, report = sync(azure_account, files)

    assert report.ok, report.outcomes
    assert [c.name for c in plan.changes if c.kind == "module"] == ["Az.Accounts", "Az.Resources"]
    imports = [(r.path.rsplit("/", 1)[1], json.loads(r.body)["properties"]["contentLink"]["version"])
               for r in arm.server.requests("PUT", r"/packages/[^/]+$")]
    assert imports == [("Az.Accounts", "3.0.0"), ("Az.Resources", "6.12.0")]
    assert replan(azure_account, files).has_changes is False


def _import_puts(arm) -> list:
    return [r for r in arm.server.requests("PUT", r"/packages/[^/]+$") if r.status != 429]


def test_apply_imports_independent_modules_at_once(arm, gallery, open_azure):
    """An import takes minutes on Azure; three that need nothing of each other run side by side
    (the service's limit is on starts: 5 per 30 s)."""
    for name in ("RJ.Alpha", "RJ.Beta", "RJ.Gamma"):
        gallery.add(name, "1.0.0")
    files = {f"org/general/use-{name.lower()}.ps1": script(f"Uses {name}.", requires=f"RJ.{name}")
             for name in ("Alpha", "Beta", "Gamma")}
    account = open_azure(provisioning_poll_interval=0.1)  # an import: 3 steps x 0.1 s

    _, report = sync(account, files)

    assert report.ok, report.outcomes
    puts = _import_puts(arm)
    assert sorted(r.path.rsplit("/", 1)[1] for r in puts) == ["RJ.Alpha", "RJ.Beta", "RJ.Gamma"]
    assert max(r.time for r in puts) - min(r.time for r in puts) < 0.25  # one after another: >= 0.6 s


def test_apply_imports_more_modules_than_the_service_starts_at_once_within_its_limit(arm, gallery, open_azure):
    """7 modules against the service's 5 imports per window (0.5 s here), each import taking
    longer than the window (~2 s): the 6th and 7th start as soon as the window allows, not
    when an import ends; none is refused, all succeed."""
    names = [f"RJ.Module{i}" for i in range(7)]
    for name in names:
        gallery.add(name, "1.0.0")
    files = {f"org/general/use-module{i}.ps1": script(f"Uses {name}.", requires=name) for i, name in enumerate(names)}
    arm.import_limit = (5, 0.5)
    account = open_azure(imports_per_window=5, import_window=0.5, provisioning_poll_interval=0.5)

    _, report = sync(account, files)

    assert report.ok, report.outcomes
    assert arm.import_refusals == []
    starts = arm.account.import_starts
    assert len(starts) == 7
    assert 0.5 <= starts[5] - starts[0] < 1.5  # a window after the 1st, before any import ended


#: Two runbooks whose modules (Az.Resources, Az.Storage) both depend on Az.Accounts.
SHARING_AZ_ACCOUNTS = {
    "user/security/reset-password.ps1": script("Resets a password.",
                                               requires="@{ModuleName='Az.Resources'; ModuleVersion='6.12.0'}"),
    "org/general/list-storage.ps1": script("Lists storage.",
                                           requires="@{ModuleName='Az.Storage'; ModuleVersion='6.0.0'}"),
}


def test_apply_imports_a_dependency_two_modules_share_once_and_before_both(arm, azure_account):

    _, report = sync(azure_account, SHARING_AZ_ACCOUNTS)

    assert report.ok, report.outcomes  # the emulator fails an import whose dependency is not there
    names = [r.path.rsplit("/", 1)[1] for r in _import_puts(arm)]
    assert names.count("Az.Accounts") == 1 and names[0] == "Az.Accounts"
    assert sorted(names[1:]) == ["Az.Resources", "Az.Storage"]
    assert replan(azure_account, SHARING_AZ_ACCOUNTS).has_changes is False


def test_apply_a_shared_dependency_that_fails_fails_both_modules_once(arm, azure_account):
    arm.import_failures["az.accounts"] = "Orchestrator.Shared.AsyncModuleImport.ModuleImportException: broken"

    _, report = sync(azure_account, SHARING_AZ_ACCOUNTS)

    failed = {o.name: o.message for o in report.outcomes if o.status == FAILED}
    assert set(failed) == {"Az.Resources", "Az.Storage"}
    assert all("Az.Accounts" in m and "broken" in m for m in failed.values()), failed
    assert [r.path.rsplit("/", 1)[1] for r in _import_puts(arm)] == ["Az.Accounts"]  # tried once


def test_apply_writes_a_runbook_only_after_its_modules_and_others_without_waiting(local_account):
    import threading
    import time

    events: list[str] = []
    release = threading.Event()

    class SlowImports:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def import_module(self, spec):
            events.append(f"import {spec.name} started")
            assert release.wait(5)
            events.append(f"import {spec.name} done")
            return self.inner.import_module(spec)

        def write_runbook(self, spec, before_publish=None):
            def write():  # the directory account writes a runbook whole, right after this
                if before_publish is not None:
                    before_publish()
                events.append(f"write {spec.name}")
                if spec.name == "rjgit-user_general_set-usage-location":
                    release.set()  # the import finishes only after the module-free runbook is written
            return self.inner.write_runbook(spec, before_publish=write)

    files = {"user/general/set-usage-location.ps1": FILES["user/general/set-usage-location.ps1"],
             "org/general/list-guests.ps1": FILES["org/general/list-guests.ps1"]}
    started = time.monotonic()

    plan, report = sync(SlowImports(local_account), files)

    assert report.count(DONE) == len(plan.changes) + 1
    assert events.index("write rjgit-user_general_set-usage-location") < events.index("import MicrosoftTeams done")
    assert events.index("import MicrosoftTeams done") < events.index("write rjgit-org_general_list-guests")
    assert time.monotonic() - started < 5


# -- Resource Manager's request budget -------------------------------------------------------------

WRITE_BUDGET = (4, 40.0)  # tokens, refill per second: Resource Manager's (200, 10.0), shrunk



def test_sync_under_a_tight_write_budget_finishes_every_write_without_running_into_it(arm, open_azure):
    """30 runbooks are ~120 writes against a bucket of 4 refilled at 40 per s: without pacing,
    32 writers at once run into 429s and some run out of retries."""
    arm.throttling = {"reads": (50, 200.0), "writes": WRITE_BUDGET, "deletes": WRITE_BUDGET}
    files = {f"org/general/task-{i:02}.ps1": script(f"Task {i}.") for i in range(30)}
    account = open_azure(writes_per_second=WRITE_BUDGET[1], deletes_per_second=WRITE_BUDGET[1],
                         reads_per_second=200.0,
                         retry_status=2)  # a writer may be refused at most twice in a row

    _, plan = plan_against(account, catalog(files), Policy(), 8)
    report = apply_plan(plan, account, files, concurrency=32)

    assert report.ok and report.count(DONE) == len(report.outcomes) >= len(files), report.outcomes
    assert len(arm.throttled) <= 8, arm.throttled  # at most a first burst's worth, before an answer counts
    assert plan_against(account, catalog(files), Policy(), 8)[1].has_changes is False
    writes = sorted(r.time for r in arm.server.requests()
                    if r.method in ("PUT", "PATCH", "POST") and r.status != 429)
    assert len(writes) >= 4 * len(files)
    assert writes[-1] - writes[0] >= (len(writes) - WRITE_BUDGET[0]) / WRITE_BUDGET[1] * 0.9  # the bucket's pace


def test_apply_uploads_a_new_runbook_while_its_module_imports_and_publishes_it_only_after(arm, gallery, open_azure):
    """The import of a module takes minutes on Azure (here ~0.4 s): a new runbook that needs it
    is created and its content uploaded meanwhile, and published only once the import succeeded."""
    gallery.add("RJ.Slow", "1.0.0")
    files = {"org/general/use-slow.ps1": script("Uses RJ.Slow.", requires="RJ.Slow")}
    account = open_azure(provisioning_poll_interval=0.1)  # an import: 3 steps x 0.1 s

    _, report = sync(account, files)

    assert report.ok, report.outcomes
    requests = arm.server.requests()

    def first(method: str, pattern: str) -> float:
        return min(r.time for r in requests if r.method == method and re.search(pattern, r.path))

    imported = max(r.time for r in requests if r.method == "GET" and r.path.endswith("/packages/RJ.Slow"))
    assert first("PUT", r"/runbooks/rjgit-org_general_use-slow/draft/content$") < imported
    assert first("POST", r"/runbooks/rjgit-org_general_use-slow/publish$") > imported


def test_apply_gives_the_environment_of_a_plan_saved_before_default_packages_the_policys(local_account):
    files = {"user/general/set-usage-location.ps1": script("Sets the usage location.")}
    policy = Policy(default_packages=(("Az", "11.6.0"),))
    _, plan = plan_against(local_account, catalog(files), policy, 4)
    saved_before = dataclasses.replace(plan, environment={
        k: v for k, v in plan.environment.items() if k != "default_packages"})

    assert apply_plan(saved_before, local_account, files).ok

    assert local_account.snapshot().runtime_environment("RJ-PowerShell-7.4").default_packages == {"Az": "11.6.0"}


def test_apply_classic_runbooks_converge_when_azure_names_their_system_environment(arm, azure_account):
    arm.name_classic_environment = True
    classic = Policy(runtime="classic", modules=False)
    files = {"org/general/list-guests.ps1": script("Lists guests.")}

    _, report = sync(azure_account, files, classic)

    assert report.ok, report.outcomes
    assert arm.account.runbook("rjgit-org_general_list-guests").runtime_environment is None
    assert not replan(azure_account, files, classic).has_changes
