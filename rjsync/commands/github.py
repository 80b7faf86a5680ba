"""``rjsync github comment``: keep ONE comment on a pull request up to date.

Reads a markdown body (``rjsync plan --format markdown`` output, or anything else), makes sure
its first line is a hidden marker, and edits the pull request's comment that starts with the
same marker, or creates it. Each marker keeps its own comment, so several jobs can share a pull
request. Inputs come from options or from what GitHub Actions sets: ``GITHUB_REPOSITORY``,
``GITHUB_EVENT_PATH`` (the pull request number), ``GITHUB_TOKEN``, ``GITHUB_API_URL``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping

import click

from rjsync.engine.render import MARKDOWN_MARKER
from rjsync.errors import RjsyncError
from rjsync.github import DEFAULT_API_URL, GitHub
from rjsync.markdown import GITHUB_COMMENT_LIMIT, cut_markdown

_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_PULL_REF = re.compile(r"^refs/pull/(\d+)/(?:merge|head)$")
_MARKER_NAME = re.compile(r"^[A-Za-z0-9_.:/ -]+$")


def resolve_marker(marker: str | None) -> str:
    """``None`` -> the plan marker; ``<!-- x -->`` as given; a bare name ``x`` -> ``<!-- x -->``."""
    if not marker:
        return MARKDOWN_MARKER
    marker = marker.strip()
    if marker.startswith("<!--") and marker.endswith("-->") and len(marker) > 7:
        inner = marker[4:-3].strip()
    else:
        inner = marker
    if not inner or "--" in inner or not _MARKER_NAME.match(inner):
        raise RjsyncError(f"The marker {marker!r} is not usable: give a name of letters, digits and . _ : / - "
                          "(e.g. --marker rjsync-plan:prod), or an HTML comment like '<!-- rjsync-plan:prod -->'.")
    return f"<!-- {inner} -->" if not marker.startswith("<!--") else marker


def with_marker(body: str, marker: str) -> str:
    """``body`` whose first line is ``marker`` (added unless it is already there)."""
    body = body.lstrip("\ufeff")
    if body.split("\n", 1)[0].strip() == marker:
        return body
    return f"{marker}\n{body}"


def truncate(body: str, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """``body`` cut at a line to fit GitHub's limit, with a note; open ``<details>`` are closed."""
    note = (f"\n\n> [!NOTE]\n> Truncated: the full text has {len(body):,} characters, more than the "
            f"{limit:,} GitHub allows in a comment. The job summary and `rjsync plan --format json` have all of it.\n")
    return cut_markdown(body, limit, note)


def pr_number(pr: int | None, environ: Mapping[str, str]) -> int:
    """--pr, else the pull request of the workflow's event, else refs/pull/N/merge."""
    if pr is not None:
        return pr
    event_path = environ.get("GITHUB_EVENT_PATH")
    if event_path:
        try:
            with open(event_path, encoding="utf-8") as handle:
                event = json.load(handle)
        except (OSError, ValueError) as err:
            raise RjsyncError(f"Cannot read the workflow event {event_path} (GITHUB_EVENT_PATH): {err}; "
                              "pass --pr N.") from None
        for holder in (event.get("pull_request"), event.get("issue") if event.get("issue", {}).get("pull_request")
                       else None):
            if isinstance(holder, dict) and isinstance(holder.get("number"), int):
                return holder["number"]
    match = _PULL_REF.match(environ.get("GITHUB_REF", ""))
    if match:
        return int(match.group(1))
    raise RjsyncError("No pull request to comment on: pass --pr N, or run in a workflow triggered by "
                      "pull_request (its event names the pull request).")


def read_body(path: str) -> str:
    if path == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8")
        where = "standard input"
    else:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as err:
            raise RjsyncError(f"Cannot read the comment body {path}: {err.strerror or err}.") from None
        where = path
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RjsyncError(f"The comment body ({where}) is not UTF-8 text.") from None
    if not text.strip():
        raise RjsyncError(f"The comment body ({where}) is empty: nothing to post. Did the step before fail?")
    return text.replace("\r\n", "\n")


def run(body_path: str = "-", *, marker: str | None = None, repo: str | None = None, pr: int | None = None,
        api_url: str | None = None, environ: Mapping[str, str] | None = None, client: GitHub | None = None) -> int:
    environ = os.environ if environ is None else environ
    marker = resolve_marker(marker)
    repo = repo or environ.get("GITHUB_REPOSITORY")
    if not repo:
        raise RjsyncError("No repository: pass --repo OWNER/NAME, or set GITHUB_REPOSITORY (GitHub Actions does).")
    if not _REPO.match(repo):
        raise RjsyncError(f"The repository {repo!r} is not OWNER/NAME.")
    number = pr_number(pr, environ)
    token = environ.get("GITHUB_TOKEN") or environ.get("GH_TOKEN")
    if client is None and not token:
        raise RjsyncError("No GitHub token: set GITHUB_TOKEN (in a workflow: env: GITHUB_TOKEN: ${{ github.token }}, "
                          "with permissions: pull-requests: write).")
    body = truncate(with_marker(read_body(body_path), marker))

    owned = client is None
    github = client or GitHub(token or "", api_url or environ.get("GITHUB_API_URL") or DEFAULT_API_URL)
    try:
        done = github.upsert_comment(repo, number, body, marker)
    finally:
        if owned:
            github.close()
    where = done.comment.html_url or f"{repo}#{number}"
    click.echo(f"{done.action.capitalize()} the comment {marker} on {repo}#{number}: {where}")
    return 0
