"""Operator access: RealmJoin's runbook-permissions JSON, and who may start which runbook.

The format is RealmJoin's ("Runbook Permissions", realmjoin/realmjoin-docs; summarised in
``../shared/realmjoin.md``, "Operator access"): ``EnabledRunbookPatterns`` (omitted: every
runbook is enabled), ``DisabledRunbookPatterns`` (these win), ``Roles: {role: {Groups,
AllowedRunbookPatterns}}`` (when present, a caller in no role may start nothing). Patterns match
Automation names, ``*`` standing for any run of characters, case-insensitively. JSON with ``//``
comments and trailing commas is read (the portal allows comments). ``TargetEntityGroups`` and
the scheduling patterns are validated and kept, but need a target or a schedule to decide on,
which a job start through the API does not have.

In rjsync's service a caller (a user or token of the service config) holds role names;
``roles_of_groups`` maps Entra group ids to the roles whose ``Groups`` list them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rjsync.catalog.build import load_lenient_json
from rjsync.errors import RjsyncError

_LISTS = ("EnabledRunbookPatterns", "DisabledRunbookPatterns",
          "SchedulingEnabledRunbookPatterns", "SchedulingDisabledRunbookPatterns")
_KEYS = {k.casefold(): k for k in (*_LISTS, "Roles", "TargetEntityGroups")}
_ROLE_KEYS = {"groups": "Groups", "allowedrunbookpatterns": "AllowedRunbookPatterns"}


class PermissionsError(RjsyncError):
    """The runbook permissions JSON cannot be read or has a wrong shape."""


@dataclass(frozen=True)
class Pattern:
    """A pattern compiled once: the text between its ``*``, folded to lower case. Matching is
    one left-to-right scan (no backtracking), whatever the pattern."""

    text: str
    parts: tuple[str, ...]

    @classmethod
    def compile(cls, text: str) -> Pattern:
        return cls(text, tuple(text.casefold().split("*")))

    def matches(self, name: str) -> bool:
        name = name.casefold()
        first, *middle_last = self.parts
        if not middle_last:
            return name == first
        *middle, last = middle_last
        if not name.startswith(first) or len(name) < len(first) + len(last):
            return False
        position, end = len(first), len(name) - len(last)
        for part in middle:
            found = name.find(part, position, end)
            if found < 0:
                return False
            position = found + len(part)
        return name.endswith(last)


@dataclass(frozen=True)
class Role:
    name: str
    groups: tuple[str, ...]
    allowed: tuple[Pattern, ...]


@dataclass(frozen=True)
class RunbookPermissions:
    enabled: tuple[Pattern, ...] | None  # None: the section is omitted, every runbook is enabled
    disabled: tuple[Pattern, ...]
    roles: Mapping[str, Role] | None  # folded name -> role; None: no Roles section
    scheduling_enabled: tuple[Pattern, ...] = (Pattern.compile("*_scheduled"),)
    scheduling_disabled: tuple[Pattern, ...] = ()
    target_entity_groups: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def load_permissions(text: str, source: str = "The runbook-permissions JSON") -> RunbookPermissions:
    """Read RealmJoin's runbook-permissions JSON; a wrong file is one PermissionsError sentence
    naming ``source``."""
    try:
        data = load_lenient_json(text)
    except (ValueError, RecursionError) as exc:
        detail = "it is nested too deeply" if isinstance(exc, RecursionError) \
            else str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise PermissionsError(f"{source} is not valid JSON: {detail}.") from None
    return permissions_from_json(data, source)


def permissions_from_json(data: Any,
                          source: str = "The runbook-permissions JSON") -> RunbookPermissions:
    if not isinstance(data, Mapping):
        raise PermissionsError(f"{source} must be a JSON object with EnabledRunbookPatterns, "
                               "DisabledRunbookPatterns and Roles.")
    found: dict[str, Any] = {}
    for key, value in data.items():
        known = _KEYS.get(str(key).casefold())
        if known is None:
            raise PermissionsError(f"{source} has an unknown key {_quoted(key)}; the keys are "
                                   f"{', '.join(_KEYS.values())}.")
        if value is not None:
            found[known] = value
    lists = {key: _patterns(found[key], f"{source}: {key}") if key in found else None
             for key in _LISTS}
    roles = _roles(found["Roles"], source) if "Roles" in found else None
    targets = found.get("TargetEntityGroups")
    if targets is not None and not isinstance(targets, Mapping):
        raise PermissionsError(f"{source}: TargetEntityGroups must be an object of group ids.")
    return RunbookPermissions(
        enabled=lists["EnabledRunbookPatterns"],
        disabled=lists["DisabledRunbookPatterns"] or (),
        roles=roles,
        scheduling_enabled=lists["SchedulingEnabledRunbookPatterns"]
        or RunbookPermissions.scheduling_enabled,
        scheduling_disabled=lists["SchedulingDisabledRunbookPatterns"] or (),
        target_entity_groups=targets,
    )


def _patterns(value: Any, where: str) -> tuple[Pattern, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) and p.strip() for p in value):
        raise PermissionsError(f"{where} must be a list of runbook name patterns (text, with * "
                               "for any characters).")
    return tuple(Pattern.compile(p.strip()) for p in value)


def _roles(value: Any, source: str) -> dict[str, Role]:
    if not isinstance(value, Mapping):
        raise PermissionsError(f"{source}: Roles must be an object of role names.")
    roles: dict[str, Role] = {}
    for name, settings in value.items():
        where = f"{source}: role {_quoted(name)}"
        if not isinstance(settings, Mapping):
            raise PermissionsError(f"{where} must be an object with Groups and "
                                   "AllowedRunbookPatterns.")
        fields: dict[str, Any] = {}
        for key, item in settings.items():
            known = _ROLE_KEYS.get(str(key).casefold())
            if known is None:
                raise PermissionsError(f"{where} has an unknown key {_quoted(key)}; a role has "
                                       "Groups and AllowedRunbookPatterns.")
            fields[known] = item
        groups = fields.get("Groups") or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise PermissionsError(f"{where}: Groups must be a list of group object ids.")
        key = str(name).casefold()
        if key in roles:
            raise PermissionsError(f"{where} is defined twice (role names are compared "
                                   "case-insensitively).")
        roles[key] = Role(str(name), tuple(groups),
                          _patterns(fields.get("AllowedRunbookPatterns") or [],
                                    f"{where}: AllowedRunbookPatterns"))
    return roles


def _quoted(value: Any) -> str:
    text = str(value)
    text = text[:64] + ("…" if len(text) > 64 else "")
    return "".join(c if c.isprintable() else "?" for c in f'"{text}"')


def may_start(config: RunbookPermissions | None, runbook_name: str,
              caller_roles: Iterable[str]) -> Decision:
    """Whether a caller holding ``caller_roles`` (role names of the permissions' Roles) may
    start the runbook of Automation name ``runbook_name``, and why."""
    if config is None:
        return Decision(True, "no runbook permissions are configured")
    disabled = next((p for p in config.disabled if p.matches(runbook_name)), None)
    if disabled is not None:
        return Decision(False, f"{_quoted(runbook_name)} is disabled by the pattern "
                               f"{_quoted(disabled.text)} of DisabledRunbookPatterns")
    if config.enabled is not None and not any(p.matches(runbook_name) for p in config.enabled):
        return Decision(False,
                        f"{_quoted(runbook_name)} matches none of the EnabledRunbookPatterns")
    if config.roles is None:
        return Decision(True, "the runbook permissions define no roles: every caller may start "
                              "an enabled runbook")
    held = [config.roles[r.casefold()] for r in dict.fromkeys(caller_roles)
            if r.casefold() in config.roles]
    if not held:
        return Decision(False, "the caller holds none of the roles the runbook permissions define")
    for role in held:
        pattern = next((p for p in role.allowed if p.matches(runbook_name)), None)
        if pattern is not None:
            return Decision(True, f"role {_quoted(role.name)} allows it (pattern "
                                  f"{_quoted(pattern.text)})")
    names = ", ".join(_quoted(r.name) for r in held)
    return Decision(False, f"none of the caller's roles ({names}) allows {_quoted(runbook_name)}")


def roles_of_groups(config: RunbookPermissions | None, group_ids: Iterable[str]) -> frozenset[str]:
    """The role names whose Groups list any of ``group_ids`` (object ids, case-insensitive)."""
    if config is None or config.roles is None:
        return frozenset()
    wanted = {g.casefold() for g in group_ids}
    return frozenset(role.name for role in config.roles.values()
                     if any(g.casefold() in wanted for g in role.groups))


def unknown_roles(config: RunbookPermissions | None, role_names: Iterable[str]) -> list[str]:
    """The names in ``role_names`` that the permissions' Roles do not define (for validating a
    service config that maps callers to roles)."""
    defined = config.roles if config is not None and config.roles is not None else {}
    return [r for r in role_names if r.casefold() not in defined]
