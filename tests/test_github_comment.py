"""``rjsync github comment`` against a loopback fake of GitHub's REST API (tests/fakes/github.py).

One comment per marker and pull request: created the first time, edited after that, found on
any page; errors as sentences; never two comments for one marker, not even when an answer is
lost; the token never printed and never sent anywhere but the API.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import rjsync.github
from fakes.github import BOT, TOKEN, FakeGitHub
from rjsync.cli import cli
from rjsync.engine.render import MARKDOWN_MARKER
from rjsync.github import Comment, GitHub, find_marked
from rjsync.markdown import GITHUB_COMMENT_LIMIT

REPO = "contoso/runbooks"
PR = 7
PLAN = f"{MARKDOWN_MARKER}\n### 📝 rjsync plan for `local:x`\n\n**1 to create.**\n"
EXAMPLE = Path(__file__).resolve().parent.parent / "runbooks"


@pytest.fixture(scope="session")
def _github_server(tls):
    fake = FakeGitHub(tls)
    yield fake
    fake.close()


@pytest.fixture
def github(_github_server, tls, monkeypatch):
    """The fake with pull request REPO#PR, and the environment a pull_request workflow has."""
    _github_server.reset()
    _github_server.add_pull(REPO, PR)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_path))
    monkeypatch.setenv("GITHUB_API_URL", _github_server.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    for name in ("GITHUB_EVENT_PATH", "GITHUB_REF", "GH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    waits: list[float] = []
    monkeypatch.setattr(rjsync.github, "_pause", waits.append)  # retries don't sleep in tests
    _github_server.waits = waits
    yield _github_server
    assert not _github_server.server.errors, _github_server.server.errors[0]


def comment(*args, input: str | None = PLAN):
    return CliRunner().invoke(cli, ["github", "comment", *[str(a) for a in args]], input=input)


def bodies(github, number: int = PR) -> list[str]:
    return [c.body for c in github.comments(REPO, number)]


# -- create, edit, find -----------------------------------------------------------------------------


def test_github_comment_creates_the_comment_the_first_time(github):
    result = comment("--pr", PR)

    assert result.exit_code == 0, result.output
    assert bodies(github) == [PLAN]
    (created,) = github.comments(REPO, PR)
    assert created.login == BOT
    assert result.output == (f"Created the comment {MARKDOWN_MARKER} on {REPO}#{PR}: "
                             f"https://github.com/{REPO}/pull/{PR}#issuecomment-{created.id}\n")
    get, post = github.server.requests()
    assert (get.method, get.query) == ("GET", {"per_page": "100"})
    assert (post.method, post.path) == ("POST", f"/repos/{REPO}/issues/{PR}/comments")


def test_github_comment_edits_its_comment_the_second_time_instead_of_adding_one(github):
    github.add_comment(REPO, PR, "LGTM")
    assert comment("--pr", PR).exit_code == 0
    (first_id,) = [c.id for c in github.comments(REPO, PR) if c.body == PLAN]
    newer = PLAN.replace("1 to create", "2 to create")

    result = comment("--pr", PR, input=newer)

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Updated the comment {MARKDOWN_MARKER} on {REPO}#{PR}: ")
    assert bodies(github) == ["LGTM", newer]
    assert github.comments(REPO, PR)[1].id == first_id
    assert [r.method for r in github.server.requests()][-2:] == ["GET", "PATCH"]
    assert github.server.requests("PATCH")[0].path == f"/repos/{REPO}/issues/comments/{first_id}"


def test_github_comment_adds_the_marker_when_the_body_lacks_it(github):
    assert comment("--pr", PR, input="Hello\n").exit_code == 0
    assert comment("--pr", PR, input="Hello again\n").exit_code == 0

    assert bodies(github) == [f"{MARKDOWN_MARKER}\nHello again\n"]


def test_github_comment_finds_its_comment_on_the_second_page(github):
    for i in range(130):
        github.add_comment(REPO, PR, f"review comment {i}")
    marked = github.add_comment(REPO, PR, PLAN, login=BOT, type_="Bot")
    for i in range(20):
        github.add_comment(REPO, PR, f"later comment {i}")

    result = comment("--pr", PR, input=PLAN + "\nnewer\n")

    assert result.exit_code == 0, result.output
    gets = github.server.requests("GET")
    assert [r.query for r in gets] == [{"per_page": "100"}, {"per_page": "100", "page": "2"}]
    assert len(github.comments(REPO, PR)) == 151  # edited, not added
    assert [c.body for c in github.comments(REPO, PR) if c.id == marked] == [PLAN + "\nnewer\n"]


def test_github_comment_markers_keep_their_own_comments(github):
    assert comment("--pr", PR, "--marker", "rjsync-plan:prod", input="prod plan\n").exit_code == 0
    assert comment("--pr", PR, "--marker", "<!-- rjsync-plan:test -->", input="test plan\n").exit_code == 0
    assert comment("--pr", PR, input=PLAN).exit_code == 0
    assert comment("--pr", PR, "--marker", "rjsync-plan:prod", input="prod plan 2\n").exit_code == 0
    assert comment("--pr", PR, "--marker", "<!-- rjsync-plan:test -->", input="test plan 2\n").exit_code == 0

    assert bodies(github) == ["<!-- rjsync-plan:prod -->\nprod plan 2\n", "<!-- rjsync-plan:test -->\ntest plan 2\n",
                              PLAN]


def test_github_comment_prefers_the_actions_bot_comment_when_several_carry_the_marker(github):
    github.add_comment(REPO, PR, PLAN + "\nquoted by a human\n", login="alice")
    ours = github.add_comment(REPO, PR, PLAN, login=BOT, type_="Bot")

    assert comment("--pr", PR, input=PLAN + "\nnew\n").exit_code == 0

    assert [c.body for c in github.comments(REPO, PR) if c.id == ours] == [PLAN + "\nnew\n"]
    assert github.comments(REPO, PR)[0].body == PLAN + "\nquoted by a human\n"


def test_github_comment_marker_counts_only_on_the_first_line():
    quoted = Comment(1, f"> {MARKDOWN_MARKER}\n> quoted", "alice", "User", "")
    mentioned = Comment(2, f"see below\n{MARKDOWN_MARKER}", "alice", "User", "")
    other_bot = Comment(3, f"{MARKDOWN_MARKER}\n", "renovate[bot]", "Bot", "")
    human = Comment(4, f"\ufeff\r\n{MARKDOWN_MARKER}\r\nplan", "alice", "User", "")

    assert find_marked([quoted, mentioned], MARKDOWN_MARKER) is None
    assert find_marked([human, other_bot], MARKDOWN_MARKER) is other_bot
    assert find_marked([human], MARKDOWN_MARKER) is human
    assert find_marked([other_bot], "<!-- rjsync-plan:prod -->") is None


def test_github_comment_truncates_a_body_over_githubs_limit(github):
    rows = "".join(f"| create | `rjgit-user_generated_runbook-{i:05d}` | new in the source |\n" for i in range(1200))
    long_body = f"{PLAN}\n<details><summary>Runbook changes</summary>\n\n{rows}\n</details>\n"
    assert len(long_body) > GITHUB_COMMENT_LIMIT

    result = comment("--pr", PR, input=long_body)

    assert result.exit_code == 0, result.output
    (posted,) = bodies(github)
    assert len(posted) <= GITHUB_COMMENT_LIMIT
    assert posted.startswith(PLAN)
    assert f"Truncated: the full text has {len(long_body):,} characters" in posted
    assert posted.count("<details") == posted.count("</details>")  # the cut section is closed
    assert "\n| create | `rjgit-user_generated_runbook-" in posted.rsplit("</details>", 1)[0][-200:]


def test_github_comment_reads_the_body_from_a_file(github, tmp_path):
    path = tmp_path / "plan.md"
    path.write_bytes(b"\xef\xbb\xbf" + PLAN.replace("\n", "\r\n").encode())

    assert comment(path, "--pr", PR, input=None).exit_code == 0

    assert bodies(github) == [PLAN]


def test_github_comment_end_to_end_posts_the_markdown_plan(github, tmp_path):
    """``rjsync plan --format markdown`` piped into ``rjsync github comment``, twice: one comment."""
    runner = CliRunner()
    args = ["plan", "--source", str(EXAMPLE), "--target", f"local:{tmp_path / 'account'}", "--format", "markdown"]
    plan = runner.invoke(cli, args)
    assert plan.exit_code == 0, plan.output
    assert plan.output.startswith(MARKDOWN_MARKER)

    for _ in range(2):
        assert comment("--pr", PR, input=plan.output).exit_code == 0

    assert bodies(github) == [plan.output]


# -- where the pull request comes from ------------------------------------------------------------


def test_github_comment_reads_the_pull_request_from_the_workflow_event(github, tmp_path, monkeypatch):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": PR, "pull_request": {"number": PR}}))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))

    assert comment().exit_code == 0

    assert bodies(github) == [PLAN]


def test_github_comment_reads_the_pull_request_from_the_ref(github, tmp_path, monkeypatch):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"schedule": "0 * * * *"}))  # not a pull request event
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    monkeypatch.setenv("GITHUB_REF", f"refs/pull/{PR}/merge")

    assert comment().exit_code == 0
    assert bodies(github) == [PLAN]


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unset, args, message", [
    ("GITHUB_TOKEN", ("--pr", PR), "Error: No GitHub token: set GITHUB_TOKEN (in a workflow: env: GITHUB_TOKEN: "
                                   "${{ github.token }}, with permissions: pull-requests: write).\n"),
    ("GITHUB_REPOSITORY", ("--pr", PR), "Error: No repository: pass --repo OWNER/NAME, or set GITHUB_REPOSITORY "
                                        "(GitHub Actions does).\n"),
    (None, (), "Error: No pull request to comment on: pass --pr N, or run in a workflow triggered by "
               "pull_request (its event names the pull request).\n"),
    (None, ("--pr", PR, "--repo", "not a repo"), "Error: The repository 'not a repo' is not OWNER/NAME.\n"),
    (None, ("--pr", PR, "--marker", "a -- b"), "Error: The marker 'a -- b' is not usable: give a name of letters, "
     "digits and . _ : / - (e.g. --marker rjsync-plan:prod), or an HTML comment like '<!-- rjsync-plan:prod -->'.\n"),
])
def test_github_comment_missing_inputs_are_clear_errors(github, monkeypatch, unset, args, message):
    if unset:
        monkeypatch.delenv(unset)

    result = comment(*args)

    assert (result.exit_code, result.output) == (1, message)
    assert github.server.requests() == []


def test_github_comment_empty_body_is_an_error(github):
    result = comment("--pr", PR, input="\n  \n")

    assert result.exit_code == 1
    assert result.output == ("Error: The comment body (standard input) is empty: nothing to post. "
                             "Did the step before fail?\n")


def test_github_comment_rejected_token_says_so_without_showing_it(github, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_wrong-secret-value")

    result = comment("--pr", PR)

    assert result.exit_code == 1
    assert result.output == (f"Error: GitHub rejected the token (HTTP 401: Bad credentials) trying to read the "
                             f"comments of {REPO}#{PR}. Set GITHUB_TOKEN to a valid token; in a workflow: env: "
                             "GITHUB_TOKEN: ${{ github.token }}.\n")
    assert "wrong-secret" not in result.output
    assert bodies(github) == []


def test_github_comment_read_only_token_names_the_missing_permission(github):
    github.tokens[TOKEN] = (BOT, "Bot", False)

    result = comment("--pr", PR)

    assert result.exit_code == 1
    assert result.output == (f"Error: GitHub refused to let the token comment on {REPO}#{PR} (HTTP 403: Resource "
                             "not accessible by integration). The token needs write access to pull requests: in a "
                             "workflow, add 'permissions: pull-requests: write' (pull requests from forks get a "
                             "read-only token).\n")


def test_github_comment_unknown_pull_request_is_a_404_sentence(github):
    result = comment("--pr", 999)

    assert result.exit_code == 1
    assert result.output == (f"Error: GitHub found nothing to read the comments of {REPO}#999 (HTTP 404: Not Found): "
                             f"check --repo and --pr, and that the token can see the repository (API {github.url}).\n")


def test_github_comment_waits_out_a_secondary_rate_limit(github):
    github.server.fail(429, method="GET", times=2, retry_after="3")

    result = comment("--pr", PR)

    assert result.exit_code == 0, result.output
    assert github.waits == [3.0, 3.0]
    assert bodies(github) == [PLAN]


def test_github_comment_retries_a_short_primary_rate_limit(github):
    github.rate_limit(times=1, reset_in=0)

    assert comment("--pr", PR).exit_code == 0
    assert len(github.waits) == 1 and 0 < github.waits[0] <= 2
    assert bodies(github) == [PLAN]


def test_github_comment_fails_clearly_when_the_rate_limit_lasts(github):
    github.rate_limit(times=1, reset_in=3600)

    result = comment("--pr", PR)

    assert result.exit_code == 1
    assert re.fullmatch(r"Error: GitHub's API rate limit stops rjsync from being able to read the comments of "
                        r"contoso/runbooks#7 until \d\d:\d\d:\d\d UTC \(HTTP 403: API rate limit exceeded for "
                        r"installation ID 1\.\)\. Run the job again later\.\n", result.output), result.output
    assert github.waits == []  # an hour is not waited for


def test_github_comment_retries_server_errors_of_reads(github):
    github.server.fail(502, method="GET", times=2)

    assert comment("--pr", PR).exit_code == 0
    assert github.waits == [1.0, 2.0]
    assert bodies(github) == [PLAN]


def test_github_comment_lost_answer_to_post_does_not_post_twice(github):
    github.server.drop(method="POST", times=1, after=True)  # created, but the answer never comes

    result = comment("--pr", PR)

    assert result.exit_code == 0, result.output
    assert bodies(github) == [PLAN]
    assert [r.method for r in github.server.requests()] == ["GET", "POST", "GET", "PATCH"]
    assert result.output.startswith("Updated the comment")


def test_github_comment_unreachable_api_is_a_network_error(github, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("GITHUB_API_URL", f"https://127.0.0.1:{port}")

    result = comment("--pr", PR)

    assert result.exit_code == 1
    assert result.output.startswith(f"Error: Cannot reach the GitHub API at https://127.0.0.1:{port} to read the "
                                    f"comments of {REPO}#{PR}: ")
    assert result.output.endswith("Check the network (and --api-url / GITHUB_API_URL).\n")
    assert "Connection refused" in result.output
    assert github.waits == [1.0, 2.0, 4.0]


def test_github_comment_never_sends_the_token_to_another_host(github):
    for i in range(101):
        github.add_comment(REPO, PR, f"comment {i}")
    github.link_base = "https://attacker.invalid"

    result = comment("--pr", PR)

    assert result.exit_code == 1
    assert result.output == (f"Error: GitHub's answer pointed to https://attacker.invalid, not to the API at "
                             f"{github.url}; refusing to send the token there.\n")


def test_github_client_retries_then_reports_a_failing_write(github):
    github.server.fail(500, method="PATCH")
    github.add_comment(REPO, PR, PLAN, login=BOT, type_="Bot")
    client = GitHub(TOKEN, github.url, retries=1, sleep=lambda s: None)

    with pytest.raises(rjsync.github.GitHubError) as caught:
        client.upsert_comment(REPO, PR, PLAN, MARKDOWN_MARKER)

    assert caught.value.transient and caught.value.status == 500
    assert len(github.server.requests("PATCH")) == 2  # a PATCH is idempotent: retried
    assert len(github.comments(REPO, PR)) == 1


@pytest.mark.parametrize("api_url, says", [
    ("http://github.example.com/api/v3", "is plain http: the token would cross the network unencrypted"),
    ("ftp://github.example.com", "is not an https URL"),
    ("https://github.example.com/api/v3?access_token=s3cret", "has a query or fragment"),
])
def test_github_comment_sends_the_token_only_over_https(github, monkeypatch, api_url, says):
    monkeypatch.setenv("GITHUB_API_URL", api_url)

    result = comment("--pr", PR)

    assert result.exit_code == 1
    assert says in result.output
    assert "s3cret" not in result.output
    assert github.server.requests() == []


def test_github_comment_plain_http_to_loopback_is_allowed():
    assert GitHub(TOKEN, "http://127.0.0.1:9/").api_url == "http://127.0.0.1:9"
    assert GitHub(TOKEN, "http://localhost:9").api_url == "http://localhost:9"


def test_github_comment_never_echoes_an_api_url_password(github, monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", github.url.replace("https://", "https://bot:s3cret@"))

    result = comment("--pr", PR)

    assert result.exit_code == 1
    assert "carries credentials" in result.output
    assert "s3cret" not in result.output


def test_github_comment_truncation_with_nested_sections_and_an_open_fence_stays_under_the_limit(github):
    # Issue 14, finding 8: nested <details> and a code block open at the cut made the posted body
    # 65,559 characters. Whatever is open at the cut is closed inside the limit.
    head = PLAN + "".join(f"\n<details><summary>level {n}</summary>\n\n" for n in range(20))
    fence = "```text\n" + "x\n" * 40_000
    long_body = head + fence + "```\n" + "</details>\n\n" * 20
    assert len(long_body) > GITHUB_COMMENT_LIMIT

    result = comment("--pr", PR, input=long_body)

    assert result.exit_code == 0, result.output
    (posted,) = bodies(github)
    assert len(posted) <= GITHUB_COMMENT_LIMIT
    assert posted.count("<details>") == posted.count("</details>") == 20
    assert posted.count("```") % 2 == 0
