"""Module and package imports of one Azure Automation account.

The versions of every module an apply imports, with all their dependencies, are decided
together once (``rjsync.accounts.resolution``). Each is imported once, dependencies first;
imports run in parallel threads, and two that need one dependency share its import and its
failure. A dependant's PUT leaves only once the import window has a slot for it and its
dependencies, read again after that wait, are loaded at the set's versions. Each import is
polled until it is loaded (Succeeded or Created) or failed, with the service's error text.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from azure.core.exceptions import ResourceNotFoundError

from rjsync.accounts.azure_values import live_module
from rjsync.accounts.base import FAILED, LiveModule, ModuleImport, version_key, version_known
from rjsync.accounts.gallery import Gallery, GalleryError
from rjsync.accounts.pacing import ImportPacer, import_slot
from rjsync.accounts.resolution import ModuleSet, Resolved, resolve_set
from rjsync.errors import AccountError
from rjsync.source import redact

_FAILED_STATES = {FAILED.lower(), "cancelled", "canceled"}


class ModuleImports:
    """The imports of one account: ``client`` is its SDK client, ``errors(action, not_found)``
    its error translation, ``pacer`` its import window."""

    def __init__(self, client, resource_group: str, account: str, *, gallery: Gallery, pacer: ImportPacer,
                 errors: Callable, settings, target: str):
        self._client, self._rg, self._name = client, resource_group, account
        self.gallery, self._pacer, self._errors = gallery, pacer, errors
        self.settings, self.target = settings, target
        # imports under way, done and failed in this run, by (environment, module), lower-case
        self._imports = threading.Condition()
        self._importing: set[tuple[str, str]] = set()
        self._imported: dict[tuple[str, str], tuple[str | None, LiveModule]] = {}  # (version imported, module)
        self._import_errors: dict[tuple[str, str], str] = {}
        # resolved sets, by (environment, requirements)
        self._resolving = threading.Lock()
        self._sets: dict[tuple, tuple[ModuleSet, dict[str, LiveModule]]] = {}

    def import_module(self, spec: ModuleImport) -> LiveModule:
        """Import ``spec`` with its dependencies first, at the versions of the whole set."""
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
                live = {m.name.lower(): m for m in self.modules(spec.runtime_environment)}
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

    def modules(self, environment: str | None) -> list[LiveModule]:
        c, rg, acc = self._client, self._rg, self._name
        if environment is None:
            with self._errors("listing the modules"):
                return [live_module(m) for m in c.module.list_by_automation_account(rg, acc)]
        try:
            with self._errors(f"listing the packages of runtime environment '{environment}'",
                              not_found=ResourceNotFoundError):
                return [live_module(p) for p in c.package.list_by_runtime_environment(rg, acc, environment)]
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
        uri = self._content_link(entry)
        body = {"properties": {"contentLink": {"uri": uri, "version": entry.version}}}
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
            module = live_module(put(import_slot=slot))  # Creating, version null: import is asynchronous
        while not module.loaded and module.provisioning_state.lower() not in _FAILED_STATES:
            if time.monotonic() > deadline:
                raise AccountError(
                    f"Importing {what} did not finish within {self.settings.provisioning_timeout:g} s "
                    f"(still {module.provisioning_state}); check the account's modules and run again."
                )
            time.sleep(self.settings.provisioning_poll_interval)
            with self._errors(f"waiting for the import of {what}"):
                module = live_module(get())
        if not module.loaded:
            reason = (module.error or "the service gave no reason").replace(uri, redact(uri))  # a mirror's token
            raise AccountError(f"Importing {what} failed: {reason}")
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
                    have = live_module(get(dep.id))
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


def _quietly(gallery: Gallery, name: str, version: str | None) -> None:
    """Look a requirement up ahead (cached); a failure is left for the resolution to report."""
    try:
        gallery.package(name, version) if version else gallery.latest(name)
    except GalleryError:
        pass
