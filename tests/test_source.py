"""Sources: folders and git repositories at a ref, the cache, and refused input."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from rjsync.errors import SourceError
from rjsync.source import cache_root, open_source

SCRIPT = b"<#\n.SYNOPSIS\nHi.\n#>\nparam([string]$Name)\n"


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def upstream(tmp_path) -> Path:
    """A small upstream repository: main with two commits, a tag and a feature branch."""
    repo = tmp_path / "upstream"
    (repo / "user" / "general").mkdir(parents=True)
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    (repo / "user" / "general" / "one.ps1").write_bytes(SCRIPT)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one")
    git(repo, "tag", "v1")
    (repo / "user" / "general" / "two.ps1").write_bytes(SCRIPT)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "two")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "org" / "general").mkdir(parents=True)
    (repo / "org" / "general" / "three.ps1").write_bytes(SCRIPT)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "three")
    git(repo, "checkout", "-q", "main")
    return repo


def paths(checkout):
    return sorted(f.path for f in checkout.files)


def test_open_source_reads_a_git_repository_at_a_branch_tag_or_commit(upstream):
    url = upstream.as_uri()
    main = git(upstream, "rev-parse", "main")
    v1 = git(upstream, "rev-parse", "v1^{commit}")
    feature = git(upstream, "rev-parse", "feature")

    at_main = open_source(url, "main")
    assert (at_main.info.kind, at_main.info.commit) == ("git", main)
    assert paths(at_main) == ["user/general/one.ps1", "user/general/two.ps1"]
    assert paths(open_source(url, "v1")) == ["user/general/one.ps1"]
    assert open_source(url, "feature").info.commit == feature
    assert open_source(url, feature).info.commit == feature
    assert paths(open_source(url, v1[:8])) == ["user/general/one.ps1"]
    assert open_source(url).info.commit == main  # the default branch


def test_open_source_accepts_a_local_repository_path_with_a_ref(upstream):
    checkout = open_source(str(upstream), "v1")
    assert checkout.info.commit == git(upstream, "rev-parse", "v1^{commit}")


def test_open_source_caches_and_fetches_only_what_changed(upstream):
    url = upstream.as_uri()
    open_source(url, "main")
    cached = list((cache_root() / "git").glob("*.git"))
    assert len(cached) == 1
    (upstream / "user" / "general" / "four.ps1").write_bytes(SCRIPT)
    git(upstream, "add", "-A")
    git(upstream, "commit", "-q", "-m", "four")
    again = open_source(url, "main")
    assert "user/general/four.ps1" in paths(again)
    assert list((cache_root() / "git").glob("*.git")) == cached


def test_open_source_names_an_unknown_ref(upstream):
    with pytest.raises(SourceError) as error:
        open_source(upstream.as_uri(), "no-such-branch")
    assert str(error.value) == f"ref 'no-such-branch' does not exist in {upstream.as_uri()}"
    # the failed first fetch left nothing behind that would break the next run
    assert list((cache_root() / "git").glob("*.git")) == []
    assert open_source(upstream.as_uri(), "main").info.commit


def test_open_source_names_a_missing_repository(tmp_path):
    url = (tmp_path / "nothing-here").as_uri()
    with pytest.raises(SourceError) as error:
        open_source(url, "main")
    assert str(error.value) == f"{url} is not a git repository (or you have no access to it)"


def test_open_source_reports_an_unreachable_host_without_touching_the_network(monkeypatch):
    # port 9 on loopback: nothing listens, the connection is refused at once
    with pytest.raises(SourceError) as error:
        open_source("http://127.0.0.1:9/realmjoin-runbooks.git", "main")
    assert str(error.value).startswith("cannot reach http://127.0.0.1:9/realmjoin-runbooks.git")


@pytest.mark.parametrize("source, message", [
    ("ext::sh -c touch% /tmp/pwned", "refusing source 'ext::sh -c touch% /tmp/pwned': "
     "transport-helper URLs ('ext::') can run arbitrary commands; use an https, ssh or file URL"),
    ("fd::17", "refusing source 'fd::17': transport-helper URLs ('fd::') can run arbitrary "
     "commands; use an https, ssh or file URL"),
    ("--upload-pack=touch /tmp/pwned", "refusing source '--upload-pack=touch /tmp/pwned': it "
     "starts with '-' and git would read it as an option"),
    ("gopher://example.invalid/repo", "refusing source 'gopher://example.invalid/repo': the "
     "'gopher' transport is not allowed (use one of: file, git, http, https, ssh)"),
])
def test_open_source_refuses_dangerous_urls_before_git_runs(source, message, tmp_path):
    with pytest.raises(SourceError) as error:
        open_source(source, "main")
    assert str(error.value) == message
    assert not (cache_root() / "git").exists()


@pytest.mark.parametrize("ref, reason", [
    ("--output=/tmp/x", "it starts with '-' and git would read it as an option"),
    ("main..evil", "it is not a valid git ref name"),
    ("a b", "it contains a space or one of ~ ^ : ? * [ \\"),
    ("", "it is empty"),
])
def test_open_source_refuses_dangerous_refs(upstream, ref, reason):
    with pytest.raises(SourceError) as error:
        open_source(upstream.as_uri(), ref)
    assert str(error.value) == f"refusing ref {ref!r}: {reason}"


def test_open_source_reads_a_folder_and_skips_symlinks_leading_outside(tmp_path):
    outside = tmp_path / "secret.ps1"
    outside.write_bytes(SCRIPT)
    root = tmp_path / "repo"
    (root / "user" / "general").mkdir(parents=True)
    (root / "user" / "general" / "real.ps1").write_bytes(SCRIPT)
    (root / "user" / "general" / "inside.ps1").symlink_to(root / "user" / "general" / "real.ps1")
    (root / "user" / "general" / "escape.ps1").symlink_to(outside)
    (root / "user" / "linked").symlink_to(tmp_path)
    checkout = open_source(str(root))
    assert checkout.info.kind == "folder" and checkout.info.commit is None
    assert paths(checkout) == ["user/general/inside.ps1", "user/general/real.ps1"]
    assert [(d.severity, d.path, d.message) for d in checkout.diagnostics] == [
        ("warning", "user/linked", "symbolic link to a folder outside the source; skipped"),
        ("warning", "user/general/escape.ps1",
         "symbolic link pointing outside the source; skipped"),
    ]


def test_open_source_skips_symlinks_in_a_git_tree_that_point_outside(upstream):
    (upstream / "user" / "general" / "escape.ps1").symlink_to("../../../etc/passwd")
    (upstream / "user" / "general" / "alias.ps1").symlink_to("one.ps1")
    git(upstream, "add", "-A")
    git(upstream, "commit", "-q", "-m", "links")
    checkout = open_source(upstream.as_uri(), "main")
    assert "user/general/escape.ps1" not in paths(checkout)
    assert "user/general/alias.ps1" in paths(checkout)
    assert [(d.path, d.message) for d in checkout.diagnostics] == [
        ("user/general/escape.ps1", "symbolic link pointing outside the source; skipped")]


@pytest.mark.parametrize("bad", ["..", ".git", ".GIT", "."])
def test_open_source_skips_a_git_tree_entry_git_refuses_and_reads_the_rest(upstream, bad):
    # A hostile tree (git's fsck refuses it, `git mktree` makes it): user/<bad>/evil.ps1 beside
    # user/general. GitPython's traversal raised ValueError on the whole tree.
    blob = git(upstream, "hash-object", "-w", "user/general/one.ps1")
    evil = subprocess.run(["git", "mktree"], cwd=upstream, input=f"100644 blob {blob}\tevil.ps1\n",
                          capture_output=True, text=True, check=True).stdout.strip()
    general = git(upstream, "rev-parse", "HEAD:user/general")
    user = subprocess.run(["git", "mktree"], cwd=upstream, capture_output=True, text=True, check=True,
                          input=f"040000 tree {evil}\t{bad}\n040000 tree {general}\tgeneral\n").stdout.strip()
    top = subprocess.run(["git", "mktree"], cwd=upstream, input=f"040000 tree {user}\tuser\n",
                         capture_output=True, text=True, check=True).stdout.strip()
    commit = git(upstream, "commit-tree", top, "-m", "hostile")
    git(upstream, "update-ref", "refs/heads/hostile", commit)

    checkout = open_source(upstream.as_uri(), "hostile")

    assert paths(checkout) == ["user/general/one.ps1", "user/general/two.ps1"]
    assert [(d.path, d.message) for d in checkout.diagnostics] == [
        (f"user/{bad}/evil.ps1", "a path git itself refuses ('.', '..' or '.git' in it); skipped")]


def test_open_source_records_the_commit_of_a_folder_inside_a_repository(upstream):
    checkout = open_source(str(upstream / "user"))
    assert checkout.info.commit == git(upstream, "rev-parse", "HEAD")
    assert checkout.info.dirty is False
    (upstream / "user" / "general" / "new.ps1").write_bytes(SCRIPT)
    assert open_source(str(upstream / "user")).info.dirty is True


def test_open_source_explains_a_missing_folder_and_a_ref_on_a_plain_folder(tmp_path):
    with pytest.raises(SourceError) as error:
        open_source(str(tmp_path / "nope"))
    assert "does not exist" in str(error.value)
    with pytest.raises(SourceError) as error:
        open_source(str(tmp_path), "main")
    assert str(error.value) == (f"source {str(tmp_path)!r} is a folder, not a git repository, "
                                "so --ref 'main' cannot be used with it")


def test_open_source_never_shows_credentials_in_a_url():
    with pytest.raises(SourceError) as error:
        open_source("https://x-access-token:ghs_SECRET@127.0.0.1:9/o/r.git", "main")
    assert "SECRET" not in str(error.value)
    assert str(error.value).startswith("cannot reach https://***@127.0.0.1:9/o/r.git")


def fsmonitor_trap(repo: Path, marker: Path) -> None:
    """Make the repository's config run a command (creating MARKER) from git diff or status."""
    hook = repo / ".git" / "monitor.sh"
    hook.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n")
    hook.chmod(0o755)
    git(repo, "config", "core.fsmonitor", str(hook))


def test_open_source_runs_nothing_from_a_folders_git_config(upstream, tmp_path):
    marker = tmp_path / "ran"
    fsmonitor_trap(upstream, marker)
    (upstream / "user" / "general" / "one.ps1").write_bytes(SCRIPT + b"# changed\n")

    checkout = open_source(str(upstream))

    assert not marker.exists(), "core.fsmonitor of the folder's repository ran"
    assert checkout.info.commit == git(upstream, "rev-parse", "HEAD")
    assert checkout.info.dirty is True


def test_open_source_runs_nothing_from_a_parent_repositorys_git_config(upstream, tmp_path):
    marker = tmp_path / "ran"
    fsmonitor_trap(upstream, marker)

    checkout = open_source(str(upstream / "user"))

    assert not marker.exists(), "core.fsmonitor of the parent repository ran"
    assert checkout.info.dirty is False


def test_open_source_skips_a_symlink_into_the_git_folder_with_a_warning(upstream):
    git(upstream, "config", "http.extraheader", "Authorization: Basic c2VjcmV0")
    (upstream / "user" / "general" / "notes.ps1").symlink_to("../../.git/config")

    checkout = open_source(str(upstream))

    assert "user/general/notes.ps1" not in paths(checkout)
    assert all(b"c2VjcmV0" not in f.data for f in checkout.files)
    assert [(d.severity, d.path, d.message) for d in checkout.diagnostics] == [
        ("warning", "user/general/notes.ps1", "symbolic link into the .git folder; skipped")]


@pytest.fixture
def http_git(upstream, tmp_path):
    """The upstream repository over smart HTTP (git http-backend), behind Basic authentication
    with user 'x-access-token' and password 's3cr3t'; yields the URL without credentials."""
    import base64
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    served = tmp_path / "served"
    served.mkdir()
    git(served, "clone", "-q", "--bare", str(upstream), "repo.git")
    expected = "Basic " + base64.b64encode(b"x-access-token:s3cr3t").decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.serve()

        def do_POST(self):
            self.serve()

        def serve(self):
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(served),
                   "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path, "QUERY_STRING": query,
                   "REQUEST_METHOD": self.command, "REMOTE_USER": "x-access-token",
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                   "CONTENT_LENGTH": str(len(body))}
            if self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            out = subprocess.run(["git", "http-backend"], input=body, env=env,
                                 capture_output=True, check=True).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            headers = [line.split(":", 1) for line in head.decode().splitlines() if ":" in line]
            status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
            self.send_response(status)
            for key, value in headers:
                if key.lower() != "status":
                    self.send_header(key, value.strip())
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/repo.git"
    server.shutdown()
    server.server_close()


def cache_configs() -> str:
    return "".join(p.read_text() for p in (cache_root() / "git").glob("*/config"))


def test_open_source_keeps_no_credentials_in_the_git_cache(http_git):
    url = http_git.replace("http://", "http://x-access-token:s3cr3t@")

    first = open_source(url, "main")
    again = open_source(url)

    assert first.info.commit and again.info.commit
    assert "s3cr3t" not in first.info.location
    assert "s3cr3t" not in cache_configs()
    assert http_git in cache_configs()


def test_open_source_needs_the_credentials_of_the_url_on_every_fetch(http_git):
    open_source(http_git.replace("http://", "http://x-access-token:s3cr3t@"), "main")
    with pytest.raises(SourceError):
        open_source(http_git.replace("http://", "http://x-access-token:wrong@"), "feature")


def test_open_source_removes_scratch_folders_a_killed_fetch_left(upstream):
    from rjsync.source import _cache_dir
    url = upstream.as_uri()
    entry = _cache_dir(url)
    entry.parent.mkdir(parents=True)
    mine = entry.parent / f".new-{entry.name}-k1ll3d"
    old = entry.parent / ".new-abcd1234"
    recent_other = entry.parent / ".new-other.git-x1"
    for scratch in (mine, old, recent_other):
        scratch.mkdir()
        (scratch / "config").write_text("[remote \"origin\"]\n\turl = https://u:s3cr3t@host/r\n")
    os.utime(old, (1, 1))

    open_source(url, "main")

    assert not mine.exists() and not old.exists()
    assert recent_other.exists()  # another entry's fetch may be running


@pytest.mark.parametrize("url, shown", [
    ("https://host/repo.git?token=abc123", "https://host/repo.git?token=***"),
    ("https://host/r?ref=main&ACCESS_TOKEN=abc&x=1", "https://host/r?ref=main&ACCESS_TOKEN=***&x=1"),
    ("https://acct.blob.core.windows.net/m.zip?sv=2022&sig=abc%2Bdef", "https://acct.blob.core.windows.net/m.zip?sv=2022&sig=***"),
    ("https://u:p@host/r?Password=pw&api-key=k", "https://***@host/r?Password=***&api-key=***"),
])
def test_redact_masks_token_like_query_parameters(url, shown):
    from rjsync.source import redact
    assert redact(url) == shown
