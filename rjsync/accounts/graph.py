"""Microsoft Graph: the only module that talks to it. It reads and grants what the identity
the runbooks run as holds: app roles (application permissions of Microsoft Graph, Exchange
Online, Defender, ...) and Entra directory roles.

- Reading (``Graph.read_grants``) needs Application.Read.All and RoleManagement.Read.Directory:
  ``GET /v1.0/servicePrincipals/{id}/appRoleAssignments`` gives ``{resourceId, appRoleId}``;
  the names come from each resource's service principal (``GET /v1.0/servicePrincipals/{id}``,
  its ``appRoles``, read once per resource); ``GET /v1.0/roleManagement/directory/
  roleAssignments?$filter=principalId eq '{id}'`` gives role definition ids, resolved to
  ``(templateId, displayName)`` once each. Only tenant-wide role assignments (directory scope
  ``/``) count: one scoped to an administrative unit does not give the role over the tenant.
- Granting (``Graph.grant_app_role``, ``Graph.grant_directory_role``) needs
  AppRoleAssignment.ReadWrite.All (with Application.Read.All) and
  RoleManagement.ReadWrite.Directory. Both are idempotent: Graph's "already exists" answer is
  ``ALREADY_ASSIGNED``, so they are retried like reads (a retry after a lost answer meets it).
  A grant never removes anything.
- HTTP is azure-core's: the retry policy (429 with Retry-After, 5xx, dropped connections), the
  bearer-token policy (https only) with the credential of ``rjsync.accounts.credentials``, and
  its paging (``ItemPaged``) over ``@odata.nextLink``, which must stay on the Graph endpoint so
  the token is never sent elsewhere. Endpoint and token scope are the cloud's
  (``Cloud.graph_endpoint``, ``Cloud.graph_scope``).
- Every failure is one ``AccountError`` sentence (``GrantsUnreadable`` for reading): which call,
  what Graph answered, and for a 403 which Graph permission the identity lacks and how to give
  it. No token ever appears in one.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from urllib.parse import quote

from azure.core import PipelineClient
from azure.core.exceptions import AzureError, ClientAuthenticationError, ServiceRequestError
from azure.core.paging import ItemPaged
from azure.core.pipeline.policies import (
    BearerTokenCredentialPolicy,
    HeadersPolicy,
    ProxyPolicy,
    RetryPolicy,
    UserAgentPolicy,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest

from rjsync.accounts.base import Grants, is_guid
from rjsync.accounts.credentials import CLOUDS, Cloud
from rjsync.accounts.transport import TransportSettings
from rjsync.errors import AccountError, GrantsUnreadable

#: What ``grant_app_role`` and ``grant_directory_role`` return.
GRANTED = "granted"
ALREADY_ASSIGNED = "already assigned"

#: The Graph application permissions an identity needs to read grants, and to give them.
READ_PERMISSIONS = ("Application.Read.All", "RoleManagement.Read.Directory")
GRANT_PERMISSIONS = ("Application.Read.All", "AppRoleAssignment.ReadWrite.All", "RoleManagement.ReadWrite.Directory")

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

_READ_SP, _READ_ROLES = READ_PERMISSIONS
_ALL_METHODS = frozenset(["HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST", "PATCH"])


#: The Graph client's knobs are the transport's (the Azure account passes its own settings).
GraphSettings = TransportSettings


@dataclass
class _Resource:
    """A resource app's service principal in the tenant and its application roles."""

    id: str
    app_id: str
    name: str
    roles: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # role id -> (value, member types)

    def application_role(self, value: str) -> str | None:
        """The id of the app role ``value`` that applications can hold (exact spelling first)."""
        found = [(rid, v) for rid, (v, kinds) in self.roles.items() if "Application" in kinds]
        for rid, v in found:
            if v == value:
                return rid
        return next((rid for rid, v in found if v.lower() == value.lower()), None)


class _Failure(Exception):
    """A Graph answer that is not a success, before it becomes a sentence."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Graph:
    """Microsoft Graph for one signed-in identity in one cloud. Thread-safe; caches the
    resources' app roles and the role definitions it read for its lifetime (one run)."""

    def __init__(self, credential, *, cloud: Cloud = CLOUDS["public"], settings: TransportSettings | None = None,
                 auth: str = "default"):
        settings = settings or TransportSettings()
        self.endpoint = cloud.graph_endpoint.rstrip("/") + "/"
        self.auth = auth
        self._client = PipelineClient(
            base_url=self.endpoint,
            policies=[
                HeadersPolicy({"Accept": "application/json"}),
                UserAgentPolicy(sdk_moniker="rjsync"),
                ProxyPolicy(),
                RetryPolicy(**settings.retries()),
                BearerTokenCredentialPolicy(credential, cloud.graph_scope),
            ],
            transport=RequestsTransport(connection_verify=settings.verify(), read_timeout=settings.read_timeout),
        )
        self._lock = threading.Lock()
        self._by_id: dict[str, _Resource] = {}
        self._by_app_id: dict[str, _Resource] = {}
        self._definitions: dict[str, tuple[str, str]] = {}

    # -- reading --------------------------------------------------------------------------------

    def read_grants(self, principal_id: str) -> Grants:
        """The app roles and tenant-wide directory roles the service principal holds.
        Raises ``GrantsUnreadable`` with the reason (one sentence)."""
        pid = _check_guid(principal_id, "identity", GrantsUnreadable)
        try:
            app_roles = self._app_roles_of(pid)
            directory_roles = self._directory_roles_of(pid)
        except GrantsUnreadable:
            raise
        except AccountError as err:
            raise GrantsUnreadable(err.message) from None
        return Grants(pid, frozenset(app_roles), frozenset(directory_roles))

    def _app_roles_of(self, pid: str) -> set[tuple[str, str]]:
        action = f"reading the app roles of identity {pid}"
        items = self._list(f"v1.0/servicePrincipals/{pid}/appRoleAssignments", action, _READ_SP,
                           not_found=f"Identity {pid} was not found in Microsoft Graph (no service principal "
                                     "with that object id in the tenant); check the identity's principal id.")
        held = set()
        for item in items:
            resource_id, role_id = str(item.get("resourceId") or ""), str(item.get("appRoleId") or "").lower()
            if not is_guid(resource_id):
                continue
            resource = self._resource(resource_id)
            value = resource.roles.get(role_id) if resource else None
            if value is not None:  # else the default access role (all zeros), or a role since removed
                held.add((resource.app_id.lower(), value[0]))
        return held

    def _directory_roles_of(self, pid: str) -> set[tuple[str, str]]:
        action = f"reading the directory roles of identity {pid}"
        query = "$filter=" + quote(f"principalId eq '{pid}'", safe="")
        held = set()
        for item in self._list(f"v1.0/roleManagement/directory/roleAssignments?{query}", action, _READ_ROLES):
            if (item.get("directoryScopeId") or "/") != "/":
                continue  # scoped to an administrative unit or an object: not the tenant-wide role
            definition = str(item.get("roleDefinitionId") or "")
            if is_guid(definition):
                held.add(self._definition(definition, action, _READ_ROLES))
        return held

    def _resource(self, resource_id: str) -> _Resource | None:
        key = resource_id.lower()
        with self._lock:
            if key in self._by_id:
                return self._by_id[key]
        try:
            body = self._json("GET", f"v1.0/servicePrincipals/{key}?$select=id,appId,displayName,appRoles",
                              f"reading the app roles of resource {key}", _READ_SP)
        except _NotFound:
            return None
        return self._remember(body)

    def _resource_by_app_id(self, app_id: str) -> _Resource:
        key = _check_guid(app_id, "resource app", AccountError)
        with self._lock:
            if key in self._by_app_id:
                return self._by_app_id[key]
        try:
            body = self._json("GET", f"v1.0/servicePrincipals(appId='{key}')?$select=id,appId,displayName,appRoles",
                              f"reading the service principal of resource app {key}", _READ_SP)
        except _NotFound:
            raise AccountError(f"The resource app {key} has no service principal in the tenant, so none of its "
                               "permissions can be granted; check the resource id in the permissions file, or "
                               "add the app to the tenant first.") from None
        return self._remember(body)

    def _remember(self, body: dict) -> _Resource:
        roles = {}
        for role in body.get("appRoles") or []:
            if isinstance(role, dict) and is_guid(role.get("id")) and isinstance(role.get("value"), str):
                kinds = tuple(str(k) for k in role.get("allowedMemberTypes") or ())
                roles[role["id"].lower()] = (role["value"], kinds)
        resource = _Resource(str(body.get("id") or "").lower(), str(body.get("appId") or "").lower(),
                             str(body.get("displayName") or body.get("appId") or ""), roles)
        with self._lock:
            self._by_id[resource.id] = resource
            self._by_app_id[resource.app_id] = resource
        return resource

    def _definition(self, definition_id: str, action: str, needs: str) -> tuple[str, str]:
        key = definition_id.lower()
        with self._lock:
            if key in self._definitions:
                return self._definitions[key]
        body = self._json("GET", f"v1.0/roleManagement/directory/roleDefinitions/{key}", action, needs,
                          not_found=f"The directory role {key} does not exist in the tenant; check the "
                                    "TemplateId in the permissions file.")
        value = (str(body.get("templateId") or key).lower(), str(body.get("displayName") or key))
        with self._lock:
            self._definitions[key] = value
        return value

    def role_template_by_name(self, name: str) -> str:
        """The template id of the directory role displayed as ``name`` (a permissions file that
        names a role without its TemplateId): ``GET roleDefinitions?$filter=displayName eq '…'``
        (learn.microsoft.com/graph/api/rbacapplication-list-roledefinitions: $filter on displayName)."""
        quoted = name.replace("'", "''")
        action = f"looking up the directory role '{name}'"
        query = quote(f"displayName eq '{quoted}'", safe="")
        found = [item for item in self._list(f"v1.0/roleManagement/directory/roleDefinitions?$filter={query}",
                                             action, _READ_ROLES) if isinstance(item, dict)]
        if not found:
            raise AccountError(f"The tenant has no directory role named '{name}'; check the role's name in the "
                               "permissions file.")
        return str(found[0].get("templateId") or found[0].get("id")).lower()

    # -- granting -------------------------------------------------------------------------------

    def grant_app_role(self, principal_id: str, resource_app_id: str, value: str) -> str:
        """Give the identity the application permission ``value`` of the resource app
        (e.g. Microsoft Graph's User.Read.All): ``GRANTED`` or ``ALREADY_ASSIGNED``."""
        pid = _check_guid(principal_id, "identity", AccountError)
        resource = self._resource_by_app_id(resource_app_id)
        role_id = resource.application_role(value)
        if role_id is None:
            raise AccountError(f"{resource.name} ({resource.app_id}) has no application permission '{value}'; "
                               "check its spelling in the permissions file.")
        body = {"principalId": pid, "resourceId": resource.id, "appRoleId": role_id}
        action = f"granting {resource.name}'s {value} to identity {pid}"
        try:
            self._json("POST", f"v1.0/servicePrincipals/{pid}/appRoleAssignments", action,
                       "AppRoleAssignment.ReadWrite.All", body=body, not_found=_no_identity(pid))
        except _AlreadyThere:
            return ALREADY_ASSIGNED
        return GRANTED

    def grant_directory_role(self, principal_id: str, template_id: str) -> str:
        """Give the identity the built-in directory role ``template_id`` over the whole tenant
        (for built-in roles the definition id is the template id): ``GRANTED`` or
        ``ALREADY_ASSIGNED``."""
        pid = _check_guid(principal_id, "identity", AccountError)
        tid = _check_guid(template_id, "directory role template", AccountError)
        _, name = self._definition(tid, f"reading the directory role {tid}", _READ_ROLES)
        body = {"@odata.type": "#microsoft.graph.unifiedRoleAssignment", "roleDefinitionId": tid,
                "principalId": pid, "directoryScopeId": "/"}
        try:
            self._json("POST", "v1.0/roleManagement/directory/roleAssignments",
                       f"assigning the directory role {name} to identity {pid}", "RoleManagement.ReadWrite.Directory",
                       body=body, not_found=_no_identity(pid))
        except _AlreadyThere:
            return ALREADY_ASSIGNED
        return GRANTED

    def close(self) -> None:
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- HTTP -----------------------------------------------------------------------------------

    def _list(self, path: str, action: str, needs: str, *, not_found: str | None = None) -> ItemPaged:
        def get_next(link):
            return self._json("GET", link or path, action, needs, not_found=not_found)

        def extract(page):
            link = page.get("@odata.nextLink") or None
            if link is not None and not str(link).lower().startswith(self.endpoint.lower()):
                raise AccountError(f"Microsoft Graph answered {action} with a next page outside "
                                   f"{self.endpoint}; refusing to send the token there.")
            items = page.get("value")
            return link, iter(items if isinstance(items, list) else [])

        return ItemPaged(get_next, extract)

    def _json(self, method: str, path: str, action: str, needs: str, *, body=None,
              not_found: str | None = None) -> dict:
        url = path if path.lower().startswith("https://") else self.endpoint + path
        request = HttpRequest(method, url, json=body) if body is not None else HttpRequest(method, url)
        try:
            response = self._client.send_request(request, retry_on_methods=_ALL_METHODS)
        except ClientAuthenticationError as err:
            raise AccountError(f"Could not get a Microsoft Graph access token (--auth {self.auth}) while "
                               f"{action}: {_first_line(err)}") from None
        except ServiceRequestError as err:
            raise AccountError(f"Cannot reach Microsoft Graph at {self.endpoint} while {action}: "
                               f"{_first_line(err)}.") from None
        except AzureError as err:
            raise AccountError(f"The connection to Microsoft Graph broke while {action}: {_first_line(err)}; "
                               "run again.") from None
        if 200 <= response.status_code < 300:
            try:
                value = response.json() if response.content else {}
            except ValueError:
                raise AccountError(f"Microsoft Graph answered {action} with something that is not JSON.") from None
            if not isinstance(value, dict):
                raise AccountError(f"Microsoft Graph answered {action} with JSON that is not an object.")
            return value
        code, message = _service_error(response)
        if method == "POST" and _already_assigned(response.status_code, message):
            raise _AlreadyThere()
        if response.status_code == 404:
            if not_found is None:
                raise _NotFound()
            raise AccountError(not_found)
        raise AccountError(self._sentence(response.status_code, code, message, action, needs))

    def _sentence(self, status: int, code: str, message: str, action: str, needs: str) -> str:
        detail = f"{code}: {message}" if code and message else (code or message or f"HTTP {status}")
        detail = detail.rstrip(".")
        if status == 403:
            return (f"Microsoft Graph refused {action} ({detail}): the identity rjsync signs in with "
                    f"(--auth {self.auth}) needs the Microsoft Graph application permission {needs}, which "
                    "an administrator grants as an app-role assignment (e.g. New-MgServicePrincipalAppRoleAssignment).")
        if status == 401:
            return (f"Microsoft Graph rejected the token while {action} ({detail}); check --auth and that "
                    "the identity belongs to the tenant.")
        if status == 429:
            return (f"Microsoft Graph kept throttling requests while {action} and the retries ran out "
                    f"({detail}); wait a few minutes and run again.")
        return f"Microsoft Graph refused {action} (HTTP {status}, {detail})."


class _NotFound(Exception):
    pass


class _AlreadyThere(Exception):
    pass


def open_graph(*, auth: str = "default", client_id: str | None = None, cloud: str = "public",
               graph_endpoint: str | None = None, credential=None, settings: GraphSettings | None = None) -> Graph:
    """A ``Graph`` for the identity ``auth``/``client_id`` names (the same options as the Azure
    account; ``credential`` replaces them) in ``cloud``, or at ``graph_endpoint`` (tests)."""
    from rjsync.accounts.credentials import make_credential, resolve_cloud

    resolved = resolve_cloud(cloud, graph_endpoint=graph_endpoint)
    label = auth
    if credential is None:
        credential = make_credential(auth, client_id=client_id, cloud=resolved)
    else:
        label = "custom credential"
    return Graph(credential, cloud=resolved, settings=settings or GraphSettings(), auth=label)


def _check_guid(value: str, what: str, error: type[AccountError]) -> str:
    if not is_guid(value):
        raise error(f"The {what} id {value!r} is not a GUID (like 00000003-0000-0000-c000-000000000000).")
    return value.lower()


def _no_identity(pid: str) -> str:
    return f"Identity {pid} was not found in Microsoft Graph; check the identity's principal (object) id."


def _already_assigned(status: int, message: str) -> bool:
    """Graph's answers to a grant that is already there: app roles 400 "Permission being assigned
    already exists on the object"; role assignments 400 "A conflicting object with one or more of
    the specified property values is present in the directory" (or a 409)."""
    text = message.lower()
    return status == 409 or (status == 400 and ("already exists" in text or "conflicting object" in text))


def _service_error(response) -> tuple[str, str]:
    """Graph's ``error.code`` and ``error.message``; a message that is itself JSON (the role
    management API's ``{"errorCode": "PermissionScopeNotGranted", "message": ...}``) unwrapped."""
    try:
        body = response.json()
    except Exception:  # noqa: BLE001 - not JSON: the status says it all
        return "", ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    code, message = str(error.get("code") or ""), str(error.get("message") or "")
    try:
        inner = json.loads(message) if message.startswith("{") else None
    except ValueError:
        inner = None
    if isinstance(inner, dict):
        code = str(inner.get("errorCode") or code)
        message = str(inner.get("message") or "")
    return code, " ".join(message.split())[:300]


def _first_line(err: Exception) -> str:
    text = (getattr(err, "message", None) or str(err) or type(err).__name__).strip()
    return text.splitlines()[0] if text else type(err).__name__
