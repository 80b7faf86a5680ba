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
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Callable

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.mgmt.automation import AutomationClient

from rjsync.accounts import receipts
from rjsync.accounts.azure_errors import Translate, Where, service_error, translate
from rjsync.accounts.azure_index import ReceiptIndex, variable_name
from rjsync.accounts.base import (
    FAILED,
    RJ_RUNTIME_ENVIRONMENT,
    LiveModule,
    LiveRunbook,
    LiveRuntimeEnvironment,
    ModuleImport,
    RunbookWrite,
    Snapshot,
    SnapshotScope,
    check_environment_name,
    check_owned,
    check_write,
    is_owned,
    trim_description,
    type_change_error,
    version_key,
    version_known,
)
from rjsync.accounts.credentials import CLOUDS, Cloud
from rjsync.accounts.gallery import DEFAULT_GALLERY_URL, Gallery, GalleryError
from rjsync.accounts.pacing import (
    BudgetPacing,
    ImportPacer,
    ImportPacing,
    RequestLimit,
    import_slot,
    request_budgets,
)
from rjsync.accounts.resolution import ModuleSet, Resolved, resolve_set
from rjsync.catalog.naming import OWNED_PREFIX
from rjsync.catalog.text import normalized_sha256
from rjsync.errors import AccountError

API_VERSION = "2024-10-23"

#: Notes for whoever runs the sync (``extra={"target": ...}``): ``rjsync apply`` prints them.
log = logging.getLogger(__name__)

_IDEMPOTENT = frozenset(["HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST", "PATCH"])
_FAILED_STATES = {FAILED.lower(), "cancelled", "canceled"}


@dataclass(frozen=True)
class AzureSettings:
    """Timing and retry knobs. The defaults suit real Azure; tests shrink the waits."""

    polling_interval: float = 1.0  # long-running operations, when the service sends no Retry-After
    provisioning_poll_interval: float = 5.0  # module/package imports
    provisioning_timeout: float = 1800.0
    imports_per_window: int = 5  # the service takes at most 5 module imports ...
    import_window: float = 30.0  # ... per 30 s per account
    retry_total: int = 10
    retry_status: int = 6
    retry_connect: int = 3
    retry_read: int = 3
    retry_backoff_factor: float = 0.8
    retry_backoff_max: float = 60.0
    read_timeout: float = 300.0
    #: CA bundle path, True (system store) or False; None reads REQUESTS_CA_BUNDLE, then
    #: SSL_CERT_FILE, else the default store.
    connection_verify: str | bool | None = None
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
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.arm_id = arm_id
        self.target = str(arm_id)
        self.owned_prefix = owned_prefix
        self.settings = settings
        self.endpoints = endpoints
        self._rg, self._name = arm_id.resource_group, arm_id.account
        self._where = Where(arm_id.account, arm_id.subscription, auth, endpoints.arm_endpoint)
        self._pacer = ImportPacer(settings.imports_per_window, settings.import_window)
        # imports under way, done and failed in this run, by (environment, module), lower-case
        self._imports = threading.Condition()
        self._importing: set[tuple[str, str]] = set()
        self._imported: dict[tuple[str, str], tuple[str | None, LiveModule]] = {}  # (version imported, module)
        self._import_errors: dict[tuple[str, str], str] = {}
        # module sets resolved, by (environment, requirements): decided once per apply
        self._resolving = threading.Lock()
        self._sets: dict[tuple, tuple[ModuleSet, dict[str, LiveModule]]] = {}
        self.budgets = request_budgets(endpoints.arm_endpoint, arm_id.subscription,
                                       reads=settings.reads_per_second, writes=settings.writes_per_second,
                                       deletes=settings.deletes_per_second)
        verify = settings.connection_verify
        if verify is None:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or True
        self._client = AutomationClient(
            credential,
            arm_id.subscription,
            base_url=endpoints.arm_endpoint,
            credential_scopes=[endpoints.scope],
            polling_interval=settings.polling_interval,
            retry_total=settings.retry_total,
            retry_status=settings.retry_status,
            retry_connect=settings.retry_connect,
            retry_read=settings.retry_read,
            retry_backoff_factor=settings.retry_backoff_factor,
            retry_backoff_max=settings.retry_backoff_max,
            read_timeout=settings.read_timeout,
            connection_verify=verify,
            per_retry_policies=[ImportPacing(self._pacer, self.target), BudgetPacing(self.budgets, self.target),
                                RequestLimit(settings.max_concurrent_requests)],
        )
        self.gallery = Gallery(gallery_url or DEFAULT_GALLERY_URL, connection_verify=verify,
                               retry_backoff_factor=settings.retry_backoff_factor)
        self._location: str | None = None
        self._index = ReceiptIndex()  # what list items leave out; loaded by each snapshot
        self._lock = threading.Lock()
        self._clock = clock
        self._skew = timedelta(0)  # Resource Manager's clock minus this machine's

    # -- the protocol ---------------------------------------------------------------------------

    def snapshot(self, scope: SnapshotScope | None = None) -> Snapshot:
        c, rg, acc = self._client, self._rg, self._name
        try:
            with self._errors("listing the runbooks", not_found=ResourceNotFoundError):
                listed = [_live_runbook(rb) for rb in c.runbook.list_by_automation_account(rg, acc)]
        except ResourceNotFoundError:
            self._forget_location()
            self._account_location()  # says which part of the ARM id is wrong
            raise
        runbooks = self._complete(listed)
        modules = []
        if scope is None or scope.account_modules:
            with self._errors("listing the modules"):
                modules = [_live_module(m) for m in c.module.list_by_automation_account(rg, acc)]
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
                    packages = [_live_module(p) for p in c.package.list_by_runtime_environment(rg, acc, env.name)]
            environments.append(LiveRuntimeEnvironment(
                name=env.name, language=runtime.get("language") or "", version=runtime.get("version") or "",
                packages=tuple(sorted(packages, key=lambda m: m.name.lower())),
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

    def _get_runbook(self, name: str) -> LiveRunbook | None:
        try:
            with self._errors(f"reading runbook '{name}'", not_found=ResourceNotFoundError):
                return _live_runbook(self._client.runbook.get(self._rg, self._name, name))
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
        written = _live_runbook(live)
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
        old = _text(live.properties.runbook_type) if live.properties else ""
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
        written = _live_runbook(live)
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
        self, name: str = RJ_RUNTIME_ENVIRONMENT, *, language: str = "PowerShell", version: str = "7.4"
    ) -> LiveRuntimeEnvironment:
        check_environment_name(name)
        location = self._account_location()
        c, rg, acc = self._client, self._rg, self._name
        try:
            with self._errors(f"reading runtime environment '{name}'", not_found=ResourceNotFoundError):
                env = c.runtime_environments.get(rg, acc, name)
        except ResourceNotFoundError:
            body = {"location": location, "properties": {
                "runtime": {"language": language, "version": version}, "defaultPackages": {}}}
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
            packages = [_live_module(p) for p in c.package.list_by_runtime_environment(rg, acc, env.name)]
        return LiveRuntimeEnvironment(env.name, have[0], have[1], tuple(sorted(packages, key=lambda m: m.name.lower())))

    def import_module(self, spec: ModuleImport) -> LiveModule:
        self._account_location()
        modules, live = self._module_set(spec)
        if spec.name.lower() in modules.errors:
            raise AccountError(modules.errors[spec.name.lower()])
        result: LiveModule | None = None
        for entry in modules.closure(spec.name):
            result = self._import_once(entry, spec.runtime_environment, modules, live)
        assert result is not None
        return result

    def _module_set(self, spec: ModuleImport) -> tuple[ModuleSet, dict[str, LiveModule]]:
        """The versions of ``spec`` and of every module imported beside it (its
        ``requirements``) with all their dependencies, decided together once (per place and set
        of requirements), from the gallery and what the account has loaded."""
        wanted = {k: v for k, v in spec.requirements.items() if k.lower() != spec.name.lower()}
        wanted[spec.name] = spec.version
        key = ((spec.runtime_environment or "").lower(),
               frozenset((k.lower(), (v or "").lower()) for k, v in wanted.items()))
        with self._resolving:
            if key not in self._sets:
                live = {m.name.lower(): m for m in self._modules(spec.runtime_environment)}
                if len(wanted) > 1:  # the requirements' own look-ups at once, as separate imports made them
                    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="rjsync-gallery") as pool:
                        list(pool.map(lambda item: _quietly(self.gallery, *item), wanted.items()))
                loaded = {name: m.version for name, m in live.items() if m.loaded}
                self._sets[key] = (resolve_set(wanted, loaded, self.gallery), live)
            return self._sets[key]

    def _import_once(self, entry: Resolved, environment: str | None, modules: ModuleSet,
                     live: dict[str, LiveModule]) -> LiveModule:
        """Import ``entry`` unless the account has it at that version or newer (never downgrade).
        Imports run in parallel threads, and two may need one dependency: an import of it
        under way is waited for, not started again, and its failure is the waiter's too."""
        key = ((environment or "").lower(), entry.id.lower())
        with self._imports:
            while key in self._importing:
                self._imports.wait()
            if key in self._import_errors:
                raise AccountError(self._import_errors[key])
            done = self._imported.get(key)
            if done is not None and version_key(done[0]) >= version_key(entry.version):
                return done[1]
            if entry.installed and entry.id.lower() in live:
                return live[entry.id.lower()]
            self._importing.add(key)
        module, error = None, None
        try:
            module = self._import(entry, environment, modules)
            return module
        except AccountError as err:
            error = err.message
            raise
        finally:
            with self._imports:
                self._importing.discard(key)
                if module is not None:
                    self._imported[key] = (entry.version, module)
                if error is not None:
                    self._import_errors[key] = error
                self._imports.notify_all()

    def close(self) -> None:
        self._client.close()
        self.gallery.close()

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
            return self._location

    def _now(self) -> datetime:
        """Resource Manager's time: receipts are stamped with it, because drift is found by
        comparing their stamp with the runbook's last-modified time, which is the service's."""
        return self._clock() + self._skew

    def _forget_location(self) -> None:
        with self._lock:
            self._location = None

    def _modules(self, environment: str | None) -> list[LiveModule]:
        c, rg, acc = self._client, self._rg, self._name
        if environment is None:
            with self._errors("listing the modules"):
                return [_live_module(m) for m in c.module.list_by_automation_account(rg, acc)]
        try:
            with self._errors(f"listing the packages of runtime environment '{environment}'",
                              not_found=ResourceNotFoundError):
                return [_live_module(p) for p in c.package.list_by_runtime_environment(rg, acc, environment)]
        except ResourceNotFoundError:
            raise AccountError(
                f"Runtime environment '{environment}' does not exist in automation account "
                f"'{self._name}': create it first (rjsync creates RJ-PowerShell-7.4 when it is missing)."
            ) from None

    def _import(self, entry: Resolved, environment: str | None, modules: ModuleSet) -> LiveModule:
        """PUT the import once its dependencies are loaded at the set's versions, and poll it
        until it ends. The import window is waited for first (a slot of the account's
        ``ImportPacer``), then the dependencies are read again, and the PUT leaves with that
        slot: no dependency can have changed between the check and the PUT while this waited
        for the window, and a wait for a dependency holds no slot."""
        c, rg, acc = self._client, self._rg, self._name
        body = {"properties": {"contentLink": {"uri": self._content_link(entry), "version": entry.version}}}
        if environment is None:
            what = f"module '{entry.id}' {entry.version} into automation account '{acc}'"
            put = lambda **kw: c.module.create_or_update(rg, acc, entry.id, body, **kw)  # noqa: E731
            get = lambda name=entry.id: c.module.get(rg, acc, name)  # noqa: E731
        else:
            what = (f"package '{entry.id}' {entry.version} into runtime environment '{environment}' of "
                    f"automation account '{acc}'")
            put = lambda **kw: c.package.create_or_update(rg, acc, environment, entry.id, body, **kw)  # noqa: E731
            get = lambda name=entry.id: c.package.get(rg, acc, environment, name)  # noqa: E731
        deadline = time.monotonic() + self.settings.provisioning_timeout
        while True:
            slot = import_slot(self._pacer, entry.id, self.target)
            try:
                waiting = self._dependencies_waiting(entry, modules, get, what)
            except BaseException:
                self._pacer.release(slot)
                raise
            if waiting is None:
                break
            self._pacer.release(slot)
            if time.monotonic() > deadline:
                raise AccountError(
                    f"Importing {what} did not start within {self.settings.provisioning_timeout:g} s: its "
                    f"dependency {waiting} is still being imported; check the account's modules and run again."
                )
            time.sleep(self.settings.provisioning_poll_interval)
        with self._errors(f"importing {what}"):
            module = _live_module(put(import_slot=slot))  # Creating, version null: import is asynchronous
        while not module.loaded and module.provisioning_state.lower() not in _FAILED_STATES:
            if time.monotonic() > deadline:
                raise AccountError(
                    f"Importing {what} did not finish within {self.settings.provisioning_timeout:g} s "
                    f"(still {module.provisioning_state}); check the account's modules and run again."
                )
            time.sleep(self.settings.provisioning_poll_interval)
            with self._errors(f"waiting for the import of {what}"):
                module = _live_module(get())
        if not module.loaded:
            raise AccountError(
                f"Importing {what} failed: {module.error or 'the service gave no reason'}"
            )
        return module

    def _dependencies_waiting(self, entry: Resolved, modules: ModuleSet, get, what: str) -> str | None:
        """Read ``entry``'s dependencies as the account has them now: None when each is loaded at
        the version the set gave it (or newer), the first one still being imported otherwise; a
        failed, missing or older one fails the import (the service would fail it for that)."""
        for dep in entry.dependencies:
            want = modules.get(dep.id)
            need = want.version if want is not None else dep.min_version
            try:
                with self._errors(f"reading {dep.id} before importing {what}", not_found=ResourceNotFoundError):
                    have = _live_module(get(dep.id))
            except ResourceNotFoundError:
                have = None
            if have is not None and have.loaded and (
                    not version_known(have.version) or not version_known(need)
                    or version_key(have.version) >= version_key(need)):
                continue
            if have is not None and not have.loaded and have.provisioning_state.lower() not in _FAILED_STATES:
                return f"{have.name} ({have.provisioning_state})"
            state = "missing" if have is None else f"{have.version or 'no version'}, {have.provisioning_state}"
            raise AccountError(
                f"Not importing {what}: it needs {dep.id} {need or ''}, and the account has {state}."
                .replace("  ", " ")
            )
        return None

    def _content_link(self, entry: Resolved) -> str:
        try:
            return self.gallery.content_link(entry.id, entry.version)
        except GalleryError as err:
            raise AccountError(err.message) from None

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
            if old and _text(old).lower() != spec.runbook_type.lower():
                return type_change_error(current.name, _text(old), spec.runbook_type)
        return self._translate(err, f"{verb} runbook '{spec.name}'")

    def _errors(self, action: str, not_found=None):
        return Translate(self._where, action, not_found)

    def _translate(self, err: AzureError, action: str) -> AccountError:
        return translate(err, action, self._where)


def _text(value) -> str:
    """An SDK enum or string as the plain string the service sent."""
    if value is None:
        return ""
    return str(value.value if isinstance(value, Enum) else value)


def _live_runbook(rb) -> LiveRunbook:
    p = rb.properties
    return LiveRunbook(
        name=rb.name,
        runbook_type=_text(p.runbook_type) if p else "",
        runtime_environment=(p.runtime_environment or None) if p else None,
        state=_text(p.state) if p else "",
        description=(p.description or "") if p else "",
        tags=dict(rb.tags or {}),
        last_modified=p.last_modified_time if p else None,
    )


def _quietly(gallery: Gallery, name: str, version: str | None) -> None:
    """Look a requirement up ahead (cached); a failure is left for the resolution to report."""
    try:
        gallery.package(name, version) if version else gallery.latest(name)
    except GalleryError:
        pass


def _live_module(m) -> LiveModule:
    p = m.properties
    error = p.error.message if p is not None and p.error is not None and p.error.message else None
    return LiveModule(
        name=m.name,
        version=(p.version or None) if p else None,
        provisioning_state=_text(p.provisioning_state) if p else "",
        error=error,
    )
