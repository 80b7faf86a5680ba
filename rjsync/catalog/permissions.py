"""What runbooks need from the identity they run as: their permission sidecars as needs. Pure.

A runbook's ``permissions`` (``normalize_permissions`` of ``catalog.build``: the
``<name>.permissions.json`` sidecar) names Microsoft Graph, Exchange Online and Defender app
roles (per resource appId), Entra directory roles and free-text manual steps, each app role and
role optional for a named feature or not. ``needs_of`` turns them into ``Need`` values,
``grant_key`` says when two needs name the same grant (app roles: the resource's appId and the
value, without regard to case; directory roles: the template id when a sidecar gives one, else
the name, without regard to case or spacing), and ``permission_union`` is the union of a set of
runbooks' needs, required and optional apart, which ``rjsync catalog --format json`` prints
(like the upstream's own aggregate, ``docs/other/json/AllRealmJoinRunbooks_collected_permissions.json``).
``rjsync.engine.permissions`` compares the needs with what an identity holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from rjsync.catalog.model import Runbook

APP_ROLE, DIRECTORY_ROLE = "app_role", "directory_role"

GrantKey = tuple[str, str, str]


@dataclass(frozen=True)
class Need:
    """One grant one runbook's sidecar names.

    ``value``: the app role's value, or the directory role's name, as the sidecar spells it.
    ``resource``/``resource_id``: an app role's resource (its name, its appId in lower case);
    for a directory role ``resource`` is empty and ``resource_id`` its template id in lower case
    ("" when the sidecar gives none).
    """

    kind: str
    value: str
    resource: str
    resource_id: str
    optional: bool
    feature: str | None
    reason: str | None
    runbook: str


def _text(value: Any) -> str | None:
    """A sidecar's free value as one stripped line of text, None when it holds nothing."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def needs_of(runbook: Runbook) -> list[Need]:
    """The app roles and directory roles ``runbook``'s sidecar names (none without one)."""
    data = runbook.permissions or {}
    needs = []
    for resource in data.get("permissions") or ():
        name = _text(resource.get("name")) or ""
        appid = (_text(resource.get("id")) or "").lower()
        for role in resource.get("app_roles") or ():
            value = _text(role.get("value"))
            if value:
                needs.append(Need(APP_ROLE, value, name or appid, appid, bool(role.get("optional")),
                                  _text(role.get("feature")), _text(role.get("reason")), runbook.name))
    for role in data.get("roles") or ():
        name = _text(role.get("name"))
        if name:
            needs.append(Need(DIRECTORY_ROLE, name, "", (_text(role.get("template_id")) or "").lower(),
                              bool(role.get("optional")), _text(role.get("feature")), _text(role.get("reason")),
                              runbook.name))
    return needs


def manual_of(runbook: Runbook) -> list[str]:
    """The manual steps ``runbook``'s sidecar lists, each as one line."""
    return [text for text in (_text(m) for m in (runbook.permissions or {}).get("manual") or ()) if text]


def role_name_key(name: str) -> str:
    """A directory role's name as names are compared: without regard to case or spacing."""
    return " ".join(name.split()).casefold()


def grant_keys(needs: Iterable[Need]) -> dict[Need, GrantKey]:
    """Each need's grant: needs with one key name the same grant. A directory role named
    without a template id shares the key of a role of that name that has one, if any."""
    needs = list(needs)
    templates: dict[str, str] = {}
    for need in needs:
        if need.kind == DIRECTORY_ROLE and need.resource_id:
            templates.setdefault(role_name_key(need.value), need.resource_id)
    keys = {}
    for need in needs:
        if need.kind == APP_ROLE:
            keys[need] = (APP_ROLE, need.resource_id, need.value.casefold())
        else:
            template = need.resource_id or templates.get(role_name_key(need.value))
            keys[need] = ((DIRECTORY_ROLE, template, "") if template
                          else (DIRECTORY_ROLE, "", role_name_key(need.value)))
    return keys


def permission_union(runbooks: Iterable[Runbook]) -> dict[str, Any]:
    """The union of what ``runbooks`` need: app roles per resource and directory roles, each
    under ``required`` when any runbook needs it without ``Optional``, else under
    ``optional``; and every manual step once. Sorted, so identical catalogs give identical
    documents."""
    runbooks = sorted(runbooks, key=lambda r: r.name.lower())
    needs = [need for runbook in runbooks for need in needs_of(runbook)]
    keys = grant_keys(needs)
    first: dict[GrantKey, Need] = {}
    required: set[GrantKey] = set()
    for need in needs:
        first.setdefault(keys[need], need)
        if not need.optional:
            required.add(keys[need])
    names: dict[str, str] = {}  # a resource's name: the first a sidecar gives
    for need in needs:
        if need.kind == APP_ROLE:
            names.setdefault(need.resource_id, need.resource)

    def part(which: set[GrantKey]) -> dict[str, Any]:
        resources: dict[str, list[str]] = {}
        roles = []
        for key in which:
            need = first[key]
            if need.kind == APP_ROLE:
                resources.setdefault(need.resource_id, []).append(need.value)
            else:
                roles.append({"name": need.value, "template_id": key[1] or None})
        return {
            "app_roles": [{"name": names[appid], "id": appid, "values": sorted(values)}
                          for appid, values in sorted(resources.items(), key=lambda kv: (names[kv[0]].casefold(), kv[0]))],
            "directory_roles": sorted(roles, key=lambda r: (role_name_key(r["name"]), r["template_id"] or "")),
        }

    manual = sorted({text for runbook in runbooks for text in manual_of(runbook)}, key=str.casefold)
    return {"required": part(required), "optional": part(set(first) - required), "manual": manual}
