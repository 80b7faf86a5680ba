"""rjsync.accounts.graph against the fake Microsoft Graph (azure-core over HTTPS, nothing mocked)."""

from __future__ import annotations

import dataclasses

import pytest

from fakes.graph import DEFENDER, EXCHANGE, GRANTER, GRAPH, READER
from rjsync.accounts.credentials import resolve_cloud
from rjsync.accounts.graph import ALREADY_ASSIGNED, GRANTED, Graph, GraphSettings, open_graph
from rjsync.errors import AccountError, GrantsUnreadable

FAST = GraphSettings(retry_backoff_factor=0.001, retry_backoff_max=0.01, read_timeout=10)
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"  # the example sidecar's TemplateId
CLOUD_DEVICE_ADMIN = "7698a772-787b-4ac8-901f-60d6b08affd2"


@pytest.fixture
def connect(graph):
    """``connect(roles)``: a Graph client on the fake whose caller holds ``roles``."""
    made = []

    def make(roles=READER, *, cloud="public", **settings) -> Graph:
        client = open_graph(cloud=cloud, graph_endpoint=graph.endpoint, credential=graph.credential(roles),
                            settings=dataclasses.replace(FAST, **settings))
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_graph_read_grants_names_app_roles_and_directory_roles(graph, connect):
    identity = graph.add_identity()
    graph.grant(identity, GRAPH, "User.Read.All")
    graph.grant(identity, EXCHANGE, "Exchange.ManageAsApp")
    graph.assign_role(identity, EXCHANGE_ADMIN)
    graph.assign_role(identity, CLOUD_DEVICE_ADMIN, scope="/administrativeUnits/au-1")  # not tenant-wide

    grants = connect().read_grants(identity.upper())

    assert grants.principal_id == identity
    assert grants.app_roles == {(GRAPH, "User.Read.All"), (EXCHANGE, "Exchange.ManageAsApp")}
    assert grants.directory_roles == {(EXCHANGE_ADMIN, "Exchange Administrator")}


def test_graph_read_grants_follows_next_links_and_reads_each_resource_once(graph, connect):
    identity = graph.add_identity()
    values = sorted(r["value"] for r in graph.resource(GRAPH)["appRoles"])
    for value in values:
        graph.grant(identity, GRAPH, value)
    graph.add_app_roles(DEFENDER, ["Machine.Read.All"])
    graph.grant(identity, DEFENDER, "Machine.Read.All")
    for n, name in enumerate(("Role A", "Role B", "Role C")):
        template = f"11111111-2222-4333-8444-55555555555{n}"
        graph.add_role_definition(template, name)
        graph.assign_role(identity, template)
    graph.page_size = 2

    grants = connect().read_grants(identity)

    assert grants.app_roles == {(GRAPH, v) for v in values} | {(DEFENDER, "Machine.Read.All")}
    assert {n for _, n in grants.directory_roles} == {"Role A", "Role B", "Role C"}
    pages = graph.server.requests("GET", r"/appRoleAssignments$")
    assert len(pages) == (len(values) + 1 + 1) // 2 and all(p.status == 200 for p in pages)
    assert len(graph.server.requests("GET", r"/roleAssignments$")) == 2
    assert len(graph.server.requests("GET", rf"/servicePrincipals/{graph.resource(GRAPH)['id']}$")) == 1


def test_graph_read_grants_waits_out_throttling(graph, connect):
    identity = graph.add_identity()
    graph.grant(identity, GRAPH, "User.Read.All")
    graph.server.fail(429, path=r"/appRoleAssignments$", times=2, retry_after="0", code="TooManyRequests")

    grants = connect().read_grants(identity)

    assert grants.app_roles == {(GRAPH, "User.Read.All")}
    statuses = [r.status for r in graph.server.requests("GET", r"/appRoleAssignments$")]
    assert statuses == [429, 429, 200]


def test_graph_read_grants_throttled_past_the_retries_is_one_sentence(graph, connect):
    identity = graph.add_identity()
    graph.server.fail(429, path=r"/appRoleAssignments$", retry_after="0", code="TooManyRequests")

    with pytest.raises(GrantsUnreadable) as caught:
        connect(retry_total=2, retry_status=2).read_grants(identity)

    assert caught.value.message == (
        f"Microsoft Graph kept throttling requests while reading the app roles of identity {identity} and the "
        "retries ran out (TooManyRequests: Injected fault: HTTP 429); wait a few minutes and run again.")


@pytest.mark.parametrize("roles, needs", [
    (("RoleManagement.Read.Directory",), "Application.Read.All"),
    (("Application.Read.All",), "RoleManagement.Read.Directory"),
])
def test_graph_read_grants_without_a_read_permission_names_it(graph, connect, roles, needs):
    identity = graph.add_identity()

    with pytest.raises(GrantsUnreadable) as caught:
        connect(roles).read_grants(identity)

    message = caught.value.message
    assert f"needs the Microsoft Graph application permission {needs}, which an administrator grants" in message
    assert message.startswith("Microsoft Graph refused reading the ")
    assert "\n" not in message and "graph-token" not in message


def test_graph_read_grants_of_an_unknown_identity_says_so(graph, connect):
    missing = "0f0f0f0f-0000-4000-8000-000000000001"
    with pytest.raises(GrantsUnreadable, match=f"Identity {missing} was not found in Microsoft Graph"):
        connect().read_grants(missing)


def test_graph_read_grants_refuses_a_principal_that_is_not_a_guid(graph, connect):
    with pytest.raises(GrantsUnreadable, match="The identity id '../me' is not a GUID"):
        connect().read_grants("../me")
    assert graph.server.requests() == []


def test_graph_token_of_another_audience_is_refused(graph, connect):
    identity = graph.add_identity()
    graph.audience = "https://graph.microsoft.us"  # a US Government Graph, asked with a public token

    with pytest.raises(GrantsUnreadable) as caught:
        connect().read_grants(identity)

    assert "Microsoft Graph rejected the token while reading the app roles" in caught.value.message
    assert "Invalid audience" in caught.value.message


@pytest.mark.parametrize("cloud, endpoint, scope", [
    ("public", "https://graph.microsoft.com/", "https://graph.microsoft.com/.default"),
    ("usgovernment", "https://graph.microsoft.us/", "https://graph.microsoft.us/.default"),
    ("china", "https://microsoftgraph.chinacloudapi.cn/", "https://microsoftgraph.chinacloudapi.cn/.default"),
])
def test_graph_endpoint_and_scope_follow_the_cloud(cloud, endpoint, scope):
    resolved = resolve_cloud(cloud)
    assert (resolved.graph_endpoint, resolved.graph_scope) == (endpoint, scope)


def test_graph_in_a_sovereign_cloud_asks_for_its_scope(graph, connect):
    identity = graph.add_identity()
    graph.grant(identity, GRAPH, "User.Read.All")
    graph.audience = "https://microsoftgraph.chinacloudapi.cn"

    client = connect(cloud="china")
    grants = client.read_grants(identity)

    assert grants.app_roles == {(GRAPH, "User.Read.All")}
    assert client.endpoint == graph.endpoint


def test_graph_endpoint_override_must_be_https():
    with pytest.raises(AccountError, match="The Microsoft Graph endpoint 'http://127.0.0.1:1' must be an https:// URL"):
        resolve_cloud("public", graph_endpoint="http://127.0.0.1:1")


# -- granting ------------------------------------------------------------------------------------


def test_graph_grant_app_role_then_again_is_already_assigned(graph, connect):
    identity = graph.add_identity()
    client = connect(GRANTER)

    assert client.grant_app_role(identity, GRAPH, "User.Read.All") == GRANTED
    assert client.grant_app_role(identity, GRAPH.upper(), "User.Read.All") == ALREADY_ASSIGNED

    assert graph.held(identity)[0] == {(GRAPH, "User.Read.All")}
    posts = graph.server.requests("POST", r"/appRoleAssignments$")
    assert [p.status for p in posts] == [201, 400]
    assert len(graph.server.requests("GET", r"/servicePrincipals\(appId=")) == 1  # the resource read once


def test_graph_grant_directory_role_then_again_is_already_assigned(graph, connect):
    identity = graph.add_identity()
    client = connect(GRANTER)

    assert client.grant_directory_role(identity, EXCHANGE_ADMIN) == GRANTED
    assert client.grant_directory_role(identity, EXCHANGE_ADMIN) == ALREADY_ASSIGNED
    graph.role_conflict_status = 409
    graph.role_assignments[0]["directoryScopeId"] = "/"
    assert client.grant_directory_role(identity, EXCHANGE_ADMIN) == ALREADY_ASSIGNED

    assert graph.held(identity)[1] == {EXCHANGE_ADMIN}
    body = graph.server.requests("POST", r"/roleAssignments$")[0].body
    assert b'"directoryScopeId": "/"' in body and EXCHANGE_ADMIN.encode() in body


def test_graph_grant_is_retried_through_throttling(graph, connect):
    identity = graph.add_identity()
    graph.server.fail(429, method="POST", path=r"/appRoleAssignments$", times=1, retry_after="0",
                      code="TooManyRequests")

    assert connect(GRANTER).grant_app_role(identity, EXCHANGE, "Exchange.ManageAsApp") == GRANTED
    assert [p.status for p in graph.server.requests("POST")] == [429, 201]


def test_graph_grant_without_the_right_permission_names_it(graph, connect):
    identity = graph.add_identity()
    client = connect(READER)

    with pytest.raises(AccountError) as app_role:
        client.grant_app_role(identity, GRAPH, "User.Read.All")
    with pytest.raises(AccountError) as role:
        client.grant_directory_role(identity, EXCHANGE_ADMIN)

    assert f"Microsoft Graph refused granting Microsoft Graph's User.Read.All to identity {identity} " \
           "(Authorization_RequestDenied: Insufficient privileges to complete the operation): the identity " \
           "rjsync signs in with (--auth custom credential) needs the Microsoft Graph application permission " \
           "AppRoleAssignment.ReadWrite.All" in app_role.value.message
    assert "(PermissionScopeNotGranted: Authorization failed due to missing permission scope " \
           "RoleManagement.ReadWrite.Directory)" in role.value.message
    assert "permission RoleManagement.ReadWrite.Directory, which" in role.value.message
    assert graph.held(identity) == (set(), set())


def test_graph_grant_of_an_unknown_role_value_or_resource_says_which(graph, connect):
    identity = graph.add_identity()
    client = connect(GRANTER)

    with pytest.raises(AccountError) as value:
        client.grant_app_role(identity, GRAPH, "User.Read.Everything")
    with pytest.raises(AccountError) as resource:
        client.grant_app_role(identity, "12345678-1234-4234-8234-123456789abc", "X.Read")
    with pytest.raises(AccountError) as role:
        client.grant_directory_role(identity, "12345678-1234-4234-8234-123456789abc")

    assert value.value.message == (f"Microsoft Graph ({GRAPH}) has no application permission "
                                   "'User.Read.Everything'; check its spelling in the permissions file.")
    assert resource.value.message.startswith("The resource app 12345678-1234-4234-8234-123456789abc has no "
                                             "service principal in the tenant")
    assert role.value.message.startswith("The directory role 12345678-1234-4234-8234-123456789abc does not exist")
    assert graph.server.requests("POST") == []
