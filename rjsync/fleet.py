"""Fleets: a folder of manifests, one per automation account, planned or applied together.

``rjsync plan|apply --manifest FOLDER`` reads every ``*.yaml``/``*.yml`` in FOLDER whose name
does not start with ``_`` (``_defaults.yaml`` holds what they share, see ``rjsync.manifest``)
and runs each account's plan or apply through the sync pipeline (``rjsync.sync``), a few
accounts at once. Accounts are isolated: a broken manifest, an unreachable account or an
unexpected exception is that account's error, reported in its row of the summary, and the
others go on. Each source is read once per (location, ref) and each catalog built once per
(source, contexts, prefix), however many accounts share them.

This is the fleet's library half: it prints nothing (the CLI's fleet command shows it). The
exit code is the worst of the accounts' (1 error > 2 changes pending > 0). The fleet document
(``FleetReport.to_json``), whose accounts carry their plan documents, is what the pure
renderers of ``rjsync.engine.render_fleet`` read.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from rjsync.accounts.targets import parse_target
from rjsync.catalog.model import Catalog
from rjsync.engine.plan import Plan
from rjsync.engine.policy import Policy
from rjsync.errors import ManifestError, RjsyncError
from rjsync.manifest import find_defaults, load_defaults, load_manifest
from rjsync.settings import DEFAULT_ACCOUNTS_AT_ONCE, SourceSpec, SyncSettings, override
from rjsync.source import Checkout, open_source
from rjsync.sync import (
    AccountOpener,
    ApplyEvents,
    ApplyResult,
    apply,
    catalog_errors,
    catalog_of,
    default_opener,
    permissions_problem,
    prepare,
)

PLAN, APPLY = "plan", "apply"

# Account statuses. Plan: no changes, changes, error. Apply: in sync, applied, incomplete, error.
NO_CHANGES, CHANGES, ERROR = "no changes", "changes", "error"
IN_SYNC, APPLIED, INCOMPLETE = "in sync", "applied", "incomplete"

_SEVERITY = {0: 0, 2: 1, 1: 2}  # exit codes, least to most severe


def worst(codes: Iterable[int]) -> int:
    """The most severe exit code: 1 (error) over 2 (changes pending) over 0."""
    return max(codes, key=lambda code: _SEVERITY.get(code, 2), default=0)


# -- loading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetEntry:
    """One manifest of the fleet: its settings, or why they cannot be read."""

    name: str
    manifest: str
    settings: SyncSettings | None = None
    error: str | None = None


@dataclass(frozen=True)
class Fleet:
    folder: str
    entries: tuple[FleetEntry, ...]
    defaults: str | None = None  # the defaults file merged into every manifest
    accounts_at_once: int = DEFAULT_ACCOUNTS_AT_ONCE


def manifest_files(folder: str | os.PathLike) -> list[Path]:
    """The account manifests of ``folder``: ``*.yaml``/``*.yml`` not starting with ``_`` or ``.``,
    by name."""
    return sorted((p for p in Path(folder).iterdir()
                   if p.suffix.lower() in (".yaml", ".yml") and not p.name.startswith(("_", "."))
                   and p.is_file()), key=lambda p: p.name)


def load_fleet(folder: str | os.PathLike, *, customize: Callable[[SyncSettings], SyncSettings] | None = None,
               accounts_at_once: int = DEFAULT_ACCOUNTS_AT_ONCE) -> Fleet:
    """Read every manifest of ``folder``. A broken manifest becomes an entry with its error;
    a broken defaults file, or a folder without manifests, fails the whole fleet (raises)."""
    shown = os.fspath(folder)
    if not os.path.isdir(shown):
        raise ManifestError(f"The manifest folder '{shown}' does not exist.")
    files = manifest_files(shown)
    if not files:
        raise ManifestError(f"The folder '{shown}' holds no manifests (*.yaml or *.yml files not starting "
                            "with '_').")
    defaults_path = find_defaults(shown)
    defaults = load_defaults(defaults_path) if defaults_path else None
    entries: list[FleetEntry] = []
    names: dict[str, str] = {}
    targets: dict[str, str] = {}
    for path in files:
        name, manifest = path.stem, os.path.join(shown, path.name)
        try:
            if name.lower() in names:
                raise ManifestError(f"{manifest}: the account name {name!r} is taken by {names[name.lower()]}; "
                                    "rename one of them.")
            names[name.lower()] = manifest
            settings = load_manifest(manifest, defaults=defaults)
            if customize is not None:
                settings = customize(settings)
            key = _account_key(settings.target)
            if key in targets:
                raise ManifestError(f"{manifest}: its target {settings.target} is also the target of "
                                    f"{targets[key]}; one manifest per account, or two syncs would write "
                                    "it at once.")
            targets[key] = manifest
        except RjsyncError as err:
            entries.append(FleetEntry(name, manifest, error=err.message))
        else:
            entries.append(FleetEntry(name, manifest, settings=settings))
    return Fleet(shown, tuple(entries), os.fspath(defaults_path) if defaults_path else None,
                 accounts_at_once)


def fleet_from(folder: str, *, source: str | None, ref: str | None, target: str | None,
               policy: Mapping[str, Any] | None = None, azure: Mapping[str, Any] | None = None,
               concurrency: int | None = None, accounts_at_once: int | None = None,
               require_permissions: bool | None = None) -> Fleet:
    """``load_fleet`` with the command line's flags overriding every manifest."""
    if source or target:
        raise RjsyncError("Give either --manifest or --source and --target, not both.")
    return load_fleet(folder, accounts_at_once=accounts_at_once or DEFAULT_ACCOUNTS_AT_ONCE,
                      customize=lambda s: override(s, ref=ref, policy=policy, azure=azure,
                                                   concurrency=concurrency, require_permissions=require_permissions))


def _account_key(target: str) -> str:
    return parse_target(target).key


# -- one read per source ---------------------------------------------------------------------------


class SourceCache:
    """Reads each source once per (location, ref) and builds each catalog once per (source,
    contexts, prefix), however many accounts ask and from however many threads. A failure is
    remembered too: every account of a bad source gets its error without another try."""

    def __init__(self, reader: Callable[[str, str | None], Checkout] | None = None) -> None:
        self._reader = reader
        self._lock = threading.Lock()
        self._results: dict[tuple, Future] = {}

    def get(self, spec: SourceSpec, policy: Policy) -> tuple[Checkout, Catalog]:
        read = self._reader or open_source
        checkout = self._once(("source", spec.location, spec.ref), lambda: read(spec.location, spec.ref))
        catalog = self._once(("catalog", spec.location, spec.ref, policy.contexts, policy.prefix),
                             lambda: catalog_of(checkout, policy))
        return checkout, catalog

    def _once(self, key: tuple, make: Callable[[], Any]) -> Any:
        with self._lock:
            result = self._results.get(key)
            mine = result is None
            if mine:
                result = self._results[key] = Future()
        if mine:
            try:
                result.set_result(make())
            except Exception as err:  # noqa: BLE001 - remembered, raised to every caller
                result.set_exception(err)
        return result.result()


# -- running ---------------------------------------------------------------------------------------


@dataclass
class AccountResult:
    """What happened to one account; ``output`` is its section of the text output."""

    name: str
    manifest: str
    target: str | None
    status: str
    exit_code: int
    plan: dict | None = None
    error: str | None = None
    applied: dict[str, int] | None = None  # apply: done, failed, skipped
    output: str = ""
    result: ApplyResult | None = field(default=None, repr=False)  # apply: what it did

    def to_json(self) -> dict:
        doc = {"name": self.name, "manifest": self.manifest, "target": self.target, "status": self.status,
               "exit_code": self.exit_code, "plan": self.plan, "error": self.error}
        if self.applied is not None:
            doc["applied"] = self.applied
        return doc


@dataclass
class FleetReport:
    command: str  # PLAN or APPLY
    folder: str
    accounts: list[AccountResult] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return worst(a.exit_code for a in self.accounts)

    def to_json(self) -> dict:
        summary = {"accounts": len(self.accounts)}
        for status in _STATUSES[self.command]:
            key = "errors" if status == ERROR else status.replace(" ", "_")
            summary[key] = sum(1 for a in self.accounts if a.status == status)
        summary["exit_code"] = self.exit_code
        return {"accounts": [a.to_json() for a in self.accounts], "summary": summary}

_STATUSES = {PLAN: (CHANGES, NO_CHANGES, ERROR), APPLY: (APPLIED, IN_SYNC, INCOMPLETE, ERROR)}


def run_accounts(fleet: Fleet, command: str, work: Callable[[FleetEntry], AccountResult],
                 on_result: Callable[[AccountResult], None] | None = None) -> FleetReport:
    """``work`` on every entry, ``accounts_at_once`` at a time; ``on_result`` gets each result
    as soon as it and every account before it (by name) are done."""
    report = FleetReport(command, fleet.folder)
    entries = list(fleet.entries)
    with ThreadPoolExecutor(max_workers=max(1, min(fleet.accounts_at_once, len(entries)))) as pool:
        futures = [pool.submit(work, entry) for entry in entries]
        for future in futures:  # in name order: a later account waits only to be reported
            result = future.result()
            report.accounts.append(result)
            if on_result is not None:
                on_result(result)
    return report


def guarded(entry: FleetEntry, work: Callable[[], AccountResult]) -> AccountResult:
    """Run one account's ``work``; whatever it raises becomes that account's error."""
    target = entry.settings.target if entry.settings else None
    if entry.error is not None:
        return AccountResult(entry.name, entry.manifest, target, ERROR, 1, error=entry.error)
    try:
        return work()
    except RjsyncError as err:
        message = err.message
    except Exception as err:  # noqa: BLE001 - isolation: one account's bug must not stop the fleet
        message = f"unexpected {type(err).__name__}: {err}"
    return AccountResult(entry.name, entry.manifest, target, ERROR, 1, error=message)


def plan_account(entry: FleetEntry, cache: SourceCache, opener: AccountOpener = default_opener, *,
                 detailed_exitcode: bool = False) -> AccountResult:
    """Plan one account of the fleet (its source read through ``cache``)."""
    settings = entry.settings
    with prepare(settings, opener=opener, checkout=cache.get(settings.source, settings.policy)) as prepared:
        plan = prepared.plan
    problem = permissions_problem(plan) if settings.require_permissions else None
    if plan.errored:
        status, code, error = ERROR, 1, catalog_errors(plan)
    elif problem:
        status, code, error = ERROR, 1, problem
    elif plan.has_changes:
        status, code, error = CHANGES, 2 if detailed_exitcode else 0, None
    else:
        status, code, error = NO_CHANGES, 0, None
    return AccountResult(entry.name, entry.manifest, settings.target, status, code, plan=plan.to_json(),
                         error=error)


def apply_account(entry: FleetEntry, cache: SourceCache, opener: AccountOpener = default_opener, *,
                  max_deletions: int | None = None, on_plan: Callable[[Plan], None] | None = None,
                  events: ApplyEvents | None = None) -> AccountResult:
    """Plan and apply one account of the fleet; ``on_plan`` sees the plan before it is applied."""
    settings = entry.settings
    with prepare(settings, opener=opener, checkout=cache.get(settings.source, settings.policy)) as prepared:
        plan = prepared.plan
        if on_plan is not None:
            on_plan(plan)
        problem = permissions_problem(plan) if settings.require_permissions else None
        result = (apply(prepared, max_deletions=max_deletions, events=events)
                  if plan.has_changes and not problem else None)
    applied = result.counts() if result is not None else None
    if problem:
        status, code, error = ERROR, 1, f"Not applying: {problem}"
    elif plan.errored:
        status, code, error = ERROR, 1, catalog_errors(plan)
    elif result is None:
        status, code, error = IN_SYNC, 0, None
    elif result.ok:
        status, code, error = APPLIED, 0, None
    else:
        status, code, error = INCOMPLETE, 1, (f"{applied['failed']} failed and {applied['skipped']} skipped of "
                                              f"{sum(applied.values())} changes; run again to finish.")
    return AccountResult(entry.name, entry.manifest, settings.target, status, code, plan=plan.to_json(),
                         error=error, applied=applied, result=result)
