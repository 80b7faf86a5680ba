"""A runbook job's start, checked before anything is created: the one path of the job API
(``rjsync serve``) and of ``rjsync run``.

``check_start(account, settings, name, values, ...)`` goes through, in this order, and raises a
``StartRefused`` sentence (its ``kind`` says which, the service answers the matching status):

1. operator access (``FORBIDDEN``): RealmJoin's runbook permissions decide on the name alone,
   before any I/O, so a caller who may not start a runbook learns nothing about it;
2. the runbook (``NOT_FOUND``): owned (the policy's prefix) and held by the account;
3. its receipt (``NOT_IN_SYNC``): the source path and commit it was synced from, and the
   content's hash, which the account's published content must still have (content published in
   the portal since, or no receipt, is refused: its parameters are not known);
4. the catalog of that commit (built from the manifest's source and cached per source and
   commit; a folder source is read as it is), whose runbook must have the receipt's content;
5. the parameters (``INVALID``, every problem listed): ``rjsync.jobs.parameters`` with the
   tenant's customization, which also applies its defaults.

``start(account, checked)`` then starts the job with the checked values (strings, as Azure
takes them).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rjsync.accounts.base import Account, LiveJob, is_owned
from rjsync.accounts.receipts import Receipt
from rjsync.catalog.model import Catalog, Runbook
from rjsync.catalog.text import normalized_sha256
from rjsync.errors import RjsyncError
from rjsync.jobs.access import RunbookPermissions, may_start
from rjsync.jobs.parameters import check_parameters
from rjsync.settings import SyncSettings
from rjsync.source import is_git_repository, looks_like_git_url, open_source
from rjsync.sync import catalog_of

FORBIDDEN, NOT_FOUND, NOT_IN_SYNC, INVALID = "forbidden", "not found", "not in sync", "invalid"

#: Azure's job statuses (shared notes, "Jobs") as RealmJoin's API shows them: New, Queued,
#: Running, Completed, Failed. A job waiting for a sandbox (Activating) or held back by the
#: service's fair share (Blocked) is Queued; one suspended, stopping, resuming or disconnected
#: has not ended, so it is Running; Stopped (by someone) is Failed: it did not complete.
SIMPLE_STATUS = {
    "new": "New",
    "activating": "Queued", "blocked": "Queued", "queued": "Queued",
    "running": "Running", "resuming": "Running", "suspending": "Running", "suspended": "Running",
    "stopping": "Running", "disconnected": "Running",
    "completed": "Completed",
    "failed": "Failed", "stopped": "Failed", "removing": "Failed",
}
ENDED = ("Completed", "Failed")


def simple_status(job: LiveJob) -> str:
    """The job's status as RealmJoin's API shows it (``SIMPLE_STATUS``; an unknown one: Running
    while the job has not ended, else Failed)."""
    found = SIMPLE_STATUS.get(job.status.lower())
    if found:
        return found
    return "Failed" if job.finished else "Running"


class StartRefused(RjsyncError):
    """A job start refused before anything was created; ``kind`` is FORBIDDEN, NOT_FOUND,
    NOT_IN_SYNC or INVALID, ``problems`` the parameter problems (INVALID)."""

    def __init__(self, message: str, kind: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.kind, self.problems = kind, list(problems or [])


@dataclass(frozen=True)
class Checks:
    """What a start is checked with besides the catalog: the tenant's customization JSON (the
    portal's, as parsed), RealmJoin's runbook permissions (None: everyone may start every
    runbook) with the roles the caller holds, and ``context``: parameters the starter fills
    itself (e.g. ``CallerName``), which a caller cannot set."""

    customization: Any = None
    permissions: RunbookPermissions | None = None
    roles: frozenset[str] = frozenset()
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckedStart:
    """A start that passed every check: the runbook's name as the account spells it, the
    parameters as Azure takes them, and where its catalog entry came from."""

    runbook: str
    parameters: dict[str, str]
    path: str
    commit: str | None


class CatalogCache:
    """Catalogs by (source, commit, prefix, contexts), the newest ``size`` kept. A commit's
    catalog never changes; a folder's is kept too and read again when it no longer holds the
    content asked for. One build per key at a time."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: OrderedDict[tuple, Catalog] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple, threading.Lock] = {}
        self.builds = 0

    def get(self, key: tuple, build: Callable[[], Catalog], *, fresh: bool = False) -> Catalog:
        with self._lock:
            if not fresh and key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                if not fresh and key in self._items:
                    return self._items[key]
            catalog = build()
            with self._lock:
                self.builds += 1
                self._items[key] = catalog
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._building.pop(key, None)
            return catalog


_SHARED_CACHE = CatalogCache()


def check_start(account: Account, settings: SyncSettings, name: str, values: Mapping[str, Any], *,
                checks: Checks = Checks(), cache: CatalogCache | None = None) -> CheckedStart:
    """Every check of a start of runbook ``name`` with ``values`` (the caller's parameters, JSON
    values) in ``account``, synced from ``settings``' source; ``StartRefused`` when one fails."""
    cache = cache or _SHARED_CACHE
    shown = _shown(name)
    decision = may_start(checks.permissions, name, checks.roles)
    if not decision.allowed:
        raise StartRefused(f"You may not start runbook {shown}: {decision.reason}.", FORBIDDEN)
    prefix = settings.policy.prefix
    live = None
    if is_owned(name, prefix):
        live = account.read_runbook(name)
    if live is None:
        raise StartRefused(f"Runbook {shown} is not in the account: only the runbooks rjsync syncs (named "
                           f"{prefix}*) can be started.", NOT_FOUND)
    receipt = Receipt.of(live.tags)
    if receipt.sha256 is None or not receipt.path:
        raise StartRefused(f"Runbook {live.name} has no rjsync receipt, so its parameters are not known: "
                           "sync the account, then start it.", NOT_IN_SYNC)
    content = account.read_content(live.name)
    if content is None or normalized_sha256(content) != receipt.sha256:
        what = "has no published content" if content is None else \
            "was published with content other than what rjsync synced (edited in the portal?)"
        raise StartRefused(f"Runbook {live.name} is not in sync: it {what}; sync the account, then start it.",
                           NOT_IN_SYNC)
    runbook = catalog_runbook(settings, live.name, receipt, cache)
    result = check_parameters(runbook, values, checks.customization, context=checks.context)
    if not result.ok:
        count = len(result.problems)
        raise StartRefused(f"The parameters of {live.name} have {count} problem{'s' if count != 1 else ''}; "
                           "nothing was started.", INVALID, result.problems)
    return CheckedStart(live.name, result.values, runbook.path, receipt.commit)


def catalog_runbook(settings: SyncSettings, name: str, receipt: Receipt, cache: CatalogCache) -> Runbook:
    """The catalog entry of ``name`` with the receipt's content: from a git source at the
    receipt's commit (kept: a commit does not change), else, or when that commit does not hold
    it (a folder synced with changes not committed), from the source as it is now (kept, and
    read again once when it does not hold it)."""
    spec, policy = settings.source, settings.policy
    shape = (policy.prefix.lower(), tuple(policy.contexts))
    local = not looks_like_git_url(spec.location)
    tries: list[tuple[str | None, bool]] = []  # (ref, may change)
    if receipt.commit and (not local or _is_repository(spec.location)):
        tries.append((receipt.commit, False))
    if local and not spec.ref:
        tries.append((None, True))
    elif not tries:
        tries.append((spec.ref, True))
    for ref, changes in tries:
        def build(ref=ref) -> Catalog:
            return catalog_of(open_source(spec.location, ref), policy)

        for fresh in (False, True) if changes else (False,):
            catalog = cache.get((spec.location, ref, *shape), build, fresh=fresh)
            found = next((r for r in catalog.runbooks if r.name.lower() == name.lower()), None)
            if found is not None and found.sha256 == receipt.sha256:
                return found
    where = f"at commit {receipt.commit[:12]}" if receipt.commit else "as it is now"
    raise StartRefused(f"Runbook {name} is not in sync: its source {where} does not hold the content the "
                       f"account has ({receipt.path}); sync the account, then start it.", NOT_IN_SYNC)


def start(account: Account, checked: CheckedStart, job_id: str | None = None) -> LiveJob:
    """Start the job of a checked start (queued, at once)."""
    return account.start_job(checked.runbook, checked.parameters, job_id)


def _is_repository(location: str) -> bool:
    path = Path(location)
    return path.is_dir() and is_git_repository(path)


def _shown(name: str) -> str:
    text = name[:80] + ("…" if len(name) > 80 else "")
    return "".join(c if c.isprintable() else "?" for c in f'"{text}"')
