"""Configuration of ``rjsync serve``: the accounts it knows (a folder of manifests, keyed by
manifest name), who may call it, and where jobs are kept.

A config file (YAML or JSON; ``--config FILE`` or ``$RJSYNC_SERVICE_CONFIG``)::

    manifests: manifests            # a folder of manifests, relative to this file ($RJSYNC_MANIFESTS)
    database: rjsync-service.db     # jobs and streams (SQLite), relative to this file
    accounts_at_once: 4             # syncs of different accounts running at once
    public_docs: false              # true: /docs and /openapi.json answer without credentials
    users:                          # Authorization: Basic
      portal: {password: "pbkdf2_sha256$...", accounts: ["*"]}
    tokens:                         # Authorization: Bearer
      ci: {token: "pbkdf2_sha256$...", accounts: [demo], roles: [helpdesk]}
    runbook_jobs:                   # the job API (/runbook/..., /api/external/runbook/...)
      permissions: runbook-permissions.json   # RealmJoin's runbook-permissions JSON (a file, or inline)
      customization: customization.json       # the tenant's runbook customization JSON (a file, or inline)
      run_timeout: 3600             # seconds POST .../run waits before answering 202 (the job runs on)
      poll_interval: 2              # the longest pause between two status reads of a waiting /run
      worker_process: true          # starts and waits in a process of their own (false: threads)

A user's or token's ``roles`` name roles of the runbook permissions' ``Roles``: the runbooks
they may start (without ``permissions`` every caller may start every synced runbook of the
accounts they may use).

``users`` and ``tokens`` may instead come from ``$RJSYNC_SERVICE_CREDENTIALS`` (the same two
keys as a YAML or JSON document), which replaces those of the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from rjsync.errors import RjsyncError
from rjsync.jobs.access import (
    RunbookPermissions,
    load_permissions,
    permissions_from_json,
    unknown_roles,
)
from rjsync.service.auth import Authenticator, Credential, Principal, check_strength
from rjsync.settings import DEFAULT_ACCOUNTS_AT_ONCE

DEFAULT_MAX_BODY = 64 * 1024
DEFAULT_RUN_TIMEOUT = 3600.0
DEFAULT_POLL_INTERVAL = 2.0


class ConfigError(RjsyncError):
    """The service configuration cannot be used."""


@dataclass
class ServiceConfig:
    manifests: str
    database: str
    authenticator: Authenticator
    accounts_at_once: int = DEFAULT_ACCOUNTS_AT_ONCE
    max_body: int = DEFAULT_MAX_BODY
    #: /docs, /redoc and /openapi.json without credentials (by default they need them too)
    public_docs: bool = False
    #: opens an account for a job (tests slow it down or count it); None: the default opener
    opener: Callable | None = field(default=None, repr=False)
    #: the job API: RealmJoin's runbook permissions (None: every caller may start every runbook
    #: of the accounts they may use) and the tenant's runbook customization (parsed JSON)
    permissions: RunbookPermissions | None = None
    customization: Any = None
    #: seconds POST .../run waits for the job's end before answering 202 with it still running
    run_timeout: float = DEFAULT_RUN_TIMEOUT
    #: the longest pause (s) between two reads of a waiting /run's job (the first are shorter)
    poll_interval: float = DEFAULT_POLL_INTERVAL
    #: account calls of the job API at once (each in a worker thread), and of waiting /runs
    account_calls: int = 32
    waiting_calls: int = 8
    #: job starts and waits in a process of their own (``rjsync.service.job_worker``), so status
    #: reads never wait for their CPU; None: when the opener can be pickled (the default's can)
    job_process: bool | None = None


def _read_document(text: str, shown: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{shown} is not valid YAML or JSON: {err}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{shown} must be a mapping (manifests, database, users, tokens).")
    return doc


def credentials_from(doc: dict[str, Any], shown: str) -> Authenticator:
    users: dict[str, Credential] = {}
    tokens: list[Credential] = []
    for section, key in (("users", "password"), ("tokens", "token")):
        entries = doc.get(section) or {}
        if not isinstance(entries, dict):
            raise ConfigError(f"{shown}: '{section}' must map names to {{{key}: HASH, accounts: [...]}}.")
        for name, entry in entries.items():
            where = f"{shown}: {section}.{name}"
            if not isinstance(entry, dict) or not isinstance(entry.get(key), str):
                raise ConfigError(f"{where} needs '{key}: pbkdf2_sha256$...' (rjsync serve --hash-secret).")
            try:
                check_strength(entry[key])
            except ValueError as err:
                raise ConfigError(f"{where}.{key} is {err}.") from None
            accounts = entry.get("accounts", [])
            if isinstance(accounts, str):
                accounts = [accounts]
            if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
                raise ConfigError(f"{where}.accounts must be a list of manifest names, or ['*'] for all.")
            roles = entry.get("roles", [])
            if isinstance(roles, str):
                roles = [roles]
            if not isinstance(roles, list) or not all(isinstance(r, str) and r.strip() for r in roles):
                raise ConfigError(f"{where}.roles must be a list of role names of the runbook permissions.")
            principal = Principal(str(name), frozenset(a.lower() for a in accounts),
                                  frozenset(r.strip() for r in roles))
            if section == "users":
                if ":" in str(name):
                    raise ConfigError(f"{where}: a user name cannot contain ':'.")
                users[str(name)] = Credential(principal, entry[key])
            else:
                tokens.append(Credential(principal, entry[key]))
    return Authenticator(users, tokens)


def load_config(path: str | None = None, *, manifests: str | None = None, database: str | None = None,
                environ: dict[str, str] | None = None) -> ServiceConfig:
    """The service configuration from ``path`` (or $RJSYNC_SERVICE_CONFIG), the environment and
    the options given (which win)."""
    env = os.environ if environ is None else environ
    path = path or env.get("RJSYNC_SERVICE_CONFIG")
    doc: dict[str, Any] = {}
    base = Path.cwd()
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"Cannot read the service config {path}: {err.strerror or err}.") from None
        doc = _read_document(text, path)
        base = Path(path).resolve().parent
    creds_doc, creds_shown = doc, path or "the config"
    if env.get("RJSYNC_SERVICE_CREDENTIALS"):
        creds_doc = _read_document(env["RJSYNC_SERVICE_CREDENTIALS"], "$RJSYNC_SERVICE_CREDENTIALS")
        creds_shown = "$RJSYNC_SERVICE_CREDENTIALS"
    authenticator = credentials_from(creds_doc, creds_shown)
    if not authenticator.users and not authenticator.tokens:
        raise ConfigError("The service has no credentials: add users or tokens to the config file, or set "
                          "$RJSYNC_SERVICE_CREDENTIALS (hash secrets with rjsync serve --hash-secret).")

    def resolve(value: str | None) -> str | None:
        return None if value is None else str(base / value) if not os.path.isabs(value) else value

    folder = manifests or env.get("RJSYNC_MANIFESTS") or resolve(doc.get("manifests"))
    if not folder:
        raise ConfigError("No accounts: give --manifests DIR (or $RJSYNC_MANIFESTS, or 'manifests' in the "
                          "config), a folder of manifests named after their accounts.")
    db = database or env.get("RJSYNC_SERVICE_DB") or resolve(doc.get("database")) or "rjsync-service.db"
    at_once = doc.get("accounts_at_once", DEFAULT_ACCOUNTS_AT_ONCE)
    if not isinstance(at_once, int) or not 1 <= at_once <= 64:
        raise ConfigError(f"{path}: accounts_at_once must be a whole number from 1 to 64.")
    public_docs = doc.get("public_docs", False)
    if not isinstance(public_docs, bool):
        raise ConfigError(f"{path}: public_docs must be true or false.")
    jobs = runbook_jobs_from(doc.get("runbook_jobs"), path or "the config", base)
    principals = [c.principal for c in (*authenticator.users.values(), *authenticator.tokens)]
    check_roles(jobs["permissions"], principals, creds_shown)
    return ServiceConfig(manifests=folder, database=db, authenticator=authenticator, accounts_at_once=at_once,
                         public_docs=public_docs, **jobs)


def runbook_jobs_from(section: Any, shown: str, base: Path) -> dict[str, Any]:
    """The ``runbook_jobs`` section: permissions and customization (a file relative to the config,
    or the JSON inline), the /run timeout and poll interval."""
    if section is None:
        return {"permissions": None}
    if not isinstance(section, dict):
        raise ConfigError(f"{shown}: runbook_jobs must be a mapping (permissions, customization, run_timeout, "
                          "poll_interval, worker_process).")
    unknown = sorted(set(map(str, section)) - {"permissions", "customization", "run_timeout", "poll_interval",
                                               "worker_process"})
    if unknown:
        raise ConfigError(f"{shown}: runbook_jobs has an unknown key {unknown[0]!r}; the keys are permissions, "
                          "customization, run_timeout, poll_interval and worker_process.")
    worker_process = section.get("worker_process")
    if worker_process is not None and not isinstance(worker_process, bool):
        raise ConfigError(f"{shown}: runbook_jobs.worker_process must be true or false.")
    found: dict[str, Any] = {"permissions": None}
    if worker_process is not None:
        found["job_process"] = worker_process
    permissions = section.get("permissions")
    if isinstance(permissions, str):
        found["permissions"] = load_permissions(_read_file(base, permissions, shown, "permissions"),
                                                f"The runbook permissions {permissions}")
    elif permissions is not None:
        found["permissions"] = permissions_from_json(permissions, f"{shown}: runbook_jobs.permissions")
    customization = section.get("customization")
    if isinstance(customization, str):
        from rjsync.catalog.build import load_lenient_json

        text = _read_file(base, customization, shown, "customization")
        try:
            customization = load_lenient_json(text)
        except (ValueError, RecursionError):
            raise ConfigError(f"The runbook customization {customization} is not valid JSON.") from None
    if customization is not None:
        if not isinstance(customization, dict):
            raise ConfigError(f"{shown}: runbook_jobs.customization must be the tenant's customization JSON "
                              "(an object with Runbooks, Settings, ...), or a file holding it.")
        found["customization"] = customization
    for key, low, high in (("run_timeout", 1, 86_400), ("poll_interval", 0.05, 60)):
        value = section.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ConfigError(f"{shown}: runbook_jobs.{key} must be a number of seconds from {low:g} to {high:g}.")
        found[key] = float(value)
    return found


def _read_file(base: Path, name: str, shown: str, key: str) -> str:
    path = Path(name) if os.path.isabs(name) else base / name
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{shown}: cannot read runbook_jobs.{key} {path}: {reason}.") from None


def check_roles(permissions: RunbookPermissions | None, principals: list[Principal], shown: str) -> None:
    """Every role a caller holds is one the runbook permissions define."""
    for principal in principals:
        if not principal.roles:
            continue
        if permissions is None or permissions.roles is None:
            raise ConfigError(f"{shown}: {principal.name} holds roles, but runbook_jobs.permissions defines no "
                              "Roles to give them meaning.")
        missing = unknown_roles(permissions, sorted(principal.roles))
        if missing:
            raise ConfigError(f"{shown}: {principal.name} holds the role {missing[0]!r}, which the runbook "
                              "permissions' Roles do not define.")
