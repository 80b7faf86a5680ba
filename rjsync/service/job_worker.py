"""Where the job API's account work runs: job starts (their checks, then the PUT), the reads of
waiting ``/run``s, and the reads that answer a ``/run`` once its job has ended.

That work is mostly the Azure SDK's, and the SDK costs a few milliseconds of CPU per request
(azure-core's pipeline, ``requests``, the models' deserialization). Fifty ``/run``s arriving at
once are some 350 requests: in the serving process they take the interpreter for most of a
second, and every status poll waits its turn for it (``tests/benchmarks/bench_jobs.py``: status
p99 98-139 ms in the serving process, 71 ms with the starts in another one). So by default this
work runs in a **process of its own** (``ProcessWorker``): the serving process parses requests,
answers status polls and hands starts over a pipe; the worker process runs each in a thread of
its own pool, with its own open accounts and catalog cache, and answers on the same pipe. It runs
at a lower priority (``WORKER_NICENESS``), so when the machine's cores are busy the answers to
status polls come first. Job starts stay paced in one place (the account's ``JobStartPacing``,
100 per 30 s per account).

The worker process is started with ``spawn`` (a fork of a process running threads may inherit a
lock some thread held), so the account opener must be picklable: ``default_opener`` is, and so
is any module-level function. An opener that is not (a closure handed in by code, as tests do)
makes the work run in threads of the serving process instead (``ThreadWorker``), as
``ServiceConfig.job_process`` = False asks explicitly. If the worker process dies, the calls in
flight fail with a sentence (503) and the next call starts a new one.

Both kinds run the same function, ``perform``, on a ``WorkState``: what crosses the pipe is the
operation's name and picklable arguments (names, ``SyncSettings``, parameters, ``Checks``), and
back a result (``LiveJob``, ``JobStream``s) or an error as plain data, never a pickled exception.
Only the reads in ``READS`` may be asked for by name.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import pickle
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from rjsync.accounts.base import Account
from rjsync.errors import RjsyncError
from rjsync.jobs.start import CatalogCache, StartRefused, check_start
from rjsync.jobs.start import start as start_job
from rjsync.settings import SyncSettings

log = logging.getLogger(__name__)

#: The account reads the serving process may ask the worker for, by name.
READS = frozenset({"job", "job_streams", "jobs_since"})
STOP = b"stop"  # the last message to a worker process
#: The worker process yields the CPU to the serving process (``os.nice``): when both want it, as
#: when fifty ``/run``s arrive at once, the status polls are answered first and the starts wait.
WORKER_NICENESS = 10


class WorkerStopped(RjsyncError):
    """The worker process ended with calls in flight (the service answers 503)."""


class AccountCache:
    """Accounts opened once per manifest name and kept while the settings stay the same
    (a changed manifest opens a new one; the old one is closed at shutdown, as calls may still
    use it)."""

    def __init__(self, opener: Callable[[SyncSettings], Account]) -> None:
        self.opener = opener
        self._lock = threading.Lock()
        self._open: dict[str, tuple[str, Account]] = {}
        self._retired: list[Account] = []

    def get(self, name: str, settings: SyncSettings) -> Account:
        key = repr((settings.target, settings.policy.prefix, settings.azure, settings.concurrency))
        slot = name.lower()
        with self._lock:
            held = self._open.get(slot)
            if held is not None and held[0] == key:
                return held[1]
        opened = self.opener(settings)
        with self._lock:
            held = self._open.get(slot)
            if held is not None and held[0] == key:
                self._retired.append(opened)
                return held[1]
            if held is not None:
                self._retired.append(held[1])
            self._open[slot] = (key, opened)
        return opened

    def close(self) -> None:
        with self._lock:
            accounts = [a for _, a in self._open.values()] + self._retired
            self._open.clear()
            self._retired = []
        for account in accounts:
            try:
                account.close()
            except Exception:  # noqa: BLE001 - closing the others matters more
                log.warning("closing an account failed", exc_info=True)


class WorkState:
    """What the work keeps between calls: open accounts and the catalogs of synced commits."""

    def __init__(self, opener: Callable[[SyncSettings], Account]) -> None:
        self.accounts = AccountCache(opener)
        self.catalogs = CatalogCache()

    def close(self) -> None:
        self.accounts.close()


def perform(state: WorkState, op: str, args: tuple) -> Any:
    """One piece of work: ``("start", name, settings, runbook, values, checks, job_id)`` checks
    and starts a job (``StartRefused`` when a check fails) and returns it as ``LiveJob``;
    ``("read", name, settings, method, *args)`` calls one of ``READS`` on the account; ``("ping",)``
    answers the worker's process id once it is ready."""
    if op == "ping":
        return os.getpid()
    if op == "start":
        name, settings, runbook, values, checks, job_id = args
        account = state.accounts.get(name, settings)
        checked = check_start(account, settings, runbook, values, checks=checks, cache=state.catalogs)
        return start_job(account, checked, job_id)
    if op == "read":
        name, settings, method, *rest = args
        if method not in READS:
            raise RjsyncError(f"The job worker does not read {method!r}.")
        return getattr(state.accounts.get(name, settings), method)(*rest)
    raise RjsyncError(f"The job worker has no operation {op!r}.")


def _as_data(err: BaseException) -> tuple:
    """An error as it crosses the pipe: plain data, rebuilt by ``_from_data``."""
    if isinstance(err, StartRefused):
        return ("refused", err.message, err.kind, err.problems)
    if isinstance(err, RjsyncError):
        return ("rjsync", err.message)
    return ("unexpected", type(err).__name__)


def _from_data(data: tuple) -> BaseException:
    if data[0] == "refused":
        return StartRefused(data[1], data[2], data[3])
    if data[0] == "rjsync":
        return RjsyncError(data[1])
    return RuntimeError(f"the job worker failed ({data[1]}); see the server log")


class ThreadWorker:
    """The work in threads of the serving process: starts in one pool, the reads of waiting
    ``/run``s in another (``waits``), so a burst of starts never holds them up."""

    def __init__(self, opener: Callable[[SyncSettings], Account], *, starts: int, waits: int) -> None:
        self.state = WorkState(opener)
        self._starts = ThreadPoolExecutor(starts, thread_name_prefix="rjsync-job-call")
        self._waits = ThreadPoolExecutor(waits, thread_name_prefix="rjsync-job-wait")

    def warm_up(self) -> None:
        """Nothing to start: the threads start with the calls."""

    async def run(self, op: str, *args: Any) -> Any:
        pool = self._starts if op == "start" else self._waits
        return await asyncio.get_running_loop().run_in_executor(pool, perform, self.state, op, args)

    def close(self) -> None:
        self._starts.shutdown(wait=True, cancel_futures=True)
        self._waits.shutdown(wait=True, cancel_futures=True)
        self.state.close()


class ProcessWorker:
    """The work in a process of its own (see the module's docstring). Thread-safe; the process
    starts with the first call (``warm_up`` starts it sooner) and again after it died."""

    def __init__(self, opener: Callable[[SyncSettings], Account], *, threads: int) -> None:
        self.opener, self.threads = opener, threads
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[_Link, Future]] = {}
        self._link: _Link | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The worker process's id while one runs."""
        link = self._link
        return link.process.pid if link is not None and link.alive() else None

    def warm_up(self) -> None:
        """Start the worker process now (its imports take a second or two)."""
        with self._lock:
            self._ensure()

    async def run(self, op: str, *args: Any) -> Any:
        return await asyncio.wrap_future(self.submit(op, *args))

    def submit(self, op: str, *args: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise WorkerStopped("The service is shutting down.")
            link = self._ensure()
            call_id = next(self._ids)
            try:
                message = pickle.dumps((call_id, op, args), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as err:  # noqa: BLE001 - a programming error: say so, in one sentence
                raise RjsyncError(f"The job worker cannot take {op!r}: {type(err).__name__}.") from None
            self._pending[call_id] = (link, future)
        link.outbox.put(message)  # the link's sender thread writes it: a full pipe never blocks the caller
        return future

    def close(self) -> None:
        with self._lock:
            self._closed = True
            link, self._link = self._link, None
        if link is not None:
            link.stop()
            link.process.join(timeout=10)
            if link.process.is_alive():
                link.process.kill()
                link.process.join(timeout=5)
        self._fail(None, WorkerStopped("The service is shutting down."))

    # -- the serving process's side ------------------------------------------------------------

    def _ensure(self) -> _Link:
        """The link to a live worker process, started if there is none (under ``_lock``)."""
        if self._link is not None and self._link.alive():
            return self._link
        if self._link is not None:
            self._link.stop()
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe(duplex=True)
        process = context.Process(target=serve, args=(theirs, self.opener, self.threads),
                                  name="rjsync-job-worker", daemon=True)
        try:
            process.start()
        except OSError as err:
            ours.close()
            theirs.close()
            raise WorkerStopped(f"The job worker process cannot start ({err.strerror or err}); try again.") from None
        theirs.close()  # only the worker holds its end: when we go, it reads the end of the pipe
        self._link = link = _Link(ours, process)
        threading.Thread(target=self._send, args=(link,), name="rjsync-job-worker-send", daemon=True).start()
        threading.Thread(target=self._read, args=(link,), name="rjsync-job-worker-read", daemon=True).start()
        return link

    def _send(self, link: _Link) -> None:
        while True:
            message = link.outbox.get()
            try:
                link.conn.send_bytes(message)
            except (OSError, ValueError):
                return  # the reader sees the pipe end and fails the calls
            if message == STOP:
                return

    def _read(self, link: _Link) -> None:
        """Hand each answer to its caller; when the pipe ends, fail every call still in flight on it."""
        while True:
            try:
                call_id, ok, value = pickle.loads(link.conn.recv_bytes())
            except (EOFError, OSError, ValueError, pickle.UnpicklingError):
                break
            with self._lock:
                _, future = self._pending.pop(call_id, (None, None))
            if future is None or future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(_from_data(value))
        link.conn.close()  # only this thread closes it: no other thread is blocked on it then
        link.process.join(timeout=5)
        with self._lock:
            if self._link is link:
                self._link = None
        if not self._closed:
            log.error("the job worker process ended (exit code %s); its calls in flight fail, the next "
                      "call starts a new one", link.process.exitcode)
        self._fail(link, WorkerStopped("The job worker process stopped while this call was in flight; "
                                       "whether a job started is not known: check the account's jobs."))

    def _fail(self, link: _Link | None, err: BaseException) -> None:
        """Fail the calls in flight on ``link`` (None: on every link)."""
        with self._lock:
            failed = [i for i, (on, _) in self._pending.items() if link is None or on is link]
            futures = [self._pending.pop(i)[1] for i in failed]
        for future in futures:
            if not future.done():
                future.set_exception(err)


class _Link:
    """One worker process and the serving process's end of its pipe."""

    def __init__(self, conn, process) -> None:
        self.conn, self.process = conn, process
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._stopped = False

    def alive(self) -> bool:
        return not self._stopped and self.process.is_alive()

    def stop(self) -> None:
        """Ask the worker to end once it has read what was sent before (it stops reading, lets
        the calls it runs finish, and exits; its answers still arrive)."""
        if not self._stopped:
            self._stopped = True
            self.outbox.put(STOP)


def picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001 - whatever pickle raises, the answer is no
        return False
    return True


def make_worker(config, opener: Callable[[SyncSettings], Account]) -> ThreadWorker | ProcessWorker:
    """The worker ``config.job_process`` asks for (None: a process when ``opener`` can cross to
    one); the process starts with the first call, or sooner by ``warm_up``."""
    wanted = config.job_process
    if wanted is None:
        wanted = picklable(opener)
    elif wanted and not picklable(opener):
        raise RjsyncError("job_process needs an account opener that can be pickled (a module-level function).")
    if wanted:
        return ProcessWorker(opener, threads=config.account_calls)
    return ThreadWorker(opener, starts=config.account_calls, waits=config.waiting_calls)


# -- the worker process ---------------------------------------------------------------------------


def serve(conn, opener: Callable[[SyncSettings], Account], threads: int) -> None:
    """The worker process: each call read from ``conn`` runs in a thread of a pool of
    ``threads``, its answer written back; the end of the pipe (the serving process closed it
    or died) ends the process."""
    logging.basicConfig(level=logging.WARNING, format="rjsync job worker: %(levelname)s %(name)s: %(message)s")
    try:
        os.nice(WORKER_NICENESS)
    except OSError:
        pass  # a system that refuses: the work runs at the serving process's priority
    state = WorkState(opener)
    send_lock = threading.Lock()
    pool = ThreadPoolExecutor(threads, thread_name_prefix="rjsync-job-work")

    def work(call_id: int, op: str, args: tuple) -> None:
        try:
            answer = (call_id, True, perform(state, op, args))
        except Exception as err:  # noqa: BLE001 - every error goes back as data
            if not isinstance(err, RjsyncError):
                log.error("%s failed", op, exc_info=err)
            answer = (call_id, False, _as_data(err))
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:  # noqa: BLE001 - an answer that cannot be pickled fails its call
            log.error("%s's answer cannot be sent", op, exc_info=err)
            data = pickle.dumps((call_id, False, ("unexpected", type(err).__name__)))
        try:
            with send_lock:
                conn.send_bytes(data)
        except (OSError, ValueError):
            pass  # the serving process is gone

    try:
        while True:
            try:
                message = conn.recv_bytes()
            except (EOFError, OSError):
                break
            if message == STOP:
                break
            call_id, op, args = pickle.loads(message)
            pool.submit(work, call_id, op, args)
        pool.shutdown(wait=True)  # the calls under way answer; the serving process waits for this
    finally:
        state.close()
        conn.close()
