"""The plan as data: a small fixed set of actions, and the changes, drift and skips of one plan.

A ``Change`` says what the account has (``before``) and will have (``after``):

- ``create``: in the catalog, not in the account (``before`` None).
- ``update``: content, metadata (description, runtime environment) or only the receipt differ;
  ``aspects`` says which. A case-only rename upstream is an update of the same runbook.
- ``replace``: the runbook's classic type must change (delete + create: schedules and webhooks
  linked to it are lost, and the plan says so).
- ``delete``: live, owned, not excluded, and absent from the catalog (``after`` None).

Drift (an owned runbook edited in the portal) is kept apart from the changes. ``reason``
explains a change for people; no code decides anything from it. ``Plan.to_json`` is the
versioned plan document that renderers read and ``--out`` saves (``rjsync.engine.saved``). The
planner that computes a plan is ``rjsync.engine.planner``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from rjsync.catalog.model import Diagnostic
from rjsync.engine.permissions import PermissionReport
from rjsync.engine.policy import Policy

#: Version of the plan document (``--format json`` and ``--out``); bump on incompatible change.
FORMAT_VERSION = 1

RUNBOOK, MODULE = "runbook", "module"
CREATE, UPDATE, REPLACE, DELETE = "create", "update", "replace", "delete"
ACTIONS = (CREATE, UPDATE, REPLACE, DELETE)


@dataclass(frozen=True)
class Change:
    """One planned change. ``before``/``after`` hold what the account has and will have."""

    kind: str  # runbook | module
    action: str  # create | update | replace | delete
    name: str
    reason: str
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    aspects: tuple[str, ...] = ()  # update: content, metadata, runtime, receipt, drift
    warnings: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()  # modules a runbook needs (apply waits for their import)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "action": self.action, "name": self.name,
                                "reason": self.reason}
        if self.aspects:
            data["aspects"] = list(self.aspects)
        data["before"] = dict(self.before) if self.before is not None else None
        data["after"] = dict(self.after) if self.after is not None else None
        if self.warnings:
            data["warnings"] = list(self.warnings)
        if self.requires:
            data["requires"] = list(self.requires)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Change:
        return cls(kind=data["kind"], action=data["action"], name=data["name"], reason=data["reason"],
                   before=data.get("before"), after=data.get("after"),
                   aspects=tuple(data.get("aspects", ())), warnings=tuple(data.get("warnings", ())),
                   requires=tuple(data.get("requires", ())))


@dataclass(frozen=True)
class Drift:
    """An owned runbook changed in the portal; ``action`` is overwrite or keep."""

    name: str
    reason: str
    action: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "reason": self.reason, "action": self.action}


@dataclass(frozen=True)
class Skip:
    """Something the plan leaves alone on purpose, and why."""

    kind: str
    name: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    """One plan: the changes in apply order, drift, skips, the catalog's diagnostics, and the
    fingerprints of the catalog and the snapshot it was computed from (a saved plan is refused
    when either changed since)."""

    source: Mapping[str, Any]
    target: str
    policy: Policy
    changes: tuple[Change, ...]
    drift: tuple[Drift, ...] = ()
    skipped: tuple[Skip, ...] = ()
    environment: Mapping[str, Any] | None = None  # the runtime environment to create, if missing
    diagnostics: tuple[Diagnostic, ...] = ()
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    #: what the runbooks need against what the identity holds (``rjsync.engine.permissions``);
    #: None when the plan was made without reading the grants. Informational: a saved plan is
    #: not refused when the grants change, and the fresh plan's report is what apply shows.
    permissions: PermissionReport | None = None

    @property
    def errored(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes) or self.environment is not None

    @property
    def deletions(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action == DELETE)

    def summary(self) -> dict[str, Any]:
        counts = {action: sum(1 for c in self.changes if c.action == action) for action in ACTIONS}
        by_kind = {
            kind: {action: sum(1 for c in self.changes if c.kind == kind and c.action == action)
                   for action in ACTIONS}
            for kind in (RUNBOOK, MODULE)
        }
        return {
            **counts,
            "by_kind": by_kind,
            "environment": 1 if self.environment is not None else 0,
            "drift": len(self.drift),
            "skipped": len(self.skipped),
            "errors": sum(1 for d in self.diagnostics if d.severity == "error"),
            "warnings": sum(1 for d in self.diagnostics if d.severity == "warning"),
            "has_changes": self.has_changes,
            "over_deletion_limit": len(self.deletions) > self.policy.max_deletions,
        }

    def to_json(self) -> dict[str, Any]:
        """The versioned plan document: what ``--format json`` prints and ``--out`` saves."""
        doc = {
            "format_version": FORMAT_VERSION,
            "source": dict(self.source),
            "target": self.target,
            "policy": self.policy.to_json(),
            "environment": dict(self.environment) if self.environment is not None else None,
            "changes": [c.to_json() for c in self.changes],
            "drift": [d.to_json() for d in self.drift],
            "skipped": [s.to_json() for s in self.skipped],
            "summary": self.summary(),
            "diagnostics": [d.to_json() for d in self.diagnostics],
            "fingerprints": dict(self.fingerprints),
        }
        if self.permissions is not None:
            doc["permissions"] = self.permissions.to_json()
        return doc

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            source=data["source"],
            target=data["target"],
            policy=Policy.from_json(data["policy"]),
            changes=tuple(Change.from_json(c) for c in data["changes"]),
            drift=tuple(Drift(**d) for d in data["drift"]),
            skipped=tuple(Skip(**s) for s in data["skipped"]),
            environment=data.get("environment"),
            diagnostics=tuple(Diagnostic(**d) for d in data["diagnostics"]),
            fingerprints={} if data.get("fingerprints") is None else data["fingerprints"],
            permissions=PermissionReport.from_json(data["permissions"]) if data.get("permissions") is not None else None,
        )
