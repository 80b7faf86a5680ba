"""A loopback fake of Microsoft Graph (v1.0): service principals with their app roles, app-role
assignments and directory role assignments, for ``rjsync.accounts.graph``.

Routes (paths compared case-insensitively, ids in lower case):

- ``GET /v1.0/servicePrincipals/{id}`` and ``GET /v1.0/servicePrincipals(appId='{appId}')``:
  ``{id, appId, displayName, servicePrincipalType, appRoles: [{id, value, displayName,
  allowedMemberTypes, isEnabled}]}``.
- ``GET|POST /v1.0/servicePrincipals/{id}/appRoleAssignments``: the assignments the principal
  holds (``{id, principalId, resourceId, appRoleId, ...}``); a POST gives one (201).
- ``GET|POST /v1.0/roleManagement/directory/roleAssignments`` (``$filter=principalId eq 'X'``):
  ``{id, principalId, roleDefinitionId, directoryScopeId}``; a POST gives one (201).
- ``GET /v1.0/roleManagement/directory/roleDefinitions/{id}``: ``{id, displayName, templateId,
  isBuiltIn}``; built-in roles have their template id as id.

Lists are paged by ``page_size`` (100) with an absolute ``@odata.nextLink`` carrying a
``$skiptoken``. Tokens: ``tokens`` maps a bearer token to the audience it was issued for and the
caller's Graph application permissions (its ``roles`` claim); ``credential(roles)`` hands out such
tokens per scope. Every answer that is not the happy path follows Graph:

- A token of another audience, or none: 401 InvalidAuthenticationToken "Access token validation
  failure. Invalid audience." (Graph's answer to a token for another resource).
- A token without the permission the call needs: 403. Directory objects answer
  Authorization_RequestDenied "Insufficient privileges to complete the operation." with Graph's
  ``innerError`` (microsoftgraph/nodejs-connect-rest-sample#69: the full 403 body); the role
  management API answers UnknownError whose message is the JSON ``{"errorCode":
  "PermissionScopeNotGranted", "message": "Authorization failed due to missing permission scope
  A,B.", ...}`` (kayasax/EasyPIM#37, microsoftgraph/microsoft-graph-explorer-v4#2176).
- An unknown object: 404 Request_ResourceNotFound "Resource 'X' does not exist or one of its
  queried reference-property objects are not present." (Azure/azure-powershell#18179, #23073).
- A grant that exists: app role 400 Request_BadRequest "Permission being assigned already exists
  on the object" (the message scripts granting managed identities match, e.g.
  gist LauraKokkarinen/081a7e27d50e90a06ca80eaeb5fb357a; 400 Request_BadRequest as clients
  report it); role assignment 400 Request_BadRequest "A conflicting object with one or more of
  the specified property values is present in the directory." (dod-ccpo/atat#1554, a POST to
  roleManagement/directory/roleAssignments); ``role_conflict_status = 409`` answers 409 instead.
- Throttling: ``server.fail(429, retry_after="1", code="TooManyRequests")`` (Graph answers 429
  TooManyRequests with Retry-After: learn.microsoft.com/graph/throttling).

Which permission a call needs (Graph's permission tables; a ReadWrite permission includes its
Read): servicePrincipals and their appRoleAssignments Application.Read.All (or
Application.ReadWrite.All, Directory.Read.All); granting an app role
AppRoleAssignment.ReadWrite.All; role assignments and definitions RoleManagement.Read.Directory
(or RoleManagement.Read.All, Directory.Read.All); assigning a role
RoleManagement.ReadWrite.Directory.

Seeded with the three resources the upstream uses and their app roles, generated from the
permission names a test needs (``seed_from_sidecars``), with deterministic ids (uuid5), never
Microsoft's real role ids; directory roles keep the template ids the sidecars give.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, unquote

from fakes.server import LoopbackServer, Request, Response, TestTLS

GRAPH = "00000003-0000-0000-c000-000000000000"
EXCHANGE = "00000002-0000-0ff1-ce00-000000000000"
DEFENDER = "fc780465-2017-40d4-a0c5-307022471b92"
RESOURCES = {GRAPH: "Microsoft Graph", EXCHANGE: "Office 365 Exchange Online", DEFENDER: "WindowsDefenderATP"}
#: Graph's own permissions rjsync reads and grants with: always there.
RJSYNC_PERMISSIONS = ("Application.Read.All", "RoleManagement.Read.Directory", "AppRoleAssignment.ReadWrite.All",
                      "RoleManagement.ReadWrite.Directory")
READER = ("Application.Read.All", "RoleManagement.Read.Directory")
GRANTER = ("Application.Read.All", "AppRoleAssignment.ReadWrite.All", "RoleManagement.ReadWrite.Directory")
AUDIENCE = "https://graph.microsoft.com"
_NS = uuid.UUID("5f0c1a52-6f1e-4c38-9d0f-2b8a4a0e7c11")  # the fake's own namespace for uuid5 ids
EXAMPLES = Path(__file__).resolve().parents[2] / "runbooks"

_SP_READ = ("Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
_ROLE_READ = ("RoleManagement.Read.Directory", "RoleManagement.Read.All", "RoleManagement.ReadWrite.Directory",
              "Directory.Read.All", "Directory.ReadWrite.All")


def fake_id(*parts: str) -> str:
    """A deterministic GUID for ``parts`` (an app role, a role without template id, an identity)."""
    return str(uuid.uuid5(_NS, "/".join(p.lower() for p in parts)))


def sidecar_needs(folder: Path) -> tuple[dict[str, set[str]], dict[str, str]]:
    """What the ``*.permissions.json`` under ``folder`` name: {resource appId: {app-role values}}
    and {role template id: name} (a role named without a template id gets ``fake_id(name)``)."""
    apps: dict[str, set[str]] = {}
    roles: dict[str, str] = {}
    for path in sorted(Path(folder).rglob("*.permissions.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except ValueError:
            continue
        for permission in data.get("Permissions") or []:
            app = str(permission.get("Id") or "").lower()
            for entry in permission.get("AppRoleAssignments") or []:
                value = entry.get("Value") if isinstance(entry, dict) else entry
                if isinstance(value, str) and app:
                    apps.setdefault(app, set()).add(value)
        for role in data.get("Roles") or []:
            name = role.get("Name") if isinstance(role, dict) else role
            template = (role.get("TemplateId") if isinstance(role, dict) else None) or fake_id("role", str(name))
            roles[str(template).lower()] = str(name)
    return apps, roles


class FakeGraph:
    def __init__(self, tls: TestTLS):
        self.lock = threading.RLock()
        self.server = LoopbackServer(tls, self.handle)
        self.endpoint = self.server.url + "/"
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.audience = AUDIENCE
            self.page_size = 100
            self.role_conflict_status = 400
            self.tokens: dict[str, tuple[str, frozenset[str]]] = {}
            self.principals: dict[str, dict] = {}  # id -> service principal
            self.app_role_assignments: list[dict] = []
            self.role_definitions: dict[str, dict] = {}
            self.role_assignments: list[dict] = []
            self._ids = itertools.count(1)
            apps, roles = sidecar_needs(EXAMPLES)
            apps.setdefault(GRAPH, set()).update(RJSYNC_PERMISSIONS)
            for app_id, name in RESOURCES.items():
                self.add_resource(app_id, name, sorted(apps.get(app_id, ())))
            for template, name in roles.items():
                self.add_role_definition(template, name)
        self.server.clear_faults()
        self.server.clear_log()
        self.server.errors.clear()

    def close(self) -> None:
        self.server.close()

    # -- seeding ----------------------------------------------------------------------------------

    def add_resource(self, app_id: str, name: str, values=()) -> dict:
        """The service principal of a resource app, with application roles ``values``."""
        with self.lock:
            sp = {"id": fake_id("sp", app_id), "appId": app_id.lower(), "displayName": name,
                  "servicePrincipalType": "Application", "appRoles": []}
            self.principals[sp["id"]] = sp
            self.add_app_roles(app_id, values)
            return sp

    def add_app_roles(self, app_id: str, values) -> None:
        with self.lock:
            sp = self.resource(app_id)
            have = {r["value"] for r in sp["appRoles"]}
            for value in values:
                if value not in have:
                    sp["appRoles"].append({"id": fake_id(app_id, value), "value": value, "displayName": value,
                                           "description": f"{value} (fake)", "allowedMemberTypes": ["Application"],
                                           "isEnabled": True})

    def add_role_definition(self, template_id: str, name: str) -> None:
        with self.lock:
            key = template_id.lower()
            self.role_definitions[key] = {"id": key, "templateId": key, "displayName": name, "isBuiltIn": True,
                                          "isEnabled": True}

    def seed_from_sidecars(self, folder: Path) -> tuple[dict[str, set[str]], dict[str, str]]:
        """Add every app role and directory role the sidecars under ``folder`` need."""
        apps, roles = sidecar_needs(folder)
        with self.lock:
            for app_id, values in apps.items():
                if self.resource(app_id) is None:
                    self.add_resource(app_id, app_id)
                self.add_app_roles(app_id, sorted(values))
            for template, name in roles.items():
                if template not in self.role_definitions:
                    self.add_role_definition(template, name)
        return apps, roles

    def add_identity(self, name: str = "aa-realmjoin-test", principal_id: str | None = None) -> str:
        """A managed identity's service principal; its object id."""
        with self.lock:
            pid = (principal_id or fake_id("identity", name)).lower()
            self.principals[pid] = {"id": pid, "appId": fake_id("identity-app", name), "displayName": name,
                                    "servicePrincipalType": "ManagedIdentity", "appRoles": []}
            return pid

    def resource(self, app_id: str) -> dict | None:
        return next((sp for sp in self.principals.values() if sp["appId"] == app_id.lower()), None)

    def grant(self, principal_id: str, app_id: str, value: str) -> dict:
        """Seed an app-role assignment (as if granted earlier)."""
        with self.lock:
            sp = self.resource(app_id)
            role = next(r for r in sp["appRoles"] if r["value"] == value)
            return self._assign_app_role(principal_id.lower(), sp, role["id"])

    def assign_role(self, principal_id: str, template_id: str, scope: str = "/") -> dict:
        """Seed a directory role assignment (as if assigned earlier)."""
        with self.lock:
            item = {"id": f"ra-{next(self._ids)}", "principalId": principal_id.lower(),
                    "roleDefinitionId": template_id.lower(), "directoryScopeId": scope}
            self.role_assignments.append(item)
            return item

    def held(self, principal_id: str) -> tuple[set[tuple[str, str]], set[str]]:
        """(app id, value) pairs and role template ids the principal holds, straight from the data."""
        with self.lock:
            pid = principal_id.lower()
            apps = set()
            for a in self.app_role_assignments:
                if a["principalId"] == pid:
                    sp = self.principals[a["resourceId"]]
                    value = next(r["value"] for r in sp["appRoles"] if r["id"] == a["appRoleId"])
                    apps.add((sp["appId"], value))
            roles = {r["roleDefinitionId"] for r in self.role_assignments if r["principalId"] == pid}
            return apps, roles

    def issue(self, roles=READER, audience: str | None = None) -> str:
        """A token for ``audience`` (default: this Graph's) whose caller holds ``roles``."""
        with self.lock:
            token = f"graph-token-{next(self._ids)}"
            self.tokens[token] = ((audience or self.audience).rstrip("/"), frozenset(roles))
            return token

    def credential(self, roles=READER, *, other_token: str = "test-token") -> ScopedCredential:
        return ScopedCredential(self, roles, other_token)

    # -- dispatch -----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        with self.lock:
            roles = self._caller(request)
            if isinstance(roles, Response):
                return roles
            path = unquote(request.path)
            for method, pattern, handler in _ROUTES:
                m = re.fullmatch(pattern, path, re.IGNORECASE)
                if m and method == request.method:
                    return handler(self, request, roles, **{k: v.lower() for k, v in m.groupdict().items()})
            return _error(400, "BadRequest", f"Resource not found for the segment '{path.rsplit('/', 1)[-1]}'.")

    def _caller(self, request: Request):
        header = request.headers.get("authorization", "")
        token = self.tokens.get(header[7:].strip()) if header.lower().startswith("bearer ") else None
        if token is None:
            return _error(401, "InvalidAuthenticationToken", "Access token is empty." if not header
                          else "Access token validation failure.")
        if token[0] != self.audience.rstrip("/"):
            return _error(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        return token[1]

    # -- service principals and app roles -------------------------------------------------------------

    def sp_get(self, request, roles, id):
        if not roles & set(_SP_READ):
            return _denied()
        sp = self.principals.get(id)
        return Response.json(200, sp) if sp else _not_found(id)

    def sp_by_app_id(self, request, roles, app_id):
        if not roles & set(_SP_READ):
            return _denied()
        sp = self.resource(app_id)
        return Response.json(200, sp) if sp else _not_found(f"appId={app_id}")

    def sp_assignments(self, request, roles, id):
        if not roles & set(_SP_READ):
            return _denied()
        if id not in self.principals:
            return _not_found(id)
        return self._page(request, [a for a in self.app_role_assignments if a["principalId"] == id])

    def sp_assign(self, request, roles, id):
        if "AppRoleAssignment.ReadWrite.All" not in roles:
            return _denied()
        if id not in self.principals:
            return _not_found(id)
        body = request.json()
        resource = self.principals.get(str(body.get("resourceId") or "").lower())
        role_id = str(body.get("appRoleId") or "").lower()
        if str(body.get("principalId") or "").lower() != id or resource is None:
            return _error(400, "Request_BadRequest", "Invalid value specified for property 'resourceId' of resource "
                                                     "'AppRoleAssignment'.")
        if role_id not in {r["id"] for r in resource["appRoles"]}:
            return _error(400, "Request_BadRequest", "Permission being assigned was not found on application "
                                                     f"'{resource['appId']}'.")
        if any((a["principalId"], a["resourceId"], a["appRoleId"]) == (id, resource["id"], role_id)
               for a in self.app_role_assignments):
            return _error(400, "Request_BadRequest", "Permission being assigned already exists on the object")
        return Response.json(201, self._assign_app_role(id, resource, role_id))

    def _assign_app_role(self, pid: str, resource: dict, role_id: str) -> dict:
        item = {"id": f"ara-{next(self._ids)}", "principalId": pid, "resourceId": resource["id"], "appRoleId": role_id,
                "principalType": "ServicePrincipal", "resourceDisplayName": resource["displayName"],
                "principalDisplayName": self.principals.get(pid, {}).get("displayName", ""),
                "createdDateTime": datetime.now(timezone.utc).isoformat()}
        self.app_role_assignments.append(item)
        return item

    # -- role management ---------------------------------------------------------------------------

    def role_assignments_list(self, request, roles):
        if not roles & set(_ROLE_READ):
            return _scope_not_granted(_ROLE_READ)
        items = self.role_assignments
        text = request.query.get("$filter")
        if text is not None:
            m = re.fullmatch(r"\s*principalId\s+eq\s+'([^']*)'\s*", text)
            if not m:
                return _error(400, "BadRequest", f"Invalid filter clause: {text}")
            items = [r for r in items if r["principalId"] == m.group(1).lower()]
        return self._page(request, items)

    def role_assign(self, request, roles):
        if "RoleManagement.ReadWrite.Directory" not in roles:
            return _scope_not_granted(("RoleManagement.ReadWrite.Directory",))
        body = request.json()
        pid = str(body.get("principalId") or "").lower()
        definition = str(body.get("roleDefinitionId") or "").lower()
        scope = body.get("directoryScopeId")
        if pid not in self.principals or definition not in self.role_definitions or not scope:
            return _error(400, "Request_BadRequest", "Invalid principalId, roleDefinitionId or directoryScopeId.")
        if any((r["principalId"], r["roleDefinitionId"], r["directoryScopeId"]) == (pid, definition, scope)
               for r in self.role_assignments):
            return _error(self.role_conflict_status, "Request_BadRequest", "A conflicting object with one or more "
                          "of the specified property values is present in the directory.")
        return Response.json(201, self.assign_role(pid, definition, scope))

    def role_definitions_list(self, request, roles):
        # GET /roleManagement/directory/roleDefinitions supports $filter on displayName
        # (learn.microsoft.com/graph/api/rbacapplication-list-roledefinitions)
        if not roles & set(_ROLE_READ):
            return _scope_not_granted(_ROLE_READ)
        items = list(self.role_definitions.values())
        text = request.query.get("$filter")
        if text is not None:
            m = re.fullmatch(r"\s*displayName\s+eq\s+'((?:[^']|'')*)'\s*", text)
            if not m:
                return _error(400, "BadRequest", f"Invalid filter clause: {text}")
            items = [d for d in items if d["displayName"] == m.group(1).replace("''", "'")]
        return self._page(request, items)

    def role_definition(self, request, roles, id):
        if not roles & set(_ROLE_READ):
            return _scope_not_granted(_ROLE_READ)
        definition = self.role_definitions.get(id)
        return Response.json(200, definition) if definition else _not_found(id)

    def _page(self, request: Request, items: list) -> Response:
        skip = int(request.query.get("$skiptoken", "0") or 0)
        body = {"@odata.context": f"{self.server.url}/v1.0/$metadata", "value": items[skip: skip + self.page_size]}
        if skip + self.page_size < len(items):
            query = "&".join(f"{k}={quote(v, safe='')}" for k, v in request.query.items() if k != "$skiptoken")
            body["@odata.nextLink"] = (f"{self.server.url}{request.path}?{query}{'&' if query else ''}"
                                       f"$skiptoken={skip + self.page_size}")
        return Response.json(200, body)


class ScopedCredential:
    """Hands out per scope: a token of the fake Graph (for any Graph audience, so a test sees the
    audience checked) whose caller holds ``roles``, or ``other_token`` (the ARM emulator's)."""

    def __init__(self, graph: FakeGraph, roles, other_token: str = "test-token"):
        self.graph, self.roles, self.other_token = graph, tuple(roles), other_token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes, **kwargs):
        import time

        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        audience = scopes[0].removesuffix("/.default").rstrip("/")
        if "graph" in audience:
            return AccessToken(self.graph.issue(self.roles, audience), int(time.time()) + 3600)
        return AccessToken(self.other_token, int(time.time()) + 3600)


def _inner() -> dict:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    request_id = str(uuid.uuid4())
    return {"date": now, "request-id": request_id, "client-request-id": request_id}


def _error(status: int, code: str, message: str) -> Response:
    return Response.json(status, {"error": {"code": code, "message": message, "innerError": _inner()}})


def _denied() -> Response:
    return _error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def _scope_not_granted(scopes) -> Response:
    inner = {"errorCode": "PermissionScopeNotGranted",
             "message": f"Authorization failed due to missing permission scope {','.join(scopes)}.",
             "instanceAnnotations": []}
    return _error(403, "UnknownError", json.dumps(inner, separators=(",", ":")))


def _not_found(what: str) -> Response:
    return _error(404, "Request_ResourceNotFound", f"Resource '{what}' does not exist or one of its queried "
                                                   "reference-property objects are not present.")


_G = r"(?P<id>[0-9a-fA-F-]{36})"
_ROUTES = [
    ("GET", rf"/v1\.0/servicePrincipals/{_G}", FakeGraph.sp_get),
    ("GET", r"/v1\.0/servicePrincipals\(appId='(?P<app_id>[^']*)'\)", FakeGraph.sp_by_app_id),
    ("GET", rf"/v1\.0/servicePrincipals/{_G}/appRoleAssignments", FakeGraph.sp_assignments),
    ("POST", rf"/v1\.0/servicePrincipals/{_G}/appRoleAssignments", FakeGraph.sp_assign),
    ("GET", r"/v1\.0/roleManagement/directory/roleAssignments", FakeGraph.role_assignments_list),
    ("POST", r"/v1\.0/roleManagement/directory/roleAssignments", FakeGraph.role_assign),
    ("GET", rf"/v1\.0/roleManagement/directory/roleDefinitions/{_G}", FakeGraph.role_definition),
    ("GET", r"/v1\.0/roleManagement/directory/roleDefinitions", FakeGraph.role_definitions_list),
]
