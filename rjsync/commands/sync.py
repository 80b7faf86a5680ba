"""``rjsync plan`` and ``rjsync apply``: source -> catalog -> snapshot -> plan -> (apply).

The data flow of design.md as plain functions: ``prepare`` reads the source and the account and
computes the plan; ``run_plan`` renders it; ``run_apply`` shows it, asks, and carries it out.
A saved plan (``--out``) is applied only while neither the source nor the account changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import click

from rjsync.accounts import open_account
from rjsync.accounts.base import Account, Snapshot
from rjsync.catalog.build import build_catalog
from rjsync.catalog.model import Catalog
from rjsync.engine import render
from rjsync.engine.apply import DONE, FAILED, SKIPPED, ApplyReport, Outcome, apply_plan, steps
from rjsync.engine.plan import Plan
from rjsync.engine.planner import pair, plan_sync, snapshot_scope
from rjsync.engine.policy import AzureOptions, Policy, SourceSpec, SyncSettings
from rjsync.engine.saved import check_account_fresh, check_source_fresh, load_plan, save_plan
from rjsync.errors import RjsyncError
from rjsync.source import Checkout, open_source

AccountOpener = Callable[[SyncSettings], Account]

#: Runbook writes in progress per request slot (``--concurrency`` bounds requests in flight):
#: a write spends most of its time waiting for two long-running operations, not on the wire.
WRITES_PER_REQUEST_SLOT = 4


@dataclass
class Prepared:
    """Everything read for one plan, kept for apply."""

    settings: SyncSettings
    checkout: Checkout
    catalog: Catalog
    account: Account
    snapshot: Snapshot
    plan: Plan

    @property
    def files(self) -> dict[str, bytes]:
        return {f.path: f.data for f in self.checkout.files}


# -- settings --------------------------------------------------------------------------------------


def settings_from(
    *,
    manifest: str | None,
    source: str | None,
    ref: str | None,
    target: str | None,
    policy: Mapping[str, Any] | None = None,
    azure: Mapping[str, Any] | None = None,
    concurrency: int | None = None,
) -> SyncSettings:
    """A manifest, or --source/--target; flags given explicitly override the manifest."""
    if manifest:
        if source or target:
            raise RjsyncError("Give either --manifest or --source and --target, not both.")
        from rjsync.manifest import load_manifest

        return override(load_manifest(manifest), ref=ref, policy=policy, azure=azure, concurrency=concurrency)
    if not source or not target:
        missing = " and ".join(o for o, v in (("--source", source), ("--target", target)) if not v)
        raise RjsyncError(
            f"Missing {missing}: give --manifest FILE, or --source SOURCE and --target TARGET "
            "(local:PATH or an automation account's ARM id).")
    settings = SyncSettings(source=SourceSpec(source, ref), target=target)
    return override(settings, policy=policy, azure=azure, concurrency=concurrency)


def override(
    settings: SyncSettings,
    *,
    ref: str | None = None,
    policy: Mapping[str, Any] | None = None,
    azure: Mapping[str, Any] | None = None,
    concurrency: int | None = None,
) -> SyncSettings:
    """``settings`` with the values given (not None) in place of the manifest's."""
    policy = {k: v for k, v in (policy or {}).items() if v is not None}
    azure = {k: v for k, v in (azure or {}).items() if v is not None}
    if ref:
        settings = dataclasses.replace(settings, source=dataclasses.replace(settings.source, ref=ref))
    if policy:
        settings = dataclasses.replace(settings, policy=dataclasses.replace(settings.policy, **policy))
    if azure:
        settings = dataclasses.replace(settings, azure=dataclasses.replace(settings.azure, **azure))
    if concurrency is not None:
        settings = dataclasses.replace(settings, concurrency=concurrency)
    return settings


def default_opener(settings: SyncSettings) -> Account:
    from rjsync.accounts.azure import AzureSettings

    az: AzureOptions = settings.azure
    return open_account(settings.target, owned_prefix=settings.policy.prefix, auth=az.auth,
                        client_id=az.client_id, cloud=az.cloud, arm_endpoint=az.arm_endpoint,
                        settings=AzureSettings(max_concurrent_requests=settings.concurrency))


# -- plan ------------------------------------------------------------------------------------------


def read_source(spec: SourceSpec, policy: Policy) -> tuple[Checkout, Catalog]:
    checkout = open_source(spec.location, spec.ref)
    return checkout, catalog_of(checkout, policy)


def catalog_of(checkout: Checkout, policy: Policy) -> Catalog:
    """The catalog of a checkout as ``policy`` sees it (its contexts and prefix)."""
    return build_catalog(checkout.info, checkout.files, contexts=policy.contexts, prefix=policy.prefix,
                         diagnostics=checkout.diagnostics)


def read_contents(account: Account, names: list[str], concurrency: int) -> dict[str, bytes | None]:
    """Published content of ``names``, read in parallel."""
    if not names:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(names)))) as pool:
        return dict(zip(names, pool.map(account.read_content, names), strict=False))


def plan_against(account: Account, catalog: Catalog, policy: Policy, concurrency: int) -> tuple[Snapshot, Plan]:
    snapshot = account.snapshot(snapshot_scope(policy))
    pairing = pair(catalog, snapshot, policy)
    contents = read_contents(account, pairing.content_needed(), concurrency)
    return snapshot, plan_sync(pairing, target=account.target, contents=contents)


def prepare(settings: SyncSettings, *, opener: AccountOpener = default_opener,
            checkout: tuple[Checkout, Catalog] | None = None) -> Prepared:
    """Read source and account and plan. The caller closes ``prepared.account``."""
    source, catalog = checkout or read_source(settings.source, settings.policy)
    account = opener(settings)
    try:
        snapshot, plan = plan_against(account, catalog, settings.policy, settings.concurrency)
    except BaseException:
        account.close()
        raise
    return Prepared(settings, source, catalog, account, snapshot, plan)


def run_plan(settings: SyncSettings, *, fmt: str = "text", out: str | None = None,
             detailed_exitcode: bool = False, opener: AccountOpener = default_opener) -> int:
    prepared = prepare(settings, opener=opener)
    prepared.account.close()
    plan = prepared.plan
    doc = plan.to_json()
    if fmt == "text":
        click.echo(render.to_text(doc, color=_color(sys.stdout)), nl=False)
    else:
        click.echo(render.RENDERERS[fmt](doc), nl=False)
    if out:
        save_plan(plan, out)
        if fmt == "text":
            click.echo(f"Saved the plan to {out}; apply it with: rjsync apply {out}")
    if plan.errored:
        _catalog_errors(plan)
        return 1
    return 2 if detailed_exitcode and plan.has_changes else 0


def catalog_errors(plan: Plan) -> str:
    count = sum(1 for d in plan.diagnostics if d.severity == "error")
    return (f"the catalog has {count} error{'s' if count != 1 else ''} (see Diagnostics): those runbooks "
            "are left as they are and nothing is deleted until they are fixed.")


def _catalog_errors(plan: Plan, err=None) -> None:
    click.echo(f"Error: {catalog_errors(plan)}", err=True, file=err)


# -- apply -----------------------------------------------------------------------------------------


def prepare_saved(path: str, *, azure: AzureOptions, concurrency: int,
                  opener: AccountOpener = default_opener) -> Prepared:
    """Re-read source and account for a saved plan and refuse it when either changed since."""
    plan = load_plan(path)
    source = plan.source
    ref = source.get("commit") if source.get("kind") == "git" else None
    settings = SyncSettings(source=SourceSpec(source["location"], ref or source.get("ref")), target=plan.target,
                            policy=plan.policy, azure=azure, concurrency=concurrency)
    checkout, catalog = read_source(settings.source, plan.policy)
    check_source_fresh(plan, catalog, path)
    account = opener(settings)
    try:
        snapshot = account.snapshot(snapshot_scope(plan.policy))
        check_account_fresh(plan, snapshot, path)
    except BaseException:
        account.close()
        raise
    return Prepared(settings, checkout, catalog, account, snapshot, plan)


def run_apply(prepared: Prepared, *, auto_approve: bool = False, max_deletions: int | None = None,
              concurrency: int | None = None) -> int:
    return apply_prepared(prepared, auto_approve=auto_approve, max_deletions=max_deletions,
                          concurrency=concurrency)[0]


def apply_prepared(prepared: Prepared, *, auto_approve: bool = False, max_deletions: int | None = None,
                   concurrency: int | None = None, out=None, err=None) -> tuple[int, ApplyReport | None]:
    """Show the plan, confirm, apply; the exit code and the report (None when nothing was applied).

    The plan and the report go to ``out``, progress and problems to ``err`` (default: stdout and
    stderr); a fleet gives each account its own. Closes the account.
    """
    plan = prepared.plan
    account = prepared.account
    try:
        doc = plan.to_json()
        click.echo(render.to_text(doc, color=_color(out or sys.stdout)), nl=False, file=out)
        if not plan.has_changes:
            if plan.errored:
                _catalog_errors(plan, err)
                return 1, None
            return 0, None
        if not auto_approve:
            if not sys.stdin.isatty():
                raise RjsyncError("Not applying: confirmation needs a terminal. Review the plan above and "
                                  "pass --auto-approve to apply without asking.")
            if not click.confirm(f"\nApply these changes to {plan.target}?", default=False, err=True):
                click.echo("Nothing applied.", err=True)
                return 1, None
        progress = Progress(steps(plan), err or sys.stderr)
        started = time.monotonic()
        try:
            with notes_to(progress.note, account.target):
                report = apply_plan(plan, account, prepared.files,
                                    concurrency=concurrency or prepared.settings.concurrency,
                                    max_deletions=max_deletions, on_outcome=progress.outcome)
        finally:
            progress.close()
        _print_report(report, time.monotonic() - started, plan, out, err)
        return (0 if report.ok and not plan.errored else 1), report
    finally:
        account.close()


class Progress:
    """A progress bar on a terminal; one line per finished step otherwise (CI logs)."""

    def __init__(self, total: int, stream):
        self.total, self.stream = total, stream
        self.done = 0
        self._lock = threading.Lock()
        self._bar = None
        if _color(stream) and total:
            self._bar = click.progressbar(length=total, label="Applying", file=stream, show_pos=True,
                                          show_eta=True, item_show_func=lambda item: item)
            self._bar.__enter__()

    def outcome(self, outcome: Outcome) -> None:
        with self._lock:
            self.done += 1
            if self._bar is not None:
                if outcome.status != DONE:
                    self._bar.render_finish()
                    click.echo(_outcome_line(outcome), file=self.stream)
                self._bar.update(1, outcome.name)
            else:
                click.echo(f"[{self.done}/{self.total}] {_outcome_line(outcome)}", file=self.stream)

    def note(self, text: str) -> None:
        """A line about a wait the service imposes, between the steps (the bar goes on after it)."""
        with self._lock:
            if self._bar is not None:
                self._bar.render_finish()
            click.echo(f"note: {text}", file=self.stream)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


class _Notes(logging.Handler):
    """Hands the account code's notes about one target to ``note``."""

    def __init__(self, note: Callable[[str], None], target: str):
        super().__init__(logging.INFO)
        self.note, self.target = note, target

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "target", None) == self.target:
            self.note(record.getMessage())


@contextlib.contextmanager
def notes_to(note: Callable[[str], None], target: str):
    """While applying to ``target``, hand the notes the account code logs about it (waits for
    the service's import window, throttling) to ``note``: apply's progress, or a sync job's
    stream. A fleet's accounts each get their own."""
    logger = logging.getLogger("rjsync.accounts")
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    handler = _Notes(note, target)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _outcome_line(outcome: Outcome) -> str:
    kind = {"runtime_environment": "runtime environment"}.get(outcome.kind, outcome.kind)
    return f"{outcome.status:<7} {outcome.action} {kind} {outcome.name}: {outcome.message}"


def _print_report(report: ApplyReport, seconds: float, plan: Plan, out=None, err=None) -> None:
    done, failed, skipped = report.count(DONE), report.count(FAILED), report.count(SKIPPED)
    problems = [o for o in report.outcomes if o.status != DONE]
    if problems:
        click.echo("\nNot done:", err=True, file=err)
        for outcome in sorted(problems, key=lambda o: (o.kind, o.name.lower())):
            click.echo(f"  {_outcome_line(outcome)}", err=True, file=err)
    verdict = "Apply complete" if not problems else "Apply incomplete"
    click.echo(f"\n{verdict} in {seconds:.1f} s: {done} done, {failed} failed, {skipped} skipped.", file=out)
    if plan.errored:
        _catalog_errors(plan, err)
    if problems:
        click.echo("Run the same command again to finish: what is done is not repeated.", file=out)


def _color(stream) -> bool:
    try:
        return stream.isatty() and "NO_COLOR" not in os.environ
    except (AttributeError, ValueError):
        return False
