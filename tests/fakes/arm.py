"""A loopback emulator of Azure Resource Manager for Azure Automation (api-version 2024-10-23).

The real ``azure-mgmt-automation`` client talks HTTPS to it; nothing in the SDK is mocked.
It honours what ``shared/azure-automation-api.md`` records about the service:

- Routes are matched case-insensitively; names are case-insensitive, their first casing kept.
- Bearer tokens: ``tokens`` maps a token to a role: ``contributor`` (everything), ``reader``
  (writes get 403 AuthorizationFailed) or ``none`` (403 on reads too); another or no token is
  401. Unknown resource groups and accounts are 404, as ARM answers them.
- Runbooks: list paged by ``page_size`` (100) with an absolute ``nextLink``; get, PUT
  (200/201), PATCH, DELETE; draft content PUT and publish answer 202 + ``Location`` and the
  operation is polled ``lro_polls`` times (202) before it is done (200); published content is
  ``text/powershell``. States New -> Published -> Edit; a ``runbookType`` change is refused
  (400) as Azure refuses it; descriptions over 512 characters too.
- Modules and runtime-environment packages: a PUT with a gallery content link (the gallery's
  download address or the ``.nupkg`` it redirects to) starts an import and answers at once
  ``Creating`` with ``version: null`` (shared notes, "Modules and the PowerShell Gallery"); the
  version shows once the import ended. It walks through ``provisioning_steps`` intermediate
  states (one per GET; ``import_steps`` names them instead, e.g. ``["Updating"]``) and ends
  ``import_final_state`` (Succeeded; ``Created`` is the service's other final state), or Failed
  with the service's kind of message for an unknown gallery package or a dependency that is not
  loaded (Succeeded or Created) at the version its range needs when the import starts
  (Azure/azure-rest-api-specs#10808: "The required module 'Az.Accounts' with version '1.7.2'
  was not loaded"; an installed version reported as ``Unknown`` counts as loaded (?)).
- The service's import limit, off by default: with ``import_limit = (5, 30.0)`` an account
  starts at most 5 module or package imports (PUT/PATCH of ``/modules/{m}`` or
  ``/runtimeEnvironments/{e}/packages/{p}``) in any sliding 30 s; one more is refused with
  429 TooManyRequests and ``Retry-After`` (whole seconds until the oldest import in the window
  leaves it, at least 1), is not carried out, and is recorded in ``import_refusals``. Every
  import an account started is in its ``import_starts`` (``time.monotonic()`` stamps), limit
  or not; a test seeds someone else's imports by appending to it.
- Resource Manager's throttling, off by default: with ``throttling = ARM_THROTTLING`` every
  request takes a token from its subscription's and principal's (token's) bucket for its kind:
  reads (GET), deletes (DELETE) or writes (every other method; long-running operations' polls
  are reads), 250 tokens refilled at 25 per s for reads and 200 at 10 per s for the others. A
  request that finds its bucket empty is refused with 429 SubscriptionRequestsThrottled and
  ``Retry-After`` (whole seconds until a token is back, at least 1), is not carried out, and is
  recorded in ``throttled``; every answer carries ``x-ms-ratelimit-remaining-subscription-{kind}``.
  Requests whose path matches one of ``resource_request_paths`` (regexes; by default the job
  endpoints ``/jobs/...``, where the shared notes saw it) spend a ``resource-requests`` bucket
  instead (``throttling["resource-requests"]``, else their kind's size and refill) and answer
  with ``x-ms-ratelimit-remaining-subscription-resource-requests`` and no header of their kind.
- Job schedules (``/jobSchedules/{id}``: PUT 201, GET, list, DELETE) and webhooks
  (``/webhooks/{name}``: PUT 200/201, GET, list, DELETE) hang on a runbook's name, with their
  parameters. They stay when the runbook is PATCHed, its draft replaced or published; deleting
  the runbook removes them; a PUT on an existing runbook drops them (the worst case: see
  ``_drop_links``). Schedules themselves are not modelled: any schedule name is taken.
- Runbook jobs (the list ``/jobs`` with its ``$filter``, ``/jobs/{name}``, its ``output``,
  ``streams`` and ``streams/{id}``), their scripted outcomes and the service's job limits: ``fakes.arm_jobs``.
- The account's managed identity: ``identity`` (``FakeAccount.identity``) is answered as the
  REST spec's ``Identity`` of an automation account (azure-rest-api-specs, specification/
  automation/.../stable/2024-10-23/account.json, definitions ``AutomationAccount.identity`` and
  ``Identity``: ``type`` SystemAssigned | UserAssigned | "SystemAssigned, UserAssigned" | None,
  read-only ``principalId`` and ``tenantId``, ``userAssignedIdentities``). Every account gets a
  system-assigned one (the portal's default); ``account.identity = None`` leaves it out, as the
  spec's getAutomationAccount.json example does.
- Faults and the request log come from ``LoopbackServer`` (``self.server``).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import unquote

from fakes import arm_jobs
from fakes.arm_jobs import FakeJob, JobRefusal, JobScript
from fakes.gallery import FakeGallery
from fakes.server import LoopbackServer, Request, Response, TestTLS

API_VERSION = "2024-10-23"
BUILTIN_ENVIRONMENTS = {
    "PowerShell-5.1": ("PowerShell", "5.1"),
    "PowerShell-7.1": ("PowerShell", "7.1"),
    "PowerShell-7.2": ("PowerShell", "7.2"),
    "Python-2.7": ("Python", "2.7"),
    "Python-3.8": ("Python", "3.8"),
    "Python-3.10": ("Python", "3.10"),
}
#: Resource Manager's token buckets per subscription and principal: kind -> (tokens, refill per s).
ARM_THROTTLING = {"reads": (250, 25.0), "writes": (200, 10.0), "deletes": (200, 10.0)}
IMPORT_STEPS = ["Creating", "ContentDownloaded", "ContentValidated", "ModuleDataStored", "ActivitiesStored"]
LOADED = ("Succeeded", "Created")  # final states of an import that loaded the module
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_ACCOUNT = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.Automation/automationAccounts/(?P<acc>[^/]+)"
)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


TENANT_ID = "72f988bf-0000-4000-8000-00000000000a"


def system_identity(account: str) -> str:
    """The principal (object) id of an emulated account's system-assigned identity."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"rjsync-test/automationAccounts/{account.lower()}/identity"))


@dataclass
class FakeRunbook:
    name: str
    runbook_type: str
    runtime_environment: str | None = None
    description: str = ""
    tags: dict = field(default_factory=dict)
    state: str = "New"
    draft: bytes = b""
    published: bytes | None = None
    log_verbose: bool = False
    log_progress: bool = False
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)


@dataclass
class FakeModule:
    name: str
    version: str | None
    content_uri: str
    steps: list[str]  # states still to walk through, the final one last
    error: str | None = None
    state: str = "Creating"
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)


@dataclass
class FakeEnvironment:
    name: str
    language: str
    version: str
    description: str = ""
    default_packages: dict = field(default_factory=dict)
    packages: dict[str, FakeModule] = field(default_factory=dict)
    tags: dict = field(default_factory=dict)


@dataclass
class FakeJobSchedule:
    id: str
    runbook: str  # the runbook's name, as sent
    schedule: str
    parameters: dict = field(default_factory=dict)
    run_on: str | None = None


@dataclass
class FakeWebhook:
    name: str
    runbook: str  # the runbook's name, as sent
    parameters: dict = field(default_factory=dict)
    is_enabled: bool = True
    expiry_time: str | None = None
    run_on: str | None = None
    created: str = field(default_factory=_now)


@dataclass
class FakeAccount:
    subscription: str
    resource_group: str
    name: str
    location: str = "westeurope"
    runbooks: dict[str, FakeRunbook] = field(default_factory=dict)
    modules: dict[str, FakeModule] = field(default_factory=dict)
    environments: dict[str, FakeEnvironment] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)  # lower name -> name, value, ...
    #: time.monotonic() of every module/package import the account started (refusals not included)
    import_starts: list[float] = field(default_factory=list)
    job_schedules: dict[str, FakeJobSchedule] = field(default_factory=dict)  # by id, lower-case
    webhooks: dict[str, FakeWebhook] = field(default_factory=dict)  # by name, lower-case
    jobs: dict[str, FakeJob] = field(default_factory=dict)  # by name, lower-case
    #: time.monotonic() of every job the account started (refusals not included)
    job_starts: list[float] = field(default_factory=list)
    #: The account's ``identity`` as GET answers it; None: the account has none.
    identity: dict | None = None

    def __post_init__(self):
        if self.identity is None:
            self.identity = {"type": "SystemAssigned", "principalId": system_identity(self.name),
                             "tenantId": TENANT_ID}

    @property
    def id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.Automation/automationAccounts/{self.name}")

    def runbook(self, name: str) -> FakeRunbook | None:
        return self.runbooks.get(name.lower())

    def add_runbook(self, name: str, content: bytes = b"", *, runbook_type: str = "PowerShell",
                    published: bool = True, **props) -> FakeRunbook:
        """Seed a runbook directly (e.g. a customer's), as if created earlier."""
        rb = FakeRunbook(name, runbook_type, draft=content, published=content if published else None,
                         state="Published" if published else "New", **props)
        self.runbooks[name.lower()] = rb
        return rb

    def add_job_schedule(self, id: str, runbook: str, schedule: str, parameters: dict | None = None) -> FakeJobSchedule:
        """Seed a job schedule linking ``runbook`` (by name) to ``schedule`` with ``parameters``."""
        job_schedule = FakeJobSchedule(id, runbook, schedule, dict(parameters or {}))
        self.job_schedules[id.lower()] = job_schedule
        return job_schedule

    def add_webhook(self, name: str, runbook: str, parameters: dict | None = None) -> FakeWebhook:
        """Seed a webhook that starts ``runbook`` (by name) with ``parameters``."""
        webhook = FakeWebhook(name, runbook, dict(parameters or {}))
        self.webhooks[name.lower()] = webhook
        return webhook

    def links(self, runbook: str) -> tuple[list[FakeJobSchedule], list[FakeWebhook]]:
        """The job schedules and webhooks that hang on ``runbook`` (names compared case-insensitively)."""
        key = runbook.lower()
        return ([j for j in self.job_schedules.values() if j.runbook.lower() == key],
                [w for w in self.webhooks.values() if w.runbook.lower() == key])

    def add_job(self, runbook: str, script: JobScript | None = None, job_id: str | None = None) -> FakeJob:
        """Seed a job of ``runbook`` (someone else's: no request, no limit) with ``script``'s outcome."""
        return arm_jobs.add_job(self, runbook, script, job_id)

    def add_module(self, name: str, version: str, state: str = "Succeeded") -> FakeModule:
        module = FakeModule(name, version, "", [], state=state)
        self.modules[name.lower()] = module
        return module


@dataclass
class ImportRefusal:
    """An import the emulator's import limit refused (429)."""

    account: str
    method: str
    path: str  # below the account: "/modules/{m}" or "/runtimeEnvironments/{e}/packages/{p}"
    time: float  # time.monotonic() when it was refused
    retry_after: int  # seconds, as sent in Retry-After


@dataclass
class TokenBucket:
    capacity: int
    refill: float  # tokens per second
    tokens: float
    stamp: float  # time.monotonic() of the last refill

    def take(self, now: float) -> float:
        """Take a token: 0.0 when there was one, else the seconds until there is (none taken)."""
        self.tokens = min(float(self.capacity), self.tokens + (now - self.stamp) * self.refill)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.refill


@dataclass
class Throttled:
    """A request Resource Manager's throttling refused (429)."""

    kind: str  # reads | writes | deletes
    method: str
    path: str
    time: float  # time.monotonic() when it was refused
    retry_after: int  # seconds, as sent in Retry-After


class ArmEmulator:
    def __init__(self, tls: TestTLS, gallery: FakeGallery | None = None):
        self.gallery = gallery
        self.lock = threading.RLock()
        self.server = LoopbackServer(tls, self.handle)
        self.endpoint = self.server.url + "/"
        self.reset()

    def reset(self) -> None:
        """Forget every account, fault and logged request; restore the default behaviour."""
        with self.lock:
            self.accounts: dict[tuple[str, str, str], FakeAccount] = {}
            self.tokens: dict[str, str] = {"test-token": "contributor"}
            self.page_size = 100
            #: Runbook list items as Azure answers them: no tags, description, etag or parameters
            #: (2024-10-23 example listRunbooksByAutomationAccount.json; Azure/azure-powershell#752,
            #: #17086). True answers whole objects, the old shape, for a test that needs it.
            self.full_list_items = False
            #: Name the system environment a classic runbook is linked to (PowerShell-5.1 for type
            #: PowerShell) where it has none: "a GET may name one of them for a runbook of classic
            #: type" (shared notes, "Runtime environments"; unverified, so opt-in).
            self.name_classic_environment = False
            self.lro_polls = 1
            self.lro_retry_after: str | None = None  # e.g. "1"; sent on 202s
            self.lro_retry_after_ms: str | None = None
            self.provisioning_steps = 3
            self.import_steps: list[str] | None = None  # intermediate import states; None: provisioning_steps
            self.import_final_state = "Succeeded"  # or "Created" (shared notes: both end an import)
            #: module names (lower) whose version reads "Unknown" once imported (shared notes: it occurs)
            self.unknown_versions: set[str] = set()
            self.import_failures: dict[str, str] = {}  # module name (lower) -> the service's error text
            #: (imports, seconds) per account, e.g. (5, 30.0) as the service; None = no limit
            self.import_limit: tuple[int, float] | None = None
            self.import_refusals: list[ImportRefusal] = []
            #: kind -> (tokens, refill per second), e.g. ARM_THROTTLING; None = no throttling
            self.throttling: dict[str, tuple[int, float]] | None = None
            self.throttled: list[Throttled] = []
            #: paths (regexes) answered with the resource-requests header instead of their kind's
            self.resource_request_paths: list[str] = [r"/jobs(/|$)"]
            #: runbook name (lower) -> the outcome of its next jobs (``script_job``); default: Completed
            self.job_scripts: dict[str, JobScript] = {}
            #: the service's job limits (fakes.arm_jobs): (starts, seconds) and jobs not ended; None = off
            self.job_start_limit: tuple[int, float] | None = (100, 30.0)
            self.running_job_limit: int | None = 200
            self.job_refusals: list[JobRefusal] = []
            self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
            self._operations: dict[str, int] = {}
            self._ids = itertools.count(1)
        self.server.clear_faults()
        self.server.clear_log()
        self.server.seed(0)
        self.server.errors.clear()

    def close(self) -> None:
        self.server.close()

    def script_job(self, runbook: str, script: JobScript | None = None, **outcome) -> JobScript:
        """The outcome of ``runbook``'s next jobs: ``script``, or a ``JobScript(**outcome)``."""
        script = script or JobScript(**outcome)
        with self.lock:
            self.job_scripts[runbook.lower()] = script
        return script

    def add_account(self, subscription: str, resource_group: str, name: str, location: str = "westeurope") -> FakeAccount:
        account = FakeAccount(subscription, resource_group, name, location)
        for env_name, (language, version) in BUILTIN_ENVIRONMENTS.items():
            account.environments[env_name.lower()] = FakeEnvironment(env_name, language, version)
        with self.lock:
            self.accounts[(subscription.lower(), resource_group.lower(), name.lower())] = account
        return account

    # -- dispatch -------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        with self.lock:
            return self._handle(request)

    def _handle(self, request: Request) -> Response:
        role = self._role(request)
        if isinstance(role, Response):
            return role
        if self.throttling is None:
            return self._serve(request, role)
        kind = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(request.method, "writes")
        capacity, refill = self.throttling[kind]
        if any(re.search(p, request.path, re.IGNORECASE) for p in self.resource_request_paths):
            # Some endpoints answer x-ms-ratelimit-remaining-subscription-resource-requests and no
            # header of the request's kind (shared notes, Throttling: seen on Automation job requests).
            kind = "resource-requests"
            capacity, refill = self.throttling.get(kind, (capacity, refill))
        subscription = request.path.split("/")[2].lower() if request.path.count("/") >= 2 else ""
        principal = request.headers.get("authorization", "")[7:].strip()
        now = time.monotonic()
        bucket = self._buckets.setdefault((subscription, principal, kind),
                                          TokenBucket(capacity, refill, float(capacity), now))
        wait = bucket.take(now)
        if wait:
            retry_after = max(1, math.ceil(wait))
            self.throttled.append(Throttled(kind, request.method, request.path, now, retry_after))
            response = Response.error(
                429, "SubscriptionRequestsThrottled",
                f"Number of '{kind[:-1]}' requests for subscription '{subscription}' actor "
                f"'00000000-0000-0000-0000-00000000000{len(role)}' "
                f"exceeded. Please try again after '{retry_after}' seconds after additional tokens are "
                "available. Refer to https://aka.ms/arm-throttling", {"Retry-After": str(retry_after)})
        else:
            response = self._serve(request, role)
        response.headers[f"x-ms-ratelimit-remaining-subscription-{kind}"] = str(int(bucket.tokens))
        return response

    def _serve(self, request: Request, role: str) -> Response:
        m = re.match(_ACCOUNT, request.path, re.IGNORECASE)
        if not m:
            return Response.error(404, "InvalidResourceType", f"The path '{request.path}' is not served here.")
        if request.query.get("api-version") != API_VERSION:
            return Response.error(400, "InvalidApiVersionParameter",
                                  f"The api-version '{request.query.get('api-version')}' is invalid.")
        rest = request.path[m.end():]
        write = request.method != "GET"
        if role == "none" or (role == "reader" and write):
            action = _action(rest, request.method)
            return Response.error(
                403, "AuthorizationFailed",
                f"The client '{role}-client' with object id '00000000-0000-0000-0000-00000000000{len(role)}' "
                f"does not have authorization to perform action '{action}' over scope '{request.path}' or "
                "the scope is invalid. If access was recently granted, please refresh your credentials.",
            )
        sub, rg, acc = (unquote(m.group(g)) for g in ("sub", "rg", "acc"))
        account = self.accounts.get((sub.lower(), rg.lower(), acc.lower()))
        if account is None:
            if not any(k[:2] == (sub.lower(), rg.lower()) for k in self.accounts):
                return Response.error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
            return Response.error(
                404, "ResourceNotFound",
                f"The Resource 'Microsoft.Automation/automationAccounts/{acc}' under resource group '{rg}' "
                "was not found.",
            )
        for pattern, handler in _ROUTES:
            route = re.fullmatch(pattern, rest, re.IGNORECASE)
            if route:
                args = {k: unquote(v) for k, v in route.groupdict().items()}
                return handler(self, request, account, **args)
        return Response.error(404, "NotFound", f"No route for {request.method} {rest}.")

    def _role(self, request: Request):
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return Response.error(401, "AuthenticationFailed",
                                  "Authentication failed. The 'Authorization' header is missing.")
        role = self.tokens.get(header[7:].strip())
        if role is None:
            return Response.error(401, "InvalidAuthenticationToken",
                                  "The access token is invalid.",
                                  {"WWW-Authenticate": 'Bearer authorization_uri="https://login.example/", '
                                                       'error="invalid_token", error_description="The access token is invalid."'})
        return role

    # -- account ----------------------------------------------------------------------------------

    def account_get(self, request, account):
        if request.method != "GET":
            return _not_allowed(request)
        body = {
            "id": account.id, "name": account.name, "type": "Microsoft.Automation/AutomationAccounts",
            "location": account.location, "tags": {},
            "properties": {"state": "Ok", "sku": {"name": "Basic"}, "creationTime": _now(), "lastModifiedTime": _now()},
        }
        if account.identity is not None:
            body["identity"] = account.identity
        return Response.json(200, body)

    # -- runbooks ---------------------------------------------------------------------------------

    def runbooks(self, request, account):
        if request.method != "GET":
            return _not_allowed(request)
        items = sorted(account.runbooks.values(), key=lambda r: r.name.lower())
        if self.full_list_items:
            return self._page(request, [self._runbook_json(account, rb) for rb in items])
        return self._page(request, [self._runbook_list_item(account, rb) for rb in items])

    def runbook(self, request, account, name):
        rb = account.runbook(name)
        if request.method == "GET":
            return self._runbook_json_response(account, rb, 200)
        if request.method == "DELETE":
            if rb is None:
                return _runbook_not_found()
            del account.runbooks[name.lower()]
            # a deleted runbook takes its job schedules and webhooks with it (the shared notes:
            # "delete + create loses its job schedules and webhooks")
            self._drop_links(account, rb.name)
            return Response(200)
        if request.method == "PUT":
            return self._runbook_put(request, account, name, rb)
        if request.method == "PATCH":
            if rb is None:
                return _runbook_not_found()
            body = request.json()
            props = body.get("properties") or {}
            if "tags" in body:
                rb.tags = dict(body["tags"] or {})
            if "description" in props:
                if len(props["description"] or "") > 512:
                    return _too_long_description()
                rb.description = props["description"] or ""
            if "runtimeEnvironment" in props:
                problem = self._check_environment(account, props["runtimeEnvironment"])
                if problem:
                    return problem
                rb.runtime_environment = props["runtimeEnvironment"]
            rb.log_verbose = props.get("logVerbose", rb.log_verbose)
            rb.log_progress = props.get("logProgress", rb.log_progress)
            rb.modified = _now()
            return self._runbook_json_response(account, rb, 200)
        return _not_allowed(request)

    def _runbook_put(self, request, account, name, rb):
        if not _NAME.match(name):
            return Response.error(400, "BadRequest", f"The runbook name '{name}' is invalid.")
        body = request.json()
        props = body.get("properties") or {}
        runbook_type = props.get("runbookType")
        if not runbook_type:
            return Response.error(400, "BadRequest", "The runbookType property is required.")
        if not body.get("location"):
            return Response.error(400, "LocationRequired", "The location property is required for this definition.")
        if len(props.get("description") or "") > 512:
            return _too_long_description()
        env = props.get("runtimeEnvironment")
        if env:
            problem = self._check_environment(account, env)
            if problem:
                return problem
        if rb is not None and rb.runbook_type.lower() != runbook_type.lower():
            return Response.error(400, "BadRequest",
                                  f"The runbook type cannot be changed from {rb.runbook_type} to {runbook_type}.")
        created = rb is None
        if created:
            rb = FakeRunbook(name, runbook_type)
            account.runbooks[name.lower()] = rb
        else:
            # The worst case of a re-PUT: Terraform users report updates that re-PUT a runbook
            # losing its job schedules or their parameters (hashicorp/terraform-provider-azurerm
            # #8634, #7130, #17970). The cause is unverified; the emulator drops them all, so a
            # client that re-creates an existing runbook is caught. A PATCH keeps them.
            self._drop_links(account, rb.name)
        rb.runtime_environment = env or None
        rb.description = props.get("description") or ""
        rb.tags = dict(body.get("tags") or {})
        rb.log_verbose = bool(props.get("logVerbose", False))
        rb.log_progress = bool(props.get("logProgress", False))
        rb.modified = _now()
        return self._runbook_json_response(account, rb, 201 if created else 200)

    def runbook_content(self, request, account, name):
        rb = account.runbook(name)
        if request.method != "GET":
            return _not_allowed(request)
        if rb is None:
            return _runbook_not_found()
        if rb.published is None:
            return Response.error(404, "NotFound", "The runbook has no published content.")
        return Response(200, rb.published, {"Content-Type": "text/powershell"})

    def runbook_publish(self, request, account, name):
        if request.method != "POST":
            return _not_allowed(request)
        rb = account.runbook(name)
        if rb is None:
            return _runbook_not_found()
        rb.published = rb.draft
        rb.state = "Published"
        rb.modified = _now()
        return self._accepted(account, f"runbooks/{rb.name}")

    def runbook_draft(self, request, account, name):
        rb = account.runbook(name)
        if request.method != "GET":
            return _not_allowed(request)
        if rb is None:
            return _runbook_not_found()
        return Response.json(200, {"inEdit": rb.state == "Edit", "creationTime": rb.created,
                                   "lastModifiedTime": rb.modified, "parameters": {}, "outputTypes": []})

    def runbook_draft_content(self, request, account, name):
        rb = account.runbook(name)
        if rb is None:
            return _runbook_not_found()
        if request.method == "GET":
            return Response(200, rb.draft, {"Content-Type": "text/powershell"})
        if request.method == "PUT":
            rb.draft = request.body
            if rb.state == "Published":
                rb.state = "Edit"
            rb.modified = _now()
            return self._accepted(account, f"runbooks/{rb.name}")
        return _not_allowed(request)

    def runbook_undo_edit(self, request, account, name):
        rb = account.runbook(name)
        if request.method != "POST":
            return _not_allowed(request)
        if rb is None:
            return _runbook_not_found()
        if rb.published is not None:
            rb.draft, rb.state = rb.published, "Published"
        return Response.json(200, {})

    def operation(self, request, account, resource, op):
        if request.method != "GET":
            return _not_allowed(request)
        remaining = self._operations.get(op)
        if remaining is None:
            return Response.error(404, "NotFound", f"Operation '{op}' not found.")
        if remaining > 0:
            self._operations[op] = remaining - 1
            return Response(202, b"", self._lro_headers(account, resource, op))
        # done: 200 with an empty body, as Azure answers a finished operation's Location (the
        # poller ignores the body; recorded responses of azure-cli's automation tests)
        return Response(200, b"", {})

    # -- variables ------------------------------------------------------------------------------

    def variables(self, request, account):
        if request.method != "GET":
            return _not_allowed(request)
        items = sorted(account.variables.values(), key=lambda v: v["name"].lower())
        return self._page(request, [self._variable_json(account, v) for v in items])

    def variable(self, request, account, name):
        current = account.variables.get(name.lower())
        if request.method == "GET":
            if current is None:
                return Response.error(404, "NotFound", f"Variable '{name}' not found.")
            return Response.json(200, self._variable_json(account, current))
        if request.method == "DELETE":
            if current is None:
                return Response(204, b"", {})
            del account.variables[name.lower()]
            return Response(200, b"", {})
        if request.method in ("PUT", "PATCH"):
            body = request.json() or {}
            props = body.get("properties") or {}
            value = props.get("value", (current or {}).get("value"))
            if value is not None and not isinstance(value, str):
                return Response.error(400, "BadRequest", "The variable value must be a JSON-encoded string.")
            if value is not None:
                try:
                    json.loads(value)  # the service stores a value as JSON text
                except ValueError:
                    return Response.error(400, "BadRequest", "Invalid JSON value for the variable.")
            variable = {"name": current["name"] if current else name, "value": value,
                        "description": props.get("description", (current or {}).get("description", "")),
                        "isEncrypted": bool(props.get("isEncrypted", False)), "modified": _now()}
            account.variables[name.lower()] = variable
            return Response.json(200 if current else 201, self._variable_json(account, variable))
        return _not_allowed(request)

    def _variable_json(self, account, variable: dict) -> dict:
        return {"id": f"{account.id}/variables/{variable['name']}", "name": variable["name"],
                "properties": {"value": None if variable["isEncrypted"] else variable["value"],
                               "isEncrypted": variable["isEncrypted"], "description": variable["description"],
                               "creationTime": variable["modified"], "lastModifiedTime": variable["modified"]}}

    # -- job schedules and webhooks: they hang on a runbook's name ------------------------------

    def _drop_links(self, account, runbook: str) -> None:
        job_schedules, webhooks = account.links(runbook)
        for job_schedule in job_schedules:
            del account.job_schedules[job_schedule.id.lower()]
        for webhook in webhooks:
            del account.webhooks[webhook.name.lower()]

    def job_schedules(self, request, account):
        if request.method != "GET":
            return _not_allowed(request)
        items = sorted(account.job_schedules.values(), key=lambda j: j.id.lower())
        # The list leaves the parameters out ("parameters": null); only a GET of one job schedule
        # has them (azure-rest-api-specs, automation 2024-10-23 examples
        # listAllJobSchedulesByAutomationAccount.json and getJobSchedule.json).
        return self._page(request, [self._job_schedule_json(account, j, listed=True) for j in items])

    def job_schedule(self, request, account, id):
        current = account.job_schedules.get(id.lower())
        if request.method == "GET":
            if current is None:
                return Response.error(404, "NotFound", f"The job schedule '{id}' was not found.")
            return Response.json(200, self._job_schedule_json(account, current))
        if request.method == "DELETE":
            if current is None:
                return Response.error(404, "NotFound", f"The job schedule '{id}' was not found.")
            del account.job_schedules[id.lower()]
            return Response(200)
        if request.method == "PUT":  # the SDK takes 201 only: a job schedule is created, never updated
            props = request.json().get("properties") or {}
            runbook = (props.get("runbook") or {}).get("name")
            schedule = (props.get("schedule") or {}).get("name")
            if not runbook or not schedule:
                return Response.error(400, "BadRequest", "properties.runbook.name and properties.schedule.name are required.")
            if account.runbook(runbook) is None:
                return _runbook_not_found()
            current = FakeJobSchedule(id, runbook, schedule, dict(props.get("parameters") or {}), props.get("runOn"))
            account.job_schedules[id.lower()] = current
            return Response.json(201, self._job_schedule_json(account, current))
        return _not_allowed(request)

    def webhooks(self, request, account):
        if request.method != "GET":
            return _not_allowed(request)
        items = sorted(account.webhooks.values(), key=lambda w: w.name.lower())
        return self._page(request, [self._webhook_json(account, w) for w in items])

    def webhook(self, request, account, name):
        current = account.webhooks.get(name.lower())
        if request.method == "GET":
            if current is None:
                return Response.error(404, "NotFound", f"The webhook '{name}' was not found.")
            return Response.json(200, self._webhook_json(account, current))
        if request.method == "DELETE":
            if current is None:
                return Response.error(404, "NotFound", f"The webhook '{name}' was not found.")
            del account.webhooks[name.lower()]
            return Response(200)
        if request.method == "PUT":
            props = request.json().get("properties") or {}
            runbook = (props.get("runbook") or {}).get("name")
            if not runbook:
                return Response.error(400, "BadRequest", "properties.runbook.name is required.")
            if account.runbook(runbook) is None:
                return _runbook_not_found()
            created = current is None
            current = FakeWebhook(current.name if current else name, runbook, dict(props.get("parameters") or {}),
                                  bool(props.get("isEnabled", True)), props.get("expiryTime"), props.get("runOn"))
            account.webhooks[name.lower()] = current
            return Response.json(201 if created else 200, self._webhook_json(account, current))
        return _not_allowed(request)

    # -- modules and packages -------------------------------------------------------------------

    def modules(self, request, account):
        if request.method != "GET":
            return _not_allowed(request)
        items = sorted(account.modules.values(), key=lambda m: m.name.lower())
        return self._page(request, [self._module_json(account, m, "modules") for m in items])

    def module(self, request, account, name):
        return self._module_item(request, account, account.modules, name, None, "modules")

    def environments(self, request, account):
        if request.method != "GET":
            return _not_allowed(request)
        items = sorted(account.environments.values(), key=lambda e: e.name.lower())
        return self._page(request, [self._environment_json(account, e) for e in items])

    def environment(self, request, account, env):
        current = account.environments.get(env.lower())
        if request.method == "GET":
            if current is None:
                return Response.error(404, "NotFound", f"Runtime environment '{env}' not found.")
            return Response.json(200, self._environment_json(account, current))
        if request.method == "DELETE":
            if current is None:
                return Response.error(404, "NotFound", f"Runtime environment '{env}' not found.")
            del account.environments[env.lower()]
            return Response(200)
        if request.method in ("PUT", "PATCH"):
            body = request.json()
            props = body.get("properties") or {}
            runtime = props.get("runtime") or {}
            if current is None:
                if request.method == "PATCH":
                    return Response.error(404, "NotFound", f"Runtime environment '{env}' not found.")
                if not runtime.get("language") or not runtime.get("version"):
                    return Response.error(400, "BadRequest", "runtime.language and runtime.version are required.")
                current = FakeEnvironment(env, runtime["language"], runtime["version"],
                                          props.get("description") or "", dict(props.get("defaultPackages") or {}))
                account.environments[env.lower()] = current
                return Response.json(201 if request.method == "PUT" else 200, self._environment_json(account, current))
            if runtime and (runtime.get("language", current.language).lower(), runtime.get("version", current.version)) != (
                    current.language.lower(), current.version):
                return Response.error(400, "BadRequest", "The runtime language and version of an environment cannot be changed.")
            if "description" in props:
                current.description = props["description"] or ""
            return Response.json(200, self._environment_json(account, current))
        return _not_allowed(request)

    def packages(self, request, account, env):
        current = account.environments.get(env.lower())
        if current is None:
            return Response.error(404, "NotFound", f"Runtime environment '{env}' not found.")
        if request.method != "GET":
            return _not_allowed(request)
        items = sorted(current.packages.values(), key=lambda m: m.name.lower())
        return self._page(request, [self._module_json(account, p, f"runtimeEnvironments/{current.name}/packages") for p in items])

    def package(self, request, account, env, name):
        current = account.environments.get(env.lower())
        if current is None:
            return Response.error(404, "NotFound", f"Runtime environment '{env}' not found.")
        return self._module_item(request, account, current.packages, name, current,
                                 f"runtimeEnvironments/{current.name}/packages")

    def _module_item(self, request, account, table, name, env, kind):
        module = table.get(name.lower())
        if request.method == "GET":
            if module is None:
                return Response.error(404, "NotFound", f"The module '{name}' was not found.")
            if module.steps:
                module.state = module.steps.pop(0)
                module.modified = _now()
            return Response.json(200, self._module_json(account, module, kind))
        if request.method == "DELETE":
            if module is None:
                return Response.error(404, "NotFound", f"The module '{name}' was not found.")
            del table[name.lower()]
            return Response(200)
        if request.method in ("PUT", "PATCH"):
            link = ((request.json().get("properties") or {}).get("contentLink") or {})
            uri = link.get("uri")
            if not uri:
                return Response.error(400, "BadRequest", "properties.contentLink.uri is required.")
            refused = self._import_refused(request, account)
            if refused:
                return refused
            error = None
            pkg = self.gallery.find_by_content_link(uri) if self.gallery else None
            if pkg is None:
                error = (f"Orchestrator.Shared.AsyncModuleImport.ModuleImportException: The module content could "
                         f"not be downloaded from '{uri}': (404) Not Found.")
            elif pkg.id.lower() != name.lower():
                error = (f"Orchestrator.Shared.AsyncModuleImport.ModuleImportException: The module name '{name}' "
                         f"does not match the package '{pkg.id}'.")
            else:
                installed = account.modules if env is None else env.packages
                for dep, minimum in pkg.parsed_dependencies():
                    have = installed.get(dep.lower())
                    if have is None or have.steps or have.state not in LOADED or (
                            (have.version or "").lower() != "unknown" and _vkey(have.version) < _vkey(minimum)):
                        error = (f"Orchestrator.Shared.AsyncModuleImport.ModuleImportException: Cannot import the "
                                 f"module of name {pkg.id}, as the module structure was invalid. The required "
                                 f"module '{dep}' with version '{minimum}' was not loaded.")
                        break
            if name.lower() in self.import_failures:
                error = self.import_failures[name.lower()]
            created = module is None
            between = IMPORT_STEPS[1: 1 + self.provisioning_steps] if self.import_steps is None else self.import_steps
            steps = list(between) + ["Failed" if error else self.import_final_state]
            module = FakeModule(module.name if module else name, pkg.version if pkg else link.get("version"),
                                uri, steps, error)
            table[name.lower()] = module
            account.import_starts.append(time.monotonic())
            return Response.json(201 if created else 200, self._module_json(account, module, kind))
        return _not_allowed(request)

    def _import_refused(self, request, account) -> Response | None:
        """A 429 if one more import would exceed ``import_limit`` in its sliding window."""
        if self.import_limit is None:
            return None
        limit, window = self.import_limit
        now = time.monotonic()
        in_window = sorted(t for t in account.import_starts if t > now - window)
        if len(in_window) < limit:
            return None
        # the window frees up when the oldest import that must leave it for one more to fit does
        retry_after = max(1, math.ceil(in_window[len(in_window) - limit] + window - now))
        below = unquote(request.path[re.match(_ACCOUNT, request.path, re.IGNORECASE).end():])
        self.import_refusals.append(ImportRefusal(account.name, request.method, below, now, retry_after))
        return Response.error(
            429, "TooManyRequests",
            f"The automation account '{account.name}' has started {len(in_window)} module imports in the "
            f"last {window:g} seconds; at most {limit} are allowed. Retry after {retry_after} seconds.",
            {"Retry-After": str(retry_after)},
        )

    # -- JSON shapes ----------------------------------------------------------------------------

    def _runbook_json(self, account, rb: FakeRunbook) -> dict:
        return {
            "id": f"{account.id}/runbooks/{rb.name}",
            "name": rb.name,
            "type": "Microsoft.Automation/AutomationAccounts/Runbooks",
            "location": account.location,
            "tags": rb.tags,
            "etag": f'"{rb.modified}"',
            "properties": {
                "runbookType": rb.runbook_type,
                "runtimeEnvironment": rb.runtime_environment or (
                    "PowerShell-5.1" if self.name_classic_environment and rb.runbook_type == "PowerShell" else None),
                "state": rb.state,
                "provisioningState": "Succeeded",
                "description": rb.description,
                "logVerbose": rb.log_verbose,
                "logProgress": rb.log_progress,
                "logActivityTrace": 0,
                "jobCount": 0,
                "parameters": {},
                "outputTypes": [],
                "creationTime": rb.created,
                "lastModifiedTime": rb.modified,
                "lastModifiedBy": "",
            },
        }

    def _runbook_list_item(self, account, rb: FakeRunbook) -> dict:
        """A runbook as a list shows it: what the shared notes record, nothing more."""
        whole = self._runbook_json(account, rb)
        kept = ("creationTime", "lastModifiedTime", "logActivityTrace", "logProgress", "logVerbose",
                "runbookType", "runtimeEnvironment", "state")
        return {"id": whole["id"], "name": whole["name"], "type": whole["type"], "location": whole["location"],
                "properties": {k: whole["properties"][k] for k in kept}}

    def _runbook_json_response(self, account, rb, status):
        if rb is None:
            return _runbook_not_found()
        return Response.json(status, self._runbook_json(account, rb))

    def _job_schedule_json(self, account, job_schedule: FakeJobSchedule, *, listed: bool = False) -> dict:
        return {
            "id": f"{account.id}/jobSchedules/{job_schedule.id}", "name": job_schedule.id,
            "type": "Microsoft.Automation/AutomationAccounts/JobSchedules",
            "properties": {"jobScheduleId": job_schedule.id, "schedule": {"name": job_schedule.schedule},
                           "runbook": {"name": job_schedule.runbook}, "runOn": job_schedule.run_on,
                           "parameters": None if listed else job_schedule.parameters},
        }

    def _webhook_json(self, account, webhook: FakeWebhook) -> dict:
        return {
            "id": f"{account.id}/webhooks/{webhook.name}", "name": webhook.name,
            "type": "Microsoft.Automation/AutomationAccounts/Webhooks",
            "properties": {"isEnabled": webhook.is_enabled, "uri": None, "expiryTime": webhook.expiry_time,
                           "lastInvokedTime": None, "parameters": webhook.parameters,
                           "runbook": {"name": webhook.runbook}, "runOn": webhook.run_on,
                           "creationTime": webhook.created, "lastModifiedTime": webhook.created,
                           "lastModifiedBy": "", "description": ""},
        }

    def _module_json(self, account, module: FakeModule, kind: str) -> dict:
        props = {
            "provisioningState": module.state,
            # null until the import ended (shared notes: a PUT answers version null)
            "version": None if module.steps else "Unknown" if module.name.lower() in self.unknown_versions else module.version,
            "contentLink": {"uri": module.content_uri} if module.content_uri else None,
            "sizeInBytes": 1024,
            "isGlobal": False,
            "creationTime": module.created,
            "lastModifiedTime": module.modified,
            "error": {"code": "", "message": module.error} if module.error and module.state == "Failed" else None,
        }
        return {"id": f"{account.id}/{kind}/{module.name}", "name": module.name,
                "type": f"Microsoft.Automation/AutomationAccounts/{kind.split('/')[-1]}",
                "location": account.location, "tags": {}, "properties": props}

    def _environment_json(self, account, env: FakeEnvironment) -> dict:
        # Responses write the keys of defaultPackages in lower case ({"az": "12.3.0"} for a PUT
        # of {"Az": "12.3.0"}): shared/azure-automation-api.md, "Runtime environments".
        default_packages = {name.lower(): version for name, version in env.default_packages.items()}
        return {
            "id": f"{account.id}/runtimeEnvironments/{env.name}", "name": env.name,
            "type": "Microsoft.Automation/automationAccounts/runtimeEnvironments",
            "location": account.location, "tags": env.tags,
            "properties": {"runtime": {"language": env.language, "version": env.version},
                           "defaultPackages": default_packages, "description": env.description},
        }

    def _page(self, request: Request, items: list) -> Response:
        skip = int(request.query.get("$skip", "0") or 0)
        page = items[skip: skip + self.page_size]
        body = {"value": page}
        if skip + self.page_size < len(items):
            body["nextLink"] = f"{self.server.url}{request.path}?api-version={API_VERSION}&$skip={skip + self.page_size}"
        return Response.json(200, body)

    def _accepted(self, account, resource: str) -> Response:
        op = f"op-{next(self._ids)}"
        self._operations[op] = self.lro_polls
        return Response(202, b"", self._lro_headers(account, resource, op))

    def _lro_headers(self, account, resource, op) -> dict:
        headers = {"Location": f"{self.server.url}{account.id}/{resource}/operationResults/{op}?api-version={API_VERSION}"}
        if self.lro_retry_after is not None:
            headers["Retry-After"] = self.lro_retry_after
        if self.lro_retry_after_ms is not None:
            headers["retry-after-ms"] = self.lro_retry_after_ms
        return headers

    def _check_environment(self, account, env):
        if env and env.lower() not in account.environments:
            return Response.error(400, "BadRequest", f"The runtime environment '{env}' does not exist.")
        return None


def _vkey(version):
    if not version:
        return (-1,)
    return tuple(int(p) if p.isdigit() else -1 for p in version.split("-")[0].split("."))


def _action(rest: str, method: str) -> str:
    kinds = [p for i, p in enumerate(rest.strip("/").split("/")) if i % 2 == 0 and p]
    resource = "/".join(["Microsoft.Automation/automationAccounts"] + kinds)
    verb = {"GET": "read", "DELETE": "delete", "POST": "action"}.get(method, "write")
    return f"{resource}/{verb}"


def _not_allowed(request):
    return Response.error(405, "MethodNotAllowed", f"{request.method} is not allowed here.")


def _runbook_not_found():
    return Response.error(404, "NotFound", "The Runbook was not found.")


def _too_long_description():
    return Response.error(400, "BadRequest", "The description of a runbook cannot be longer than 512 characters.")


_N = r"(?P<name>[^/]+)"
_ROUTES = [
    (r"/?", ArmEmulator.account_get),
    (r"/runbooks", ArmEmulator.runbooks),
    (rf"/runbooks/{_N}", ArmEmulator.runbook),
    (rf"/runbooks/{_N}/content", ArmEmulator.runbook_content),
    (rf"/runbooks/{_N}/publish", ArmEmulator.runbook_publish),
    (rf"/runbooks/{_N}/draft", ArmEmulator.runbook_draft),
    (rf"/runbooks/{_N}/draft/content", ArmEmulator.runbook_draft_content),
    (rf"/runbooks/{_N}/draft/undoEdit", ArmEmulator.runbook_undo_edit),
    (r"/(?P<resource>runbooks/[^/]+)/operationResults/(?P<op>[^/]+)", ArmEmulator.operation),
    (r"/variables", ArmEmulator.variables),
    (rf"/variables/{_N}", ArmEmulator.variable),
    (r"/jobSchedules", ArmEmulator.job_schedules),
    (r"/jobSchedules/(?P<id>[^/]+)", ArmEmulator.job_schedule),
    (r"/jobs", arm_jobs.jobs),
    (rf"/jobs/{_N}", arm_jobs.job),
    (rf"/jobs/{_N}/output", arm_jobs.job_output),
    (rf"/jobs/{_N}/streams", arm_jobs.job_streams),
    (rf"/jobs/{_N}/streams/(?P<stream>[^/]+)", arm_jobs.job_stream),
    (r"/webhooks", ArmEmulator.webhooks),
    (rf"/webhooks/{_N}", ArmEmulator.webhook),
    (r"/modules", ArmEmulator.modules),
    (rf"/modules/{_N}", ArmEmulator.module),
    (r"/runtimeEnvironments", ArmEmulator.environments),
    (r"/runtimeEnvironments/(?P<env>[^/]+)", ArmEmulator.environment),
    (r"/runtimeEnvironments/(?P<env>[^/]+)/packages", ArmEmulator.packages),
    (rf"/runtimeEnvironments/(?P<env>[^/]+)/packages/{_N}", ArmEmulator.package),
]


class StaticTokenCredential:
    """A credential that hands out one fixed token and remembers the scopes it was asked for."""

    def __init__(self, token: str = "test-token"):
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes, **kwargs):
        import time as _time

        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken(self.token, int(_time.time()) + 3600)
