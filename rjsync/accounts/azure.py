"""An Azure Automation account through Resource Manager: the only module that talks to ARM.

Built on ``azure-mgmt-automation`` (api-version 2024-10-23) and ``azure-core``:

- Retries (429 with Retry-After, 408/500/502/503/504, dropped connections) are azure-core's
  ``RetryPolicy``, configured through ``AzureSettings``, never re-implemented here. Publishing
  and the receipt PATCH are idempotent, so they are retried like PUTs (``retry_on_methods``).
- Long-running operations (replace draft content, publish) are polled at
  ``polling_interval`` (1 s; the SDK's default of 30 s would make 170 publishes take hours),
  and the poller honours the service's ``Retry-After``. Lists follow ``nextLink`` to the end.
- A runbook write is: create (PUT, a runbook the plan did not see) or change in place (PATCH
  of runtime environment, description, tags: an existing runbook is never PUT again, which
  would risk its job schedules and webhooks), both without the receipt -> replace the draft
  content -> publish -> add the receipt tags. The receipt
  is written only after publish succeeded (design invariant 4). An update that leaves the
  content as it is (adoption, a new receipt, description, runtime environment) is one PATCH,
  after reading the published content to confirm it still is what the receipt will say.
  The receipt's time stamp is Resource Manager's time (this machine's clock corrected by the
  ``Date`` of the first response), because the planner compares it with the runbook's
  last-modified time: a clock a few minutes off would otherwise show every runbook as
  republished, or hide a portal publish.
- Requests are paced (``rjsync.accounts.pacing``): Resource Manager's request budgets are
  spent evenly, module/package imports keep to ``imports_per_window`` per ``import_window``
  seconds, and at most ``max_concurrent_requests`` are in flight.
- Module/package imports: the versions of every module one apply imports and of their
  dependencies are decided together (``rjsync.accounts.resolution``), so each is imported once;
  dependencies are imported first, and an import's PUT leaves only once its dependencies read
  loaded again after the wait for the import window. A PUT answers Creating with no version;
  each import is polled until Succeeded or Created (final, as Microsoft's own module-update
  runbooks treat it) or Failed; a failure carries the service's error text. The content link
  is the gallery's direct package URL (its redirect resolved).
- Every SDK error becomes an ``AccountError`` sentence (``rjsync.accounts.azure_errors``); the
  token never appears in one.
- The grants of the identity the runbooks run as (``read_grants``) are read through Microsoft
  Graph (``rjsync.accounts.graph``) with the same credential: the account's system-assigned
  identity (``identity.principalId`` of the account), or the user-assigned one the settings
  name (``permissions_identity``).
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Mapping

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.mgmt.automation import AutomationClient

from rjsync.accounts import receipts
from rjsync.accounts.azure_errors import Translate, Where, service_error, translate
from rjsync.accounts.azure_imports import ModuleImports
from rjsync.accounts.azure_index import ReceiptIndex, variable_name
from rjsync.accounts.azure_jobs import AzureJobs
from rjsync.accounts.azure_values import live_module, live_runbook, text
from rjsync.accounts.base import (
    FAILED,
    RJ_DEFAULT_PACKAGES,
    RJ_RUNTIME_ENVIRONMENT,
    Grants,
    JobStream,
    LiveJob,
    LiveJobSchedule,
    LiveModule,
    LiveRunbook,
    LiveRuntimeEnvironment,
    ModuleImport,
    RunbookWrite,
    Snapshot,
    SnapshotScope,
    check_environment_name,
    check_job_start,
    check_name,
    check_owned,
    check_write,
    is_owned,
    trim_description,
    type_change_error,
)
from rjsync.accounts.credentials import CLOUDS, Cloud
from rjsync.accounts.gallery import DEFAULT_GALLERY_URL, Gallery
from rjsync.accounts.pacing import (
    BudgetPacing,
    ImportPacer,
    ImportPacing,
    JobStartPacing,
    RequestLimit,
    job_pacer,
    request_budgets,
)
from rjsync.accounts.transport import TransportSettings
from rjsync.catalog.naming import OWNED_PREFIX
from rjsync.catalog.text import normalized_sha256
from rjsync.errors import AccountError, GrantsUnreadable

API_VERSION = "2024-10-23"

#: Notes for whoever runs the sync (``extra={"target": ...}``): ``rjsync apply`` prints them.
log = logging.getLogger(__name__)

_IDEMPOTENT = frozenset(["HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST", "PATCH"])
_FAILED_STATES = {FAILED.lower(), "cancelled", "canceled"}


@dataclass(frozen=True)
class AzureSettings(TransportSettings):
    """Timing and retry knobs. The defaults suit real Azure; tests shrink the waits."""

    polling_interval: float = 1.0  # long-running operations, when the service sends no Retry-After
    provisioning_poll_interval: float = 5.0  # module/package imports
    provisioning_timeout: float = 1800.0
    imports_per_window: int = 5  # the service takes at most 5 module imports ...
    import_window: float = 30.0  # ... per 30 s per account
    jobs_per_window: int = 100  # the service takes at most 100 new jobs ...
    job_window: float = 30.0  # ... per 30 s per account
    read_timeout: float = 300.0  # the retries and the CA bundle: ``TransportSettings``
    #: Requests in flight at once (``--concurrency``); waits between polls hold no slot.
    max_concurrent_requests: int = 8
    #: Resource Manager's refill of each request budget (tokens per second, per subscription and
    #: principal); the client paces itself to them once an answer says how many tokens remain.
    reads_per_second: float = 25.0
    writes_per_second: float = 10.0
    deletes_per_second: float = 10.0

def _skew(date: str | None, local: datetime) -> timedelta:
    """The service's clock minus ours, from a response's ``Date`` header (zero without one).

    The header has whole seconds, and the skew matters only beyond the planner's drift
    tolerance (minutes), so differences under 5 s are taken as none."""
    try:
        server = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        server = None
    if server is None or server.tzinfo is None:
        return timedelta(0)
    skew = server - local
    return skew if abs(skew) > timedelta(seconds=5) else timedelta(0)

class AzureAccount:
    """One Automation account. Thread-safe: the engine may run writes concurrently."""

    def __init__(self, arm_id, *, credential, endpoints: Cloud = CLOUDS["public"],
                 owned_prefix: str = OWNED_PREFIX, gallery_url: str | None = None,
                 settings: AzureSettings = AzureSettings(), auth: str = "default",
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 permissions_identity: str | None = None):
        self.arm_id = arm_id
        self.target = str(arm_id)
        self.owned_prefix = owned_prefix
        self.settings = settings
        self.endpoints = endpoints
        self._rg, self._name = arm_id.resource_group, arm_id.account
        self._where = Where(arm_id.account, arm_id.subscription, auth, endpoints.arm_endpoint)
        self._pacer = ImportPacer(settings.imports_per_window, settings.import_window)
        self.budgets = request_budgets(endpoints.arm_endpoint, arm_id.subscription,
                                       reads=settings.reads_per_second, writes=settings.writes_per_second,
                                       deletes=settings.deletes_per_second)
        verify = settings.verify()
        self._client = AutomationClient(
            credential,
            arm_id.subscription,
            base_url=endpoints.arm_endpoint,
            credential_scopes=[endpoints.scope],
            polling_interval=settings.polling_interval,
            **settings.retries(),
            read_timeout=settings.read_timeout,
            connection_verify=verify,
            per_retry_policies=[ImportPacing(self._pacer, self.target),
                                JobStartPacing(job_pacer(endpoints.arm_endpoint, self.target, settings.jobs_per_window,
                                                         settings.job_window), self.target),
                                BudgetPacing(self.budgets, self.target),
                                RequestLimit(settings.max_concurrent_requests)],
        )
        self.gallery = Gallery(gallery_url or DEFAULT_GALLERY_URL, connection_verify=verify,
                               retry_backoff_factor=settings.retry_backoff_factor)
        self._imports = ModuleImports(self._client, self._rg, self._name, gallery=self.gallery, pacer=self._pacer,
                                      errors=self._errors, settings=settings, target=self.target)
        self._jobs = AzureJobs(self._client, self._rg, self._name, errors=self._errors, where=self._where,
                               concurrency=settings.max_concurrent_requests)
        self._location: str | None = None
        self._index = ReceiptIndex()  # what list items leave out; loaded by each snapshot
        self._lock = threading.Lock()
        self._clock = clock
        self._skew = timedelta(0)  # Resource Manager's clock minus this machine's
        self._credential, self._auth = credential, auth
        self._permissions_identity = permissions_identity
        self._system_identity: str | None = None  # identity.principalId, read with the location
        self._graph = None

    # -- the protocol ---------------------------------------------------------------------------

    def snapshot(self, scope: SnapshotScope | None = None) -> Snapshot:
        c, rg, acc = self._client, self._rg, self._name
        try:
            with self._errors("listing the runbooks", not_found=ResourceNotFoundError):
                listed = [live_runbook(rb) for rb in c.runbook.list_by_automation_account(rg, acc)]
        except ResourceNotFoundError:
            self._forget_location()
            self._account_location()  # says which part of the ARM id is wrong
            raise
        runbooks = self._complete(listed)
        modules = []
        if scope is None or scope.account_modules:
            with self._errors("listing the modules"):
                modules = [live_module(m) for m in c.module.list_by_automation_account(rg, acc)]
        environments = []
        if scope is None or scope.environments is None:
            with self._errors("listing the runtime environments"):
                envs = list(c.runtime_environments.list_by_automation_account(rg, acc))
        else:
            envs = []
            for name in scope.environments:
                try:
                    with self._errors(f"reading runtime environment '{name}'", not_found=ResourceNotFoundError):
                        envs.append(c.runtime_environments.get(rg, acc, name))
                except ResourceNotFoundError:
                    pass  # missing: the plan creates it
        for env in envs:
            runtime = (env.properties.runtime if env.properties else None) or {}
            packages = []
            if str(runtime.get("language") or "").lower() == "powershell":  # Python has other APIs
                with self._errors(f"listing the packages of runtime environment '{env.name}'"):
                    packages = [live_module(p) for p in c.package.list_by_runtime_environment(rg, acc, env.name)]
            environments.append(LiveRuntimeEnvironment(
                name=env.name, language=runtime.get("language") or "", version=runtime.get("version") or "",
                packages=tuple(sorted(packages, key=lambda m: m.name.lower())),
                default_packages=_default_packages(env),
            ))
        return Snapshot(
            runbooks=tuple(sorted(runbooks, key=lambda r: r.name.lower())),
            modules=tuple(sorted(modules, key=lambda m: m.name.lower())),
            runtime_environments=tuple(sorted(environments, key=lambda e: e.name.lower())),
        )

    def _complete(self, listed: list[LiveRunbook]) -> list[LiveRunbook]:
        """The listed runbooks with what list items leave out (tags, description) for the owned
        ones: from the receipt index where it still vouches for a runbook, else from a GET of it
        (``rjsync.accounts.azure_index``). Customers' runbooks are taken as listed."""
        index = self._load_index()
        owned = [r for r in listed if is_owned(r.name, self.owned_prefix)]
        index.retain(r.name for r in owned)
        unknown = [r.name for r in owned if index.vouch(r.name, r.last_modified) is None]
        fetched: dict[str, LiveRunbook | None] = {}
        if unknown:
            workers = max(1, min(self.settings.max_concurrent_requests, len(unknown)))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                fetched = dict(zip([n.lower() for n in unknown], pool.map(self._get_runbook, unknown)))
        complete = []
        for live in listed:
            key = live.name.lower()
            if key in fetched:
                if fetched[key] is not None:  # None: deleted since the list
                    index.record(fetched[key])
                    complete.append(fetched[key])
                continue
            entry = index.vouch(live.name, live.last_modified) if is_owned(live.name, self.owned_prefix) else None
            complete.append(replace(live, tags=dict(entry.tags), description=entry.description) if entry else live)
        return complete

    def read_runbook(self, name: str) -> LiveRunbook | None:
        try:
            check_name(name)  # a name the service cannot hold is not held: no request
        except AccountError:
            return None
        return self._get_runbook(name)

    def _get_runbook(self, name: str) -> LiveRunbook | None:
        try:
            with self._errors(f"reading runbook '{name}'", not_found=ResourceNotFoundError):
                return live_runbook(self._client.runbook.get(self._rg, self._name, name))
        except ResourceNotFoundError:
            return None

    def _load_index(self) -> ReceiptIndex:
        name = variable_name(self.owned_prefix)
        try:
            with self._errors(f"reading the variable '{name}'", not_found=ResourceNotFoundError):
                variable = self._client.variable.get(self._rg, self._name, name)
            text = json.loads(variable.value) if isinstance(variable.value, str) else None
        except ResourceNotFoundError:
            text = None
        except ValueError:  # not JSON: someone else's variable of that name, or mangled
            text = None
        self._index = ReceiptIndex.parse(text if isinstance(text, str) else None)
        return self._index

    def read_grants(self) -> Grants:
        principal = self._permissions_identity
        if principal is None:
            try:
                self._account_location()
            except AccountError as err:
                raise GrantsUnreadable(err.message) from None
            principal = self._system_identity
        if not principal:
            raise GrantsUnreadable(
                f"Automation account '{self._name}' has no system-assigned managed identity for its runbooks "
                "to run as; turn it on (Account Settings > Identity) or name the user-assigned identity's "
                "principal id in the manifest (azure.identity).")
        return self._graph_client().read_grants(principal)

    def _graph_client(self):
        from rjsync.accounts.graph import Graph

        with self._lock:
            if self._graph is None:  # Graph with the account's own retries, timeout and CA bundle
                self._graph = Graph(self._credential, cloud=self.endpoints, auth=self._auth, settings=self.settings)
            return self._graph

    def finish(self) -> None:
        """Store the receipt index when an apply changed it (one write; a plan never calls this).
        Failing to store it costs the next plan GETs, nothing else: a note, not an error."""
        if not self._index.changed:
            return
        name = variable_name(self.owned_prefix)
        body = {"name": name, "properties": {
            "value": json.dumps(self._index.to_text()), "isEncrypted": False,
            "description": "rjsync's index of the receipts of its runbooks: a cache, safe to delete"}}
        try:
            with self._errors(f"storing the variable '{name}'"):
                self._client.variable.create_or_update(self._rg, self._name, name, body)
            self._index.changed = False
        except AccountError as err:
            log.info("the receipt index was not stored (%s); the next plan reads each runbook instead",
                     err.message, extra={"target": self.target})

    def read_content(self, name: str) -> bytes | None:
        try:
            with self._errors(f"reading the content of runbook '{name}'", not_found=ResourceNotFoundError):
                return b"".join(self._client.runbook.get_content(self._rg, self._name, name, stream=True))
        except ResourceNotFoundError:
            return None  # no such runbook, or never published

    def write_runbook(self, spec: RunbookWrite, *,
                      before_publish: Callable[[], None] | None = None) -> LiveRunbook:
        check_write(spec, self.owned_prefix)
        location = self._account_location()
        c, rg, acc, name = self._client, self._rg, self._name, spec.name
        if not (spec.exists and self._change_in_place(spec)):
            self._create(spec, location)
        with self._errors(f"uploading the content of runbook '{name}'"):
            c.runbook_draft.begin_replace_content(
                rg, acc, name, spec.content, content_type="text/powershell"
            ).result()
        if before_publish is not None:
            before_publish()
        with self._errors(f"publishing runbook '{name}'"):
            c.runbook.begin_publish(rg, acc, name, retry_on_methods=_IDEMPOTENT).result()
        if spec.receipt:
            with self._errors(f"writing the receipt tags of runbook '{name}'"):
                live = c.runbook.update(rg, acc, name, {"tags": {**spec.tags, **receipts.stamp(spec.receipt, self._now())}},
                                        retry_on_methods=_IDEMPOTENT)
        else:
            with self._errors(f"reading runbook '{name}'"):
                live = c.runbook.get(rg, acc, name)
        written = live_runbook(live)
        self._index.record(written)
        return written

    def _change_in_place(self, spec: RunbookWrite) -> bool:
        """PATCH an existing runbook's runtime environment, description and tags, without its
        receipt (a PATCH replaces the whole tag map, so the old receipt is gone before the content
        changes). Never a PUT: job schedules and webhooks hang on the runbook, and updates that
        re-PUT a runbook are reported to lose them (shared notes). False when the runbook is not
        there (deleted since the plan): the caller creates it."""
        # The SDK's PATCH model lacks runtimeEnvironment; the service takes it in a dict. None
        # (classic) unlinks it; whether Azure takes null here is unverified (its documentation
        # PATCHes an environment's name).
        properties = {"description": trim_description(spec.description),
                      "runtimeEnvironment": spec.runtime_environment}
        try:
            with self._errors(f"updating runbook '{spec.name}'", not_found=HttpResponseError):
                live = self._client.runbook.update(self._rg, self._name, spec.name,
                                                   {"tags": dict(spec.tags), "properties": properties},
                                                   retry_on_methods=_IDEMPOTENT)
        except ResourceNotFoundError:
            return False
        except HttpResponseError as err:
            raise self._write_refused(spec, err, "updating") from None
        old = text(live.properties.runbook_type) if live.properties else ""
        if old and old.lower() != spec.runbook_type.lower():  # a PATCH cannot change the type
            raise type_change_error(live.name, old, spec.runbook_type)
        return True

    def _create(self, spec: RunbookWrite, location: str) -> None:
        """PUT a runbook the plan did not see in the account (type, runtime environment,
        description, tags without the receipt) with an empty draft."""
        properties = {
            "runbookType": spec.runbook_type,
            "description": trim_description(spec.description),
            "logVerbose": False,
            "logProgress": False,
            "draft": {},
        }
        if spec.runtime_environment:
            properties["runtimeEnvironment"] = spec.runtime_environment
        body = {"name": spec.name, "location": location, "tags": dict(spec.tags), "properties": properties}
        try:
            with self._errors(f"creating or updating runbook '{spec.name}'", not_found=HttpResponseError):
                self._client.runbook.create_or_update(self._rg, self._name, spec.name, body)
        except HttpResponseError as err:
            raise self._write_refused(spec, err) from None

    def write_properties(self, spec: RunbookWrite) -> LiveRunbook | None:
        check_write(spec, self.owned_prefix)
        self._account_location()
        current = self.read_content(spec.name)
        if current is None or normalized_sha256(current) != normalized_sha256(spec.content):
            return None
        # One PATCH: the published content stays as it is, and a PATCH replaces the whole tag map.
        properties = {"description": trim_description(spec.description)}
        if spec.runtime_environment:
            properties["runtimeEnvironment"] = spec.runtime_environment
        body = {"tags": {**spec.tags, **receipts.stamp(spec.receipt, self._now())}, "properties": properties}
        with self._errors(f"updating the properties of runbook '{spec.name}'"):
            live = self._client.runbook.update(self._rg, self._name, spec.name, body,
                                               retry_on_methods=_IDEMPOTENT)
        written = live_runbook(live)
        self._index.record(written)
        return written

    def delete_runbook(self, name: str) -> None:
        check_owned(name, self.owned_prefix, "delete")
        self._account_location()
        try:
            with self._errors(f"deleting runbook '{name}'", not_found=ResourceNotFoundError):
                self._client.runbook.delete(self._rg, self._name, name)
        except ResourceNotFoundError:
            pass  # already gone
        self._index.forget(name)

    def ensure_runtime_environment(
        self, name: str = RJ_RUNTIME_ENVIRONMENT, *, language: str = "PowerShell", version: str = "7.4",
        default_packages: Mapping[str, str] | None = None,
    ) -> LiveRuntimeEnvironment:
        check_environment_name(name)
        location = self._account_location()
        c, rg, acc = self._client, self._rg, self._name
        try:
            with self._errors(f"reading runtime environment '{name}'", not_found=ResourceNotFoundError):
                env = c.runtime_environments.get(rg, acc, name)
        except ResourceNotFoundError:
            defaults = RJ_DEFAULT_PACKAGES if default_packages is None else default_packages
            body = {"location": location, "properties": {
                "runtime": {"language": language, "version": version}, "defaultPackages": dict(defaults)}}
            with self._errors(f"creating runtime environment '{name}'"):
                env = c.runtime_environments.create(rg, acc, name, body)
        runtime = (env.properties.runtime if env.properties else None) or {}
        have = (str(runtime.get("language") or ""), str(runtime.get("version") or ""))
        if (have[0].lower(), have[1]) != (language.lower(), version):
            raise AccountError(
                f"Runtime environment '{env.name}' exists with {have[0]} {have[1]}, not {language} "
                f"{version}; its language and version cannot change: delete it or pick another name."
            )
        with self._errors(f"listing the packages of runtime environment '{env.name}'"):
            packages = [live_module(p) for p in c.package.list_by_runtime_environment(rg, acc, env.name)]
        return LiveRuntimeEnvironment(env.name, have[0], have[1], tuple(sorted(packages, key=lambda m: m.name.lower())),
                                      _default_packages(env))

    def import_module(self, spec: ModuleImport) -> LiveModule:
        self._account_location()
        return self._imports.import_module(spec)

    # -- runbook jobs (``rjsync.accounts.azure_jobs``) ------------------------------------------------

    def start_job(self, runbook: str, parameters: Mapping[str, str], job_id: str | None = None) -> LiveJob:
        check_job_start(runbook, parameters, self.owned_prefix, job_id)
        self._account_location()
        return self._jobs.start(runbook, parameters, job_id)

    def job(self, job_id: str) -> LiveJob | None:
        return self._jobs.job(job_id)

    def jobs_since(self, created: datetime) -> list[LiveJob]:
        return self._jobs.since(created)

    def job_streams(self, job_id: str, stream_types: set[str] | None = None) -> list[JobStream]:
        return self._jobs.streams(job_id, stream_types)

    def job_output(self, job_id: str) -> str:
        return self._jobs.output(job_id)

    def job_schedules(self, runbooks=None) -> tuple[LiveJobSchedule, ...]:
        return self._jobs.schedules(runbooks)

    def close(self) -> None:
        self._client.close()
        self.gallery.close()
        if self._graph is not None:
            self._graph.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- helpers --------------------------------------------------------------------------------

    def _account_location(self) -> str:
        """The account's region (PUT bodies need it); first call proves the account exists."""
        with self._lock:
            if self._location is None:
                try:
                    with self._errors("reading the automation account", not_found=ResourceNotFoundError):
                        account, date = self._client.automation_account.get(
                            self._rg, self._name,
                            cls=lambda response, model, _: (model, response.http_response.headers.get("Date")))
                except ResourceNotFoundError as err:
                    code, _ = service_error(err)
                    raise AccountError(
                        f"Automation account '{self._name}' was not found in resource group "
                        f"'{self._rg}' of subscription {self.arm_id.subscription} ({code or 'HTTP 404'}). "
                        "Check the ARM id, and that the identity has access to the subscription."
                    ) from None
                self._location = account.location or ""
                self._skew = _skew(date, self._clock())
                identity = account.identity  # type "SystemAssigned", "SystemAssigned, UserAssigned", ...
                if identity is not None and "systemassigned" in text(identity.type).lower():
                    self._system_identity = identity.principal_id or None
            return self._location

    def _now(self) -> datetime:
        """Resource Manager's time: receipts are stamped with it, because drift is found by
        comparing their stamp with the runbook's last-modified time, which is the service's."""
        return self._clock() + self._skew

    def _forget_location(self) -> None:
        with self._lock:
            self._location = None

    def _write_refused(self, spec: RunbookWrite, err: HttpResponseError,
                       verb: str = "creating or updating") -> AccountError:
        """Explain a refused create/update; a type change gets the delete-and-create advice."""
        if err.status_code == 400:
            try:
                with self._errors(f"reading runbook '{spec.name}'", not_found=ResourceNotFoundError):
                    current = self._client.runbook.get(self._rg, self._name, spec.name)
            except ResourceNotFoundError:
                current = None
            old = current.properties.runbook_type if current is not None and current.properties else None
            if old and text(old).lower() != spec.runbook_type.lower():
                return type_change_error(current.name, text(old), spec.runbook_type)
        return self._translate(err, f"{verb} runbook '{spec.name}'")

    def _errors(self, action: str, not_found=None):
        return Translate(self._where, action, not_found)

    def _translate(self, err: AzureError, action: str) -> AccountError:
        return translate(err, action, self._where)


def _default_packages(env) -> dict[str, str]:
    """An environment's default packages as the service answers them (names in lower case)."""
    packages = (env.properties.default_packages if env.properties else None) or {}
    return {str(k): str(v) for k, v in packages.items()}
