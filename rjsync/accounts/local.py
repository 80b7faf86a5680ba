"""The directory account (``local:PATH``): an Automation account kept in a folder.

Layout::

    PATH/runbooks/<name>.ps1          the published content, byte for byte
    PATH/runbooks/<name>.meta.json    type, runtime environment, description, tags, state,
                                      last modified (absent for a script dropped in by hand)
    PATH/modules.json                 account modules and runtime environments with packages
                                      and default packages
    PATH/identity.json                what the identity its runbooks run as holds (optional;
                                      ``rjsync.accounts.identity_file``), never written by rjsync
    PATH/.rjsync.lock                 the lock two processes share
    PATH/jobs/, PATH/job_schedules.json  runbook jobs, run with pwsh (``rjsync.accounts.local_jobs``)

A ``.ps1`` without metadata was put there by hand: it is a customer runbook (a published
Windows PowerShell 5.1 runbook, last modified at the file's mtime). Every file is written to
a temporary file and moved into place (``os.replace``), under a file lock, so a reader never
sees half a file and two processes never interleave a read-modify-write. Names compare
case-insensitively; the casing a runbook was created with is kept.

Module imports are recorded, not downloaded: the folder has no gallery to talk to.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

from filelock import FileLock, Timeout

from rjsync.accounts import receipts
from rjsync.accounts.base import (
    BUILTIN_RUNTIME_ENVIRONMENTS,
    RJ_DEFAULT_PACKAGES,
    RJ_RUNTIME_ENVIRONMENT,
    STATE_NEW,
    STATE_PUBLISHED,
    SUCCEEDED,
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
    check_owned,
    check_write,
    trim_description,
    type_change_error,
    version_key,
)
from rjsync.accounts.identity_file import read_identity_file
from rjsync.accounts.local_jobs import LocalJobs, find_pwsh
from rjsync.catalog.naming import OWNED_PREFIX
from rjsync.catalog.text import normalized_sha256
from rjsync.errors import AccountError
from rjsync.files import atomic_write, is_own_temp

_META = ".meta.json"


class LocalAccount:
    """A directory account. Safe for several threads and processes (one file lock)."""

    def __init__(self, path: str | os.PathLike, *, owned_prefix: str = OWNED_PREFIX, lock_timeout: float = 60.0):
        self.path = Path(path)
        self.target = f"local:{path}"
        self.owned_prefix = owned_prefix
        if self.path.exists() and not self.path.is_dir():
            raise AccountError(f"The directory account '{self.path}' is a file, not a folder.")
        self._runbooks = self.path / "runbooks"
        self._modules_file = self.path / "modules.json"
        self._lock_timeout = lock_timeout
        self._lock_file = self.path / ".rjsync.lock"
        self._jobs = LocalJobs(self.path)

    # -- the protocol ---------------------------------------------------------------------------

    def snapshot(self, scope: SnapshotScope | None = None) -> Snapshot:
        # files are cheap to read: the whole account whatever the scope
        if self.path.exists():
            with self._locked():
                runbooks = tuple(
                    sorted((self._read_runbook(p) for p in self._scripts()), key=lambda r: r.name.lower())
                )
                state = self._read_modules()
        else:  # a new account: reading it creates nothing
            runbooks, state = (), {"modules": {}, "runtime_environments": {}}
        modules = tuple(_module(m) for _, m in sorted(state["modules"].items()))
        environments = tuple(
            LiveRuntimeEnvironment(
                name=env["name"],
                language=env["language"],
                version=env["version"],
                packages=tuple(_module(p) for _, p in sorted(env["packages"].items())),
                default_packages=dict(env.get("default_packages") or {}),
            )
            for _, env in sorted(self._environments(state).items())
        )
        return Snapshot(runbooks=runbooks, modules=modules, runtime_environments=environments)

    def read_runbook(self, name: str) -> LiveRunbook | None:
        if not self.path.exists():
            return None
        with self._locked():
            script = self._find_script(name)
            return self._read_runbook(script) if script is not None else None

    def read_content(self, name: str) -> bytes | None:
        if not self.path.exists():
            return None
        with self._locked():
            script = self._find_script(name)
            return script.read_bytes() if script else None

    def write_runbook(self, spec: RunbookWrite, *,
                      before_publish: Callable[[], None] | None = None) -> LiveRunbook:
        check_write(spec, self.owned_prefix)
        if before_publish is not None:  # a file is written whole: nothing is staged before it
            before_publish()
        with self._locked():
            state = self._read_modules()
            if spec.runtime_environment is not None:
                _require_environment(self._environments(state), spec.runtime_environment)
            script = self._find_script(spec.name)
            if script is not None:
                current = self._read_runbook(script)
                if current.runbook_type.lower() != spec.runbook_type.lower():
                    raise type_change_error(current.name, current.runbook_type, spec.runbook_type)
            else:
                script = self._runbooks / f"{spec.name}.ps1"
            name = script.name[: -len(".ps1")]
            meta = {
                "runbook_type": spec.runbook_type,
                "runtime_environment": spec.runtime_environment,
                "description": trim_description(spec.description),
                "tags": dict(spec.tags),
                "state": STATE_PUBLISHED,
            }
            # Same order as Azure: properties and tags without the receipt, the content, and
            # only then the receipt; an interruption leaves no receipt for content not written.
            self._runbooks.mkdir(parents=True, exist_ok=True)
            self._write_meta(script, meta)
            atomic_write(script, spec.content)
            if spec.receipt:
                meta["tags"] = {**meta["tags"], **receipts.stamp(spec.receipt)}
                self._write_meta(script, meta)
            return self._read_runbook(self._runbooks / f"{name}.ps1")

    def write_properties(self, spec: RunbookWrite) -> LiveRunbook | None:
        check_write(spec, self.owned_prefix)
        with self._locked():
            script = self._find_script(spec.name)
            if script is None or normalized_sha256(script.read_bytes()) != normalized_sha256(spec.content):
                return None
            current = self._read_runbook(script)
            if current.runbook_type.lower() != spec.runbook_type.lower():
                raise type_change_error(current.name, current.runbook_type, spec.runbook_type)
            if spec.runtime_environment is not None:
                _require_environment(self._environments(self._read_modules()), spec.runtime_environment)
            self._write_meta(script, {
                "runbook_type": current.runbook_type,
                "runtime_environment": spec.runtime_environment,
                "description": trim_description(spec.description),
                "tags": {**spec.tags, **receipts.stamp(spec.receipt)},
                "state": current.state,
            })
            return self._read_runbook(script)

    def delete_runbook(self, name: str) -> None:
        check_owned(name, self.owned_prefix, "delete")
        with self._locked():
            script = self._find_script(name)
            if script is None:
                return
            # metadata first: a script left without it is still owned (by its name), never lost
            _sidecar(script).unlink(missing_ok=True)
            script.unlink()

    def ensure_runtime_environment(
        self, name: str = RJ_RUNTIME_ENVIRONMENT, *, language: str = "PowerShell", version: str = "7.4",
        default_packages: Mapping[str, str] | None = None,
    ) -> LiveRuntimeEnvironment:
        check_environment_name(name)
        with self._locked():
            state = self._read_modules()
            environments = self._environments(state)
            env = _lookup(environments, name)
            if env is None:
                defaults = RJ_DEFAULT_PACKAGES if default_packages is None else default_packages
                env = {"name": name, "language": language, "version": version, "packages": {},
                       "default_packages": dict(defaults)}
                state["runtime_environments"][name.lower()] = env
                self._write_modules(state)
            elif (env["language"].lower(), env["version"]) != (language.lower(), version):
                raise AccountError(
                    f"Runtime environment '{env['name']}' exists with {env['language']} "
                    f"{env['version']}, not {language} {version}; its language and version cannot "
                    "change: delete it or pick another name."
                )
        return LiveRuntimeEnvironment(
            name=env["name"], language=env["language"], version=env["version"],
            packages=tuple(_module(p) for _, p in sorted(env["packages"].items())),
            default_packages=dict(env.get("default_packages") or {}),
        )

    def import_module(self, spec: ModuleImport) -> LiveModule:
        with self._locked():
            state = self._read_modules()
            if spec.runtime_environment is None:
                table = state["modules"]
            else:
                env = _require_environment(self._environments(state), spec.runtime_environment)
                if spec.runtime_environment.lower() not in state["runtime_environments"]:
                    raise AccountError(
                        f"Runtime environment '{env['name']}' is built in; import packages into "
                        "an environment of your own (e.g. RJ-PowerShell-7.4)."
                    )
                table = env["packages"]
            current = table.get(spec.name.lower())
            if current and current["version"] and (
                spec.version is None or version_key(current["version"]) >= version_key(spec.version)
            ):
                return _module(current)  # never downgrade
            entry = {
                "name": current["name"] if current else spec.name,
                # no gallery to ask which version is the newest: the version stays unknown
                "version": spec.version,
                "provisioning_state": SUCCEEDED,
                "error": None,
            }
            table[spec.name.lower()] = entry
            self._write_modules(state)
            return _module(entry)

    def read_grants(self) -> Grants:
        return read_identity_file(self.path)  # written by people, read whole: no lock needed

    def finish(self) -> None:
        pass  # files are read whole: nothing is kept between syncs

    # -- runbook jobs (``rjsync.accounts.local_jobs``) -------------------------------------------------

    def start_job(self, runbook: str, parameters: Mapping[str, str], job_id: str | None = None) -> LiveJob:
        check_job_start(runbook, parameters, self.owned_prefix, job_id)
        executable = find_pwsh()
        with self._locked():
            script = self._find_script(runbook)
            if script is None:
                raise AccountError(f"Runbook '{runbook}' does not exist in the directory account '{self.path}': "
                                   "sync it before starting it.")
            live = self._read_runbook(script)
            if live.state.lower() == STATE_NEW.lower():
                raise AccountError(f"Runbook '{live.name}' in the directory account '{self.path}' has never been "
                                   "published: there is no version to run; sync it first.")
            content = script.read_bytes()
            return self._jobs.start(live.name, content, parameters, job_id, executable)

    def job(self, job_id: str) -> LiveJob | None:
        with _Release(None, self.path):
            return self._jobs.job(job_id)

    def jobs_since(self, created: datetime) -> list[LiveJob]:
        with _Release(None, self.path):
            return self._jobs.since(created)

    def job_streams(self, job_id: str, stream_types: set[str] | None = None) -> list[JobStream]:
        with _Release(None, self.path):
            return self._jobs.streams(job_id, stream_types)

    def job_output(self, job_id: str) -> str:
        with _Release(None, self.path):
            return self._jobs.output(job_id)

    def job_schedules(self, runbooks=None) -> tuple[LiveJobSchedule, ...]:
        with _Release(None, self.path):
            return self._jobs.schedules(runbooks)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- files ------------------------------------------------------------------------------------

    def _locked(self):
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise AccountError(f"Cannot create the directory account '{self.path}': {err.strerror}.") from err
        lock = FileLock(self._lock_file, timeout=self._lock_timeout)
        try:
            lock.acquire()
        except Timeout as err:
            raise AccountError(
                f"The directory account '{self.path}' is locked by another rjsync process "
                f"(waited {self._lock_timeout:g} s for {self._lock_file})."
            ) from err
        except OSError as err:
            # a read-only folder, a lock path that is a folder, or a symbolic link (never followed)
            raise AccountError(
                f"The directory account '{self.path}' cannot be locked: {err.strerror or err} "
                f"({self._lock_file}); it must be a writable folder where .rjsync.lock can be a plain file."
            ) from err
        self._remove_leftovers()
        return _Release(lock, self.path)

    def _remove_leftovers(self) -> None:
        """Temporary files of a writer that was killed (none is being written: we hold the lock);
        only those rjsync names itself, never a customer's ``.*.tmp``."""
        for folder in (self.path, self._runbooks):
            try:
                leftovers = [p for p in folder.iterdir() if is_own_temp(p.name)]
            except OSError:
                continue
            for path in leftovers:
                path.unlink(missing_ok=True)

    def _scripts(self) -> list[Path]:
        if not self._runbooks.is_dir():
            return []
        return [p for p in self._runbooks.iterdir() if p.suffix.lower() == ".ps1" and p.is_file()]

    def _find_script(self, name: str) -> Path | None:
        key = name.lower()
        for script in self._scripts():
            if script.stem.lower() == key:
                return script
        return None

    def _read_runbook(self, script: Path) -> LiveRunbook:
        meta_path = _sidecar(script)
        mtime = datetime.fromtimestamp(script.stat().st_mtime, tz=timezone.utc)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            # dropped in by hand: a customer's published Windows PowerShell runbook
            return LiveRunbook(script.stem, "PowerShell", None, STATE_PUBLISHED, "", {}, mtime)
        except (OSError, ValueError, RecursionError) as err:
            raise AccountError(f"Cannot read the runbook metadata {meta_path}: {err}.") from err
        problem = _meta_problem(meta)
        if problem:
            raise AccountError(f"The runbook metadata {meta_path} is corrupt: {problem}; "
                               "fix or delete the file.")
        modified = meta.get("last_modified")
        return LiveRunbook(
            name=script.stem,
            runbook_type=meta.get("runbook_type") or "PowerShell",
            runtime_environment=meta.get("runtime_environment"),
            state=meta.get("state") or STATE_PUBLISHED,
            description=meta.get("description") or "",
            tags=dict(meta.get("tags") or {}),
            # a script edited by hand after rjsync wrote it counts as modified then
            last_modified=max(datetime.fromisoformat(modified), mtime) if modified else mtime,
        )

    def _write_meta(self, script: Path, meta: dict) -> None:
        meta = {**meta, "last_modified": datetime.now(timezone.utc).isoformat()}
        atomic_write(_sidecar(script), (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())

    def _read_modules(self) -> dict:
        try:
            data = json.loads(self._modules_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError, RecursionError) as err:
            raise AccountError(f"Cannot read {self._modules_file}: {err}.") from err
        problem = _modules_problem(data)
        if problem:
            raise AccountError(f"The module list {self._modules_file} is corrupt: {problem}; "
                               "fix or delete the file.")
        data.setdefault("modules", {})
        data.setdefault("runtime_environments", {})
        return data

    def _write_modules(self, state: dict) -> None:
        atomic_write(self._modules_file, (json.dumps(state, indent=2, sort_keys=True) + "\n").encode())

    @staticmethod
    def _environments(state: dict) -> dict:
        environments = {
            name.lower(): {"name": name, "language": lang, "version": ver, "packages": {}}
            for name, (lang, ver) in BUILTIN_RUNTIME_ENVIRONMENTS.items()
        }
        environments.update(state["runtime_environments"])
        return environments


class _Release:
    """Releases the lock; an ``OSError`` inside (a full disk, a read-only or forbidden file)
    becomes an :class:`AccountError` sentence, so an apply fails that change and goes on."""

    def __init__(self, lock: FileLock, path: Path):
        self._lock = lock
        self._path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, err, trace):
        if self._lock is not None:  # None: reading files that need no lock (jobs)
            self._lock.release()
        if isinstance(err, OSError):
            where = f" ({err.filename})" if err.filename else ""
            raise AccountError(
                f"The directory account '{self._path}' cannot be read or written: "
                f"{err.strerror or err}{where}."
            ) from err


def _sidecar(script: Path) -> Path:
    return script.with_name(script.stem + _META)


def _module(entry: dict) -> LiveModule:
    return LiveModule(entry["name"], entry.get("version"), entry.get("provisioning_state") or SUCCEEDED, entry.get("error"))


def _lookup(environments: dict, name: str) -> dict | None:
    return environments.get(name.lower())


def _require_environment(environments: dict, name: str) -> dict:
    env = _lookup(environments, name)
    if env is None:
        raise AccountError(
            f"Runtime environment '{name}' does not exist in the account: create it first "
            "(rjsync creates RJ-PowerShell-7.4 when it is missing)."
        )
    return env


# -- checking files a person may have edited: a sentence, not a KeyError later ----------------------


def _text_or_none(value) -> bool:
    return value is None or isinstance(value, str)


def _meta_problem(meta) -> str | None:
    if not isinstance(meta, dict):
        return "it is not a JSON object"
    for key in ("runbook_type", "runtime_environment", "state", "description", "last_modified"):
        if not _text_or_none(meta.get(key)):
            return f"'{key}' is not text"
    tags = meta.get("tags")
    if tags is not None and not (isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values())):
        return "'tags' is not an object of texts"
    if meta.get("last_modified"):
        try:
            stamp = datetime.fromisoformat(meta["last_modified"])
        except ValueError:
            return "'last_modified' is not a date and time"
        if stamp.tzinfo is None:
            return "'last_modified' has no time zone"
    return None


def _module_problem(entry, where: str) -> str | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        return f"{where} is not an object with a 'name'"
    if not all(_text_or_none(entry.get(k)) for k in ("version", "provisioning_state", "error")):
        return f"{where} has a version, state or error that is not text"
    return None


def _modules_problem(data) -> str | None:
    if not isinstance(data, dict):
        return "it is not a JSON object"
    modules, environments = data.get("modules", {}), data.get("runtime_environments", {})
    if not isinstance(modules, dict) or not isinstance(environments, dict):
        return "'modules' and 'runtime_environments' must be objects"
    for key, entry in modules.items():
        if problem := _module_problem(entry, f"module '{key}'"):
            return problem
    for key, env in environments.items():
        where = f"runtime environment '{key}'"
        if not isinstance(env, dict) or not all(isinstance(env.get(k), str) for k in ("name", "language", "version")):
            return f"{where} lacks a text name, language or version"
        if not isinstance(env.get("packages"), dict):
            return f"{where} has no 'packages' object"
        defaults = env.get("default_packages")
        if defaults is not None and not (isinstance(defaults, dict)
                                         and all(isinstance(v, str) for v in defaults.values())):
            return f"{where} has 'default_packages' that are not an object of versions"
        for name, entry in env["packages"].items():
            if problem := _module_problem(entry, f"package '{name}' of {where}"):
                return problem
    return None
