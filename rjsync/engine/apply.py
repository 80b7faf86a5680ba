"""Carry out a plan against an account: the only part of the engine that writes.

Order: the runtime environment (when missing); modules, all at once (each awaited until
provisioned; the account paces their starts and imports dependencies first, once); creates,
updates and replaces with bounded concurrency, each runbook waiting for the imports of the
modules it requires (so none is published before its modules, while runbooks that need nothing
new do not wait; a new runbook is created and uploaded meanwhile and waits only to be
published); deletions last. One failed change does not stop the others; every change ends with
an ``Outcome`` that says what happened and why.

An update that changes no content (adoption, a refreshed receipt, a new description or runtime
environment) is one properties write, once the account confirmed that its published content is
still what the receipt will say; otherwise it is a full write.

Every write carries its receipt, and the receipt is written only after publish succeeded, so an
apply killed at any point leaves an account that the next plan reads correctly: re-running
converges (design invariant 5).
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Mapping

from rjsync.accounts.base import Account, ModuleImport, RunbookWrite
from rjsync.accounts.receipts import receipt_tags
from rjsync.catalog.text import normalized_sha256
from rjsync.engine.plan import (
    CREATE,
    DELETE,
    MODULE,
    REPLACE,
    RUNBOOK,
    UPDATE,
    Change,
    Plan,
)
from rjsync.errors import RjsyncError
from rjsync.settings import DEFAULT_CONCURRENCY

DONE, FAILED, SKIPPED = "done", "failed", "skipped"


@dataclass(frozen=True)
class Outcome:
    """What happened to one step: ``change`` is None for the runtime environment."""

    kind: str  # runbook | module | runtime_environment
    action: str
    name: str
    status: str  # done | failed | skipped
    message: str

    def to_json(self) -> dict:
        return {"kind": self.kind, "action": self.action, "name": self.name, "status": self.status,
                "message": self.message}

    def line(self) -> str:
        """One line, e.g. ``failed  create runbook rjgit-x: why``, as progress and reports show it
        (its name and message as the input gave them: a terminal needs ``markdown.terminal``)."""
        return f"{self.status:<7} {self.action} {self.kind.replace('_', ' ')} {self.name}: {self.message}"


@dataclass
class ApplyReport:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return self.count(FAILED) == 0 and self.count(SKIPPED) == 0

    def to_json(self) -> dict:
        return {"outcomes": [o.to_json() for o in self.outcomes],
                "summary": {s: self.count(s) for s in (DONE, FAILED, SKIPPED)}}


def steps(plan: Plan) -> int:
    """How many steps ``apply_plan`` reports (for a progress bar)."""
    return len(plan.changes) + (1 if plan.environment else 0)


def apply_plan(
    plan: Plan,
    account: Account,
    files: Mapping[str, bytes],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_deletions: int | None = None,
    on_start: Callable[[str, str, str], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> ApplyReport:
    """Apply ``plan`` to ``account``; ``files`` maps source paths to their bytes.

    ``max_deletions`` overrides the plan's limit. ``on_start(kind, action, name)`` and
    ``on_outcome(outcome)`` are called as steps start and end (from worker threads).
    """
    report = ApplyReport()
    lock = threading.Lock()
    limit = plan.policy.max_deletions if max_deletions is None else max_deletions

    def record(outcome: Outcome) -> None:
        with lock:
            report.outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)

    def started(kind: str, action: str, name: str) -> None:
        if on_start:
            on_start(kind, action, name)

    environment_failed = None
    if plan.environment:
        name = plan.environment["name"]
        started("runtime_environment", CREATE, name)
        try:
            # a plan saved before default packages were planned: the policy's
            defaults = plan.environment.get("default_packages", dict(plan.policy.default_packages))
            account.ensure_runtime_environment(name, default_packages=defaults)
            record(Outcome("runtime_environment", CREATE, name, DONE, "created"))
        except RjsyncError as err:
            environment_failed = f"runtime environment {name} could not be created"
            record(Outcome("runtime_environment", CREATE, name, FAILED, err.message))

    modules = [c for c in plan.changes if c.kind == MODULE]
    writes = [c for c in plan.changes if c.kind == RUNBOOK and c.action != DELETE]
    deletions = [c for c in plan.changes if c.kind == RUNBOOK and c.action == DELETE]

    # Modules are imported beside the runbook writes, all at once: the account paces their
    # starts to the service's limit, and an import takes minutes on Azure, so one waiting for
    # another would only lose time. They are started in the order of how many runbooks wait
    # for them (once the service's window is full, the account's pacing decides which goes
    # next). The account decides the versions of all of them and their dependencies together
    # (each module imported once, at the highest version any of them needs) and imports a
    # module's dependencies first. Each runbook write waits only for the imports of the modules
    # it requires, so no runbook is published before its modules, and the rest need not wait.
    waiting = {c.name.lower(): sum(1 for w in writes if c.name.lower() in {r.lower() for r in w.requires})
               for c in modules}
    modules.sort(key=lambda c: -waiting[c.name.lower()])  # stable: name order among equals
    imported = {c.name.lower(): threading.Event() for c in modules}
    # the modules the plan imports, resolved by the account as one set with their dependencies:
    # each imported once, at the highest version any of them needs
    planned = {c.name: (c.after or {}).get("version") for c in modules}
    failed_modules: set[str] = set()

    def import_one(change: Change) -> None:
        try:
            started(change.kind, change.action, change.name)
            if environment_failed and change.after.get("runtime_environment"):
                outcome = _outcome(change, SKIPPED, f"not imported: {environment_failed}")
            else:
                outcome = _import(account, change, planned)
            if outcome.status != DONE:
                with lock:
                    failed_modules.add(change.name)
            record(outcome)
        finally:
            imported[change.name.lower()].set()

    def import_all() -> None:
        _run_all(import_one, modules, len(modules))

    def modules_of(change: Change) -> None:
        """Wait for the imports of the modules ``change`` requires."""
        for module in change.requires:
            event = imported.get(module.lower())
            if event is not None:
                event.wait()

    def write(change: Change) -> None:
        # A new runbook is created and its content uploaded while its modules import, and
        # waits for them only before it is published: an interrupted apply leaves a runbook
        # without published content, which the next plan writes again. A runbook the account
        # has waits before anything is written (its draft would read as edited in the portal).
        early = change.action == CREATE and any(m.lower() in imported for m in change.requires)
        if not early:
            modules_of(change)
        started(change.kind, change.action, change.name)
        if environment_failed and change.after.get("runtime_environment"):
            record(_outcome(change, SKIPPED, f"not written: {environment_failed}"))
            return
        outcome = _write(account, change, files, plan.source.get("commit"),
                         before_publish=(lambda: modules_of(change)) if early else None)
        missing = sorted(m for m in change.requires if m in failed_modules)
        if missing and outcome.status == DONE:
            outcome = dataclasses.replace(outcome, message=outcome.message + (
                f" (its module{'s' if len(missing) > 1 else ''} {', '.join(missing)} failed to import)"))
        record(outcome)

    def delete(change: Change) -> None:
        started(change.kind, change.action, change.name)
        try:
            account.delete_runbook(change.name)
            record(_outcome(change, DONE, "deleted"))
        except RjsyncError as err:
            record(_outcome(change, FAILED, err.message))

    # runbooks that wait for no import first, then in the order their modules arrive
    rank = {c.name.lower(): i for i, c in enumerate(modules)}
    writes.sort(key=lambda c: max((rank.get(m.lower(), -1) for m in c.requires), default=-1))
    importer = threading.Thread(target=import_all, name="rjsync-modules", daemon=True)
    importer.start()
    try:
        _run_all(write, writes, concurrency)
    finally:
        importer.join()
    if len(deletions) > limit:
        for change in deletions:
            started(change.kind, change.action, change.name)
            record(_outcome(change, SKIPPED, f"not deleted: {len(deletions)} deletions exceed the limit "
                                             f"of {limit}; run again with --max-deletions {len(deletions)}"))
    else:
        _run_all(delete, deletions, concurrency)
    return report


def _run_all(work: Callable[[Change], None], changes: list[Change], concurrency: int) -> None:
    if not changes:
        return
    if concurrency <= 1 or len(changes) == 1:
        for change in changes:
            work(change)
        return
    pool = ThreadPoolExecutor(max_workers=min(concurrency, len(changes)), thread_name_prefix="rjsync-apply")
    try:
        for future in [pool.submit(work, change) for change in changes]:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _outcome(change: Change, status: str, message: str) -> Outcome:
    return Outcome(change.kind, change.action, change.name, status, message)


def _import(account: Account, change: Change, planned: Mapping[str, str | None]) -> Outcome:
    after = change.after or {}
    spec = ModuleImport(change.name, after.get("version"), after.get("runtime_environment"), requirements=planned)
    try:
        live = account.import_module(spec)
    except RjsyncError as err:
        return _outcome(change, FAILED, err.message)
    return _outcome(change, DONE, f"{live.name} {live.version or ''} {live.provisioning_state.lower()}".replace("  ", " "))


def _write(account: Account, change: Change, files: Mapping[str, bytes], commit: str | None,
           before_publish: Callable[[], None] | None = None) -> Outcome:
    after = change.after or {}
    content = files.get(after.get("path", ""))
    if content is None:
        return _outcome(change, FAILED, f"{after.get('path')} is not in the source any more; plan again")
    if normalized_sha256(content) != after.get("sha256"):
        return _outcome(change, FAILED, f"{after['path']} changed in the source since the plan; plan again")
    receipt = receipt_tags(after["sha256"], after["path"], commit)
    spec = RunbookWrite(
        name=change.name,
        content=content,
        runbook_type=after["runbook_type"],
        runtime_environment=after.get("runtime_environment"),
        description=after.get("description") or "",
        tags=dict(after.get("tags") or {}),
        receipt=receipt,
        exists=change.action == UPDATE,  # a replace deletes it first
    )
    try:
        if _in_place(change) and account.write_properties(spec) is not None:
            return _outcome(change, DONE, "updated in place (content already current, not published again)")
        if change.action == REPLACE:
            account.delete_runbook(change.name)
        account.write_runbook(spec, before_publish=before_publish)
    except RjsyncError as err:
        return _outcome(change, FAILED, err.message)
    verb = {CREATE: "created", REPLACE: "replaced"}.get(change.action, "updated")
    return _outcome(change, DONE, f"{verb} and published")


#: Update aspects that leave the published content as it is.
_PROPERTY_ASPECTS = frozenset({"receipt", "metadata", "runtime"})


def _in_place(change: Change) -> bool:
    """Whether ``change`` needs only a properties write: an update that changes no content (the
    account confirms that before writing) and, when the runtime changes, one into a runtime
    environment (a PATCH names the new environment; moving back to classic is a full write)."""
    if change.action != UPDATE or not change.aspects or not set(change.aspects) <= _PROPERTY_ASPECTS:
        return False
    return "runtime" not in change.aspects or bool((change.after or {}).get("runtime_environment"))
