"""The account protocol: what the engine needs from an Automation account, and nothing more.

Two real implementations exist: a directory account (``rjsync.accounts.local``) and an Azure
Automation account reached through Resource Manager (``rjsync.accounts.azure``). Both are
exercised by one protocol test-suite (``tests/accounts/test_account_protocol.py``).

Live state is read as immutable values (``Snapshot`` of ``LiveRunbook``/``LiveModule``/
``LiveRuntimeEnvironment``); writes take a spec (``RunbookWrite``, ``ModuleImport``).

Ownership (design invariant 1) is enforced here, at the account boundary: every write or
delete of a runbook whose name lacks the owned prefix raises ``OwnershipError`` before any
I/O, whatever the planner decided.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Callable, Iterable, Mapping, Protocol, runtime_checkable

from rjsync.catalog.naming import OWNED_PREFIX, check_prefix
from rjsync.errors import AccountError, OwnershipError
from rjsync.versions import version_key, version_known  # noqa: F401  (re-exported for the adapters)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_guid(value: object) -> bool:
    """A GUID as Entra ID writes ids (principal, app, role template): 8-4-4-4-12 hex digits."""
    return isinstance(value, str) and bool(_GUID.match(value))


#: The PowerShell 7.4 runtime environment RealmJoin's sync moves its runbooks into.
RJ_RUNTIME_ENVIRONMENT = "RJ-PowerShell-7.4"

#: Default packages of a new PowerShell 7.4 runtime environment: what the portal puts in every
#: one ("Az version 12.3.0 ... already present", MicrosoftDocs/azure-docs
#: articles/automation/quickstart-cli-support-powershell-runbook-runtime-environment.md; the
#: REST API adds none unless asked). Runbooks using Az cmdlets without #Requires need it.
RJ_DEFAULT_PACKAGES: Mapping[str, str] = MappingProxyType({"Az": "12.3.0"})

#: Runtime environments every Automation account has (language, version); they cannot change.
BUILTIN_RUNTIME_ENVIRONMENTS: Mapping[str, tuple[str, str]] = {
    "PowerShell-5.1": ("PowerShell", "5.1"),
    "PowerShell-7.1": ("PowerShell", "7.1"),
    "PowerShell-7.2": ("PowerShell", "7.2"),
    "Python-2.7": ("Python", "2.7"),
    "Python-3.8": ("Python", "3.8"),
    "Python-3.10": ("Python", "3.10"),
}

#: Longest runbook description the service stores; longer synopses are trimmed.
DESCRIPTION_LIMIT = 512

#: Runbook states as the service reports them.
STATE_NEW, STATE_EDIT, STATE_PUBLISHED = "New", "Edit", "Published"

#: Provisioning states that end a module or package import. ``Created`` ends one as well as
#: ``Succeeded`` does (Microsoft's own module-update runbooks treat them alike).
SUCCEEDED, CREATED, FAILED = "Succeeded", "Created", "Failed"

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_BAD_TAG_NAME = re.compile(r"[<>%&\\?/]")
TAG_VALUE_LIMIT = 256


@dataclass(frozen=True)
class LiveRunbook:
    """A runbook as the account has it. ``runtime_environment`` is None for classic runbooks."""

    name: str
    runbook_type: str
    runtime_environment: str | None
    state: str
    description: str
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)
    last_modified: datetime | None = None


@dataclass(frozen=True)
class LiveModule:
    """An account module (classic, Windows PowerShell 5.1) or a runtime-environment package."""

    name: str
    version: str | None
    provisioning_state: str
    error: str | None = None

    @property
    def loaded(self) -> bool:
        """Its import ended well (Succeeded or Created): runbooks and dependants can use it."""
        return self.provisioning_state.lower() in (SUCCEEDED.lower(), CREATED.lower())


@dataclass(frozen=True)
class LiveRuntimeEnvironment:
    """A runtime environment: its packages, and its default packages (name -> version, the
    names as the account writes them: Azure answers them in lower case)."""

    name: str
    language: str
    version: str
    packages: tuple[LiveModule, ...] = ()
    default_packages: Mapping[str, str] = field(default_factory=dict, hash=False)

    def package(self, name: str) -> LiveModule | None:
        return _find(self.packages, name)


def same_default_packages(have: Mapping[str, str], want: Mapping[str, str]) -> bool:
    """Whether two default-package maps are equal, names compared without regard to case."""
    def folded(packages: Mapping[str, str]) -> dict[str, str]:
        return {name.lower(): str(version).strip().lower() for name, version in packages.items()}

    return folded(have) == folded(want)


@dataclass(frozen=True)
class Snapshot:
    """Everything the planner reads from an account, in the account's order (sorted by name)."""

    runbooks: tuple[LiveRunbook, ...]
    modules: tuple[LiveModule, ...]
    runtime_environments: tuple[LiveRuntimeEnvironment, ...]

    def runbook(self, name: str) -> LiveRunbook | None:
        """The runbook called ``name``, compared case-insensitively as Azure does."""
        return _find(self.runbooks, name)

    def module(self, name: str) -> LiveModule | None:
        return _find(self.modules, name)

    def runtime_environment(self, name: str) -> LiveRuntimeEnvironment | None:
        return _find(self.runtime_environments, name)


@dataclass(frozen=True)
class SnapshotScope:
    """What a snapshot reads besides the runbooks.

    ``account_modules``: the account's modules (classic runbooks). ``environments``: the runtime
    environments whose packages to list (missing ones are left out); None lists every runtime
    environment with its packages. A plan reads only what it compares, which keeps a no-op plan
    to a handful of requests.
    """

    account_modules: bool = True
    environments: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RunbookWrite:
    """What to write: the runbook, its content (uploaded verbatim), and its tags.

    ``tags`` are written with the runbook; ``receipt`` tags (design invariant 4: content hash,
    source commit and path) are added only after the content was published.
    ``runtime_environment`` None means a classic runbook of ``runbook_type``.
    ``exists``: the plan saw the runbook in the account (an update), so it is changed in place
    and never created again (job schedules and webhooks hang on it); when it has gone since, it
    is created. False (a create, or a replace after its delete) creates it.
    """

    name: str
    content: bytes
    runbook_type: str = "PowerShell"
    runtime_environment: str | None = None
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)
    receipt: Mapping[str, str] = field(default_factory=dict, hash=False)
    exists: bool = False


@dataclass(frozen=True)
class ModuleImport:
    """A module to import from the PowerShell Gallery, or upgrade to ``version``.

    ``version`` None means the newest stable version in the gallery. ``runtime_environment``
    None imports an account module (classic 5.1 runbooks); a name imports a package into that
    runtime environment. Dependencies are imported first; nothing is ever downgraded.
    ``requirements`` names every module the same apply imports into that place (name -> the
    version the plan asks for): the versions of all of them and of their dependencies are decided
    together, so each module is imported once, at the highest version any of them needs.
    """

    name: str
    version: str | None = None
    runtime_environment: str | None = None
    requirements: Mapping[str, str | None] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Grants:
    """What the identity the account's runbooks run as holds (issue 15).

    ``app_roles``: (resource appId in lower case, app-role value as the resource spells it,
    e.g. ("00000003-0000-0000-c000-000000000000", "User.Read.All")).
    ``directory_roles``: (role template id in lower case, display name) of Entra directory
    roles assigned to it (for built-in roles the definition id is the template id).
    ``principal_id``: the identity's service principal (object) id, None for a directory account
    that does not name one.
    """

    principal_id: str | None
    app_roles: frozenset[tuple[str, str]] = frozenset()
    directory_roles: frozenset[tuple[str, str]] = frozenset()


#: Job statuses as Azure reports them (shared notes, "Jobs"); the ones that end a job. A
#: Suspended job waits for a resume, so it has not ended.
JOB_COMPLETED, JOB_FAILED, JOB_STOPPED = "Completed", "Failed", "Stopped"
JOB_ENDED = frozenset({JOB_COMPLETED, JOB_FAILED, JOB_STOPPED})
#: The streams a job writes, as Azure names them.
STREAM_TYPES = ("Progress", "Output", "Warning", "Error", "Debug", "Verbose")
#: Automation's limits on a job start (MicrosoftDocs/azure-docs
#: includes/azure-automation-service-limits.md: "Maximum runbook job parameter size 512 kilobytes",
#: "Maximum runbook parameters 50").
JOB_PARAMETERS_LIMIT = 50
JOB_PARAMETERS_BYTES = 512 * 1024


@dataclass(frozen=True)
class LiveJob:
    """A runbook job as the account reports it.

    ``job_id``: the job's name in the account (a GUID; what ``job()`` takes). ``status``: Azure's
    status string (New, Activating, Running, Completed, Failed, Stopped, Suspended, ...).
    ``exception``: the terminating error's text of a failed job, else None. Times are aware
    (UTC) or None while the job has not reached that point. ``parameters``: as started.
    """

    job_id: str
    runbook: str
    status: str
    exception: str | None = None
    created: datetime | None = None
    started: datetime | None = None
    ended: datetime | None = None
    parameters: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def finished(self) -> bool:
        """The job has ended (Completed, Failed or Stopped): its streams are complete."""
        return self.status.lower() in {s.lower() for s in JOB_ENDED}


@dataclass(frozen=True)
class JobStream:
    """One record of a job's streams: ``stream_type`` one of ``STREAM_TYPES``; ``summary`` the
    short form a stream list shows (None where the service gives none); ``text`` the record's
    text; ``value`` the record as an object where the account has one (else None)."""

    stream_id: str
    time: datetime | None
    stream_type: str
    summary: str | None
    text: str | None
    value: Mapping | None = field(default=None, hash=False)


@dataclass(frozen=True)
class LiveJobSchedule:
    """A job schedule: ``runbook`` started on ``schedule`` with ``parameters`` (name -> value,
    as stored). ``job_schedule_id`` is the link's own id (empty where the account has none)."""

    schedule: str
    runbook: str
    parameters: Mapping[str, str] = field(default_factory=dict, hash=False)
    job_schedule_id: str = ""


@runtime_checkable
class Account(Protocol):
    """The narrow interface the engine drives. Implementations raise only ``RjsyncError``s."""

    target: str
    owned_prefix: str

    def snapshot(self, scope: SnapshotScope | None = None) -> Snapshot:
        """All runbooks, and the modules and runtime environments ``scope`` asks for (default all)."""

    def read_runbook(self, name: str) -> LiveRunbook | None:
        """Runbook ``name`` (any case) read alone, with its tags and description (Azure: one GET,
        which has them), or None when the account does not hold it. A job start reads this
        instead of a whole snapshot."""

    def read_content(self, name: str) -> bytes | None:
        """The published content of runbook ``name`` verbatim, or None if it has none."""

    def write_runbook(self, spec: RunbookWrite, *,
                      before_publish: Callable[[], None] | None = None) -> LiveRunbook:
        """Create or update, upload the content, publish, then write the receipt tags.
        ``before_publish`` is called once the content is uploaded, right before it is published
        (apply waits there for the imports of the modules a new runbook requires)."""

    def write_properties(self, spec: RunbookWrite) -> LiveRunbook | None:
        """Write the runtime environment, description, tags and receipt of an existing runbook
        whose published content already is ``spec.content`` (compared normalized), in one write,
        without uploading or publishing anything. When its published content differs, or it has
        none, write nothing and return None: the caller then writes the runbook in full."""

    def delete_runbook(self, name: str) -> None:
        """Delete an owned runbook; deleting one that does not exist is not an error."""

    def ensure_runtime_environment(
        self, name: str = RJ_RUNTIME_ENVIRONMENT, *, language: str = "PowerShell", version: str = "7.4",
        default_packages: Mapping[str, str] | None = None,
    ) -> LiveRuntimeEnvironment:
        """Create the runtime environment when it is missing, with ``default_packages`` (None:
        ``RJ_DEFAULT_PACKAGES``); refuse a language/version clash. An existing environment is
        left as it is, its default packages too (the plan reports a difference)."""

    def import_module(self, spec: ModuleImport) -> LiveModule:
        """Import or upgrade a module/package (dependencies first) and wait until it is done."""

    def read_grants(self) -> Grants:
        """The app roles and directory roles held by the identity the runbooks run as (read-only).
        Raises ``GrantsUnreadable`` with the reason when they cannot be read: the plan's
        permissions section then says "not checked" and why."""

    def start_job(self, runbook: str, parameters: Mapping[str, str],
                  job_id: str | None = None) -> LiveJob:
        """Start a job of runbook ``runbook`` with ``parameters`` (name -> value, each a string, sent
        as given: PowerShell converts it to the declared type) and return it as queued (New), at
        once. Only an owned runbook is started (``check_job_start`` before any I/O), and only one
        the account holds and that has a published version (else an ``AccountError`` sentence).
        ``job_id``: the job's name (a GUID); None makes a new one. Starting again with the id of
        an existing job starts nothing and returns that job (a retried start is safe). Starts
        are paced to the service's limit (100 per 30 s per account)."""

    def job(self, job_id: str) -> LiveJob | None:
        """The job ``job_id`` as it is now, or None when the account has no such job."""

    def jobs_since(self, created: datetime) -> list[LiveJob]:
        """The account's jobs created at or after ``created`` (aware), in one list (Azure: one
        request per page of its job list), each with the list's fields only: status, runbook and
        times, no ``exception`` and no ``parameters`` (Azure's list leaves them out). What a
        waiting ``/run`` reads for all the jobs it waits on in an account."""

    def job_streams(self, job_id: str, stream_types: set[str] | None = None) -> list[JobStream]:
        """The job's stream records of ``stream_types`` (None: every type; names compared
        case-insensitively), in time order, each with its text and value. An ``AccountError``
        when the account has no such job."""

    def job_output(self, job_id: str) -> str:
        """The job's Output stream as text (the service's own rendering for Azure). An
        ``AccountError`` when the account has no such job."""

    def job_schedules(self, runbooks: Iterable[str] | None = None) -> tuple[LiveJobSchedule, ...]:
        """The job schedules of the account (runbook, schedule, parameters), sorted by runbook
        and schedule, for the plan's warning about parameters a new version drops or adds;
        ``runbooks`` (any case) keeps only those that start one of them (Azure reads the
        parameters of each with a GET: its list leaves them out)."""

    def finish(self) -> None:
        """An apply is over: store what the account keeps between syncs (the Azure account's
        receipt index). Never raises; a plan never calls it."""

    def close(self) -> None:
        """Release connections and locks."""


# -- checks shared by every implementation (pure, before any I/O) --------------------------------


def is_owned(name: str, prefix: str = OWNED_PREFIX) -> bool:
    return name.lower().startswith(prefix.lower())


def check_owned(name: str, prefix: str, verb: str) -> None:
    """Raise ``OwnershipError`` unless ``name`` carries the owned prefix (case-insensitive), and
    ``PrefixError`` when the prefix itself is not a valid one (an empty prefix owns everything)."""
    check_prefix(prefix)
    if not is_owned(name, prefix):
        raise OwnershipError(
            f"Refusing to {verb} runbook '{name}': rjsync only {verb}s runbooks whose name starts "
            f"with '{prefix}' (case-insensitive); every other runbook belongs to the customer."
        )


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise AccountError(
            f"'{name}' is not a valid runbook name: use letters, digits, '_' and '-', "
            "starting with a letter."
        )


_ENVIRONMENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]*$")


def check_environment_name(name: str) -> None:
    if not _ENVIRONMENT_NAME.match(name):
        raise AccountError(
            f"'{name}' is not a valid runtime environment name: use letters, digits, '.', '_' and '-', "
            "starting with a letter."
        )


def check_write(spec: RunbookWrite, prefix: str) -> None:
    """Every check a runbook write passes before it touches the account."""
    check_owned(spec.name, prefix, "write")
    check_name(spec.name)
    if not isinstance(spec.content, bytes):
        raise TypeError("RunbookWrite.content must be bytes (uploaded verbatim)")
    for tags in (spec.tags, spec.receipt):
        for key, value in tags.items():
            if not key or _BAD_TAG_NAME.search(key):
                raise AccountError(
                    f"Tag name '{key}' on runbook '{spec.name}' is not allowed by Azure: tag names "
                    "cannot be empty or contain < > % & \\ ? /."
                )
            if len(value) > TAG_VALUE_LIMIT:
                raise AccountError(
                    f"Tag '{key}' on runbook '{spec.name}' is {len(value)} characters long; Azure "
                    f"allows at most {TAG_VALUE_LIMIT}."
                )


def check_job_start(runbook: str, parameters: Mapping[str, str], prefix: str,
                    job_id: str | None = None) -> None:
    """Every check a job start passes before it touches the account: an owned runbook of a
    valid name, string values, the service's limits on parameters, a GUID for a job id."""
    check_owned(runbook, prefix, "start")
    check_name(runbook)
    for name, value in parameters.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("job parameters are names and values of type str (as Azure takes them)")
    if len(parameters) > JOB_PARAMETERS_LIMIT:
        raise AccountError(
            f"Runbook '{runbook}' was given {len(parameters)} parameters; Azure Automation takes at most "
            f"{JOB_PARAMETERS_LIMIT} (pass a JSON text in one parameter instead)."
        )
    size = len(json.dumps(dict(parameters), ensure_ascii=False).encode())
    if size > JOB_PARAMETERS_BYTES:
        raise AccountError(
            f"The parameters of runbook '{runbook}' take {size // 1024} KiB; Azure Automation takes at "
            f"most {JOB_PARAMETERS_BYTES // 1024} KiB for one job."
        )
    if job_id is not None:
        check_job_id(job_id)


def check_job_id(job_id: str) -> None:
    """A job id is a GUID (what rjsync names its jobs, and what the job API hands out)."""
    try:
        uuid.UUID(str(job_id))
    except ValueError:
        raise AccountError(f"'{job_id}' is not a job id: a job id is a GUID.") from None


def trim_description(text: str) -> str:
    """The description as stored: whitespace folded, cut to the service limit with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= DESCRIPTION_LIMIT:
        return text
    return text[: DESCRIPTION_LIMIT - 1].rstrip() + "…"


def type_change_error(name: str, old: str, new: str) -> AccountError:
    return AccountError(
        f"Runbook '{name}' is a {old} runbook and cannot become a {new} runbook in place: delete it "
        "and create it again (its job schedules and webhooks are lost)."
    )


def _find(items, name: str):
    key = name.lower()
    for item in items:
        if item.name.lower() == key:
            return item
    return None
