"""Giving the identity the runbooks run as what the plan's permissions section says it lacks
(``rjsync permissions grant``). The library: it prints nothing.

``plan_grants(settings)`` plans a sync (read-only) and takes the missing grants from its
permissions section; ``grant(...)`` gives them one by one through a ``Granter`` and returns a
result for each. A grant is never removed and "already assigned" is success, so running it
again is harmless.

Two granters: Microsoft Graph for an Azure account (``rjsync.accounts.graph``: app-role and
directory-role assignments, made by the identity the command signs in as, which needs
AppRoleAssignment.ReadWrite.All, Application.Read.All and RoleManagement.ReadWrite.Directory),
and the identity file of a directory account (``rjsync.accounts.identity_file``), so the demo
shows the whole cycle without Graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from rjsync.accounts.base import is_guid
from rjsync.accounts.graph import ALREADY_ASSIGNED, GRANTED, open_graph
from rjsync.accounts.identity_file import add_to_identity_file
from rjsync.accounts.targets import LocalTarget, parse_target
from rjsync.catalog.permissions import APP_ROLE
from rjsync.engine.permissions import MissingGrant, PermissionReport
from rjsync.errors import RjsyncError
from rjsync.settings import SyncSettings

FAILED = "failed"


@dataclass(frozen=True)
class GrantPlan:
    """What ``rjsync permissions grant`` would give: the missing grants (required first, then
    the optional ones when asked), to the identity ``principal_id`` of ``target``."""

    target: str
    principal_id: str | None
    grants: tuple[MissingGrant, ...]
    report: PermissionReport


@dataclass(frozen=True)
class GrantResult:
    grant: MissingGrant
    status: str  # GRANTED, ALREADY_ASSIGNED or FAILED
    message: str = ""


class Granter(Protocol):
    def grant(self, principal_id: str | None, grant: MissingGrant) -> str:
        """GRANTED or ALREADY_ASSIGNED; an ``RjsyncError`` sentence when it cannot."""

    def close(self) -> None: ...


def plan_grants(settings: SyncSettings, *, include_optional: bool = False) -> GrantPlan:
    """Plan a sync of ``settings`` (nothing is written) and list what its identity lacks.
    Raises ``RjsyncError`` when the grants cannot be read: there is nothing to compare with."""
    from rjsync.sync import prepare

    with prepare(settings) as prepared:
        report = prepared.plan.permissions
    if report is None or not report.checked:
        why = f": {report.reason.rstrip('.')}" if report is not None and report.reason else ""
        raise RjsyncError(f"The grants of the identity the runbooks of {settings.target} run as cannot be "
                          f"read{why}; nothing can be granted before they can be.")
    grants = list(report.missing)
    if include_optional:
        seen = {_key(g) for g in grants}
        for grant in report.optional:  # one listed under two features is granted once
            if _key(grant) not in seen:
                seen.add(_key(grant))
                grants.append(grant)
    return GrantPlan(settings.target, report.principal_id, tuple(grants), report)


def open_granter(settings: SyncSettings) -> Granter:
    """Graph for an Azure target, signed in as ``settings.azure``'s identity; the identity file
    for a directory account."""
    target = parse_target(settings.target)
    if isinstance(target, LocalTarget):
        return IdentityFileGranter(Path(target.path))
    azure = settings.azure
    return GraphGranter(open_graph(auth=azure.auth, client_id=azure.client_id, cloud=azure.cloud,
                                   graph_endpoint=azure.graph_endpoint))


def grant(plan: GrantPlan, granter: Granter, *,
          on_result: Callable[[GrantResult], None] | None = None) -> list[GrantResult]:
    """Give every grant of ``plan`` in turn; one that fails does not stop the others."""
    results = []
    for item in plan.grants:
        try:
            result = GrantResult(item, granter.grant(plan.principal_id, item))
        except RjsyncError as err:
            result = GrantResult(item, FAILED, err.message)
        results.append(result)
        if on_result:
            on_result(result)
    return results


class GraphGranter:
    """App-role and directory-role assignments through Microsoft Graph."""

    def __init__(self, graph) -> None:
        self._graph = graph

    def grant(self, principal_id: str | None, grant: MissingGrant) -> str:
        if not principal_id:
            raise RjsyncError("The account names no identity to grant to.")
        if grant.kind == APP_ROLE:
            return self._graph.grant_app_role(principal_id, grant.resource_id, grant.value)
        template = grant.resource_id or self._graph.role_template_by_name(grant.value)
        return self._graph.grant_directory_role(principal_id, template)

    def close(self) -> None:
        self._graph.close()


class IdentityFileGranter:
    """A directory account's grants: entries added to its ``identity.json``."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def grant(self, principal_id: str | None, grant: MissingGrant) -> str:
        if grant.kind == APP_ROLE:
            if not is_guid(grant.resource_id):
                raise RjsyncError(f"The permissions files give no resource app id (a GUID) for {grant.value}; "
                                  "add the resource's Id to them.")
            added = add_to_identity_file(self._folder, app_role=(grant.resource_id, grant.value))
        else:
            added = add_to_identity_file(self._folder, directory_role=(grant.resource_id, grant.value))
        return GRANTED if added else ALREADY_ASSIGNED

    def close(self) -> None:
        pass


def _key(grant: MissingGrant) -> tuple[str, str, str]:
    return grant.kind, grant.resource_id.lower(), grant.value.casefold()
