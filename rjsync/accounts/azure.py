"""An Azure Automation account through Resource Manager: the only module that talks to ARM.

Built on ``azure-mgmt-automation`` (api-version 2024-10-23) and ``azure-core``:

- Retries (429 with Retry-After, 408/500/502/503/504, dropped connections) are azure-core's
  ``RetryPolicy``, configured through ``AzureSettings``, never re-implemented here. Publishing
  and the receipt PATCH are idempotent, so they are retried like PUTs (``retry_on_methods``).
- Long-running operations (replace draft content, publish) are polled at
  ``polling_interval`` (1 s; the SDK's default of 30 s would make 170 publishes take hours),
  and the poller honours the service's ``Retry-After``. Lists follow ``nextLink`` to the end.
- A runbook write is: create/update (type, runtime environment, description, tags without
  the receipt) -> replace the draft content -> publish -> add the receipt tags. The receipt
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
- Module/package imports: dependencies resolved from the PowerShell Gallery and imported
  first, each polled until Succeeded or Failed; a failure carries the service's error text.
- Every SDK error becomes an ``AccountError`` sentence (``rjsync.accounts.azure_errors``); the
  token never appears in one.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Callable, Mapping

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.mgmt.automation import AutomationClient

from rjsync.accounts import receipts
from rjsync.accounts.azure_errors import Translate, Where, service_error, translate
from rjsync.accounts.base import (
    FAILED,
    RJ_DEFAULT_PACKAGES,
    RJ_RUNTIME_ENVIRONMENT,
    SUCCEEDED,
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
    trim_description,
    type_change_error,
    version_key,
)
from rjsync.accounts.credentials import CLOUDS, Cloud
from rjsync.accounts.gallery import DEFAULT_GALLERY_URL, Gallery, GalleryPackage
from rjsync.accounts.pacing import (
    BudgetPacing,
    ImportPacer,
    ImportPacing,
    RequestLimit,
    request_budgets,
)
from rjsync.catalog.naming import OWNED_PREFIX
from rjsync.catalog.text import normalized_sha256
from rjsync.errors import AccountError
from rjsync.source import redact

API_VERSION = "2024-10-23"

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
        self._imported: dict[tuple[str, str], LiveModule] = {}
        self._import_errors: dict[tuple[str, str], str] = {}
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
        self._lock = threading.Lock()
        self._clock = clock
        self._skew = timedelta(0)  # Resource Manager's clock minus this machine's

    # -- the protocol ---------------------------------------------------------------------------

    def snapshot(self, scope: SnapshotScope | None = None) -> Snapshot:
        c, rg, acc = self._client, self._rg, self._name
        try:
            with self._errors("listing the runbooks", not_found=ResourceNotFoundError):
                runbooks = [_live_runbook(rb) for rb in c.runbook.list_by_automation_account(rg, acc)]
        except ResourceNotFoundError:
            self._forget_location()
            self._account_location()  # says which part of the ARM id is wrong
            raise
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
                default_packages=_default_packages(env),
            ))
        return Snapshot(
            runbooks=tuple(sorted(runbooks, key=lambda r: r.name.lower())),
            modules=tuple(sorted(modules, key=lambda m: m.name.lower())),
            runtime_environments=tuple(sorted(environments, key=lambda e: e.name.lower())),
        )

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
        properties = {
            "runbookType": spec.runbook_type,
            "description": trim_description(spec.description),
            "logVerbose": False,
            "logProgress": False,
            "draft": {},
        }
        if spec.runtime_environment:
            properties["runtimeEnvironment"] = spec.runtime_environment
        body = {"name": name, "location": location, "tags": dict(spec.tags), "properties": properties}
        try:
            with self._errors(f"creating or updating runbook '{name}'", not_found=HttpResponseError):
                c.runbook.create_or_update(rg, acc, name, body)
        except HttpResponseError as err:
            raise self._write_refused(spec, err) from None
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
        return _live_runbook(live)

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
        return _live_runbook(live)

    def delete_runbook(self, name: str) -> None:
        check_owned(name, self.owned_prefix, "delete")
        self._account_location()
        try:
            with self._errors(f"deleting runbook '{name}'", not_found=ResourceNotFoundError):
                self._client.runbook.delete(self._rg, self._name, name)
        except ResourceNotFoundError:
            pass  # already gone

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
            packages = [_live_module(p) for p in c.package.list_by_runtime_environment(rg, acc, env.name)]
        return LiveRuntimeEnvironment(env.name, have[0], have[1], tuple(sorted(packages, key=lambda m: m.name.lower())),
                                      _default_packages(env))

    def import_module(self, spec: ModuleImport) -> LiveModule:
        self._account_location()
        plan = self.gallery.resolve(spec.name, spec.version, spec.prefer)
        live = {m.name.lower(): m for m in self._modules(spec.runtime_environment)}
        result: LiveModule | None = None
        for pkg in plan:
            result = self._import_once(pkg, spec.runtime_environment, live)
        assert result is not None
        return result

    def _import_once(self, pkg: GalleryPackage, environment: str | None,
                     live: dict[str, LiveModule]) -> LiveModule:
        """Import ``pkg`` unless the account has it at its version or newer (never downgrade).
        Imports run in parallel threads, and two may need one dependency: an import of it
        under way is waited for, not started again, and its failure is the waiter's too."""
        key = ((environment or "").lower(), pkg.id.lower())
        with self._imports:
            while key in self._importing:
                self._imports.wait()
            if key in self._import_errors:
                raise AccountError(self._import_errors[key])
            current = self._imported.get(key) or live.get(pkg.id.lower())
            if (current is not None and current.provisioning_state == SUCCEEDED
                    and version_key(current.version) >= version_key(pkg.version)):
                return current
            self._importing.add(key)
        module, error = None, None
        try:
            module = self._import(pkg, environment)
            return module
        except AccountError as err:
            error = err.message
            raise
        finally:
            with self._imports:
                self._importing.discard(key)
                if module is not None:
                    self._imported[key] = module
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

    def _import(self, pkg: GalleryPackage, environment: str | None) -> LiveModule:
        c, rg, acc = self._client, self._rg, self._name
        uri = self.gallery.content_url(pkg.id, pkg.version)
        body = {"properties": {"contentLink": {"uri": uri, "version": pkg.version}}}
        if environment is None:
            what = f"module '{pkg.id}' {pkg.version} into automation account '{acc}'"
            put = lambda: c.module.create_or_update(rg, acc, pkg.id, body)  # noqa: E731
            get = lambda: c.module.get(rg, acc, pkg.id)  # noqa: E731
        else:
            what = (f"package '{pkg.id}' {pkg.version} into runtime environment '{environment}' of "
                    f"automation account '{acc}'")
            put = lambda: c.package.create_or_update(rg, acc, environment, pkg.id, body)  # noqa: E731
            get = lambda: c.package.get(rg, acc, environment, pkg.id)  # noqa: E731
        with self._errors(f"importing {what}"):
            module = _live_module(put())
        deadline = time.monotonic() + self.settings.provisioning_timeout
        while module.provisioning_state.lower() not in _FAILED_STATES | {SUCCEEDED.lower()}:
            if time.monotonic() > deadline:
                raise AccountError(
                    f"Importing {what} did not finish within {self.settings.provisioning_timeout:g} s "
                    f"(still {module.provisioning_state}); check the account's modules and run again."
                )
            time.sleep(self.settings.provisioning_poll_interval)
            with self._errors(f"waiting for the import of {what}"):
                module = _live_module(get())
        if module.provisioning_state.lower() in _FAILED_STATES:
            reason = (module.error or "the service gave no reason").replace(uri, redact(uri))  # a mirror's token
            raise AccountError(f"Importing {what} failed: {reason}")
        return module

    def _write_refused(self, spec: RunbookWrite, err: HttpResponseError) -> AccountError:
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
        return self._translate(err, f"creating or updating runbook '{spec.name}'")

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


def _default_packages(env) -> dict[str, str]:
    """An environment's default packages as the service answers them (names in lower case)."""
    packages = (env.properties.default_packages if env.properties else None) or {}
    return {str(k): str(v) for k, v in packages.items()}


def _live_module(m) -> LiveModule:
    p = m.properties
    error = p.error.message if p is not None and p.error is not None and p.error.message else None
    return LiveModule(
        name=m.name,
        version=(p.version or None) if p else None,
        provisioning_state=_text(p.provisioning_state) if p else "",
        error=error,
    )
