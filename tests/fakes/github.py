"""A fake of the three GitHub REST endpoints ``rjsync github comment`` uses, on loopback HTTPS.

- ``GET   /repos/{owner}/{repo}/issues/{number}/comments?per_page=&page=``: oldest first,
  paged like GitHub (default 30, at most 100 per page) with a ``Link`` header (``next``,
  ``last``, ``prev``, ``first``).
- ``POST  /repos/{owner}/{repo}/issues/{number}/comments`` ``{"body": ...}``: 201.
- ``PATCH /repos/{owner}/{repo}/issues/comments/{id}`` ``{"body": ...}``: 200.

Like GitHub: ``Authorization: Bearer|token T`` names a user (``tokens``), an unknown token is
401 "Bad credentials", a read-only token is 403 on writes, an unknown repository, pull request
or comment is 404, a body over 65,536 characters is 422, and errors are ``{"message",
"documentation_url"}``. ``rate_limit()`` answers the next requests with the primary rate
limit's 403 (``X-RateLimit-Remaining: 0``); the server's ``fail()``/``drop()`` inject the rest.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from fakes.server import LoopbackServer, Request, Response, TestTLS

TOKEN = "ghs_test-token"  # the workflow's GITHUB_TOKEN: github-actions[bot]
BOT = "github-actions[bot]"
LIMIT = 65536
DOCS = "https://docs.github.com/rest"

_COMMENTS = re.compile(r"^/repos/([^/]+/[^/]+)/issues/(\d+)/comments$")
_COMMENT = re.compile(r"^/repos/([^/]+/[^/]+)/issues/comments/(\d+)$")


@dataclass
class FakeComment:
    id: int
    number: int
    body: str
    login: str
    type: str = "User"

    def to_json(self, base: str, repo: str) -> dict:
        return {
            "id": self.id, "node_id": f"IC_{self.id}", "body": self.body,
            "url": f"{base}/repos/{repo}/issues/comments/{self.id}",
            "html_url": f"https://github.com/{repo}/pull/{self.number}#issuecomment-{self.id}",
            "issue_url": f"{base}/repos/{repo}/issues/{self.number}",
            "user": {"login": self.login, "type": self.type},
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
        }


@dataclass
class FakeRepo:
    pulls: dict[int, list[FakeComment]] = field(default_factory=dict)


class FakeGitHub:
    def __init__(self, tls: TestTLS):
        self.server = LoopbackServer(tls, self._app)
        self.url = self.server.url
        self._lock = threading.Lock()
        self.reset()

    def close(self) -> None:
        self.server.close()

    def reset(self) -> None:
        with self._lock:
            self.repos: dict[str, FakeRepo] = {}
            #: token -> (login, type, can write)
            self.tokens: dict[str, tuple[str, str, bool]] = {TOKEN: (BOT, "Bot", True)}
            self._ids = itertools.count(1_000_001)
            self._rate_limited = 0
            self.link_base: str | None = None  # overrides the host of Link URLs (a hostile server)
        self.server.clear_faults()
        self.server.clear_log()
        self.server.errors.clear()

    # -- state --------------------------------------------------------------------------------------

    def add_pull(self, repo: str, number: int) -> None:
        with self._lock:
            self.repos.setdefault(repo, FakeRepo()).pulls.setdefault(number, [])

    def add_comment(self, repo: str, number: int, body: str, login: str = "someone", type_: str = "User") -> int:
        with self._lock:
            comment = FakeComment(next(self._ids), number, body, login, type_)
            self.repos.setdefault(repo, FakeRepo()).pulls.setdefault(number, []).append(comment)
            return comment.id

    def comments(self, repo: str, number: int) -> list[FakeComment]:
        with self._lock:
            return list(self.repos[repo].pulls[number])

    def rate_limit(self, times: int = 1, reset_in: int = 0) -> None:
        """Answer the next ``times`` requests with 403 and ``X-RateLimit-Remaining: 0``."""
        with self._lock:
            self._rate_limited = times
            self._reset_at = int(time.time()) + reset_in

    # -- the API --------------------------------------------------------------------------------------

    def _app(self, request: Request) -> Response:
        with self._lock:
            if self._rate_limited:
                self._rate_limited -= 1
                return _error(403, "API rate limit exceeded for installation ID 1.",
                              {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(self._reset_at)})
            auth = request.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            user = self.tokens.get(token) if scheme.lower() in ("bearer", "token") else None
            if user is None:
                return _error(401, "Bad credentials")
            login, type_, can_write = user
            if request.method != "GET" and not can_write:
                return _error(403, "Resource not accessible by integration")

            if match := _COMMENTS.match(request.path):
                repo, number = match.group(1), int(match.group(2))
                comments = self.repos.get(repo, FakeRepo()).pulls.get(number)
                if comments is None:
                    return _error(404, "Not Found")
                if request.method == "GET":
                    return self._page(request, repo, comments)
                if request.method == "POST":
                    body = _body(request)
                    if isinstance(body, Response):
                        return body
                    comment = FakeComment(next(self._ids), number, body, login, type_)
                    comments.append(comment)
                    return Response.json(201, comment.to_json(self.url, repo))
            elif match := _COMMENT.match(request.path):
                repo, comment_id = match.group(1), int(match.group(2))
                found = [c for pulls in self.repos.get(repo, FakeRepo()).pulls.values() for c in pulls
                         if c.id == comment_id]
                if not found:
                    return _error(404, "Not Found")
                if request.method == "PATCH":
                    body = _body(request)
                    if isinstance(body, Response):
                        return body
                    found[0].body = body
                    return Response.json(200, found[0].to_json(self.url, repo))
            else:
                return _error(404, "Not Found")
            return _error(404, "Not Found")

    def _page(self, request: Request, repo: str, comments: list[FakeComment]) -> Response:
        per_page = max(1, min(100, int(request.query.get("per_page", "30"))))
        page = max(1, int(request.query.get("page", "1")))
        last = max(1, -(-len(comments) // per_page))
        shown = comments[(page - 1) * per_page: page * per_page]
        base = (self.link_base or self.url) + request.path

        def link(n: int, rel: str) -> str:
            return f'<{base}?{urlencode({"per_page": per_page, "page": n})}>; rel="{rel}"'

        links = []
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        headers = {"Link": ", ".join(links)} if links else {}
        return Response.json(200, [c.to_json(self.url, repo) for c in shown], headers)


def _body(request: Request) -> str | Response:
    try:
        value = json.loads(request.body or b"null")
    except ValueError:
        return _error(400, "Problems parsing JSON")
    if not isinstance(value, dict) or not isinstance(value.get("body"), str):
        return _error(422, "Invalid request.\n\n\"body\" wasn't supplied.")
    if len(value["body"]) > LIMIT:
        return Response.json(422, {"message": "Validation Failed", "documentation_url": DOCS, "errors": [
            {"resource": "IssueComment", "code": "custom", "field": "body",
             "message": f"body is too long (maximum is {LIMIT} characters)"}]})
    return value["body"]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json(status, {"message": message, "documentation_url": DOCS, "status": str(status)}, headers)
