"""The permissions section as a pure comparison: what the runbooks need against a ``Grants``."""

from __future__ import annotations

import json

from engine_support import catalog, script, snapshot
from rjsync.accounts.base import Grants
from rjsync.engine.permissions import PermissionReport, permission_report
from rjsync.engine.planner import pair, plan_sync
from rjsync.engine.policy import Policy

GRAPH = "00000003-0000-0000-c000-000000000000"
EXO = "00000002-0000-0ff1-ce00-000000000000"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
PRINCIPAL = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"


def sidecar(graph=(), exo=(), roles=(), manual=()) -> bytes:
    permissions = []
    if graph:
        permissions.append({"Name": "Microsoft Graph", "Id": GRAPH, "AppRoleAssignments": list(graph)})
    if exo:
        permissions.append({"Name": "Office 365 Exchange Online", "Id": EXO, "AppRoleAssignments": list(exo)})
    return json.dumps({"SchemaVersion": 2, "Permissions": permissions, "Roles": list(roles),
                       "ManualPermissions": list(manual)}).encode()


def runbooks(**sidecars: bytes):
    """Runbooks user/general/<name>.ps1 (rjgit-user_general_<name>), each with its sidecar."""
    files = {}
    for name, data in sidecars.items():
        files[f"user/general/{name}.ps1"] = script()
        files[f"user/general/{name}.permissions.json"] = data
    return catalog(files).runbooks


#: reset needs two Graph roles and a role by template id; mail needs Exchange, an optional
#: Graph role for its email report, and a role by name only; both name the same manual step.
RUNBOOKS = runbooks(
    reset=sidecar(graph=[{"Value": "User.ReadWrite.All", "Reason": "Resets the password"},
                         "UserAuthenticationMethod.ReadWrite.All"],
                  roles=[{"Name": "User Administrator", "TemplateId": USER_ADMIN, "Reason": "Privileged users"}],
                  manual=["Exclude break-glass accounts"]),
    mail=sidecar(graph=[{"Value": "Mail.Send", "Optional": True, "Feature": "Email report",
                         "Reason": "Mails the report"}],
                 exo=[{"Value": "Exchange.ManageAsApp", "Reason": "Connects to Exchange Online"}],
                 roles=["exchange  administrator"], manual=["Exclude break-glass accounts"]),
)
ALL = Grants(PRINCIPAL, frozenset({(GRAPH, "User.ReadWrite.All"), (GRAPH, "UserAuthenticationMethod.ReadWrite.All"),
                                   (GRAPH, "Mail.Send"), (EXO, "Exchange.ManageAsApp")}),
             frozenset({(USER_ADMIN, "User Administrator"), (EXCHANGE_ADMIN, "Exchange Administrator")}))


def test_permission_report_identity_holding_none_lists_every_grant_with_runbooks_and_reasons():
    report = permission_report(RUNBOOKS, Grants(PRINCIPAL))

    assert report.counts() == {"needed": 6, "required": 5, "optional": 1, "held": 0, "missing": 5,
                               "missing_optional": 1, "manual": 1}
    doc = report.to_json()
    assert doc["status"] == "checked" and doc["principal_id"] == PRINCIPAL
    assert doc["missing"] == {
        "app_roles": [
            {"resource": "Microsoft Graph", "resource_id": GRAPH, "roles": [
                {"name": "User.ReadWrite.All", "runbooks": ["rjgit-user_general_reset"],
                 "reasons": ["Resets the password"]},
                {"name": "UserAuthenticationMethod.ReadWrite.All", "runbooks": ["rjgit-user_general_reset"],
                 "reasons": []}]},
            {"resource": "Office 365 Exchange Online", "resource_id": EXO, "roles": [
                {"name": "Exchange.ManageAsApp", "runbooks": ["rjgit-user_general_mail"],
                 "reasons": ["Connects to Exchange Online"]}]}],
        "directory_roles": [
            {"name": "exchange administrator", "template_id": None, "runbooks": ["rjgit-user_general_mail"],
             "reasons": []},
            {"name": "User Administrator", "template_id": USER_ADMIN, "runbooks": ["rjgit-user_general_reset"],
             "reasons": ["Privileged users"]}]}
    assert doc["optional"] == [{"feature": "Email report", "app_roles": [
        {"resource": "Microsoft Graph", "resource_id": GRAPH, "roles": [
            {"name": "Mail.Send", "runbooks": ["rjgit-user_general_mail"], "reasons": ["Mails the report"]}]}],
        "directory_roles": []}]
    assert doc["manual"] == [{"text": "Exclude break-glass accounts",
                              "runbooks": ["rjgit-user_general_mail", "rjgit-user_general_reset"]}]


def test_permission_report_identity_holding_some_lists_only_what_it_lacks():
    some = Grants(PRINCIPAL, frozenset({(GRAPH, "user.readwrite.all"), (EXO, "Exchange.ManageAsApp")}),
                  frozenset({(EXCHANGE_ADMIN, "Exchange Administrator")}))  # matched by name, case and spaces aside

    report = permission_report(RUNBOOKS, some)

    assert report.counts()["held"] == 3 and report.counts()["missing"] == 2
    assert [(g.kind, g.value) for g in report.missing] == [
        ("app_role", "UserAuthenticationMethod.ReadWrite.All"), ("directory_role", "User Administrator")]
    assert [(g.feature, g.value) for g in report.optional] == [("Email report", "Mail.Send")]


def test_permission_report_identity_holding_all_lists_nothing_but_the_manual_steps():
    report = permission_report(RUNBOOKS, ALL)

    assert report.counts() == {"needed": 6, "required": 5, "optional": 1, "held": 6, "missing": 0,
                               "missing_optional": 0, "manual": 1}
    assert report.missing == () and report.optional == () and len(report.manual) == 1


def test_permission_report_directory_role_with_a_template_id_is_matched_by_it_not_by_name():
    renamed = Grants(PRINCIPAL, ALL.app_roles, frozenset({(USER_ADMIN, "Renamed role"),
                                                          ("11111111-2222-3333-4444-555555555555", "Exchange Administrator")}))

    report = permission_report(RUNBOOKS, renamed)

    assert [g.value for g in report.missing] == []  # User Administrator by template, exchange by name
    wrong_template = Grants(PRINCIPAL, ALL.app_roles, frozenset({("99999999-2222-3333-4444-555555555555",
                                                                  "User Administrator")}))
    assert [g.value for g in permission_report(RUNBOOKS, wrong_template).missing] == [
        "exchange administrator", "User Administrator"]


def test_permission_report_a_grant_required_by_one_runbook_and_optional_for_another_is_required():
    rbs = runbooks(a=sidecar(graph=[{"Value": "Mail.Send", "Optional": True, "Feature": "Email report"}]),
                   b=sidecar(graph=["Mail.Send"]))

    report = permission_report(rbs, Grants(PRINCIPAL))

    assert report.counts()["required"] == 1 and report.counts()["optional"] == 0
    assert [(g.value, g.runbooks) for g in report.missing] == [("Mail.Send", ("rjgit-user_general_b",))]
    assert report.optional == ()


def test_permission_report_optional_grant_of_two_features_is_listed_under_each_and_counted_once():
    rbs = runbooks(a=sidecar(graph=[{"Value": "Mail.Send", "Optional": True, "Feature": "Email report"}]),
                   b=sidecar(graph=[{"Value": "Mail.Send", "Optional": True, "Feature": "Alerts"}],
                             roles=[{"Name": "Teams Administrator", "Optional": True}]))

    report = permission_report(rbs, Grants(PRINCIPAL))

    assert [(g.feature, g.value, g.runbooks) for g in report.optional] == [
        ("Alerts", "Mail.Send", ("rjgit-user_general_b",)),
        ("Email report", "Mail.Send", ("rjgit-user_general_a",)),
        (None, "Teams Administrator", ("rjgit-user_general_b",))]
    assert report.counts()["missing_optional"] == 2 and report.counts()["missing"] == 0


def test_permission_report_read_all_is_held_through_readwrite_all_of_the_same_resource():
    rbs = runbooks(a=sidecar(graph=["User.Read.All", "Group.Read.All"], exo=["Organization.Read.All"]))
    grants = Grants(PRINCIPAL, frozenset({(GRAPH, "User.ReadWrite.All"), (EXO, "Group.ReadWrite.All"),
                                          (GRAPH, "Organization.ReadWrite.All")}))

    report = permission_report(rbs, grants)

    assert [(g.resource, g.value) for g in report.missing] == [
        ("Microsoft Graph", "Group.Read.All"), ("Office 365 Exchange Online", "Organization.Read.All")]
    assert report.counts()["held"] == 1


def test_permission_report_not_checked_says_why_and_counts_the_needs():
    report = permission_report(RUNBOOKS, "no identity on the account")

    doc = report.to_json()
    assert doc["status"] == "not checked" and doc["reason"] == "no identity on the account"
    assert doc["counts"] == {"needed": 6, "required": 5, "optional": 1, "held": None, "missing": None,
                             "missing_optional": None, "manual": 1}
    assert doc["missing"] == {"app_roles": [], "directory_roles": []} and doc["optional"] == []
    assert len(doc["manual"]) == 1


def test_permission_report_json_round_trips_and_is_deterministic():
    for grants in (Grants(PRINCIPAL), ALL, "unreadable"):
        report = permission_report(RUNBOOKS, grants)
        assert PermissionReport.from_json(report.to_json()) == report
        assert permission_report(tuple(reversed(RUNBOOKS)), grants) == report


def test_plan_sync_with_grants_reports_only_the_runbooks_the_account_will_hold():
    files = {"user/general/kept.ps1": script(), "user/general/kept.permissions.json": sidecar(graph=["User.Read.All"]),
             "user/general/skipped.ps1": script(),
             "user/general/skipped.permissions.json": sidecar(graph=["Directory.ReadWrite.All"])}
    pairing = pair(catalog(files), snapshot(), Policy(exclude=("*skipped*",)))

    plan = plan_sync(pairing, target="local:x", grants=Grants(PRINCIPAL))

    assert [g.value for g in plan.permissions.missing] == ["User.Read.All"]
    assert plan_sync(pairing, target="local:x").permissions is None
    assert "permissions" not in plan_sync(pairing, target="local:x").to_json()
    assert plan.to_json()["permissions"]["counts"]["needed"] == 1
