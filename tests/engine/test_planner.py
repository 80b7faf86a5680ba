"""The planner as a pure function: catalog + snapshot + policy -> changes, drift, skips."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from engine_support import SYNCED_AT, catalog, live, receipt, script, snapshot
from rjsync.accounts.base import LiveModule, LiveRuntimeEnvironment, Snapshot
from rjsync.accounts.receipts import DRIFT_TOLERANCE, RECEIPT_PATH, RECEIPT_SHA256
from rjsync.catalog.text import normalized_sha256
from rjsync.engine.plan import Plan
from rjsync.engine.planner import pair, plan_sync, snapshot_scope
from rjsync.engine.policy import Policy

RESET = "user/security/reset-password.ps1"
RESET_NAME = "rjgit-user_security_reset-password"
POLICY = Policy()


def plan(cat, snap, policy=POLICY, contents=None) -> Plan:
    return plan_sync(pair(cat, snap, policy), target="local:/acc", contents=contents)


def content_needed(cat, snap, policy=POLICY) -> list[str]:
    return pair(cat, snap, policy).content_needed()


def actions(p: Plan) -> list[tuple[str, str, str]]:
    return [(c.kind, c.action, c.name) for c in p.changes]


def test_plan_creates_every_runbook_and_the_environment_in_an_empty_account():
    cat = catalog({RESET: script(), "org/general/list-guests.ps1": script()})

    p = plan(cat, snapshot(environment=False))

    assert actions(p) == [("runbook", "create", "rjgit-org_general_list-guests"), ("runbook", "create", RESET_NAME)]
    assert p.environment == {"name": "RJ-PowerShell-7.4", "action": "create", "language": "PowerShell",
                             "version": "7.4", "default_packages": {"Az": "12.3.0"}}
    assert p.changes[1].after == {"path": RESET, "sha256": normalized_sha256(script()), "runbook_type": "PowerShell",
                                  "runtime_environment": "RJ-PowerShell-7.4", "description": "Does a thing.",
                                  "tags": {}}


def test_plan_trusts_a_matching_receipt_without_reading_content():
    data = script()
    cat = catalog({RESET: data})
    snap = snapshot(live(RESET_NAME, tags=receipt(data, RESET)))

    assert content_needed(cat, snap, POLICY) == []
    p = plan(cat, snap)
    assert p.changes == () and not p.has_changes


def test_plan_updates_content_when_the_receipt_differs_without_reading_it():
    cat = catalog({RESET: script(body="Write-Output 2")})
    snap = snapshot(live(RESET_NAME, tags=receipt(script(), RESET)))

    assert content_needed(cat, snap, POLICY) == []
    [change] = plan(cat, snap).changes
    assert (change.action, change.aspects, change.reason) == ("update", ("content",), "content changed")


def test_plan_adopts_a_runbook_without_receipt_whose_content_matches():
    data = script()
    cat = catalog({RESET: data})
    snap = snapshot(live(RESET_NAME))

    assert content_needed(cat, snap, POLICY) == [RESET_NAME]
    # CRLF and a BOM are the same content
    crlf = b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")
    [change] = plan(cat, snap, contents={RESET_NAME: crlf}).changes
    assert (change.action, change.aspects) == ("update", ("receipt",))
    assert change.reason == "content already current (adopted: receipt added)"


def test_plan_adoption_with_different_content_is_a_content_update():
    cat = catalog({RESET: script()})
    snap = snapshot(live(RESET_NAME, tags={RECEIPT_SHA256: "not-a-sha"}))  # a foreign receipt

    assert content_needed(cat, snap, POLICY) == [RESET_NAME]
    [change] = plan(cat, snap, contents={RESET_NAME: b"Write-Output 'hand made'"}).changes
    assert change.aspects == ("content",)


def test_plan_case_only_rename_upstream_is_an_update_never_create_and_delete():
    data = script()
    cat = catalog({"user/security/reset-MFA.ps1": data})
    snap = snapshot(live("rjgit-user_security_Reset-MFA", tags=receipt(data, "user/security/Reset-MFA.ps1")))

    [change] = plan(cat, snap).changes
    assert (change.action, change.name, change.aspects) == ("update", "rjgit-user_security_Reset-MFA", ("receipt",))
    assert change.reason == ("renamed in the source (case only): user/security/Reset-MFA.ps1 -> "
                             "user/security/reset-MFA.ps1; kept as rjgit-user_security_Reset-MFA "
                             "(names are case-insensitive)")


def test_plan_deletes_owned_runbooks_gone_from_the_source_and_never_customer_ones():
    cat = catalog({RESET: script()})
    snap = snapshot(live(RESET_NAME, tags=receipt(script(), RESET)),
                    live("rjgit-user_security_old", tags=receipt(b"x", "user/security/old.ps1")),
                    live("RJGIT-org_general_shouty"),
                    live("user_general_my-runbook"), live("Customer-Report"))

    p = plan(cat, snap)

    assert actions(p) == [("runbook", "delete", "RJGIT-org_general_shouty"),
                          ("runbook", "delete", "rjgit-user_security_old")]
    assert p.changes[1].reason == "owned, no longer in the source (was user/security/old.ps1)"


def test_plan_deletes_nothing_when_the_catalog_has_errors():
    files = {RESET: script(), "user/security/broken.ps1": b"param([string] $x = )\n"}
    cat = catalog(files)
    assert cat.errors
    snap = snapshot(live("rjgit-user_security_old"))

    p = plan(cat, snap)

    assert [c.action for c in p.changes] == ["create"]
    assert p.errored
    assert [(s.name, s.reason) for s in p.skipped] == [
        ("rjgit-user_security_old", "the catalog has 1 error(s): nothing is deleted until they are fixed")]


def test_plan_deletes_nothing_when_the_catalog_is_empty():
    p = plan(catalog({}), snapshot(live("rjgit-user_security_old")))

    assert p.changes == ()
    assert p.skipped[0].reason == "the catalog is empty (wrong source or contexts?): nothing is deleted"


def test_plan_warns_when_deletions_exceed_the_limit():
    cat = catalog({RESET: script()})
    olds = [live(f"rjgit-user_security_old{i}") for i in range(3)]

    p = plan(cat, snapshot(*olds, live(RESET_NAME, tags=receipt(script(), RESET))),
             dataclasses.replace(POLICY, max_deletions=2))

    assert len(p.deletions) == 3 and p.summary()["over_deletion_limit"]
    assert p.diagnostics[-1].message == ("3 runbooks would be deleted, more than the limit of 2; apply deletes "
                                         "none of them unless run with --max-deletions 3")


def test_plan_excluded_runbooks_are_never_created_updated_or_deleted():
    cat = catalog({RESET: script(), "org/general/list-guests.ps1": script()})
    snap = snapshot(live("rjgit-org_internal_tool"), live(RESET_NAME, tags=receipt(b"old", RESET)))
    policy = dataclasses.replace(POLICY, exclude=("rjgit-org_*", "user/security/*"))

    p = plan(cat, snap, policy)

    assert p.changes == ()
    assert [(s.name, s.reason) for s in p.skipped] == [
        ("rjgit-org_general_list-guests", "excluded by the pattern 'rjgit-org_*'"),
        ("rjgit-org_internal_tool", "excluded by the pattern 'rjgit-org_*'"),
        (RESET_NAME, "excluded by the pattern 'user/security/*'"),
    ]


def test_plan_reports_a_pending_portal_draft_as_drift_and_overwrites_it():
    data = script()
    cat = catalog({RESET: data})
    snap = snapshot(live(RESET_NAME, tags=receipt(data, RESET), state="Edit"))

    p = plan(cat, snap)

    assert [(d.name, d.action) for d in p.drift] == [(RESET_NAME, "overwrite")]
    [change] = p.changes
    assert change.aspects == ("drift",)
    assert change.reason == "overwrites drift: a draft edited in the portal is waiting to be published"


def test_plan_keep_drifted_leaves_the_runbook_alone():
    cat = catalog({RESET: script(body="Write-Output 'new upstream'")})
    snap = snapshot(live(RESET_NAME, tags=receipt(script(), RESET), state="Edit"))

    p = plan(cat, snap, dataclasses.replace(POLICY, keep_drifted=True))

    assert p.changes == ()
    assert [(d.name, d.action) for d in p.drift] == [(RESET_NAME, "keep")]


def test_plan_detects_content_published_in_the_portal_after_the_receipt():
    data = script()
    cat = catalog({RESET: data})
    later = SYNCED_AT + DRIFT_TOLERANCE + timedelta(minutes=5)
    snap = snapshot(live(RESET_NAME, tags=receipt(data, RESET), modified=later))

    assert content_needed(cat, snap, POLICY) == [RESET_NAME]
    p = plan(cat, snap, contents={RESET_NAME: b"Write-Output 'edited in the portal'"})

    assert [d.reason for d in p.drift] == ["content published in the portal differs from what rjsync last synced"]
    assert p.changes[0].aspects == ("drift", "content")


def test_plan_republished_same_content_only_refreshes_the_receipt():
    data = script()
    cat = catalog({RESET: data})
    later = SYNCED_AT + DRIFT_TOLERANCE + timedelta(minutes=5)
    snap = snapshot(live(RESET_NAME, tags=receipt(data, RESET), modified=later))

    p = plan(cat, snap, contents={RESET_NAME: data})

    assert p.drift == ()
    assert [(c.action, c.aspects) for c in p.changes] == [("update", ("receipt",))]


def test_plan_receipt_write_within_the_tolerance_is_not_drift():
    data = script()
    snap = snapshot(live(RESET_NAME, tags=receipt(data, RESET), modified=SYNCED_AT + DRIFT_TOLERANCE))

    assert content_needed(catalog({RESET: data}), snap, POLICY) == []


def test_plan_classic_type_change_is_a_replace_with_a_warning():
    data = script()
    cat = catalog({RESET: data})
    snap = snapshot(live(RESET_NAME, tags=receipt(data, RESET), runbook_type="PowerShell72", runtime_environment=None))

    [change] = plan(cat, snap).changes

    assert change.action == "replace"
    assert change.warnings == (f"replacing {RESET_NAME} deletes it first: job schedules and webhooks linked to it "
                               "are lost and must be set up again",)


def test_plan_runtime_environment_change_is_an_update():
    data = script()
    cat = catalog({RESET: data})
    snap = snapshot(live(RESET_NAME, tags=receipt(data, RESET), runtime_environment=None))

    [change] = plan(cat, snap).changes

    assert (change.action, change.aspects, change.reason) == (
        "update", ("runtime",), "runtime classic -> RJ-PowerShell-7.4")


def test_plan_description_change_is_a_metadata_update():
    data = script(synopsis="Resets a password.")
    cat = catalog({RESET: data})
    snap = snapshot(live(RESET_NAME, tags=receipt(data, RESET), description="Old words."))

    [change] = plan(cat, snap).changes
    assert change.aspects == ("metadata",)


def test_plan_keeps_foreign_tags_on_owned_runbooks():
    cat = catalog({RESET: script(body="Write-Output 2")})
    tags = {**receipt(script(), RESET), "costCenter": "42"}

    [change] = plan(cat, snapshot(live(RESET_NAME, tags=tags))).changes

    assert change.after["tags"] == {"costCenter": "42"}


def test_plan_modules_install_missing_upgrade_old_and_never_downgrade():
    cat = catalog({
        RESET: script(requires="@{ModuleName='Az.Accounts'; ModuleVersion='2.13.2'}"),
        "user/general/a.ps1": script(requires="@{ModuleName='ExchangeOnlineManagement'; ModuleVersion='3.4.0'}"),
        "user/general/b.ps1": script(requires="MicrosoftTeams"),
        "user/general/c.ps1": script(requires="@{ModuleName='Az.Storage'; ModuleVersion='5.0.0'}"),
    })
    snap = snapshot(packages={"Az.Accounts": "1.9.0", "ExchangeOnlineManagement": "3.5.0", "Az.Storage": "5.0.0"})

    p = plan(cat, snap)

    modules = [(c.action, c.name, c.after["version"], c.warnings) for c in p.changes if c.kind == "module"]
    assert modules == [
        ("update", "Az.Accounts", "2.13.2", ("major-version upgrade 1.9.0 -> 2.13.2: customer runbooks that use "
                                             "Az.Accounts 1.9.0 may break",)),
        ("create", "MicrosoftTeams", None, ()),
    ]
    assert p.changes[0].kind == "module"  # modules first


def test_plan_modules_count_created_and_unknown_versions_as_installed():
    """``Created`` ends an import as ``Succeeded`` does; a loaded module whose version the service
    reports as Unknown is left alone and shown (importing it again would read Unknown again)."""
    data = script(requires="@{ModuleName='Az.Accounts'; ModuleVersion='2.13.2'}, "
                           "@{ModuleName='Az.Storage'; ModuleVersion='6.0.0'}, ExchangeOnlineManagement")
    cat = catalog({RESET: data})
    env = LiveRuntimeEnvironment("RJ-PowerShell-7.4", "PowerShell", "7.4", (
        LiveModule("Az.Accounts", "Unknown", "Succeeded"), LiveModule("Az.Storage", "6.0.0", "Created"),
        LiveModule("ExchangeOnlineManagement", None, "Created")))
    snap = Snapshot((live(RESET_NAME, tags=receipt(data, RESET)),), (), (env,))

    p = plan(cat, snap)

    assert p.changes == () and not p.has_changes
    assert [(s.kind, s.name, s.reason) for s in p.skipped] == [
        ("module", "Az.Accounts", "required by 1 runbook at least at 2.13.2; the account reports its version as "
                                  "Unknown: counted as installed, not imported again")]


def test_plan_classic_runtime_uses_account_modules():
    data = script(requires="@{ModuleName='Az.Accounts'; ModuleVersion='2.0.0'}")
    cat = catalog({RESET: data})
    policy = dataclasses.replace(POLICY, runtime="classic")
    snap = snapshot(live(RESET_NAME, tags=receipt(data, RESET), runtime_environment=None),
                    environment=False, modules={"Az.Accounts": "2.1.0"})

    p = plan(cat, snap, policy)

    assert p.changes == () and p.environment is None
    assert snapshot_scope(policy).account_modules and snapshot_scope(policy).environments == ()


def test_plan_module_management_off_lists_missing_modules_as_skipped():
    cat = catalog({RESET: script(requires="MicrosoftTeams")})
    p = plan(cat, snapshot(), dataclasses.replace(POLICY, modules=False))

    assert [c.kind for c in p.changes] == ["runbook"]
    assert [(s.kind, s.name) for s in p.skipped] == [("module", "MicrosoftTeams")]


def test_plan_json_round_trips_and_is_stable():
    cat = catalog({RESET: script(), "org/general/list-guests.ps1": script(requires="MicrosoftTeams")})
    snap = snapshot(live("rjgit-user_security_old"), live(RESET_NAME, state="Edit", tags=receipt(b"x", RESET)))
    first = plan(cat, snap).to_json()

    assert Plan.from_json(first).to_json() == first
    assert plan(cat, snap).to_json() == first
    assert list(first) == ["format_version", "source", "target", "policy", "environment", "changes", "drift",
                           "skipped", "summary", "diagnostics", "fingerprints"]
    assert first["summary"]["create"] == 2 and first["summary"]["delete"] == 1


def test_plan_snapshot_fingerprint_changes_with_the_account():
    cat = catalog({RESET: script()})
    a = plan(cat, snapshot(live(RESET_NAME)))
    b = plan(cat, snapshot(live(RESET_NAME, state="Edit")))

    assert a.fingerprints["catalog"] == b.fingerprints["catalog"]
    assert a.fingerprints["snapshot"] != b.fingerprints["snapshot"]


def test_plan_receipt_path_is_recorded_for_deletes():
    p = plan(catalog({RESET: script()}), snapshot(live("rjgit-x", tags={RECEIPT_PATH: "org/x/x.ps1"})))
    assert p.deletions[0].before["path"] == "org/x/x.ps1"


def test_pair_sets_apart_excluded_runbooks_and_owned_orphans():
    cat = catalog({RESET: script(), "org/general/list-guests.ps1": script()})
    twin = live(RESET_NAME, tags=receipt(script(), RESET))
    orphan = live("rjgit-user_security_old")
    policy = dataclasses.replace(POLICY, exclude=("rjgit-org_*",))

    pairing = pair(cat, snapshot(twin, orphan, live("rjgit-org_internal_tool"), live("Customer-Report")), policy)

    assert [(runbook.path, live_twin) for runbook, live_twin in pairing.pairs] == [(RESET, twin)]
    assert pairing.excluded == (("rjgit-org_general_list-guests", "excluded by the pattern 'rjgit-org_*'"),
                                ("rjgit-org_internal_tool", "excluded by the pattern 'rjgit-org_*'"))
    assert pairing.orphans == (orphan,)
    assert (pairing.catalog, pairing.policy) == (cat, policy)


# -- the runtime environment's default packages ----------------------------------------------------


def test_plan_environment_to_create_carries_the_policys_default_packages():
    policy = Policy(default_packages=(("Az", "11.6.0"), ("Azure CLI", "2.64.0")))

    p = plan(catalog({RESET: script()}), snapshot(environment=False), policy)

    assert p.environment["default_packages"] == {"Az": "11.6.0", "Azure CLI": "2.64.0"}


def test_plan_compares_default_packages_without_regard_to_the_case_of_their_names():
    cat = catalog({RESET: script()})

    p = plan(cat, snapshot(live(RESET_NAME, tags=receipt(script(), RESET)), default_packages={"az": "12.3.0"}))

    assert not p.has_changes and p.environment is None
    assert p.diagnostics == ()


def test_plan_reports_an_existing_environment_whose_default_packages_differ_and_changes_nothing():
    cat = catalog({RESET: script()})

    p = plan(cat, snapshot(live(RESET_NAME, tags=receipt(script(), RESET)), default_packages={"az": "8.0.0"}))

    assert not p.has_changes and p.environment is None
    assert [(d.severity, d.message) for d in p.diagnostics] == [(
        "warning",
        "runtime environment RJ-PowerShell-7.4 has the default packages az 8.0.0, not Az 12.3.0 as the "
        "policy says; rjsync does not change an existing environment's default packages: change them in "
        "the portal, or set policy.default_packages to what it has")]


def test_plan_leaves_the_default_packages_of_the_services_own_environments_alone():
    cat = catalog({RESET: script()})
    snap = dataclasses.replace(snapshot(), runtime_environments=(
        LiveRuntimeEnvironment("PowerShell-7.2", "PowerShell", "7.2", (), {"az": "8.0.0"}),))

    p = plan(cat, snap, Policy(runtime="PowerShell-7.2"))

    assert p.diagnostics == ()


def test_plan_classic_runbook_named_with_its_system_environment_is_classic():
    """The service may name the system environment a classic runbook is linked to (shared notes,
    "Runtime environments"): under a classic policy that runbook is in sync, not an update."""
    data = script()
    classic = Policy(runtime="classic")
    snap = snapshot(dataclasses.replace(live(RESET_NAME, tags=receipt(data, RESET)), runtime_environment="PowerShell-5.1"))

    assert not plan(catalog({RESET: data}), snap, classic).has_changes
    moved = plan(catalog({RESET: data}), snap)  # into RJ-PowerShell-7.4: still an update
    assert [c.reason for c in moved.changes] == ["runtime classic -> RJ-PowerShell-7.4"]


def test_pair_with_many_exclude_patterns_matches_as_fnmatch_does():
    import fnmatch

    odd = ("*", "?jgit-*", "[!r]*", "*[-_]tool", "RJGIT-ORG_*", "user/sec*/*", "*a[b", "*_internal_t??l")
    patterns = tuple(f"rjgit-nothing_{n}" for n in range(3000)) + tuple(f"*nothing-{n}-*" for n in range(3000))
    names = ["rjgit-org_internal_tool", "rjgit-org_ab", "rjgit-org_a[b"]
    for chosen in [odd[i:] for i in range(len(odd))] + [patterns + odd[3:], ("rjgit-org_internal_tool",) + odd]:
        policy = dataclasses.replace(POLICY, exclude=chosen)
        pairing = pair(catalog({RESET: script()}), snapshot(*(live(n) for n in names)), policy)
        expected = {}
        for name, path in [(RESET_NAME, RESET)] + [(n, None) for n in names]:
            first = next((p for p in chosen for v in (name, path)
                          if v and fnmatch.fnmatchcase(v.lower(), p.lower())), None)
            if first:
                expected[name] = f"excluded by the pattern '{first}'"
        assert dict(pairing.excluded) == expected
