"""Apply's module imports against the ARM emulator, with a catalog shaped like the upstream's: the
versions of every module and dependency are decided together, each module is imported once, and
no import is sent before the modules it depends on are loaded (issue 13)."""

from __future__ import annotations

import json

import pytest

from engine_support import catalog, script
from fakes.accounts import GROUP, SUBSCRIPTION
from rjsync.engine.apply import DONE, apply_plan
from rjsync.engine.policy import Policy
from rjsync.sync import plan_against

#: Shaped like the upstream's gallery: every Az module depends on Az.Accounts, and the version of
#: Az.DesktopVirtualization the runbooks ask for needs a newer Az.Accounts than they do.
GALLERY = [
    ("Az.Accounts", "5.5.2", ""),
    ("Az.Accounts", "5.6.0", ""),
    ("Az.Compute", "10.4.0", "Az.Accounts:[5.3.0, ):"),
    ("Az.DesktopVirtualization", "6.0.0", "Az.Accounts:[5.6.0, ):"),
    ("Az.ManagementPartner", "0.7.5", "Az.Accounts:[5.3.0, ):"),
    ("Az.Monitor", "6.0.3", "Az.Accounts:[5.3.0, ):"),
    ("Az.Resources", "8.1.1", "Az.Accounts:[5.3.0, ):"),
    ("Az.Storage", "9.3.0", "Az.Accounts:[5.3.0, ):"),
    ("Az.Websites", "3.4.2", "Az.Accounts:[5.3.0, ):"),
    ("ExchangeOnlineManagement", "3.9.0", ""),
    ("MicrosoftTeams", "7.3.1", ""),
    ("RealmJoin.RunbookHelper", "0.8.5", ""),
]
ACCOUNTS = "@{ModuleName='Az.Accounts'; ModuleVersion='5.5.2'}"


def _requires(name: str, version: str) -> str:
    return f"@{{ModuleName='{name}'; ModuleVersion='{version}'}}"


#: Runbooks that ask for Az.Accounts 5.5.2 and one more module each, and some for Az.Accounts only.
UPSTREAM_LIKE = {
    f"org/general/use-{name.lower().replace('.', '-')}.ps1": script(
        f"Uses {name}.", requires=f"{ACCOUNTS}, {_requires(name, version)}")
    for name, version, _ in GALLERY if name != "Az.Accounts"
} | {f"user/general/job-{n}.ps1": script(f"Job {n}.", requires=ACCOUNTS) for n in range(4)}
#: What each first sync imports: every module once, Az.Accounts at the 5.6.0 one of them needs.
IMPORTS = sorted((name, version) for name, version, _ in GALLERY if (name, version) != ("Az.Accounts", "5.5.2"))

FIRST_SYNCS = 20
WINDOW = 0.3  # the service's 30 s import window, shrunk; 5 imports per window as the service


@pytest.fixture
def upstream_gallery(gallery):
    for package in GALLERY:
        gallery.add(*package)
    return gallery


def _target(name: str) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.Automation/automationAccounts/{name}"


def _imports(arm, account: str) -> list[tuple[str, str]]:
    puts = [r for r in arm.server.requests("PUT", r"/packages/[^/]+$")
            if f"/automationAccounts/{account}/" in r.path and r.status != 429]
    return [(r.path.rsplit("/", 1)[1], json.loads(r.body)["properties"]["contentLink"]["version"]) for r in puts]


def test_apply_first_syncs_of_an_upstream_like_catalog_import_every_module_once_without_a_failure(
        arm, upstream_gallery, open_azure):
    """The issue's race: Az.Accounts imported at 5.5.2 for the runbooks, then upgraded to 5.6.0
    for Az.DesktopVirtualization while the other Az modules' imports were sent, which the service
    failed ("The required module 'Az.Accounts' … was not loaded"). Each sync goes into a fresh
    account, at the service's import limit (5 per window), imports polled quickly."""
    arm.import_limit = (5, WINDOW)
    cat = catalog(UPSTREAM_LIKE)
    failures, twice, unconverged = [], [], []
    for n in range(FIRST_SYNCS):
        name = f"aa-first-sync-{n:02}"
        arm.add_account(SUBSCRIPTION, GROUP, name)
        account = open_azure(_target(name), imports_per_window=5, import_window=WINDOW,
                             provisioning_poll_interval=0.02)

        _, plan = plan_against(account, cat, Policy(), 8)
        report = apply_plan(plan, account, UPSTREAM_LIKE)

        failures += [(n, o.name, o.message) for o in report.outcomes if o.status != DONE]
        if sorted(_imports(arm, name)) != IMPORTS:
            twice.append((n, _imports(arm, name)))
        if plan_against(account, cat, Policy(), 8)[1].has_changes:
            unconverged.append(n)
    assert failures == []
    assert twice == []
    assert unconverged == []
    assert arm.import_refusals == []


def test_apply_leaves_a_module_whose_version_reads_unknown_and_converges(arm, azure_account):
    """The service reports some loaded modules' version as Unknown, also right after importing
    them: they count as installed, so no run imports them again (nor fails a dependant for them)."""
    arm.unknown_versions = {"az.accounts"}
    files = {"org/general/list-resources.ps1": script("Lists resources.", requires=(
        "@{ModuleName='Az.Accounts'; ModuleVersion='2.13.2'}, @{ModuleName='Az.Resources'; ModuleVersion='6.12.0'}"))}
    cat = catalog(files)
    first = apply_plan(plan_against(azure_account, cat, Policy(), 8)[1], azure_account, files)
    arm.server.clear_log()

    _, again = plan_against(azure_account, cat, Policy(), 8)

    assert first.ok, first.outcomes
    assert again.has_changes is False
    assert [(s.name, s.reason) for s in again.skipped] == [(
        "Az.Accounts", "required by 1 runbook at least at 2.13.2; the account reports its version as Unknown: "
                       "counted as installed, not imported again")]
    assert apply_plan(again, azure_account, files).outcomes == []
    assert arm.server.requests("PUT") == []
