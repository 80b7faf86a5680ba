"""A loopback HTTPS server for fakes, with programmable faults and a request log.

Why the standard library's ``ThreadingHTTPServer`` and not starlette/uvicorn: the fakes must
break connections the way networks do -- reset a connection before a single byte of the
answer (the request may or may not have been carried out), or lose the answer after the
request took effect. ASGI deliberately hides the socket, so with uvicorn that needs its
private transport objects; here it is ``SO_LINGER`` 0 and ``close()`` on the real socket.
Routing is a regex table anyway (Resource Manager routes case-insensitively, starlette
does not), and a thread per connection with HTTP/1.1 keep-alive is what the SDK's
``requests`` pool expects. The cost is small: this server only ever talks to our tests.

TLS: a ``trustme`` CA issues a certificate for 127.0.0.1/localhost; clients trust
``TestTLS.ca_path`` (``connection_verify`` or ``REQUESTS_CA_BUNDLE``).

Faults (``fail``, ``drop``, ``delay``) match on method and a path regex and fire on every
matching request, on the n-th one, a limited number of ``times``, or at a ``rate`` drawn from
a seeded RNG, so a fault run is reproducible. Every request is logged (method, path, query,
status or None for a dropped connection, which fault fired) for tests to assert on.
"""

from __future__ import annotations

import json
import random
import re
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

import trustme


class TestTLS:
    """A test CA and a server certificate for the loopback address."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path):
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.ca_path = Path(directory) / "test-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.cert.configure_cert(ctx)
        return ctx


@dataclass
class Request:
    method: str
    path: str  # raw path, percent-encoded, without the query
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self):
        return json.loads(self.body or b"{}")


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, value, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json; charset=utf-8", **(headers or {})})

    @classmethod
    def error(cls, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        return cls.json(status, {"error": {"code": code, "message": message}}, headers)


@dataclass
class LoggedRequest:
    seq: int
    method: str
    path: str
    query: dict[str, str]
    status: int | None  # None: the connection was dropped
    fault: str | None  # "status", "drop", "drop-after", or None
    time: float  # time.monotonic() when the request arrived
    body: bytes = b""


@dataclass
class Fault:
    kind: str  # "status" | "drop" | "delay"
    method: str | None = None
    path: str | None = None  # regex searched in the path, case-insensitive
    rate: float | None = None  # probability (seeded RNG); None = every match
    nth: int | None = None  # only the n-th matching request (1-based)
    times: int | None = None  # fire at most this often
    status: int = 503
    code: str = "ServiceUnavailable"
    message: str = "The service is temporarily unavailable (injected fault)."
    retry_after: str | None = None
    seconds: float = 0.0  # delay
    after: bool = False  # drop: after the request took effect (the answer is lost)
    seen: int = 0
    fired: int = 0

    def matches(self, request: Request) -> bool:
        if self.method and self.method.upper() != request.method:
            return False
        return not self.path or re.search(self.path, request.path, re.IGNORECASE) is not None

    def fires(self, rng: random.Random) -> bool:
        self.seen += 1
        if self.times is not None and self.fired >= self.times:
            return False
        if self.nth is not None and self.seen != self.nth:
            return False
        if self.rate is not None and rng.random() >= self.rate:
            return False
        self.fired += 1
        return True


class LoopbackServer:
    """HTTPS on 127.0.0.1 (a free port) serving ``app(request) -> Response`` in a thread."""

    def __init__(self, tls: TestTLS, app: Callable[[Request], Response]):
        self.app = app
        self.log: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self.errors: list[str] = []  # tracebacks of the app: a bug in a fake fails loudly
        self._rng = random.Random(0)
        self._lock = threading.Lock()
        self._seq = 0
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = _HTTPServer(("127.0.0.1", 0), handler)
        self._httpd.socket = tls.server_context().wrap_socket(
            self._httpd.socket, server_side=True, do_handshake_on_connect=False
        )
        self.port = self._httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- faults -------------------------------------------------------------------------------

    def seed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def fail(self, status: int = 503, *, method=None, path=None, rate=None, nth=None, times=None,
             retry_after: str | None = None, code: str | None = None, message: str | None = None) -> Fault:
        """Answer matching requests with ``status`` (and ``Retry-After``) without carrying them out."""
        default_code = {429: "TooManyRequests", 500: "InternalServerError", 502: "BadGateway",
                        503: "ServiceUnavailable", 504: "GatewayTimeout"}.get(status, "InjectedFault")
        fault = Fault("status", method, path, rate, nth, times, status, code or default_code,
                      message or f"Injected fault: HTTP {status}.", retry_after)
        return self._add(fault)

    def drop(self, *, method=None, path=None, rate=None, nth=None, times=None, after: bool = False) -> Fault:
        """Reset the connection of matching requests: before carrying them out, or ``after``."""
        return self._add(Fault("drop", method, path, rate, nth, times, after=after))

    def delay(self, seconds: float, *, method=None, path=None, rate=None, nth=None, times=None) -> Fault:
        """Wait ``seconds`` before answering matching requests."""
        return self._add(Fault("delay", method, path, rate, nth, times, seconds=seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def _add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    # -- log ------------------------------------------------------------------------------------

    def requests(self, method: str | None = None, path: str | None = None, *, fault: bool | None = None) -> list[LoggedRequest]:
        """Logged requests, optionally only ``method``, a ``path`` regex, faulted or not."""
        with self._lock:
            entries = list(self.log)
        return [
            r for r in entries
            if (method is None or r.method == method.upper())
            and (path is None or re.search(path, r.path, re.IGNORECASE))
            and (fault is None or (r.fault is not None) == fault)
        ]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def _decide(self, request: Request) -> tuple[float, Fault | None]:
        delay, chosen = 0.0, None
        with self._lock:
            for fault in self.faults:
                if not fault.matches(request):
                    continue
                if fault.kind == "delay":
                    if fault.fires(self._rng):
                        delay += fault.seconds
                elif chosen is None and fault.fires(self._rng):
                    chosen = fault
        return delay, chosen

    def _record(self, request: Request, status: int | None, fault: str | None, arrived: float) -> None:
        with self._lock:
            self._seq += 1
            self.log.append(LoggedRequest(self._seq, request.method, request.path, request.query,
                                          status, fault, arrived, request.body))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: LoopbackServer

    def setup(self):
        self.request.settimeout(30)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request.do_handshake()
        super().setup()

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def do_GET(self):
        self._serve()

    do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _serve(self):
        arrived = time.monotonic()
        owner = self.owner
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        delay, fault = owner._decide(request)
        if delay:
            time.sleep(delay)
        if fault is not None and fault.kind == "drop" and not fault.after:
            owner._record(request, None, "drop", arrived)
            return self._reset()
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            response = Response.error(fault.status, fault.code, fault.message, headers)
            owner._record(request, response.status, "status", arrived)
            return self._send(response)
        try:
            response = owner.app(request)
        except Exception:  # noqa: BLE001 - a bug in the fake: answer 500 and remember it
            text = traceback.format_exc()
            owner.errors.append(text)
            print(text, file=sys.stderr)
            response = Response.error(500, "FakeServerBug", "The fake server failed; see the test output.")
        if fault is not None and fault.kind == "drop":
            owner._record(request, None, "drop-after", arrived)
            return self._reset()
        owner._record(request, response.status, None, arrived)
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.command != "HEAD" and response.body:
            # headers and body in one send: no Nagle/delayed-ACK stall of 40 ms per request
            self._headers_buffer.append(b"\r\n" + response.body)
            self.flush_headers()
        else:
            self.end_headers()

    def _reset(self) -> None:
        """Abort the connection with a TCP reset, without a TLS close or any answer."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw = socket.socket(fileno=self.connection.detach())
            raw.close()
        except OSError:
            pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up (or refuse the test CA) are not the fake's errors
