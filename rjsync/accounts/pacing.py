"""Request pacing: how an Azure account spends what Resource Manager and the service allow.

- Resource Manager's request budget (a token bucket per subscription and principal, refilled
  at 25 reads, 10 writes and 10 deletes per second) is spent evenly: ``RequestBudget`` believes
  the lowest count of tokens it can (what the last answer said remains, the refill since, the
  requests sent since) and holds requests on this machine until one is there; a 429 empties it
  until the answer's Retry-After. Without it, a first sync's ~700 writes run into 429s from 32
  writers at once and some run out of retries. The budgets live for the process
  (``request_budgets``): a fleet's accounts in one subscription spend one.
- Module/package imports: the service starts at most 5 per 30 s per account. ``ImportPacer``
  keeps to ``imports_per_window`` per ``import_window`` seconds, and ``ImportPacing`` paces every
  attempt, timed from its answer.
- Job starts: the service takes at most 100 new jobs per 30 s per account. ``JobStartPacing``
  paces every job PUT through an ``ImportPacer`` (the same sliding window) that every client of
  this process shares for that account (``job_pacer``).
- ``RequestLimit`` caps the requests in flight through one client.

Each is an azure-core pipeline policy placed after the retry policy (``per_retry_policies``), so
a retried request is paced like a new one and a wait between retries or polls holds nothing.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from typing import Callable
from urllib.parse import unquote, urlsplit

from azure.core.pipeline.policies import HTTPPolicy

#: Notes for whoever runs the sync: waits the service imposes (the import window, throttling),
#: each with ``extra={"target": <the account's ARM id>}``; ``rjsync apply`` prints them.
log = logging.getLogger(__name__)


class RequestLimit(HTTPPolicy):
    """At most ``limit`` requests in flight through one client (each retry is a request).

    It sits after the retry policy, so a back-off or a long-running operation's wait between
    polls holds no slot: many runbook writes can wait on the service while only ``limit``
    requests are on the wire.
    """

    def __init__(self, limit: int):
        super().__init__()
        self._slots = threading.BoundedSemaphore(max(1, limit))

    def send(self, request):
        with self._slots:
            return self.next.send(request)


def request_kind(method: str) -> str:
    """Which of Resource Manager's budgets a request spends: reads, deletes or writes."""
    return {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(method.upper(), "writes")


class RequestBudget:
    """This machine's view of one of Resource Manager's token buckets (one kind of request, one
    subscription), so that concurrent requests queue here instead of running into 429s.

    Resource Manager refills the bucket at ``refill`` tokens per second and says in an answer
    how many remain (``x-ms-ratelimit-remaining-subscription-{kind}``, or on some endpoints only
    ``...-resource-requests``: ``remaining_header``). The budget believes the lowest count it can:
    the count it kept (requests sent since are taken from it, the refill is added), lowered to
    what an answer says. Before the first answer that says a count it lets requests through; an
    answer that says nothing changes nothing (a missing header is not "unlimited", shared notes,
    Throttling), so pacing does not flap when answers with and without the header alternate.
    ``acquire`` waits until a token is there; a 429 empties the bucket and closes it until the
    answer's ``Retry-After``.
    """

    def __init__(self, refill: float, *, clock: Callable[[], float] = time.monotonic):
        self.refill = max(refill, 0.001)
        self._clock = clock
        self._tokens: float | None = None  # None: no answer said yet
        self._capacity = 0.0  # the most tokens an answer said remain
        self._stamp = clock()
        self._closed_until = 0.0
        self._changed = threading.Condition()

    def _refill(self, now: float) -> None:
        if self._tokens is not None:
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self.refill)
        self._stamp = now

    def acquire(self) -> None:
        with self._changed:
            while True:
                now = self._clock()
                self._refill(now)
                if now < self._closed_until:
                    wait = self._closed_until - now
                elif self._tokens is None or self._tokens >= 1:
                    if self._tokens is not None:
                        self._tokens -= 1
                    return
                else:
                    wait = (1 - self._tokens) / self.refill
                self._changed.wait(wait)

    def observe(self, status: int, remaining: str | None, retry_after: str | None) -> float:
        """Learn from an answer: the tokens it says remain, and a 429's Retry-After. The seconds
        a 429 closed the budget for when it was open, else 0."""
        with self._changed:
            now = self._clock()
            self._refill(now)
            try:
                count = float(int(remaining)) if remaining is not None else None
            except ValueError:
                count = None
            if count is not None:  # an answer without a count keeps what the budget knew
                self._capacity = max(self._capacity, count + 1)
                self._tokens = count if self._tokens is None else min(self._tokens, count)
            closed = 0.0
            if status == 429:
                self._tokens = 0.0
                self._capacity = max(self._capacity, 1.0)
                try:
                    seconds = float(retry_after) if retry_after is not None else 1 / self.refill
                except ValueError:
                    seconds = 1 / self.refill
                if self._closed_until <= now:
                    closed = seconds
                self._closed_until = max(self._closed_until, now + seconds)
            self._changed.notify_all()
            return closed


#: What some endpoints answer instead of the header of the request's kind (shared notes: seen on
#: Automation job requests).
RESOURCE_REQUESTS_HEADER = "x-ms-ratelimit-remaining-subscription-resource-requests"


def remaining_header(headers, kind: str) -> str | None:
    """The tokens an answer says remain for a request of ``kind``: its kind's header, else the
    resource-requests one, else None."""
    own = headers.get(f"x-ms-ratelimit-remaining-subscription-{kind}")
    return own if own is not None else headers.get(RESOURCE_REQUESTS_HEADER)


_budgets: dict[tuple[str, str, str, float], RequestBudget] = {}
_budgets_lock = threading.Lock()


def forget_budgets() -> None:
    """Forget every budget and job window this process learnt (a test starts from nothing, as a
    new process)."""
    with _budgets_lock:
        _budgets.clear()
        _job_pacers.clear()


def request_budgets(endpoint: str, subscription: str, *, reads: float, writes: float,
                    deletes: float) -> dict[str, RequestBudget]:
    """The budgets of one subscription at one Resource Manager endpoint, refilled at ``reads``,
    ``writes`` and ``deletes`` tokens per second, shared by every account this process opens there
    with the same rates (a fleet's accounts spend one budget; a different principal's would have
    its own, so sharing only errs on the slow side)."""
    rates = {"reads": reads, "writes": writes, "deletes": deletes}
    with _budgets_lock:
        return {kind: _budgets.setdefault((endpoint.lower(), subscription.lower(), kind, rate), RequestBudget(rate))
                for kind, rate in rates.items()}


class BudgetPacing(HTTPPolicy):
    """Spends Resource Manager's request budgets evenly (``RequestBudget``). It sits after the
    retry policy, so a request the retry policy sends again after a 429 waits for a token too."""

    def __init__(self, budgets: dict[str, RequestBudget], target: str = ""):
        super().__init__()
        self.budgets = budgets
        self.target = target

    def send(self, request):
        kind = request_kind(request.http_request.method)
        budget = self.budgets[kind]
        budget.acquire()
        response = self.next.send(request)
        http = response.http_response
        closed = budget.observe(http.status_code, remaining_header(http.headers, kind),
                                http.headers.get("Retry-After"))
        if closed:
            log.info("Resource Manager throttles this subscription's %s (429): waiting %.0f s",
                     kind, closed, extra={"target": self.target})
        return response


class ImportPacer:
    """At most ``limit`` imports in any ``window`` seconds (sliding window, thread-safe).

    The service counts an import when it accepts the PUT, which is after the client sent it
    (the wire, a slow answer). So a slot is taken before a PUT is sent and dated again when its
    answer arrives (``sent``): a slot leaves the window ``window`` seconds after the latest
    moment the service can have started that import. A PUT the service refused (429) started
    nothing and gives its slot back (``release``). ``waits`` records how long each ``acquire``
    waited for the window.
    """

    def __init__(self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window = max(1, limit), window
        self._clock = clock
        self._slots: list[list[float]] = []  # [time]: mutable, dated again by ``sent``
        self._changed = threading.Condition()
        self.waits: list[float] = []

    def acquire(self, on_wait: Callable[[float], None] | None = None) -> list[float]:
        """A slot, once the window has one; ``on_wait(seconds)`` is called once before a wait."""
        begun = self._clock()
        with self._changed:
            while True:
                now = self._clock()
                self._slots = [slot for slot in self._slots if slot[0] > now - self.window]
                if len(self._slots) < self.limit:
                    slot = [now]
                    self._slots.append(slot)
                    self.waits.append(now - begun)
                    return slot
                wait = min(slot[0] for slot in self._slots) + self.window - now
                if on_wait is not None:
                    on_wait(wait)
                    on_wait = None
                self._changed.wait(wait)

    def sent(self, slot: list[float]) -> None:
        with self._changed:
            slot[0] = max(slot[0], self._clock())

    def release(self, slot: list[float]) -> None:
        with self._changed:
            self._slots = [kept for kept in self._slots if kept is not slot]
            self._changed.notify_all()


def import_slot(pacer: ImportPacer, module: str, target: str = "") -> list[float]:
    """A slot of ``pacer`` for importing ``module``, saying so when it has to wait for one."""
    return pacer.acquire(lambda seconds: log.info(  # whole seconds, rounded up: a wait is never "0 s"
        "%s waits %d s to be imported: the service starts at most %d module imports per %g s",
        module, math.ceil(seconds), pacer.limit, pacer.window, extra={"target": target}))


class _WindowPacing(HTTPPolicy):
    """Sends the PUTs whose path ``_PATH`` matches in a slot of ``pacer`` (a window of starts the
    service counts). It sits after the retry policy, so a PUT the retry policy sends again takes
    a slot of its own, as the service may count it again; a 429 gives its slot back."""

    _PATH: re.Pattern

    def __init__(self, pacer: ImportPacer, target: str = ""):
        super().__init__()
        self.pacer = pacer
        self.target = target

    def send(self, request):
        http = request.http_request
        path = urlsplit(http.url).path
        if http.method != "PUT" or not self._PATH.search(path):
            return self.next.send(request)
        return _send_in_slot(self.next, self.pacer, self._slot(request, path), request)

    def _slot(self, request, path: str) -> list[float]:
        raise NotImplementedError


class ImportPacing(_WindowPacing):
    """Paces every attempt of a module or package import (PUT .../modules/{m} or
    .../packages/{p}) through an ``ImportPacer``: a retried PUT takes a slot of its own, as the
    service may count it as an import of its own (after a 503, or an answer lost after the
    service acted on it).

    A caller that must check something after the wait and right before the PUT leaves (the
    account reads an import's dependencies again) takes the slot itself (``import_slot``) and
    passes it with the call (``import_slot=slot``): the first attempt uses it; a retry takes
    its own."""

    _PATH = re.compile(r"/(modules|packages)/[^/]+$", re.IGNORECASE)

    def _slot(self, request, path: str) -> list[float]:
        slot = request.context.options.pop("import_slot", None)
        if slot is None:
            slot = import_slot(self.pacer, unquote(path.rsplit("/", 1)[1]), self.target)
        return slot


def _send_in_slot(next_policy, pacer: ImportPacer, slot: list[float], request):
    """Send ``request`` in ``slot`` of ``pacer``: dated again by its answer, given back on a 429
    (the service started nothing)."""
    try:
        response = next_policy.send(request)
    except BaseException:
        pacer.sent(slot)  # it may have reached the service
        raise
    if response.http_response.status_code == 429:
        pacer.release(slot)
    else:
        pacer.sent(slot)
    return response


_job_pacers: dict[tuple[str, str, int, float], ImportPacer] = {}


def job_pacer(endpoint: str, account_id: str, limit: int, window: float) -> ImportPacer:
    """The window of job starts of one account (its ARM id) at one Resource Manager endpoint,
    shared by every client this process opens on it: the service counts the account's starts,
    whoever sends them."""
    with _budgets_lock:
        key = (endpoint.lower(), account_id.lower(), limit, window)
        return _job_pacers.setdefault(key, ImportPacer(limit, window))


class JobStartPacing(_WindowPacing):
    """Paces every job start (PUT .../jobs/{name}) through ``pacer``: the service takes at most
    100 new jobs per 30 s per account (MicrosoftDocs/azure-docs
    includes/azure-automation-service-limits.md) and refuses more. A retried PUT takes a slot
    of its own, and a 429 gives its slot back, as for imports."""

    _PATH = re.compile(r"/jobs/[^/]+$", re.IGNORECASE)

    def _slot(self, request, path: str) -> list[float]:
        return self.pacer.acquire(lambda seconds: log.info(
            "a job start waits %d s: the service takes at most %d new jobs per %g s per account",
            math.ceil(seconds), self.pacer.limit, self.pacer.window, extra={"target": self.target}))
