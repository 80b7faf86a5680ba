"""The plan: a pure value computed from (catalog, account snapshot, policy).

``plan_sync`` does no I/O. It pairs every catalog runbook with its live twin (names compared
case-insensitively), and decides per pair, from a small fixed set of actions:

- ``create``: in the catalog, not in the account.
- ``update``: content, metadata (description, runtime environment) or only the receipt differ;
  ``aspects`` says which. A case-only rename upstream is an update of the same runbook.
- ``replace``: the runbook's classic type must change (delete + create: schedules and webhooks
  linked to it are lost, and the plan says so).
- ``delete``: live, owned (``policy.prefix``), not excluded, and absent from the catalog.

Receipts (tags written after publish, ``rjsync.accounts.receipts``) tell whether content is
current without reading it. A runbook with no receipt, or one published again since its
receipt, is compared by content, which the caller reads beforehand for the names
``content_needed`` returns.

Drift (an owned runbook edited in the portal) is reported apart from the changes; it is
overwritten unless ``policy.keep_drifted``. ``reason`` explains a change for people; no code
decides anything from it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from rjsync.accounts.base import (
    STATE_EDIT,
    SUCCEEDED,
    LiveRunbook,
    Snapshot,
    SnapshotScope,
    is_owned,
    trim_description,
)
from rjsync.accounts.receipts import RECEIPT_PATH, RECEIPT_TAGS, Receipt
from rjsync.catalog.build import module_union
from rjsync.catalog.model import Catalog, Diagnostic, Runbook
from rjsync.catalog.text import normalized_sha256
from rjsync.engine.policy import Policy
from rjsync.versions import version_key

#: Version of the plan document (``--format json`` and ``--out``); bump on incompatible change.
FORMAT_VERSION = 1

RUNBOOK, MODULE = "runbook", "module"
CREATE, UPDATE, REPLACE, DELETE = "create", "update", "replace", "delete"
ACTIONS = (CREATE, UPDATE, REPLACE, DELETE)

#: Runbook type of every synced runbook; the runtime environment picks the PowerShell version.
RUNBOOK_TYPE = "PowerShell"


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
    source: Mapping[str, Any]
    target: str
    policy: Policy
    changes: tuple[Change, ...]
    drift: tuple[Drift, ...] = ()
    skipped: tuple[Skip, ...] = ()
    environment: Mapping[str, Any] | None = None  # the runtime environment to create, if missing
    diagnostics: tuple[Diagnostic, ...] = ()
    fingerprints: Mapping[str, str] = field(default_factory=dict)

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
        return {
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
            fingerprints=data.get("fingerprints") or {},
        )


# -- what to read before planning ------------------------------------------------------------------


def snapshot_scope(policy: Policy) -> SnapshotScope:
    """The part of the account a plan compares: runbooks, plus the module table it manages."""
    if not policy.modules:
        return SnapshotScope(account_modules=False, environments=_environments(policy))
    if policy.classic:
        return SnapshotScope(account_modules=True, environments=())
    return SnapshotScope(account_modules=False, environments=_environments(policy))


def _environments(policy: Policy) -> tuple[str, ...]:
    return () if policy.classic else (policy.runtime,)


def content_needed(catalog: Catalog, snapshot: Snapshot, policy: Policy) -> list[str]:
    """Live runbooks whose content the plan compares: no valid receipt, or published since."""
    names = []
    for _runbook, live in _pairs(catalog, snapshot, policy)[0]:
        if live is not None and _needs_content(live):
            names.append(live.name)
    return names


def _needs_content(live: LiveRunbook) -> bool:
    return _receipt_sha(live) is None or _republished(live)


def already_applied(plan: Plan, snapshot: Snapshot) -> bool:
    """Whether ``snapshot`` holds every runbook change of ``plan``: each written runbook carries
    the receipt of its planned content, each deleted one is gone (modules are not compared)."""
    runbooks = [c for c in plan.changes if c.kind == RUNBOOK]
    if not runbooks:
        return False
    for change in runbooks:
        live = snapshot.runbook(change.name)
        if change.action == DELETE:
            if live is not None:
                return False
        elif live is None or _receipt_sha(live) != (change.after or {}).get("sha256"):
            return False
    return True


def _receipt_sha(live: LiveRunbook) -> str | None:
    return Receipt.of(live.tags).sha256


def _republished(live: LiveRunbook) -> bool:
    return Receipt.of(live.tags).republished(live.last_modified)


# -- the plan --------------------------------------------------------------------------------------


def plan_sync(
    catalog: Catalog,
    snapshot: Snapshot,
    policy: Policy,
    *,
    target: str,
    contents: Mapping[str, bytes | None] | None = None,
) -> Plan:
    """Diff ``catalog`` against ``snapshot`` under ``policy``; ``contents`` maps the (lower-case)
    names ``content_needed`` returned to their published content (None: never published)."""
    contents = {k.lower(): v for k, v in (contents or {}).items()}
    pairs, excluded, orphans = _pairs(catalog, snapshot, policy)
    diagnostics = list(catalog.diagnostics)
    runbook_changes: list[Change] = []
    drift: list[Drift] = []
    skipped: list[Skip] = [Skip(RUNBOOK, name, reason) for name, reason in excluded]
    desired: list[Runbook] = []

    for runbook, live in pairs:
        desired.append(runbook)
        if live is None:
            runbook_changes.append(_create(runbook, policy))
            continue
        drifted = _drift_reason(live, contents)
        if drifted:
            if policy.keep_drifted:
                drift.append(Drift(live.name, drifted, "keep"))
                skipped.append(Skip(RUNBOOK, live.name, f"drifted ({drifted}); kept by --keep-drifted"))
                continue
            drift.append(Drift(live.name, drifted, "overwrite"))
        change = _update(runbook, live, policy, contents, drifted)
        if change is not None:
            runbook_changes.append(change)

    deletions, guard = _deletions(catalog, orphans, policy)
    runbook_changes.extend(deletions)
    skipped.extend(guard)
    if len(deletions) > policy.max_deletions:
        diagnostics.append(Diagnostic(
            "warning", None, None,
            f"{len(deletions)} runbooks would be deleted, more than the limit of "
            f"{policy.max_deletions}; apply deletes none of them unless run with "
            f"--max-deletions {len(deletions)}"))

    module_changes, module_skips = _modules(desired, snapshot, policy)
    skipped.extend(module_skips)
    environment = None
    if not policy.classic and snapshot.runtime_environment(policy.runtime) is None and (
            desired or module_changes):
        environment = {"name": policy.runtime, "action": CREATE, "language": "PowerShell", "version": "7.4"}

    order = {CREATE: 0, UPDATE: 0, REPLACE: 0, DELETE: 1}
    runbook_changes.sort(key=lambda c: (order[c.action], c.name.lower()))
    return Plan(
        source=catalog.source.to_json(),
        target=target,
        policy=policy,
        changes=tuple(module_changes + runbook_changes),
        drift=tuple(sorted(drift, key=lambda d: d.name.lower())),
        skipped=tuple(sorted(skipped, key=lambda s: (s.kind, s.name.lower(), s.reason))),
        environment=environment,
        diagnostics=tuple(sorted(diagnostics, key=Diagnostic.sort_key)),
        fingerprints={"catalog": catalog_fingerprint(catalog), "snapshot": snapshot_fingerprint(snapshot)},
    )


def _pairs(catalog: Catalog, snapshot: Snapshot, policy: Policy):
    """(catalog runbook, live twin or None) pairs, excluded names, and owned live orphans."""
    live_by_name = {rb.name.lower(): rb for rb in snapshot.runbooks}
    excluded: list[tuple[str, str]] = []
    pairs: list[tuple[Runbook, LiveRunbook | None]] = []
    wanted: set[str] = set()
    for runbook in catalog.runbooks:
        key = runbook.name.lower()
        wanted.add(key)
        pattern = _excluded(policy, runbook.name, runbook.path)
        if pattern:
            excluded.append((runbook.name, f"excluded by the pattern '{pattern}'"))
            continue
        if not is_owned(runbook.name, policy.prefix):
            excluded.append((runbook.name, f"its name lacks the owned prefix '{policy.prefix}'"))
            continue
        pairs.append((runbook, live_by_name.get(key)))
    orphans = []
    for live in snapshot.runbooks:
        if live.name.lower() in wanted or not is_owned(live.name, policy.prefix):
            continue
        pattern = _excluded(policy, live.name, (live.tags or {}).get(RECEIPT_PATH))
        if pattern:
            excluded.append((live.name, f"excluded by the pattern '{pattern}'"))
            continue
        orphans.append(live)
    return pairs, excluded, orphans


def _excluded(policy: Policy, name: str, path: str | None) -> str | None:
    for pattern in policy.exclude:
        for value in (name, path):
            if value and fnmatch.fnmatchcase(value.lower(), pattern.lower()):
                return pattern
    return None


def _after(runbook: Runbook, policy: Policy, live: LiveRunbook | None) -> dict[str, Any]:
    kept_tags = {k: v for k, v in sorted((live.tags or {}).items()) if k not in RECEIPT_TAGS} if live else {}
    return {
        "path": runbook.path,
        "sha256": runbook.sha256,
        "runbook_type": RUNBOOK_TYPE,
        "runtime_environment": policy.runtime_environment,
        "description": trim_description(runbook.synopsis or ""),
        "tags": kept_tags,
    }


def _before(live: LiveRunbook) -> dict[str, Any]:
    return {
        "name": live.name,
        "runbook_type": live.runbook_type,
        "runtime_environment": live.runtime_environment,
        "state": live.state,
        "sha256": _receipt_sha(live),
        "path": (live.tags or {}).get(RECEIPT_PATH),
    }


def _requires(runbook: Runbook, policy: Policy) -> tuple[str, ...]:
    return tuple(sorted({m.name for m in runbook.modules}, key=str.lower)) if policy.modules else ()


def _create(runbook: Runbook, policy: Policy) -> Change:
    return Change(RUNBOOK, CREATE, runbook.name, f"new in the source: {runbook.path}",
                  before=None, after=_after(runbook, policy, None), requires=_requires(runbook, policy))


def _drift_reason(live: LiveRunbook, contents: Mapping[str, bytes | None]) -> str | None:
    if live.state == STATE_EDIT:
        return "a draft edited in the portal is waiting to be published"
    receipt = _receipt_sha(live)
    if receipt is not None and _republished(live):
        content = contents.get(live.name.lower())
        if content is not None and normalized_sha256(content) != receipt:
            return "content published in the portal differs from what rjsync last synced"
    return None


def _update(runbook: Runbook, live: LiveRunbook, policy: Policy,
            contents: Mapping[str, bytes | None], drifted: str | None) -> Change | None:
    after = _after(runbook, policy, live)
    before = _before(live)
    aspects: list[str] = []
    reasons: list[str] = []
    warnings: list[str] = []

    receipt = _receipt_sha(live)
    if receipt is not None and not _republished(live):
        content_differs = receipt != runbook.sha256
    else:
        content = contents.get(live.name.lower())
        live_sha = normalized_sha256(content) if content is not None else None
        before = {**before, "sha256": live_sha}
        content_differs = live_sha != runbook.sha256
        if not content_differs:
            aspects.append("receipt")
            reasons.append("content already current (adopted: receipt added)" if receipt is None
                           else "published again with the same content (receipt refreshed)")
    if drifted:
        aspects.append("drift")
        reasons.append(f"overwrites drift: {drifted}")
    if content_differs:
        aspects.append("content")
        reasons.append("content changed")
    if (live.runtime_environment or "").lower() != (policy.runtime_environment or "").lower():
        aspects.append("runtime")
        reasons.append(f"runtime {live.runtime_environment or 'classic'} -> "
                       f"{policy.runtime_environment or 'classic'}")
    if live.description != after["description"]:
        aspects.append("metadata")
        reasons.append("description changed")
    path = (live.tags or {}).get(RECEIPT_PATH)
    if receipt is not None and path != runbook.path and "receipt" not in aspects:
        aspects.append("receipt")
        if path and path.lower() == runbook.path.lower():
            reasons.append(f"renamed in the source (case only): {path} -> {runbook.path}")
        else:
            reasons.append(f"source path {path or 'unknown'} -> {runbook.path}")
    action = UPDATE
    if live.runbook_type.lower() != RUNBOOK_TYPE.lower():
        action = REPLACE
        reasons.insert(0, f"type {live.runbook_type} -> {RUNBOOK_TYPE} needs delete and create")
        warnings.append(f"replacing {live.name} deletes it first: job schedules and webhooks linked "
                        "to it are lost and must be set up again")
    if action == UPDATE and not aspects:
        return None
    if live.name != runbook.name and live.name.lower() == runbook.name.lower():
        reasons.append(f"kept as {live.name} (names are case-insensitive)")
    return Change(RUNBOOK, action, live.name, "; ".join(reasons), before=before, after=after,
                  aspects=tuple(aspects), warnings=tuple(warnings), requires=_requires(runbook, policy))


def _deletions(catalog: Catalog, orphans: list[LiveRunbook], policy: Policy):
    if not orphans:
        return [], []
    why = None
    if catalog.errors:
        why = f"the catalog has {len(catalog.errors)} error(s): nothing is deleted until they are fixed"
    elif not catalog.runbooks:
        why = "the catalog is empty (wrong source or contexts?): nothing is deleted"
    if why:
        return [], [Skip(RUNBOOK, live.name, why) for live in orphans]
    changes = [Change(RUNBOOK, DELETE, live.name,
                      "owned, no longer in the source" + (f" (was {live.tags[RECEIPT_PATH]})"
                                                          if (live.tags or {}).get(RECEIPT_PATH) else ""),
                      before=_before(live), after=None)
               for live in orphans]
    return changes, []


def _modules(desired: list[Runbook], snapshot: Snapshot, policy: Policy):
    needs = module_union(desired, [])  # its warnings are in the catalog's diagnostics already
    if not needs:
        return [], []
    where = policy.runtime_environment
    if policy.classic:
        table = {m.name.lower(): m for m in snapshot.modules}
    else:
        env = snapshot.runtime_environment(policy.runtime)
        table = {m.name.lower(): m for m in (env.packages if env else ())}
    changes: list[Change] = []
    skips: list[Skip] = []
    for need in needs:
        live = table.get(need.name.lower())
        minimum = need.minimum_version
        users = sorted(need.runbooks, key=str.lower)
        count = f"{len(users)} runbook{'s' if len(users) != 1 else ''}"
        # install and upgrade to the minimum the runbooks require, never further: customer
        # runbooks share the module; the newest version only when no minimum is named
        after = {"version": minimum, "minimum_version": minimum, "runtime_environment": where,
                 "runbooks": users}
        if live is None or live.provisioning_state != SUCCEEDED:
            if live is None:
                reason = f"required by {count}; not installed"
            else:
                reason = (f"required by {count}; its last import ended {live.provisioning_state}"
                          + (f" ({live.error})" if live.error else ""))
            change = Change(MODULE, CREATE, live.name if live else need.name,
                            reason + ("" if minimum else "; imports the newest version from the gallery"),
                            before=({"version": live.version, "provisioning_state": live.provisioning_state}
                                    if live else None),
                            after=after)
        elif minimum and (not live.version or version_key(live.version) < version_key(minimum)):
            warnings = ()
            if live.version and version_key(minimum)[0][0] > version_key(live.version)[0][0]:
                warnings = (f"major-version upgrade {live.version} -> {minimum}: customer runbooks "
                            f"that use {live.name} {live.version} may break",)
            change = Change(MODULE, UPDATE, live.name,
                            f"required by {count} at least at {minimum}; {live.version or 'an unknown version'} installed",
                            before={"version": live.version, "provisioning_state": live.provisioning_state},
                            after=after, warnings=warnings)
        else:
            continue
        if not policy.modules:
            skips.append(Skip(MODULE, change.name, f"{change.reason}; module management is off"))
            continue
        changes.append(change)
    return changes, skips


# -- fingerprints (stale saved plans) ------------------------------------------------------------


def snapshot_fingerprint(snapshot: Snapshot) -> str:
    """sha256 over everything a plan reads from the account, in a canonical form."""
    data = {
        "runbooks": [[r.name, r.runbook_type, r.runtime_environment, r.state, r.description,
                      sorted((r.tags or {}).items()),
                      r.last_modified.isoformat() if r.last_modified else None]
                     for r in sorted(snapshot.runbooks, key=lambda r: r.name.lower())],
        "modules": [[m.name, m.version, m.provisioning_state] for m in snapshot.modules],
        "environments": [[e.name, e.language, e.version, [[p.name, p.version, p.provisioning_state]
                                                          for p in e.packages]]
                         for e in snapshot.runtime_environments],
    }
    return _sha(data)


def catalog_fingerprint(catalog: Catalog) -> str:
    """sha256 over the catalog without where it was read from (a re-read gives the same value)."""
    data = catalog.to_json()
    data.pop("source", None)
    return _sha(data)


def _sha(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
