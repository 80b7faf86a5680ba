"""``rjsync permissions grant``: the missing grants shown as a plan, confirmed, granted one by
one, idempotent on a re-run, a failed grant reported and exit 1. On a directory account the
grants go to its identity.json; on Azure through the fake Microsoft Graph (the real azure-core
over HTTPS), with the account's identity read from the ARM emulator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import rjsync.grants
import rjsync.sync
from fakes.accounts import ARM_ID, FAST, NAME
from fakes.arm import system_identity
from fakes.graph import EXCHANGE, GRANTER, GRAPH, READER, fake_id
from rjsync.accounts.graph import ALREADY_ASSIGNED, open_graph
from rjsync.cli import cli
from rjsync.grants import GraphGranter, grant, plan_grants
from rjsync.settings import SourceSpec, SyncSettings

EXAMPLE = Path(__file__).resolve().parent.parent / "runbooks"
DEMO_IDENTITY = Path(__file__).resolve().parent.parent / ".rjsync-demo" / "account" / "identity.json"
USER_ADMINISTRATOR = fake_id("role", "User Administrator")  # the example sidecar names it without a TemplateId
EXCHANGE_ADMINISTRATOR = "29232cdf-9323-42fd-ade2-1d097af3e4de"
CLOUD_DEVICE_ADMINISTRATOR = "7698a772-787b-4ac8-901f-60d6b08affd2"
#: what the example runbooks require (their three sidecars), by kind
REQUIRED_APP_ROLES = {(GRAPH, "DeviceManagementManagedDevices.Read.All"),
                      (GRAPH, "DeviceManagementManagedDevices.PrivilegedOperations.All"),
                      (GRAPH, "User.Read.All"), (GRAPH, "User.RevokeSessions.All"), (EXCHANGE, "Exchange.ManageAsApp")}


def invoke(*args, input: str | None = None):
    return CliRunner().invoke(cli, ["permissions", "grant", *[str(a) for a in args]], input=input)


# -- a directory account: identity.json ------------------------------------------------------------


@pytest.fixture
def demo(tmp_path) -> Path:
    """A directory account whose identity.json is the demo's (it holds 4 of the 8 grants)."""
    account = tmp_path / "account"
    account.mkdir()
    shutil.copy(DEMO_IDENTITY, account / "identity.json")
    return account


def held(account: Path) -> tuple[set, set]:
    data = json.loads((account / "identity.json").read_text())
    return ({(r["resource"], r["value"]) for r in data.get("appRoles", [])},
            {r["name"] for r in data.get("directoryRoles", [])})


def test_permissions_grant_lists_the_missing_grants_and_grants_nothing_without_approval(demo):
    before = (demo / "identity.json").read_bytes()

    result = invoke("--source", EXAMPLE, "--target", f"local:{demo}")

    assert result.exit_code == 1, result.output
    assert ("8 grants needed, 4 held, 3 required missing, 1 optional missing." in result.output.splitlines()[0])
    assert result.output.splitlines()[3:6] == [
        "  + app role DeviceManagementManagedDevices.PrivilegedOperations.All of Microsoft Graph  "
        "(for rjgit-device_security_rotate-local-admin-password)",
        "  + app role User.RevokeSessions.All of Microsoft Graph  (for rjgit-user_security_revoke-sessions)",
        "  + directory role User Administrator  (for rjgit-user_security_revoke-sessions)"]
    assert result.output.rstrip().endswith("pass --auto-approve to grant without asking.")
    assert (demo / "identity.json").read_bytes() == before
    assert not (demo / "runbooks").exists()  # planning wrote nothing to the account


def test_permissions_grant_grants_then_a_rerun_has_nothing_to_grant(demo):
    first = invoke("--source", EXAMPLE, "--target", f"local:{demo}", "--auto-approve")

    assert first.exit_code == 0, first.output
    assert first.output.rstrip().endswith("Granted 3, already assigned 0, failed 0.")
    apps, roles = held(demo)
    assert (GRAPH, "User.RevokeSessions.All") in apps and "User Administrator" in roles
    assert "Cloud Device Administrator" not in roles  # optional: not without --include-optional

    again = invoke("--source", EXAMPLE, "--target", f"local:{demo}", "--auto-approve")

    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[1] == ("Nothing to grant: the identity holds every required grant. "
                                            "1 optional grant is missing: --include-optional grants it too.")
    assert held(demo) == (apps, roles)

    optional = invoke("--source", EXAMPLE, "--target", f"local:{demo}", "--auto-approve", "--include-optional")
    assert optional.exit_code == 0, optional.output
    assert "Cloud Device Administrator" in held(demo)[1]


def test_permissions_grant_without_an_identity_file_is_one_sentence(tmp_path):
    result = invoke("--source", EXAMPLE, "--target", f"local:{tmp_path / 'account'}", "--auto-approve")

    assert result.exit_code == 1
    assert result.output.startswith("Error: The grants of the identity the runbooks of local:")
    assert "describes no identity" in result.output and "nothing can be granted" in result.output
    assert "Traceback" not in result.output


def test_permissions_grant_an_app_role_without_a_resource_id_fails_and_keeps_the_identity_file_valid(tmp_path):
    src, account = tmp_path / "src", tmp_path / "account"
    (src / "user" / "general").mkdir(parents=True)
    (src / "user" / "general" / "x.ps1").write_text("<#\n.SYNOPSIS\nX.\n#>\nparam()\n")
    (src / "user" / "general" / "x.permissions.json").write_text(json.dumps({
        "SchemaVersion": 2, "Permissions": [{"Name": "Microsoft Graph", "AppRoleAssignments": ["User.Read.All"]}],
        "Roles": [], "ManualPermissions": []}))
    account.mkdir()
    (account / "identity.json").write_text("{}")

    result = invoke("--source", src, "--target", f"local:{account}", "--auto-approve")

    assert result.exit_code == 1, result.output
    assert "give no resource app id" in result.output
    assert json.loads((account / "identity.json").read_text()) == {}
    again = invoke("--source", src, "--target", f"local:{account}", "--auto-approve")  # the file still reads
    assert "Granted 0, already assigned 0, failed 1." in again.output


# -- Azure: the ARM emulator and the fake Microsoft Graph --------------------------------------------


@pytest.fixture
def azure(arm, gallery, graph, monkeypatch):
    """The emulated account's system-assigned identity (holding nothing) in the fake Graph, which
    knows every grant the example runbooks need; the command reads with a reader identity and
    grants with ``granter['roles']``."""
    principal = graph.add_identity(NAME, system_identity(NAME))
    graph.seed_from_sidecars(EXAMPLE)
    real_open_account = rjsync.sync.open_account
    granter = {"roles": GRANTER}

    def on_the_emulator(target, **options):
        return real_open_account(target, **{**options, "arm_endpoint": arm.endpoint, "settings": FAST,
                                            "credential": graph.credential(READER), "graph_endpoint": graph.endpoint,
                                            "gallery_url": gallery.base_url})

    def graph_to_grant_with(**options):
        return open_graph(**{**options, "credential": graph.credential(granter["roles"]),
                             "graph_endpoint": graph.endpoint})

    monkeypatch.setattr(rjsync.sync, "open_account", on_the_emulator)
    monkeypatch.setattr(rjsync.grants, "open_graph", graph_to_grant_with)
    return principal, granter


def test_permissions_grant_on_azure_assigns_app_roles_and_directory_roles_through_graph(azure, graph, arm):
    principal, _ = azure

    result = invoke("--source", EXAMPLE, "--target", ARM_ID, "--auto-approve")

    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("Granted 7, already assigned 0, failed 0.")
    apps, roles = graph.held(principal)
    assert apps == REQUIRED_APP_ROLES
    assert roles == {EXCHANGE_ADMINISTRATOR, USER_ADMINISTRATOR.lower()}  # the one without TemplateId by its name
    assert arm.server.requests("PUT") == [] and arm.server.requests("PATCH") == []  # the account is only read

    again = invoke("--source", EXAMPLE, "--target", ARM_ID, "--auto-approve")
    assert again.exit_code == 0, again.output
    assert "Nothing to grant" in again.output
    assert graph.held(principal) == (apps, roles)


def test_permissions_grant_on_azure_a_failed_grant_is_reported_and_exits_1(azure, graph):
    principal, granter = azure
    granter["roles"] = ("Application.Read.All", "AppRoleAssignment.ReadWrite.All")  # no RoleManagement.ReadWrite

    result = invoke("--source", EXAMPLE, "--target", ARM_ID, "--auto-approve")

    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert sum(line.startswith("  granted ") for line in lines) == 5
    failed = [line for line in lines if line.startswith("  failed ")]
    assert len(failed) == 2 and all("RoleManagement" in line for line in failed)
    assert result.output.rstrip().endswith("Granted 5, already assigned 0, failed 2.")
    assert graph.held(principal)[0] == REQUIRED_APP_ROLES and graph.held(principal)[1] == set()


def test_permissions_grant_a_grant_made_since_the_plan_is_already_assigned(azure, graph):
    principal, _ = azure
    plan = plan_grants(SyncSettings(source=SourceSpec(str(EXAMPLE)), target=ARM_ID))
    graph.grant(principal, GRAPH, "User.Read.All")  # someone else granted it meanwhile
    granter = GraphGranter(rjsync.grants.open_graph())
    try:
        results = grant(plan, granter)
    finally:
        granter.close()

    by_value = {r.grant.value: r.status for r in results}
    assert by_value["User.Read.All"] == ALREADY_ASSIGNED
    assert sorted(set(by_value.values())) == sorted({"granted", ALREADY_ASSIGNED})
    assert graph.held(principal)[0] == REQUIRED_APP_ROLES


# -- the identity the runbooks run as, named on the command line -----------------------------------

USER_ASSIGNED = "5a1e0c3d-0000-4000-8000-00000000beef"


def test_apply_planfile_checks_the_user_assigned_identity_that_identity_names(azure, graph, arm, tmp_path):
    """The account runs its runbooks as a user-assigned identity holding every grant, its
    system-assigned one holds none: a saved plan applied with --require-permissions is checked
    against the identity --identity names (the plan file does not carry it)."""
    graph.add_identity("id-runbooks", USER_ASSIGNED)
    for resource, value in REQUIRED_APP_ROLES:
        graph.grant(USER_ASSIGNED, resource, value)
    for role in (EXCHANGE_ADMINISTRATOR, USER_ADMINISTRATOR):
        graph.assign_role(USER_ASSIGNED, role)
    arm.account.identity = {"type": "SystemAssigned, UserAssigned", "tenantId": "t",
                            "principalId": system_identity(NAME), "userAssignedIdentities": {
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-runbooks":
            {"principalId": USER_ASSIGNED, "clientId": "c"}}}
    saved = tmp_path / "plan.json"

    planned = CliRunner().invoke(cli, ["plan", "--source", str(EXAMPLE), "--target", ARM_ID,
                                       "--identity", USER_ASSIGNED.upper(), "--no-modules", "--out", str(saved)])
    assert planned.exit_code == 0, planned.output
    assert f"Permissions of the identity {USER_ASSIGNED}: " in planned.output
    assert "no required grant missing" in planned.output

    unnamed = CliRunner().invoke(cli, ["apply", str(saved), "--require-permissions", "--auto-approve"])
    assert unnamed.exit_code == 1, unnamed.output
    assert "required grants are missing from the identity the runbooks run as" in unnamed.output
    assert arm.server.requests("PUT") == []

    named = CliRunner().invoke(cli, ["apply", str(saved), "--require-permissions", "--auto-approve",
                                     "--identity", USER_ASSIGNED])
    assert named.exit_code == 0, named.output
    planned_runbooks = {c["name"] for c in json.loads(saved.read_text())["changes"] if c["kind"] == "runbook"}
    assert planned_runbooks and set(arm.account.runbooks) == planned_runbooks


def test_identity_flag_must_be_a_guid_and_names_one_account(tmp_path):
    bad = CliRunner().invoke(cli, ["plan", "--source", str(EXAMPLE), "--target", f"local:{tmp_path / 'a'}",
                                   "--identity", "id-runbooks\x1b[31m"])
    assert bad.exit_code != 0 and "--identity" in bad.output and "not a GUID" in bad.output
    assert "\x1b" not in bad.output
    folder = CliRunner().invoke(cli, ["plan", "--manifest", str(EXAMPLE.parent / "manifests"),
                                      "--identity", USER_ASSIGNED])
    assert folder.exit_code != 0 and "give each account's in its manifest (azure.identity)" in folder.output
    plain = CliRunner().invoke(cli, ["plan", "--source", str(EXAMPLE), "--target", f"local:{tmp_path / 'a'}",
                                     "--graph-endpoint", "http://graph.example"])
    assert plain.exit_code != 0 and "use an https:// URL" in plain.output
