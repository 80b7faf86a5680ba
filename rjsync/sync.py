"""The sync pipeline: settings -> source -> catalog -> snapshot -> plan -> apply.

Every entry point runs a sync through this module: ``rjsync plan|apply`` (the CLI's commands),
a fleet of accounts (``rjsync.fleet``), the sync service (``rjsync.service``) and the sync
benchmark. It prints nothing: apply reports through ``ApplyEvents`` callbacks, and the caller
decides how to show them (a progress bar, prefixed log lines, a job's streams).

- ``prepare(settings)`` reads the source and the account and plans. The ``Prepared`` it
  returns holds the account open for ``apply``; use it in a ``with`` block, which closes it.
- ``prepare_saved(path, ...)`` does the same for a plan saved with ``rjsync plan --out``
  (``rjsync.engine.saved`` holds that format), and refuses it as stale when the source or the
  account changed since.
- ``apply(prepared, events=...)`` carries the plan out with the concurrency of
  ``rjsync.settings`` (N requests in flight, ``WRITES_PER_REQUEST`` x N runbook writes), hands
  the account's notes about waits the service imposes to ``events.note``, and returns an
  ``ApplyResult`` that says whether the sync is complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from rjsync.accounts import open_account
from rjsync.accounts.base import Account, Grants, Snapshot
from rjsync.accounts.credentials import check_runtime_environments
from rjsync.accounts.targets import LocalTarget, parse_target
from rjsync.catalog.build import build_catalog
from rjsync.catalog.model import Catalog, Diagnostic
from rjsync.engine.apply import DONE, FAILED, SKIPPED, ApplyReport, Outcome, apply_plan
from rjsync.engine.plan import Plan
from rjsync.engine.planner import pair, plan_sync, snapshot_scope
from rjsync.engine.policy import DEFAULT_MAX_DELETIONS, Policy
from rjsync.engine.saved import check_account_fresh, check_same_plan, check_source_fresh, load_plan
from rjsync.engine.schedules import scheduled_changes, with_schedule_warnings
from rjsync.errors import GrantsUnreadable, RjsyncError
from rjsync.settings import AzureOptions, SourceSpec, SyncSettings, gallery_url, writes_at_once
from rjsync.source import Checkout, open_source

AccountOpener = Callable[[SyncSettings], Account]


def default_opener(settings: SyncSettings) -> Account:
    """The account ``settings.target`` names, with ``settings.concurrency`` requests in flight
    and the gallery ``gallery_url`` picks (--gallery, the manifest, $RJSYNC_GALLERY)."""
    from rjsync.accounts.azure import AzureSettings

    az: AzureOptions = settings.azure
    return open_account(settings.target, owned_prefix=settings.policy.prefix, auth=az.auth,
                        client_id=az.client_id, cloud=az.cloud, arm_endpoint=az.arm_endpoint,
                        graph_endpoint=az.graph_endpoint, permissions_identity=az.permissions_identity,
                        gallery_url=gallery_url(az),
                        settings=AzureSettings(max_concurrent_requests=settings.concurrency))


# -- plan ------------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """Everything read for one plan, and the account kept open for apply (``with`` closes it)."""

    settings: SyncSettings
    checkout: Checkout
    catalog: Catalog
    account: Account
    snapshot: Snapshot
    plan: Plan
    #: The most deletions apply carries out without ``max_deletions``; None: the plan's policy.
    deletion_limit: int | None = None

    @property
    def files(self) -> dict[str, bytes]:
        return {f.path: f.data for f in self.checkout.files}

    def close(self) -> None:
        self.account.close()

    def __enter__(self) -> Prepared:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_cloud(settings: SyncSettings) -> None:
    """Stop before anything is read when the target is malformed, or its cloud cannot do what
    the policy asks (targets are parsed in one place: ``accounts.targets.parse_target``)."""
    if not isinstance(parse_target(settings.target), LocalTarget):
        check_runtime_environments(settings.azure.cloud, settings.policy.runtime_environment)


def read_source(spec: SourceSpec, policy: Policy) -> tuple[Checkout, Catalog]:
    checkout = open_source(spec.location, spec.ref)
    return checkout, catalog_of(checkout, policy)


def catalog_of(checkout: Checkout, policy: Policy) -> Catalog:
    """The catalog of a checkout as ``policy`` sees it (its contexts and prefix)."""
    return build_catalog(checkout.info, checkout.files, contexts=policy.contexts, prefix=policy.prefix,
                         diagnostics=checkout.diagnostics)


def read_contents(account: Account, names: list[str], concurrency: int) -> dict[str, bytes | None]:
    """Published content of ``names``, read ``concurrency`` at a time."""
    if not names:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(names)))) as pool:
        return dict(zip(names, pool.map(account.read_content, names), strict=False))


def plan_against(account: Account, catalog: Catalog, policy: Policy, concurrency: int) -> tuple[Snapshot, Plan]:
    """Snapshot ``account`` and plan ``catalog`` against it (reading the contents it needs)."""
    snapshot = account.snapshot(snapshot_scope(policy))
    return snapshot, plan_snapshot(account, catalog, snapshot, policy, concurrency)


def plan_snapshot(account: Account, catalog: Catalog, snapshot: Snapshot, policy: Policy,
                  concurrency: int) -> Plan:
    """Plan ``catalog`` against ``snapshot`` of ``account``, reading the contents it needs and
    the grants of the identity its runbooks run as (once per plan)."""
    pairing = pair(catalog, snapshot, policy)
    contents = read_contents(account, pairing.content_needed(), concurrency)
    plan = plan_sync(pairing, target=account.target, contents=contents, grants=read_grants(account))
    return check_schedules(account, catalog, plan)


def check_schedules(account: Account, catalog: Catalog, plan: Plan) -> Plan:
    """``plan`` with a warning on each change that breaks or removes a job schedule; the
    schedules are read only when the plan deletes, replaces or changes the content of a runbook
    (a plan without such changes costs no request more). When they cannot be read, the plan
    says so and goes on."""
    names = scheduled_changes(plan)
    if not names:
        return plan
    try:
        schedules = account.job_schedules(names)
    except RjsyncError as err:
        note = Diagnostic("warning", None, None, f"job schedules not checked: {err.message.rstrip('.')}")
        return dataclasses.replace(plan, diagnostics=tuple(sorted((*plan.diagnostics, note),
                                                                   key=Diagnostic.sort_key)))
    return with_schedule_warnings(plan, catalog, schedules)


def read_grants(account: Account) -> Grants | str:
    """What the identity the runbooks run as holds, or why that cannot be read: the plan then
    says its permissions were not checked, and goes on."""
    try:
        return account.read_grants()
    except GrantsUnreadable as err:
        return err.message.rstrip(".") or "the grants cannot be read"


def permissions_problem(plan: Plan) -> str | None:
    """Why ``--require-permissions`` stops ``plan``, as a sentence (without "Error: "), or None:
    a required grant the identity lacks, or grants not read while the runbooks need some."""
    report = plan.permissions
    if report is None or (not report.checked and report.required):
        why = f" ({report.reason})" if report is not None and report.reason else ""
        return (f"the identity's grants were not checked{why}, so --require-permissions cannot prove that "
                "the runbooks can run.")
    if report.checked and report.missing:
        count = len(report.missing)
        return (f"{count} required grant{'s are' if count != 1 else ' is'} missing from the identity the runbooks "
                f"run as (see Permissions): grant {'them' if count != 1 else 'it'}, or drop --require-permissions.")
    return None


def prepare(settings: SyncSettings, *, opener: AccountOpener = default_opener,
            checkout: tuple[Checkout, Catalog] | None = None) -> Prepared:
    """Read source (unless ``checkout`` gives it, read already) and account, and plan."""
    check_cloud(settings)
    source, catalog = checkout or read_source(settings.source, settings.policy)
    with contextlib.ExitStack() as on_failure:
        account = on_failure.enter_context(contextlib.closing(opener(settings)))
        snapshot, plan = plan_against(account, catalog, settings.policy, settings.concurrency)
        on_failure.pop_all()  # planned: the Prepared owns the account now
    return Prepared(settings, source, catalog, account, snapshot, plan)


def catalog_errors(plan: Plan) -> str:
    """Why an errored plan's sync is not complete, as a sentence (without "Error: ")."""
    count = sum(1 for d in plan.diagnostics if d.severity == "error")
    return (f"the catalog has {count} error{'s' if count != 1 else ''} (see Diagnostics): those runbooks "
            "are left as they are and nothing is deleted until they are fixed.")


# -- saved plans -----------------------------------------------------------------------------------


def prepare_saved(path: str, *, azure: AzureOptions, concurrency: int, require_permissions: bool = False,
                  opener: AccountOpener = default_opener) -> Prepared:
    """Re-read source and account for a saved plan, refuse it when either changed since, plan
    again with its policy and refuse it unless the fresh plan is the same (``check_same_plan``):
    the fresh plan is what gets applied, so an edited plan file can only be refused."""
    plan = load_plan(path)
    source = plan.source
    ref = source.get("commit") if source.get("kind") == "git" else None
    settings = SyncSettings(source=SourceSpec(source["location"], ref or source.get("ref")), target=plan.target,
                            policy=plan.policy, azure=azure, concurrency=concurrency,
                            require_permissions=require_permissions)
    check_cloud(settings)
    checkout, catalog = read_source(settings.source, plan.policy)
    check_source_fresh(plan, catalog, path)  # before the account is opened
    with contextlib.ExitStack() as on_failure:
        account = on_failure.enter_context(contextlib.closing(opener(settings)))
        snapshot = account.snapshot(snapshot_scope(plan.policy))
        check_account_fresh(plan, snapshot, path)
        fresh = plan_snapshot(account, catalog, snapshot, plan.policy, concurrency)
        check_same_plan(plan, fresh, path)
        on_failure.pop_all()  # fresh: the Prepared owns the account now
    # A plan file is not a credential: its deletion limit never goes over the default unless
    # whoever runs apply says so again (--max-deletions), whatever the file claims.
    limit = min(plan.policy.max_deletions, DEFAULT_MAX_DELETIONS)
    return Prepared(settings, checkout, catalog, account, snapshot, fresh, deletion_limit=limit)


# -- apply -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyEvents:
    """What apply reports while it runs; every callback may be called from worker threads.

    - ``start(kind, action, name)``: a step begins;
    - ``outcome(outcome)``: a step ended (done, failed or skipped, with its message);
    - ``note(text)``: the service makes the sync wait (its import window, throttling).
    """

    start: Callable[[str, str, str], None] | None = None
    outcome: Callable[[Outcome], None] | None = None
    note: Callable[[str], None] | None = None


@dataclass(frozen=True)
class ApplyResult:
    """What one apply did. ``ok``: every change done and the catalog without errors."""

    plan: Plan
    report: ApplyReport
    seconds: float

    @property
    def ok(self) -> bool:
        return self.report.ok and not self.plan.errored

    @property
    def done(self) -> int:
        return self.report.count(DONE)

    @property
    def failed(self) -> int:
        return self.report.count(FAILED)

    @property
    def skipped(self) -> int:
        return self.report.count(SKIPPED)

    @property
    def problems(self) -> list[Outcome]:
        """The changes not done, by kind and name."""
        return sorted((o for o in self.report.outcomes if o.status != DONE), key=lambda o: (o.kind, o.name.lower()))

    def counts(self) -> dict[str, int]:
        return {"done": self.done, "failed": self.failed, "skipped": self.skipped}


def apply(prepared: Prepared, *, max_deletions: int | None = None,
          events: ApplyEvents | None = None) -> ApplyResult:
    """Carry out ``prepared.plan`` on ``prepared.account`` (``max_deletions`` overrides the
    plan's limit, and a saved plan's ``deletion_limit``). Runbook writes proceed
    ``writes_at_once(settings.concurrency)`` at once. With ``settings.require_permissions``, a
    permissions problem refuses it before any write."""
    if prepared.settings.require_permissions and (problem := permissions_problem(prepared.plan)):
        raise RjsyncError(f"Not applying: {problem}")
    events = events or ApplyEvents()
    if max_deletions is None:
        max_deletions = prepared.deletion_limit
    started = time.monotonic()
    with notes_to(events.note, prepared.account.target):
        report = apply_plan(prepared.plan, prepared.account, prepared.files,
                            concurrency=writes_at_once(prepared.settings.concurrency),
                            max_deletions=max_deletions, on_start=events.start, on_outcome=events.outcome)
        prepared.account.finish()
    return ApplyResult(prepared.plan, report, time.monotonic() - started)


class _Notes(logging.Handler):
    """Hands the account code's notes about one target to ``note``."""

    def __init__(self, note: Callable[[str], None], target: str):
        super().__init__(logging.INFO)
        self.note, self.target = note, target

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "target", None) == self.target:
            self.note(record.getMessage())


@contextlib.contextmanager
def notes_to(note: Callable[[str], None] | None, target: str):
    """While applying to ``target``, hand the notes the account code logs about it (waits for
    the service's import window, throttling) to ``note``. A fleet's accounts each get their own."""
    if note is None:
        yield
        return
    logger = logging.getLogger("rjsync.accounts")
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    handler = _Notes(note, target)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
