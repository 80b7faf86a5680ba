"""The permissions section of a plan: what the runbooks an account will hold need, against
what the identity they run as holds. Pure: ``permission_report(runbooks, grants)``.

``runbooks`` are the catalog runbooks the plan keeps in the account (``Pairing.desired``);
``grants`` is ``Account.read_grants()``'s ``Grants``, or the reason they could not be read (the
report is then "not checked" and lists only the manual steps). A grant the runbooks need is:

- an app role: held when the identity holds that value of that resource (appId), without
  regard to case. A ``X.Read.All`` is also held through ``X.ReadWrite.All`` of the same
  resource: the upstream's own aggregate of its sidecars (``.github/scripts/Get-UniquePermissions.ps1``,
  which RealmJoin's onboarding grants) drops ``Read.All`` where ``ReadWrite.All`` is there;
- a directory role: held by template id when a sidecar gives one, else by name (case and
  spacing aside);
- required when any runbook needs it without ``Optional``; else optional, and then listed
  under each feature it serves. Manual steps are free text rjsync cannot check: listed as such.

Held grants are counted, never listed. The order is fixed (resource, value; feature; name), so
identical inputs give identical reports. ``to_json`` is the plan document's ``permissions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from rjsync.accounts.base import Grants
from rjsync.catalog.model import Runbook
from rjsync.catalog.permissions import (
    APP_ROLE,
    DIRECTORY_ROLE,
    GrantKey,
    Need,
    grant_keys,
    manual_of,
    needs_of,
    role_name_key,
)

CHECKED, NOT_CHECKED = "checked", "not checked"


@dataclass(frozen=True)
class MissingGrant:
    """A grant the identity lacks. ``kind`` app_role (``value`` of ``resource``, whose appId is
    ``resource_id``) or directory_role (``value`` its name, ``resource_id`` its template id or
    ""); the runbooks that need it and the sidecars' reasons; ``feature`` for an optional one."""

    kind: str
    value: str
    resource: str
    resource_id: str
    runbooks: tuple[str, ...]
    reasons: tuple[str, ...] = ()
    feature: str | None = None

    def entry(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.value}
        if self.kind == DIRECTORY_ROLE:
            data["template_id"] = self.resource_id or None
        data.update(runbooks=list(self.runbooks), reasons=list(self.reasons))
        return data


@dataclass(frozen=True)
class ManualStep:
    text: str
    runbooks: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "runbooks": list(self.runbooks)}


@dataclass(frozen=True)
class PermissionReport:
    """The permissions section. ``checked`` False: ``reason`` says why, and ``held`` is None.

    Counts are of distinct grants: ``needed`` (``required`` of them required), ``held`` of
    those; ``missing`` lists the required ones not held, ``optional`` the optional ones not
    held (a grant serving two features is listed under both, counted once:
    ``missing_optional``)."""

    checked: bool
    reason: str | None = None
    principal_id: str | None = None
    needed: int = 0
    required: int = 0
    held: int | None = None
    missing: tuple[MissingGrant, ...] = ()
    optional: tuple[MissingGrant, ...] = ()
    missing_optional: int = 0
    manual: tuple[ManualStep, ...] = ()

    def counts(self) -> dict[str, int | None]:
        return {"needed": self.needed, "required": self.required, "optional": self.needed - self.required,
                "held": self.held, "missing": len(self.missing) if self.checked else None,
                "missing_optional": self.missing_optional if self.checked else None, "manual": len(self.manual)}

    def to_json(self) -> dict[str, Any]:
        features: dict[str | None, list[MissingGrant]] = {}
        for grant in self.optional:
            features.setdefault(grant.feature, []).append(grant)
        return {
            "status": CHECKED if self.checked else NOT_CHECKED,
            "reason": self.reason,
            "principal_id": self.principal_id,
            "counts": self.counts(),
            "missing": _grouped(self.missing),
            "optional": [{"feature": feature, **_grouped(grants)} for feature, grants in features.items()],
            "manual": [m.to_json() for m in self.manual],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PermissionReport:
        if data["status"] not in (CHECKED, NOT_CHECKED):
            raise ValueError(f"unknown permissions status {data['status']!r}")
        counts = data["counts"]
        checked = data["status"] == CHECKED
        optional = tuple(g for group in data["optional"] for g in _ungrouped(group, _text(group["feature"])))
        return cls(
            checked=checked,
            reason=_text(data.get("reason")),
            principal_id=_text(data.get("principal_id")),
            needed=int(counts["needed"]),
            required=int(counts["required"]),
            held=int(counts["held"]) if checked else None,
            missing=tuple(_ungrouped(data["missing"], None)),
            optional=optional,
            missing_optional=int(counts["missing_optional"]) if checked else 0,
            manual=tuple(ManualStep(str(m["text"]), tuple(str(r) for r in m["runbooks"])) for m in data["manual"]),
        )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _grouped(grants: Iterable[MissingGrant]) -> dict[str, Any]:
    """App roles per resource, then directory roles (``grants`` are in report order)."""
    resources: dict[tuple[str, str], list[dict[str, Any]]] = {}
    roles = []
    for grant in grants:
        if grant.kind == APP_ROLE:
            resources.setdefault((grant.resource, grant.resource_id), []).append(grant.entry())
        else:
            roles.append(grant.entry())
    return {"app_roles": [{"resource": name, "resource_id": appid, "roles": entries}
                          for (name, appid), entries in resources.items()],
            "directory_roles": roles}


def _ungrouped(data: Mapping[str, Any], feature: str | None) -> list[MissingGrant]:
    grants = []
    for group in data["app_roles"]:
        for entry in group["roles"]:
            grants.append(MissingGrant(APP_ROLE, str(entry["name"]), str(group["resource"]),
                                       str(group["resource_id"]), tuple(str(r) for r in entry["runbooks"]),
                                       tuple(str(r) for r in entry["reasons"]), feature))
    for entry in data["directory_roles"]:
        grants.append(MissingGrant(DIRECTORY_ROLE, str(entry["name"]), "", str(entry["template_id"] or ""),
                                   tuple(str(r) for r in entry["runbooks"]),
                                   tuple(str(r) for r in entry["reasons"]), feature))
    return grants


# -- the comparison --------------------------------------------------------------------------------


def permission_report(runbooks: Iterable[Runbook], grants: Grants | str) -> PermissionReport:
    """Compare what ``runbooks`` need with ``grants``, or report them "not checked" when
    ``grants`` is the reason they could not be read."""
    runbooks = sorted(runbooks, key=lambda r: r.name.lower())
    needs = [need for runbook in runbooks for need in needs_of(runbook)]
    keys = grant_keys(needs)
    by_grant: dict[GrantKey, list[Need]] = {}
    for need in needs:
        by_grant.setdefault(keys[need], []).append(need)
    required = {key for key, group in by_grant.items() if any(not n.optional for n in group)}
    manual = _manual(runbooks)
    if isinstance(grants, str):
        return PermissionReport(False, reason=grants, needed=len(by_grant), required=len(required), manual=manual)

    names: dict[str, str] = {}  # a resource's name: the first a sidecar gives
    for need in needs:
        if need.kind == APP_ROLE:
            names.setdefault(need.resource_id, need.resource)
    held = _Held(grants)
    lacking = {key: group for key, group in by_grant.items() if not held(key, group[0])}
    missing = [_missing(group, [n for n in group if not n.optional], None, names)
               for key, group in lacking.items() if key in required]
    optional = []
    for key, group in lacking.items():
        if key in required:
            continue
        features = sorted({n.feature or "" for n in group}, key=lambda f: (f == "", f.casefold(), f))
        optional += [_missing(group, [n for n in group if (n.feature or "") == feature], feature or None, names)
                     for feature in features]
    return PermissionReport(
        True, principal_id=grants.principal_id, needed=len(by_grant), required=len(required),
        held=len(by_grant) - len(lacking), missing=tuple(sorted(missing, key=_order)),
        optional=tuple(sorted(optional, key=lambda g: (g.feature is None, (g.feature or "").casefold(),
                                                      g.feature or "", *_order(g)))),
        missing_optional=sum(1 for key in lacking if key not in required), manual=manual)


class _Held:
    """Whether the identity holds a grant (see the module docstring)."""

    def __init__(self, grants: Grants) -> None:
        self.app_roles = {(appid.lower(), value.casefold()) for appid, value in grants.app_roles}
        self.templates = {template.lower() for template, _name in grants.directory_roles}
        self.names = {role_name_key(name) for _template, name in grants.directory_roles}

    def __call__(self, key: GrantKey, need: Need) -> bool:
        kind, ident, name = key
        if kind == APP_ROLE:
            if (ident, name) in self.app_roles:
                return True
            return name.endswith(".read.all") and (ident, name[: -len("read.all")] + "readwrite.all") in self.app_roles
        return ident in self.templates if ident else name in self.names


def _missing(group: list[Need], needs: list[Need], feature: str | None, names: dict[str, str]) -> MissingGrant:
    """One listed grant: spelled as its first need spells it, with the runbooks of ``needs``
    and their reasons."""
    first = group[0]
    runbooks = sorted({n.runbook for n in needs}, key=lambda r: (r.lower(), r))
    reasons = list(dict.fromkeys(n.reason for n in needs if n.reason))
    if first.kind == APP_ROLE:
        return MissingGrant(APP_ROLE, first.value, names[first.resource_id], first.resource_id, tuple(runbooks),
                            tuple(reasons), feature)
    template = next((n.resource_id for n in group if n.resource_id), "")
    return MissingGrant(DIRECTORY_ROLE, first.value, "", template, tuple(runbooks), tuple(reasons), feature)


def _order(grant: MissingGrant) -> tuple:
    """App roles first, by resource then value; then directory roles by name."""
    if grant.kind == APP_ROLE:
        return (0, grant.resource.casefold(), grant.resource_id, grant.value.casefold(), grant.value)
    return (1, "", "", role_name_key(grant.value), grant.resource_id)


def _manual(runbooks: list[Runbook]) -> tuple[ManualStep, ...]:
    steps: dict[str, list[str]] = {}
    for runbook in runbooks:
        for text in manual_of(runbook):
            if runbook.name not in steps.setdefault(text, []):
                steps[text].append(runbook.name)
    return tuple(ManualStep(text, tuple(names)) for text, names in sorted(steps.items(),
                                                                          key=lambda kv: (kv[0].casefold(), kv[0])))
