"""AzureAccount.read_grants: which identity it reads (the account's system-assigned one, or the
user-assigned one the settings name) and why it cannot, against the ARM emulator and the fake
Microsoft Graph (the real SDK and azure-core over HTTPS)."""

from __future__ import annotations

import socket

import pytest

from fakes.accounts import ARM_ID, FAST, NAME
from fakes.arm import system_identity
from fakes.graph import GRAPH, READER
from rjsync.accounts import open_account
from rjsync.errors import GrantsUnreadable

USER_ASSIGNED = "5a1e0c3d-0000-4000-8000-00000000beef"


@pytest.fixture
def open_with_graph(arm, graph):
    opened = []

    def open_(roles=READER, **options):
        options.setdefault("graph_endpoint", graph.endpoint)
        account = open_account(ARM_ID, arm_endpoint=arm.endpoint, credential=graph.credential(roles),
                               settings=FAST, **options)
        opened.append(account)
        return account

    yield open_
    for account in opened:
        account.close()


def test_azure_account_read_grants_reads_the_system_assigned_identity_from_the_account(arm, graph, open_with_graph):
    principal = graph.add_identity(NAME, system_identity(NAME))
    graph.grant(principal, GRAPH, "User.Read.All")

    grants = open_with_graph().read_grants()

    assert grants.principal_id == principal and grants.app_roles == {(GRAPH, "User.Read.All")}
    assert len(arm.server.requests("GET", r"/automationAccounts/[^/]+$")) == 1
    assert graph.server.requests("GET", rf"/servicePrincipals/{principal}/appRoleAssignments$")


def test_azure_account_read_grants_of_a_user_assigned_identity_named_in_the_settings(arm, graph, open_with_graph):
    graph.add_identity(NAME, system_identity(NAME))
    graph.add_identity("id-runbooks", USER_ASSIGNED)
    graph.grant(USER_ASSIGNED, GRAPH, "User.RevokeSessions.All")
    arm.account.identity = {"type": "UserAssigned", "tenantId": "t", "userAssignedIdentities": {
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-runbooks":
            {"principalId": USER_ASSIGNED, "clientId": "c"}}}

    grants = open_with_graph(permissions_identity=USER_ASSIGNED).read_grants()

    assert grants.principal_id == USER_ASSIGNED and grants.app_roles == {(GRAPH, "User.RevokeSessions.All")}


def test_azure_account_read_grants_with_only_a_user_assigned_identity_and_none_named_says_how(arm, open_with_graph):
    arm.account.identity = {"type": "UserAssigned", "tenantId": "t", "userAssignedIdentities": {}}

    with pytest.raises(GrantsUnreadable) as caught:
        open_with_graph().read_grants()

    assert caught.value.message == (
        "Automation account 'aa-realmjoin-test' has no system-assigned managed identity for its runbooks to run "
        "as; turn it on (Account Settings > Identity) or name the user-assigned identity's principal id in the "
        "manifest (azure.identity).")


def test_azure_account_read_grants_without_graph_rights_is_unreadable_and_names_the_permission(graph, open_with_graph):
    graph.add_identity(NAME, system_identity(NAME))

    with pytest.raises(GrantsUnreadable) as caught:
        open_with_graph(roles=("RoleManagement.Read.Directory",)).read_grants()

    message = caught.value.message
    assert message.startswith(f"Microsoft Graph refused reading the app roles of identity {system_identity(NAME)} "
                              "(Authorization_RequestDenied: Insufficient privileges to complete the operation)")
    assert "application permission Application.Read.All" in message
    assert "graph-token" not in message and "test-token" not in message


def test_azure_account_read_grants_with_graph_unreachable_is_unreadable(arm, open_with_graph):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with pytest.raises(GrantsUnreadable, match=rf"^Cannot reach Microsoft Graph at https://127\.0\.0\.1:{port}/ "):
        open_with_graph(graph_endpoint=f"https://127.0.0.1:{port}").read_grants()
