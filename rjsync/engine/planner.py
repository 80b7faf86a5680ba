"""The planner: a pure function from (catalog, account snapshot, policy) to a ``Plan``.

Planning does no I/O and takes two steps. ``pair`` pairs every catalog runbook with its live
twin (names compared case-insensitively), and sets apart what the policy excludes and the owned
live runbooks absent from the catalog. Receipts (``rjsync.accounts.receipts``) tell whether
content is current without reading it: a runbook with no receipt, or one published again since
its receipt, is compared by content, which the caller reads for the names
``Pairing.content_needed`` returns. ``plan_sync`` then decides per pair, from the fixed set of
actions in ``rjsync.engine.plan``.

Drift (an owned runbook edited in the portal) is reported apart from the changes; it is
overwritten unless ``policy.keep_drifted``.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

from rjsync.accounts.base import (
    BUILTIN_RUNTIME_ENVIRONMENTS,
    STATE_EDIT,
    Grants,
    LiveRunbook,
    Snapshot,
    SnapshotScope,
    is_owned,
    same_default_packages,
    trim_description,
)
from rjsync.accounts.receipts import RECEIPT_TAGS, Receipt
from rjsync.catalog.build import module_union
from rjsync.catalog.model import Catalog, Diagnostic, Runbook
from rjsync.catalog.text import normalized_sha256
from rjsync.engine.permissions import permission_report
from rjsync.engine.plan import (
    CREATE,
    DELETE,
    MODULE,
    REPLACE,
    RUNBOOK,
    UPDATE,
    Change,
    Drift,
    Plan,
    Skip,
)
from rjsync.engine.policy import Policy
from rjsync.engine.saved import catalog_fingerprint, snapshot_fingerprint
from rjsync.versions import version_key, version_known

#: Runbook type of every synced runbook; the runtime environment picks the PowerShell version.
RUNBOOK_TYPE = "PowerShell"


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


@dataclass(frozen=True)
class Pairing:
    """Catalog and account paired under a policy, once for both reading content and planning.

    ``pairs``: each catalog runbook the policy manages with its live twin, or None.
    ``excluded``: (name, why) of the runbooks, in the catalog or the account, left alone.
    ``orphans``: owned live runbooks absent from the catalog and not excluded.
    """

    catalog: Catalog
    snapshot: Snapshot
    policy: Policy
    pairs: tuple[tuple[Runbook, LiveRunbook | None], ...]
    excluded: tuple[tuple[str, str], ...]
    orphans: tuple[LiveRunbook, ...]

    @property
    def desired(self) -> tuple[Runbook, ...]:
        """The catalog runbooks the account holds after the sync (the excluded ones aside)."""
        return tuple(runbook for runbook, _live in self.pairs)

    def content_needed(self) -> list[str]:
        """Live runbooks whose content the plan compares: no valid receipt, or published since."""
        return [live.name for _runbook, live in self.pairs if live is not None and _needs_content(live)]


def pair(catalog: Catalog, snapshot: Snapshot, policy: Policy) -> Pairing:
    """Pair ``catalog`` with ``snapshot`` under ``policy`` (no I/O)."""
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
        pattern = _excluded(policy, live.name, Receipt.of(live.tags).path)
        if pattern:
            excluded.append((live.name, f"excluded by the pattern '{pattern}'"))
            continue
        orphans.append(live)
    return Pairing(catalog, snapshot, policy, tuple(pairs), tuple(excluded), tuple(orphans))


def _needs_content(live: LiveRunbook) -> bool:
    receipt = Receipt.of(live.tags)
    return receipt.sha256 is None or receipt.republished(live.last_modified)


# -- the plan --------------------------------------------------------------------------------------


def plan_sync(pairing: Pairing, *, target: str, contents: Mapping[str, bytes | None] | None = None,
              grants: Grants | str | None = None) -> Plan:
    """Diff the catalog against the snapshot of ``pairing`` under its policy; ``contents`` maps the
    names ``pairing.content_needed()`` returned (any case) to their published content (None:
    never published). With ``grants`` (what the identity holds, or why that is unknown) the plan
    carries its permissions section."""
    catalog, snapshot, policy = pairing.catalog, pairing.snapshot, pairing.policy
    contents = {k.lower(): v for k, v in (contents or {}).items()}
    diagnostics = list(catalog.diagnostics)
    runbook_changes: list[Change] = []
    drift: list[Drift] = []
    skipped: list[Skip] = [Skip(RUNBOOK, name, reason) for name, reason in pairing.excluded]
    desired: list[Runbook] = []

    for runbook, live in pairing.pairs:
        desired.append(runbook)
        if live is None:
            runbook_changes.append(_create(runbook, policy))
            continue
        receipt = Receipt.of(live.tags)
        drifted = _drift_reason(live, receipt, contents)
        if drifted:
            if policy.keep_drifted:
                drift.append(Drift(live.name, drifted, "keep"))
                skipped.append(Skip(RUNBOOK, live.name, f"drifted ({drifted}); kept by --keep-drifted"))
                continue
            drift.append(Drift(live.name, drifted, "overwrite"))
        change = _update(runbook, live, receipt, policy, contents, drifted)
        if change is not None:
            runbook_changes.append(change)

    deletions, guard = _deletions(catalog, pairing.orphans, policy)
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
    if not policy.classic:
        live_env = snapshot.runtime_environment(policy.runtime)
        if live_env is None and (desired or module_changes):
            environment = {"name": policy.runtime, "action": CREATE, "language": "PowerShell", "version": "7.4",
                           "default_packages": dict(policy.default_packages)}
        elif live_env is not None:
            diagnostics.extend(_default_packages_note(live_env, policy))

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
        permissions=permission_report(pairing.desired, grants) if grants is not None else None,
    )


def _default_packages_note(live_env, policy: Policy) -> list[Diagnostic]:
    """A warning when the existing environment's default packages are not the policy's (names
    compared without regard to case); rjsync never changes them. The service's own
    environments (PowerShell-7.2, ...) have theirs and are not compared."""
    builtin = {name.lower() for name in BUILTIN_RUNTIME_ENVIRONMENTS}
    want = dict(policy.default_packages)
    if live_env.name.lower() in builtin or same_default_packages(live_env.default_packages, want):
        return []
    return [Diagnostic(
        "warning", None, None,
        f"runtime environment {live_env.name} has the default packages "
        f"{describe_packages(live_env.default_packages)}, not {describe_packages(want)} as the policy "
        "says; rjsync does not change an existing environment's default packages: change them in the "
        "portal, or set policy.default_packages to what it has")]


def describe_packages(packages: Mapping[str, str]) -> str:
    """``{"Az": "12.3.0"}`` -> "Az 12.3.0"; none -> "none"."""
    return ", ".join(f"{name} {version}" for name, version in packages.items()) or "none"


def _excluded(policy: Policy, name: str, path: str | None) -> str | None:
    """The first of the policy's patterns that matches ``name`` or ``path``, or None."""
    found = _Exclusions.of(tuple(policy.exclude)).first(name, path)
    return None if found is None else policy.exclude[found]


class _Exclusions:
    """Exclude patterns prepared once, so a plan costs about the same with 50,000 of them as with
    a few (matched one by one, each compiled again per runbook past ``fnmatch``'s cache, 300,000
    took minutes): patterns without wildcards in a dict; the others indexed by the first
    ``_GRAM`` letters of the longest text every match must contain, so only those sharing a
    piece of the value are compiled and tried. Matching is ``fnmatch``'s, case-insensitive."""

    _GRAM = 3

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.literals: dict[str, int] = {}
        self.by_gram: dict[str, list[int]] = {}
        self.always: list[int] = []
        self.lowered = [p.lower() for p in patterns]
        self.compiled: dict[int, re.Pattern] = {}
        for index, pattern in enumerate(self.lowered):
            if not any(c in pattern for c in "*?["):
                self.literals.setdefault(pattern, index)
                continue
            # text before any bracket, between * and ?, is literal in every match
            run = max(re.split(r"[*?]", pattern.split("[", 1)[0]), key=len)
            if run:
                self.by_gram.setdefault(run[: self._GRAM], []).append(index)
            else:
                self.always.append(index)

    @staticmethod
    @lru_cache(maxsize=8)
    def of(patterns: tuple[str, ...]) -> _Exclusions:
        return _Exclusions(patterns)

    def first(self, *values: str | None) -> int | None:
        """Index of the first pattern that matches any of ``values``, or None."""
        best: int | None = None
        for value in values:
            if not value:
                continue
            value = value.lower()
            if value in self.literals:
                best = min(best, self.literals[value]) if best is not None else self.literals[value]
            grams = {value[i:i + n] for n in range(1, self._GRAM + 1) for i in range(len(value) - n + 1)}
            candidates = set(self.always)
            for gram in grams:
                candidates.update(self.by_gram.get(gram, ()))
            for index in sorted(candidates):
                if best is not None and index >= best:
                    break
                if self._regex(index).match(value):
                    best = index
                    break
        return best

    def _regex(self, index: int) -> re.Pattern:
        if index not in self.compiled:
            self.compiled[index] = re.compile(fnmatch.translate(self.lowered[index]))
        return self.compiled[index]


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


def _before(live: LiveRunbook, receipt: Receipt) -> dict[str, Any]:
    return {
        "name": live.name,
        "runbook_type": live.runbook_type,
        "runtime_environment": live.runtime_environment,
        "state": live.state,
        "sha256": receipt.sha256,
        "path": receipt.path,
    }


def _requires(runbook: Runbook, policy: Policy) -> tuple[str, ...]:
    return tuple(sorted({m.name for m in runbook.modules}, key=str.lower)) if policy.modules else ()


def _create(runbook: Runbook, policy: Policy) -> Change:
    return Change(RUNBOOK, CREATE, runbook.name, f"new in the source: {runbook.path}",
                  before=None, after=_after(runbook, policy, None), requires=_requires(runbook, policy))


def _drift_reason(live: LiveRunbook, receipt: Receipt, contents: Mapping[str, bytes | None]) -> str | None:
    if live.state == STATE_EDIT:
        return "a draft edited in the portal is waiting to be published"
    if receipt.sha256 is not None and receipt.republished(live.last_modified):
        content = contents.get(live.name.lower())
        if content is not None and normalized_sha256(content) != receipt.sha256:
            return "content published in the portal differs from what rjsync last synced"
    return None


#: The system runtime environment a classic runbook of each type is linked to: the service may
#: name it for a runbook of classic type (shared notes, "Runtime environments"; unverified), and
#: that runbook is classic all the same.
_CLASSIC_ENVIRONMENTS = {"powershell": "powershell-5.1"}


def _environment_of(live: LiveRunbook) -> str | None:
    """The runtime environment ``live`` runs in, None for a classic runbook (also when the
    service names the system environment of its classic type)."""
    env = live.runtime_environment
    if env and _CLASSIC_ENVIRONMENTS.get(live.runbook_type.lower()) == env.lower():
        return None
    return env


def _update(runbook: Runbook, live: LiveRunbook, receipt: Receipt, policy: Policy,
            contents: Mapping[str, bytes | None], drifted: str | None) -> Change | None:
    after = _after(runbook, policy, live)
    before = _before(live, receipt)
    aspects: list[str] = []
    reasons: list[str] = []
    warnings: list[str] = []

    sha = receipt.sha256
    if sha is not None and not receipt.republished(live.last_modified):
        content_differs = sha != runbook.sha256
    else:
        content = contents.get(live.name.lower())
        live_sha = normalized_sha256(content) if content is not None else None
        before = {**before, "sha256": live_sha}
        content_differs = live_sha != runbook.sha256
        if not content_differs:
            aspects.append("receipt")
            reasons.append("content already current (adopted: receipt added)" if sha is None
                           else "published again with the same content (receipt refreshed)")
    if drifted:
        aspects.append("drift")
        reasons.append(f"overwrites drift: {drifted}")
    if content_differs:
        aspects.append("content")
        reasons.append("content changed")
    if (_environment_of(live) or "").lower() != (policy.runtime_environment or "").lower():
        aspects.append("runtime")
        reasons.append(f"runtime {_environment_of(live) or 'classic'} -> "
                       f"{policy.runtime_environment or 'classic'}")
    if live.description != after["description"]:
        aspects.append("metadata")
        reasons.append("description changed")
    path = receipt.path
    if sha is not None and path != runbook.path and "receipt" not in aspects:
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


def _deletions(catalog: Catalog, orphans: tuple[LiveRunbook, ...], policy: Policy):
    if not orphans:
        return [], []
    why = None
    if catalog.errors:
        why = f"the catalog has {len(catalog.errors)} error(s): nothing is deleted until they are fixed"
    elif not catalog.runbooks:
        why = "the catalog is empty (wrong source or contexts?): nothing is deleted"
    if why:
        return [], [Skip(RUNBOOK, live.name, why) for live in orphans]
    changes = []
    for live in orphans:
        receipt = Receipt.of(live.tags)
        changes.append(Change(RUNBOOK, DELETE, live.name,
                              "owned, no longer in the source" + (f" (was {receipt.path})" if receipt.path else ""),
                              before=_before(live, receipt), after=None))
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
        if live is None or not live.loaded:
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
        elif minimum and not version_known(live.version):
            # the service may report a loaded module's version as Unknown: importing it again
            # would read Unknown again, on every run; it is counted as installed and shown
            skips.append(Skip(MODULE, live.name, f"required by {count} at least at {minimum}; the account "
                                                 f"reports its version as {live.version or 'none'}: counted as "
                                                 "installed, not imported again"))
            continue
        elif minimum and version_key(live.version) < version_key(minimum):
            warnings = ()
            if live.version and version_key(minimum)[0][0] > version_key(live.version)[0][0]:
                warnings = (f"major-version upgrade {live.version} -> {minimum}: customer runbooks "
                            f"that use {live.name} {live.version} may break",)
            change = Change(MODULE, UPDATE, live.name,
                            f"required by {count} at least at {minimum}; {live.version} installed",
                            before={"version": live.version, "provisioning_state": live.provisioning_state},
                            after=after, warnings=warnings)
        else:
            continue
        if not policy.modules:
            skips.append(Skip(MODULE, change.name, f"{change.reason}; module management is off"))
            continue
        changes.append(change)
    return changes, skips
