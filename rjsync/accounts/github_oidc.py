"""Sign-in from a GitHub Actions job that lasts as long as the job (``--auth github-oidc``).

GitHub gives a job whose workflow grants ``permissions: id-token: write`` two variables:
``ACTIONS_ID_TOKEN_REQUEST_URL`` and ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``. A GET of that URL with
``&audience=api://AzureADTokenExchange`` and ``Authorization: Bearer <request token>`` answers
``{"value": "<ID token>"}``: a JWT that a federated credential on an Entra identity accepts as
a client assertion. The ID token expires within minutes, so a credential that keeps the first
one cannot renew its Azure token halfway through a long sync (the Azure CLI after
``azure/login``: Azure/azure-cli#28708). ``GitHubActionsCredential`` is azure-identity's
``ClientAssertionCredential``, which calls ``GitHubIdToken`` for a new ID token every time it
needs a new Azure token.

The only module that talks to GitHub Actions' ID token endpoint (through ``requests``, with
retries). Failures are ``ClientAuthenticationError``s whose message is one sentence (the Azure
account turns them into "Could not get an Azure access token (--auth github-oidc): ..."); no
token, request token or ID token ever appears in one.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from rjsync import __version__
from rjsync.errors import AccountError

#: The variables GitHub Actions gives a job whose workflow grants ``permissions: id-token: write``.
ID_TOKEN_VARIABLES = ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")

#: The audience a federated credential expects by default, per cloud (the values MSAL's cloud
#: registry pairs with each cloud's authority).
TOKEN_EXCHANGE_AUDIENCES = {
    "public": "api://AzureADTokenExchange",
    "china": "api://AzureADTokenExchangeChina",
    "usgovernment": "api://AzureADTokenExchangeUSGov",
}

ISSUER = "https://token.actions.githubusercontent.com"
_RETRY_STATUSES = (429, 500, 502, 503, 504)


class GitHubIdToken:
    """A new GitHub Actions ID token for ``audience`` on every call (the credential's assertion).

    Requests that fail on the way (connection, 429, 5xx) are retried ``retries`` times with
    exponential back-off from ``backoff`` seconds, honouring ``Retry-After``; ``fetched`` counts
    the ID tokens received.
    """

    def __init__(self, request_url: str, request_token: str, audience: str = TOKEN_EXCHANGE_AUDIENCES["public"],
                 *, retries: int = 4, backoff: float = 0.5, timeout: float = 30.0) -> None:
        split = urlsplit(request_url)
        if split.scheme != "https" or not split.hostname:
            raise AccountError("ACTIONS_ID_TOKEN_REQUEST_URL is not an https:// URL, so --auth github-oidc "
                               "cannot ask GitHub for an ID token with it.")
        self.audience = audience
        self.host = split.hostname
        self.retries, self.timeout = retries, timeout
        self.fetched = 0
        self._url = request_url + ("&" if split.query else "?") + urlencode({"audience": audience})
        self._request_token = request_token
        self._session = requests.Session()
        retry = Retry(total=retries, connect=retries, read=retries, status=retries, other=0,
                      backoff_factor=backoff, status_forcelist=_RETRY_STATUSES, allowed_methods=frozenset({"GET"}),
                      respect_retry_after_header=True, raise_on_status=False)
        self._session.mount("https://", HTTPAdapter(max_retries=retry))
        self._session.headers.update({"Accept": "application/json", "User-Agent": f"rjsync/{__version__}"})

    @classmethod
    def from_environment(cls, cloud: str = "public", env: Mapping[str, str] | None = None) -> GitHubIdToken:
        """The ID tokens of the job rjsync runs in, for the audience of ``cloud``."""
        env = os.environ if env is None else env
        missing = [name for name in ID_TOKEN_VARIABLES if not env.get(name)]
        if missing:
            raise AccountError(
                "--auth github-oidc asks GitHub Actions for ID tokens through ACTIONS_ID_TOKEN_REQUEST_URL and "
                f"ACTIONS_ID_TOKEN_REQUEST_TOKEN, which GitHub sets only in a job of a workflow with "
                f"`permissions: id-token: write`; missing: {' and '.join(missing)}."
            )
        audience = TOKEN_EXCHANGE_AUDIENCES.get(cloud, TOKEN_EXCHANGE_AUDIENCES["public"])
        return cls(env["ACTIONS_ID_TOKEN_REQUEST_URL"], env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"], audience)

    def close(self) -> None:
        self._session.close()

    def __call__(self) -> str:
        try:
            response = self._session.get(self._url, timeout=self.timeout,
                                         headers={"Authorization": f"Bearer {self._request_token}"})
        except requests.RequestException as err:
            raise ClientAuthenticationError(
                message=f"Cannot reach GitHub's ID token endpoint at {self.host} ({_reason(err)}) after "
                        f"{self.retries + 1} tries; run the job again."
            ) from None
        with response:
            if response.status_code in _RETRY_STATUSES:
                raise ClientAuthenticationError(
                    message=f"GitHub's ID token endpoint kept failing (HTTP {response.status_code}) after "
                            f"{self.retries + 1} tries; run the job again."
                )
            if response.status_code != 200:
                said = self._said(response)
                raise ClientAuthenticationError(
                    message=f"GitHub refused to issue an ID token (HTTP {response.status_code}{said}); the "
                            "workflow must grant this job `permissions: id-token: write`."
                )
            try:
                value = response.json().get("value")
            except (ValueError, AttributeError):
                value = None
        if not isinstance(value, str) or not value:
            raise ClientAuthenticationError(
                message="GitHub's ID token endpoint answered without an ID token (no \"value\" in its JSON answer)."
            )
        self.fetched += 1
        return value

    def _said(self, response: requests.Response) -> str:
        """``: <GitHub's message>`` when its answer is JSON with one, without the request token."""
        try:
            body = response.json()
        except ValueError:
            return ""
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or not message.strip():
            return ""
        message = " ".join(message.replace(self._request_token, "***").split())[:200].rstrip(".")
        return f": {message}"


class GitHubActionsCredential(ClientAssertionCredential):
    """azure-identity's ``ClientAssertionCredential`` with GitHub's ID tokens as assertions.

    ``ClientAssertionCredential`` calls ``id_token`` each time it asks Entra ID for an Azure token,
    and only then, so each Azure token comes from a new ID token. Token requests are made one at
    a time (the requests in flight when a token runs out wait for one new token, not each ask
    GitHub and Entra ID), and Entra ID's refusals become one sentence.
    """

    def __init__(self, tenant_id: str, client_id: str, id_token: GitHubIdToken, *, authority: str | None = None,
                 **kwargs) -> None:
        super().__init__(tenant_id, client_id, id_token, authority=authority, **kwargs)
        self.tenant_id, self.client_id, self.id_token = tenant_id, client_id, id_token
        self.authority = authority if authority is None or "://" in authority else f"https://{authority}"
        self._lock = threading.Lock()

    def get_token(self, *scopes, **kwargs):
        with self._lock, self._sentences():
            return super().get_token(*scopes, **kwargs)

    def get_token_info(self, *scopes, options=None):
        with self._lock, self._sentences():
            return super().get_token_info(*scopes, options=options)

    def close(self) -> None:
        super().close()
        self.id_token.close()

    @contextlib.contextmanager
    def _sentences(self):
        try:
            yield
        except ClientAuthenticationError as err:
            if err.response is None:  # ours (GitHub), already a sentence
                raise
            raise ClientAuthenticationError(
                message=f"Microsoft Entra ID refused GitHub's ID token for client {self.client_id} in tenant "
                        f"{self.tenant_id} ({_entra_reason(err)}); check the identity's federated credential: "
                        f"issuer {ISSUER}, the workflow's subject (e.g. repo:OWNER/NAME:ref:refs/heads/main) "
                        f"and audience {self.id_token.audience}."
            ) from None


def _entra_reason(err: ClientAuthenticationError) -> str:
    """The first sentence of Entra ID's ``error_description`` (``AADSTS…: …``), without trace ids."""
    try:
        body = json.loads(err.response.text())
    except (ValueError, TypeError, AttributeError):
        body = None
    if not isinstance(body, dict):
        return f"HTTP {err.status_code}"
    text = str(body.get("error_description") or body.get("error") or f"HTTP {err.status_code}")
    text = text.split(" Trace ID:")[0].splitlines()[0].strip()
    return text[:300].rstrip(".")


def _reason(err: requests.RequestException) -> str:
    """What went wrong, by kind: requests' own messages carry the URL."""
    if isinstance(err, requests.exceptions.SSLError):
        return "TLS failed; check the CA bundle (REQUESTS_CA_BUNDLE)"
    if isinstance(err, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(err, requests.exceptions.ConnectionError):
        return "connection failed"
    return type(err).__name__
