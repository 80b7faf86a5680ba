"""Fakes of the two services behind ``--auth github-oidc``, on loopback HTTPS.

``FakeActionsIdTokens``, GitHub Actions' ID token endpoint: ``GET {request_url}&audience=A``
with ``Authorization: Bearer {request_token}`` answers ``{"count", "value"}``, a new JWT each
time (``iss`` GitHub's issuer, ``aud`` A, ``sub`` the workflow's subject, valid ``lifetime``
seconds; GitHub's last about 5 minutes: Azure/login#372, "fails after 5 minutes"). Another
bearer token is 401 with a JSON ``message``, as the Actions toolkit reports it (actions/toolkit,
packages/core/src/oidc-utils.ts: "Failed to get ID Token. Error Code: ... Error Message: ...").
``env`` is what the runner sets in a job with ``permissions: id-token: write``.

``FakeEntra``, Microsoft Entra ID's token endpoint: ``POST /{tenant}/oauth2/v2.0/token`` with
``grant_type=client_credentials`` and a ``client_assertion`` answers ``{"token_type",
"expires_in", "ext_expires_in", "access_token"}``, the token valid ``expires_in`` seconds and
handed to ``on_token(token)`` (the test lists it in the ARM emulator's ``tokens``). The
assertion must be an ID token the fake GitHub issued (that stands for Entra checking its
signature against GitHub's keys) that has not expired (else AADSTS700024, as in
Azure/azure-cli#28708) and whose issuer, subject and audience match the federated credential of
``client_id`` (else AADSTS70021). Errors are Entra's ``{"error", "error_description",
"error_codes", ...}``; ``invalid_client`` answers 401 (RFC 6749 section 5.2).

Both count what they issued (``issued``), and log requests on ``server`` like every fake.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fakes.server import LoopbackServer, Request, Response, TestTLS

ISSUER = "https://token.actions.githubusercontent.com"
AUDIENCE = "api://AzureADTokenExchange"
SUBJECT = "repo:contoso/runbooks:ref:refs/heads/main"
REQUEST_TOKEN = "actions-runtime-request-token"
TENANT = "72f988bf-0000-4000-8000-00000000000a"
CLIENT = "0b9e6c1d-0000-4000-8000-00000000000c"
ID_TOKEN_PATH = "/_apis/distributedtask/hubs/Actions/plans/plan-1/jobs/job-1/idtoken"


@dataclass
class IdToken:
    value: str
    audience: str
    subject: str
    issued: float
    expires: float


def _b64(value: dict | bytes) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class FakeActionsIdTokens:
    def __init__(self, tls: TestTLS):
        self.server = LoopbackServer(tls, self._app)
        self.url = self.server.url
        self.request_url = f"{self.url}{ID_TOKEN_PATH}?api-version=2.0"
        self.env = {"ACTIONS_ID_TOKEN_REQUEST_URL": self.request_url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN}
        self.lifetime = 300.0
        self.subject = SUBJECT
        self.issued: list[IdToken] = []
        self._lock = threading.Lock()
        self._count = itertools.count(1)

    def close(self) -> None:
        self.server.close()

    def find(self, value: str) -> IdToken | None:
        with self._lock:
            return next((t for t in self.issued if t.value == value), None)

    def _app(self, request: Request) -> Response:
        if request.method != "GET" or request.path != ID_TOKEN_PATH:
            return Response.json(404, {"message": "Not Found"})
        if request.headers.get("authorization", "") != f"Bearer {REQUEST_TOKEN}":
            return Response.json(401, {"message": "Unauthorized: the request token is not valid."})
        audience = request.query.get("audience") or "https://github.com/contoso"
        now = time.time()
        count = next(self._count)
        claims = {"jti": str(uuid.uuid4()), "sub": self.subject, "aud": audience, "iss": ISSUER,
                  "repository": "contoso/runbooks", "ref": "refs/heads/main", "nbf": int(now) - 5,
                  "iat": int(now), "exp": int(now + self.lifetime)}
        value = ".".join((_b64({"typ": "JWT", "alg": "RS256", "kid": "fake"}), _b64(claims), _b64(b"signature")))
        with self._lock:
            self.issued.append(IdToken(value, audience, self.subject, now, now + self.lifetime))
        return Response.json(200, {"count": count, "value": value})


@dataclass
class AccessToken:
    value: str
    assertion: str
    issued: float
    expires: float


class FakeEntra:
    def __init__(self, tls: TestTLS, github: FakeActionsIdTokens, *, on_token=None):
        self.server = LoopbackServer(tls, self._app)
        self.url = self.server.url
        self.github = github
        self.on_token = on_token or (lambda token: None)
        self.expires_in = 3600
        #: client id -> (tenant, issuer, subject, audience) of its federated credential
        self.federated = {CLIENT: (TENANT, ISSUER, SUBJECT, AUDIENCE)}
        self.issued: list[AccessToken] = []
        self.refusals: list[str] = []  # the AADSTS codes answered
        self._lock = threading.Lock()

    def close(self) -> None:
        self.server.close()

    def _app(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if request.method != "POST" or len(parts) != 4 or parts[1:] != ["oauth2", "v2.0", "token"]:
            return Response.json(404, {"error": "not_found"})
        tenant = parts[0]
        form = dict(parse_qsl(request.body.decode()))
        if form.get("grant_type") != "client_credentials" or not form.get("scope", "").endswith("/.default"):
            return self._error(400, "invalid_request", 900144, "The request body must contain a valid "
                                                               "'grant_type' and 'scope'.")
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return self._error(401, "invalid_client", 7000218, "The request body must contain the following "
                                                               "parameter: 'client_assertion' or 'client_secret'.")
        federated = self.federated.get(form.get("client_id", ""))
        if federated is None or federated[0] != tenant:
            return self._error(400, "unauthorized_client", 700016, f"Application with identifier "
                               f"'{form.get('client_id')}' was not found in the directory '{tenant}'.")
        assertion = self.github.find(form.get("client_assertion", ""))
        if assertion is None:
            return self._error(401, "invalid_client", 50027, "JWT token is invalid or malformed.")
        now = time.time()
        if now >= assertion.expires:
            return self._error(401, "invalid_client", 700024, "Client assertion is not within its valid time "
                               f"range. Current time: {_stamp(now)}, expiry time of assertion {_stamp(assertion.expires)}.")
        _, issuer, subject, audience = federated
        if (ISSUER, assertion.subject, assertion.audience) != (issuer, subject, audience):
            return self._error(400, "invalid_request", 70021, "No matching federated identity record found for "
                               f"presented assertion. Assertion Issuer: '{ISSUER}'. Assertion Subject: "
                               f"'{assertion.subject}'. Assertion Audience: '{assertion.audience}'.")
        token = AccessToken(f"entra-{uuid.uuid4().hex}", assertion.value, now, now + self.expires_in)
        with self._lock:
            self.issued.append(token)
        self.on_token(token.value)
        return Response.json(200, {"token_type": "Bearer", "expires_in": self.expires_in,
                                   "ext_expires_in": self.expires_in, "access_token": token.value})

    def _error(self, status: int, error: str, code: int, text: str) -> Response:
        with self._lock:
            self.refusals.append(f"AADSTS{code}")
        trace = uuid.uuid4()
        stamp = _stamp(time.time())
        return Response.json(status, {
            "error": error, "error_description": f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: "
                                                 f"{uuid.uuid4()} Timestamp: {stamp}",
            "error_codes": [code], "timestamp": stamp, "trace_id": str(trace), "correlation_id": str(uuid.uuid4()),
            "error_uri": f"https://login.microsoftonline.com/error?code={code}"})


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))
