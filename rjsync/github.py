"""The GitHub REST API, as much of it as rjsync needs: the comments of a pull request.

The only module that talks to GitHub (through ``requests``). Three endpoints:

- ``GET   /repos/{owner}/{repo}/issues/{number}/comments`` (paged by the ``Link`` header)
- ``POST  /repos/{owner}/{repo}/issues/{number}/comments``
- ``PATCH /repos/{owner}/{repo}/issues/comments/{id}``

``upsert_comment`` keeps ONE comment per marker up to date: it finds the comment whose first
line is the marker and edits it, or creates it. Rate-limited requests (403/429 with
``Retry-After`` or an exhausted ``X-RateLimit-Remaining``) were not carried out and are
retried after the wait GitHub asks for; a lost answer to a ``POST`` may have created the
comment, so that case starts over from the search instead of posting twice. Every failure
ends in a ``GitHubError`` that says what to fix. The token is sent only to the API's own
host and never appears in a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from rjsync import __version__
from rjsync.errors import RjsyncError
from rjsync.source import redact

DEFAULT_API_URL = "https://api.github.com"

#: The login of the token GitHub Actions gives a workflow (``GITHUB_TOKEN``).
ACTIONS_BOT = "github-actions[bot]"

PER_PAGE = 100  # the most GitHub returns per page


class GitHubError(RjsyncError):
    """GitHub refused a request or could not be reached.

    ``transient``: it may work when tried again (network, 5xx), and a write may or may not
    have been carried out.
    """

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    author: str
    author_type: str
    html_url: str

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Comment:
        user = value.get("user") or {}
        return cls(int(value["id"]), value.get("body") or "", user.get("login") or "", user.get("type") or "",
                   value.get("html_url") or "")


@dataclass(frozen=True)
class Upserted:
    action: str  # "created" | "updated"
    comment: Comment


def first_line(body: str) -> str:
    return body.lstrip("\ufeff \t\r\n").split("\n", 1)[0].strip()


def find_marked(comments: list[Comment], marker: str) -> Comment | None:
    """The comment whose first line is ``marker``: the Actions bot's first, then any bot's, then anyone's."""
    marked = [c for c in comments if first_line(c.body) == marker]
    for prefer in (lambda c: c.author == ACTIONS_BOT, lambda c: c.author_type == "Bot", lambda c: True):
        for comment in marked:
            if prefer(comment):
                return comment
    return None


_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def check_api_url(api_url: str) -> str:
    """``api_url`` without a trailing slash, or ``GitHubError``: the token is sent to it, so it
    must be https (plain http only to this machine's loopback, for tests and local proxies) and
    carry no credentials, query or fragment of its own. Messages show it redacted."""
    shown = redact(api_url)
    split = urlsplit(api_url)
    if split.scheme.lower() not in ("https", "http") or not split.hostname:
        raise GitHubError(f"The GitHub API URL {shown!r} is not an https URL; "
                          "give e.g. --api-url https://api.github.com.")
    if split.username is not None or split.password is not None:
        raise GitHubError(f"The GitHub API URL {shown!r} carries credentials; give the URL without them "
                          "and the token in GITHUB_TOKEN.")
    if split.query or split.fragment:
        raise GitHubError(f"The GitHub API URL {shown!r} has a query or fragment; give only the API's "
                          "address, e.g. https://api.github.com.")
    if split.scheme.lower() == "http" and split.hostname.lower() not in _LOOPBACK:
        raise GitHubError(f"The GitHub API URL {shown!r} is plain http: the token would cross the network "
                          "unencrypted; give its https address.")
    return api_url.rstrip("/")


class GitHub:
    """A small GitHub REST client. ``sleep`` and the retry settings are for tests."""

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL, *, retries: int = 3, backoff: float = 1.0,
                 max_wait: float = 60.0, timeout: float = 30.0, sleep: Callable[[float], None] | None = None,
                 session: requests.Session | None = None) -> None:
        self.api_url = check_api_url(api_url)
        split = urlsplit(self.api_url)
        self._origin = (split.scheme, split.netloc.lower())
        self.retries, self.backoff, self.max_wait, self.timeout = retries, backoff, max_wait, timeout
        self._sleep = sleep or _pause
        self._session = session or requests.Session()
        self._session.headers.update({
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": f"rjsync/{__version__}",
        })
        self._token = token

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the three endpoints -------------------------------------------------------------------

    def comments(self, repo: str, number: int) -> Iterator[Comment]:
        """Every comment of issue or pull request ``number``, oldest first, page by page."""
        url: str | None = f"{self.api_url}/repos/{repo}/issues/{number}/comments"
        params: dict[str, Any] | None = {"per_page": PER_PAGE}
        while url:
            response = self._request("GET", url, params=params, what=f"read the comments of {repo}#{number}")
            for value in response.json():
                yield Comment.from_json(value)
            url = response.links.get("next", {}).get("url")
            params = None  # the next link carries them

    def create_comment(self, repo: str, number: int, body: str) -> Comment:
        response = self._request("POST", f"{self.api_url}/repos/{repo}/issues/{number}/comments",
                                 json={"body": body}, idempotent=False, what=f"comment on {repo}#{number}")
        return Comment.from_json(response.json())

    def update_comment(self, repo: str, comment_id: int, body: str) -> Comment:
        response = self._request("PATCH", f"{self.api_url}/repos/{repo}/issues/comments/{comment_id}",
                                 json={"body": body}, what=f"edit comment {comment_id} in {repo}")
        return Comment.from_json(response.json())

    def upsert_comment(self, repo: str, number: int, body: str, marker: str) -> Upserted:
        """Edit the comment marked ``marker`` (the first line of ``body``), or create it."""
        for attempt in range(self.retries + 1):
            existing = find_marked(list(self.comments(repo, number)), marker)
            if existing is not None:
                return Upserted("updated", self.update_comment(repo, existing.id, body))
            try:
                return Upserted("created", self.create_comment(repo, number, body))
            except GitHubError as err:
                # the POST may have gone through: look again rather than post a second comment
                if not err.transient or attempt == self.retries:
                    raise
                self._sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- requests, retries, errors ---------------------------------------------------------------

    def _request(self, method: str, url: str, *, what: str, params: dict[str, Any] | None = None,
                 json: Any = None, idempotent: bool = True) -> requests.Response:
        split = urlsplit(url)
        if (split.scheme, split.netloc.lower()) != self._origin:
            # a Link header pointing elsewhere must not receive the token
            raise GitHubError(f"GitHub's answer pointed to {split.scheme}://{split.netloc}, not to the API at "
                              f"{self.api_url}; refusing to send the token there.")
        headers = {"Authorization": f"Bearer {self._token}"}
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._session.request(method, url, params=params, json=json, headers=headers,
                                                 timeout=self.timeout)
            except requests.exceptions.SSLError as err:
                raise GitHubError(f"TLS failed talking to {self.api_url}: {_reason(err)}. Behind a TLS-inspecting "
                                  "proxy, point REQUESTS_CA_BUNDLE at its CA certificate.") from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as err:
                error = GitHubError(f"Cannot reach the GitHub API at {self.api_url} to {what}: {_reason(err)}. "
                                    "Check the network (and --api-url / GITHUB_API_URL).", transient=True)
                if idempotent and not last:
                    self._sleep(self.backoff * 2 ** attempt)
                    continue
                raise error from None
            wait = _rate_limit_wait(response, self.backoff * 2 ** attempt)
            if wait is not None:
                if not last and wait <= self.max_wait:
                    self._sleep(wait)
                    continue
                raise GitHubError(_rate_limit_message(response, what, wait), status=response.status_code)
            if response.status_code >= 500:
                if idempotent and not last:
                    self._sleep(self.backoff * 2 ** attempt)
                    continue
                raise GitHubError(f"GitHub failed to {what} (HTTP {response.status_code}: {_message(response)}). "
                                  "It is usually temporary: run the job again.",
                                  status=response.status_code, transient=True)
            if response.status_code >= 400:
                raise _refused(response, what, self.api_url)
            return response
        raise AssertionError("unreachable")  # pragma: no cover


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _rate_limit_wait(response: requests.Response, backoff: float) -> float | None:
    """Seconds to wait when ``response`` says "rate limited" (nothing was done), else None."""
    if response.status_code not in (403, 429):
        return None
    retry_after = response.headers.get("Retry-After")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            return backoff
    if response.headers.get("X-RateLimit-Remaining") == "0":
        try:
            return max(0.0, float(response.headers.get("X-RateLimit-Reset", "")) - time.time()) + 1
        except ValueError:
            return backoff
    if response.status_code == 429 or "rate limit" in _message(response).lower():
        return backoff
    return None  # a plain 403: permissions


def _rate_limit_message(response: requests.Response, what: str, wait: float) -> str:
    when = ""
    reset = response.headers.get("X-RateLimit-Reset")
    if reset and reset.isdigit():
        when = " until " + time.strftime("%H:%M:%S UTC", time.gmtime(int(reset)))
    elif wait:
        when = f" for {wait:.0f} s"
    return (f"GitHub's API rate limit stops rjsync from being able to {what}{when} "
            f"(HTTP {response.status_code}: {_message(response)}). Run the job again later.")


def _refused(response: requests.Response, what: str, api_url: str) -> GitHubError:
    status, message = response.status_code, _message(response)
    if status == 401:
        text = (f"GitHub rejected the token (HTTP 401: {message}) trying to {what}. Set GITHUB_TOKEN to a valid "
                "token; in a workflow: env: GITHUB_TOKEN: ${{ github.token }}.")
    elif status == 403:
        text = (f"GitHub refused to let the token {what} (HTTP 403: {message}). The token needs write access to "
                "pull requests: in a workflow, add 'permissions: pull-requests: write' (pull requests from forks "
                "get a read-only token).")
    elif status == 404:
        text = (f"GitHub found nothing to {what} (HTTP 404: {message}): check --repo and --pr, and that the token "
                f"can see the repository (API {api_url}).")
    elif status == 422:
        text = f"GitHub refused to {what} (HTTP 422: {message})."
    else:
        text = f"GitHub refused to {what} (HTTP {status}: {message})."
    return GitHubError(text, status=status)


def _message(response: requests.Response) -> str:
    try:
        value = response.json()
    except ValueError:
        return (response.text or response.reason or "no message").strip()[:300]
    if isinstance(value, dict):
        message = value.get("message") or (value.get("error") or {}).get("message") or ""
        details = [e.get("message") for e in value.get("errors") or () if isinstance(e, dict) and e.get("message")]
        return "; ".join(filter(None, [message, *details])) or response.reason or "no message"
    return response.reason or "no message"


def _reason(err: Exception) -> str:
    """Why a connection failed, without urllib3's object names and the URL."""
    inner = err.args[0] if err.args and isinstance(err.args[0], BaseException) else err
    text = str(getattr(inner, "reason", None) or inner) or type(inner).__name__
    return text.split(">: ", 1)[-1]
