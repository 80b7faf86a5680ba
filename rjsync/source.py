"""Sources: a folder, or a git repository (URL or local path) at a ref. The only module that runs git.

A git source is fetched into a bare repository in the cache (``$RJSYNC_CACHE``, default
``~/.cache/rjsync``), shallow where the server allows it, and read straight from git's object
store: nothing is checked out, so an interrupted run leaves at most an incomplete fetch that the
next one repairs. A new cache entry is built in a temporary folder and moved into place only when
its first fetch succeeded.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import filelock
import git

from rjsync.catalog.model import Diagnostic, SourceFile, SourceInfo
from rjsync.errors import SourceError
from rjsync.folder_commit import READ_SUFFIXES as _READ_SUFFIXES
from rjsync.folder_commit import folder_commit

# Sidecars and scripts are small; anything bigger is not a runbook file.
MAX_FILE_BYTES = 5 * 1024 * 1024
_HELPER_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:")
_ALLOWED_SCHEMES = {"https", "http", "ssh", "git", "file"}
_HEX = re.compile(r"^[0-9a-fA-F]{4,40}$")

# Git may only use these transports, whatever the URL or a repository's config says.
_GIT_ENV = {
    "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "echo",
    "GIT_LFS_SKIP_SMUDGE": "1",
}


@dataclass(frozen=True)
class Checkout:
    """What a source holds: where it came from, its files, and what was skipped."""

    info: SourceInfo
    files: tuple[SourceFile, ...]
    diagnostics: tuple[Diagnostic, ...] = ()


def cache_root() -> Path:
    configured = os.environ.get("RJSYNC_CACHE")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "rjsync"


# --------------------------------------------------------------------------- validation


def check_url(url: str) -> None:
    """Refuse URLs that would make git run something or read an option."""
    url = redact(url)
    if url.startswith("-"):
        raise SourceError(f"refusing source {url!r}: it starts with '-' and git would read it "
                          "as an option")
    if _HELPER_URL.match(url):
        raise SourceError(f"refusing source {url!r}: transport-helper URLs ('{url.split('::')[0]}::') "
                          "can run arbitrary commands; use an https, ssh or file URL")
    scheme = _SCHEME.match(url)
    if scheme and scheme.group(1).lower() not in _ALLOWED_SCHEMES:
        raise SourceError(f"refusing source {url!r}: the {scheme.group(1)!r} transport is not "
                          f"allowed (use one of: {', '.join(sorted(_ALLOWED_SCHEMES))})")
    if any(ord(c) < 32 for c in url):
        raise SourceError(f"refusing source {url!r}: it contains control characters")


def check_ref(ref: str) -> None:
    """Refuse refs git would misread; the rules of ``git check-ref-format``, plus no '-'."""
    problem = None
    if not ref:
        problem = "it is empty"
    elif ref.startswith("-"):
        problem = "it starts with '-' and git would read it as an option"
    elif any(ord(c) < 32 or c in " ~^:?*[\\\x7f" for c in ref):
        problem = "it contains a space or one of ~ ^ : ? * [ \\"
    elif ".." in ref or "@{" in ref or ref.endswith((".", "/", ".lock")) or "//" in ref \
            or ref.startswith("/") or any(p.startswith(".") for p in ref.split("/")):
        problem = "it is not a valid git ref name"
    if problem:
        raise SourceError(f"refusing ref {ref!r}: {problem}")


# Query parameters that carry a secret: token, access_token, sig, password, key, api-key, ...
_SECRET_QUERY = re.compile(
    r"([?&;](?:[^=&#;\s]*(?:token|sig|signature|password|passwd|pwd|secret|key|auth|credential)"
    r"[^=&#;\s]*)=)[^&#;\s]*", re.IGNORECASE)


def redact(url: str) -> str:
    """The URL with credentials replaced by '***', for output and errors: a password anywhere,
    the whole user part of an http(s) URL (where a token often stands in for the user), and the
    value of a token-like query parameter (``token``, ``access_token``, ``sig``, ``key``, ...)."""
    url = re.sub(r"^(https?://)[^/@]+@", r"\1***@", url, flags=re.IGNORECASE)
    url = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):[^/@]*@", r"\1:***@", url)
    return _SECRET_QUERY.sub(r"\1***", url)


def looks_like_git_url(source: str) -> bool:
    return bool(_SCHEME.match(source) or _SCP_LIKE.match(source) or _HELPER_URL.match(source))


# --------------------------------------------------------------------------- entry point


def open_source(source: str, ref: str | None = None) -> Checkout:
    """Read SOURCE (folder, or git URL/path with an optional ref) into a Checkout."""
    if not source:
        raise SourceError("no source given: name a folder or a git repository")
    check_url(source)
    if ref is not None:
        check_ref(ref)
    if looks_like_git_url(source):
        return _open_git(source, ref)
    path = Path(source)
    if not path.exists():
        raise SourceError(f"source {source!r} does not exist (give a folder, a git URL, or a "
                          "local repository path)")
    if not path.is_dir():
        raise SourceError(f"source {source!r} is not a folder")
    if ref is not None:
        if not is_git_repository(path):
            raise SourceError(f"source {source!r} is a folder, not a git repository, so --ref "
                              f"{ref!r} cannot be used with it")
        return _open_git(str(path.resolve()), ref)
    return _open_folder(path)


def is_git_repository(path: Path) -> bool:
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


# --------------------------------------------------------------------------- folders


def _open_folder(path: Path) -> Checkout:
    root = path.resolve()
    files: list[SourceFile] = []
    diagnostics: list[Diagnostic] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        current = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for dirname in list(dirnames):
            full = current / dirname
            if full.is_symlink():
                dirnames.remove(dirname)
                rel = full.relative_to(root).as_posix()
                target = full.resolve()
                if not _inside(target, root):
                    diagnostics.append(Diagnostic(
                        "warning", rel, None,
                        "symbolic link to a folder outside the source; skipped"))
                else:
                    diagnostics.append(Diagnostic(
                        "info", rel, None, "symbolic link to a folder; skipped (not followed)"))
        for filename in sorted(filenames):
            if not filename.lower().endswith(_READ_SUFFIXES):
                continue
            full = current / filename
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                target = full.resolve()
                if not _inside(target, root):
                    diagnostics.append(Diagnostic(
                        "warning", rel, None,
                        "symbolic link pointing outside the source; skipped"))
                    continue
                if any(part.lower() == ".git" for part in target.relative_to(root).parts):
                    diagnostics.append(Diagnostic(
                        "warning", rel, None,
                        "symbolic link into the .git folder; skipped"))
                    continue
                if not target.is_file():
                    continue
            try:
                if full.stat().st_size > MAX_FILE_BYTES:
                    diagnostics.append(Diagnostic(
                        "warning", rel, None,
                        f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; skipped"))
                    continue
                data = full.read_bytes()
            except OSError as exc:
                diagnostics.append(Diagnostic("warning", rel, None,
                                              f"cannot be read ({exc.strerror}); skipped"))
                continue
            files.append(SourceFile(rel, data))
    commit, dirty = folder_commit(root)
    info = SourceInfo(kind="folder", location=str(path), commit=commit, dirty=dirty)
    return Checkout(info, tuple(files), tuple(diagnostics))


def _inside(target: Path, root: Path) -> bool:
    try:
        target.relative_to(root)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- git


def _git_error(exc: git.GitCommandError, url: str, ref: str | None) -> SourceError:
    stderr = (exc.stderr or "").strip().replace(url, redact(url))
    url = redact(url)
    lowered = stderr.lower()
    shown = ref or "the default branch"
    if "couldn't find remote ref" in lowered or "not our ref" in lowered \
            or "unknown revision" in lowered or "no such remote ref" in lowered:
        return SourceError(f"ref {shown!r} does not exist in {url}")
    if "does not appear to be a git repository" in lowered or "not a git repository" in lowered \
            or "repository not found" in lowered or "not found" in lowered:
        return SourceError(f"{url} is not a git repository (or you have no access to it)")
    if "could not resolve host" in lowered or "unable to access" in lowered \
            or "connection refused" in lowered or "could not read from remote" in lowered \
            or "timed out" in lowered:
        return SourceError(f"cannot reach {url}: {_last_line(stderr)}")
    if "transport" in lowered and "not allowed" in lowered:
        return SourceError(f"refusing source {url!r}: its transport is not allowed")
    return SourceError(f"git failed for {url}: {_last_line(stderr) or exc}")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return re.sub(r"^(fatal|error):\s*", "", line)


def _cache_dir(url: str) -> Path:
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:20]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", url.rstrip("/").split("/")[-1])[:40] or "repo"
    return cache_root() / "git" / f"{name}-{digest}.git"


def _split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """(the URL without its user-info, the environment that hands git its credentials).

    An http(s) URL's credentials never reach the cache's config: git gets them per invocation
    as an ``Authorization`` header for that URL only, through ``GIT_CONFIG_*`` variables (not
    the command line, which other users can read)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return url, {}
    host = parts.netloc.rsplit("@", 1)[1]
    clean = urllib.parse.urlunsplit(parts._replace(netloc=host))
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    index = int(os.environ.get("GIT_CONFIG_COUNT", "0") or 0)
    return clean, {"GIT_CONFIG_COUNT": str(index + 1),
                   f"GIT_CONFIG_KEY_{index}": f"http.{clean}.extraHeader",
                   f"GIT_CONFIG_VALUE_{index}": f"Authorization: Basic {basic}"}


def _new_bare_repo(url: str, into: Path) -> git.Repo:
    repo = git.Repo.init(into, bare=True)
    with repo.config_writer() as config:
        config.set_value('remote "origin"', "url", _split_credentials(url)[0])
        config.set_value("protocol", "allow", "never")
        for allowed in ("file", "git", "http", "https", "ssh"):
            config.set_value(f'protocol "{allowed}"', "allow", "always")
    return repo


def _fetch(repo: git.Repo, env: dict[str, str], refspec: str | None, *, shallow: bool) -> None:
    args = ["--quiet", "--no-tags"]
    if shallow:
        args.append("--depth=1")
    args.append("origin")
    if refspec is not None:
        args.extend(["--", refspec])
    repo.git.fetch(*args, env=env)


def _open_git(url: str, ref: str | None) -> Checkout:
    target = _cache_dir(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(target) + ".lock")
    with lock:
        _remove_stale_scratch(target)
        if target.exists():
            try:
                repo = git.Repo(target)
                _forget_credentials(repo, url)
            except (git.InvalidGitRepositoryError, git.NoSuchPathError, OSError):
                shutil.rmtree(target, ignore_errors=True)
                repo = None
        else:
            repo = None
        if repo is None:
            scratch = Path(tempfile.mkdtemp(prefix=f".new-{target.name}-", dir=target.parent))
            try:
                fresh = _new_bare_repo(url, scratch)
                commit = _resolve(fresh, url, ref)
                fresh.close()
                os.replace(scratch, target)
            except BaseException:
                shutil.rmtree(scratch, ignore_errors=True)
                raise
            repo = git.Repo(target)
        else:
            commit = _resolve(repo, url, ref)
        try:
            files, diagnostics = _read_tree(repo, commit)
        finally:
            repo.close()
    info = SourceInfo(kind="git", location=redact(url), ref=ref, commit=commit)
    return Checkout(info, files, diagnostics)


def _remove_stale_scratch(target: Path) -> None:
    """Scratch folders of killed fetches (they may hold credentials): this entry's, which no one
    else builds while we hold its lock, and anyone's older than a day."""
    stale = time.time() - 24 * 3600
    for scratch in target.parent.glob(".new-*"):
        try:
            if scratch.name.startswith(f".new-{target.name}-") or scratch.lstat().st_mtime < stale:
                shutil.rmtree(scratch, ignore_errors=True)
        except OSError:
            continue


def _forget_credentials(repo: git.Repo, url: str) -> None:
    """A cache entry written before credentials were passed per fetch keeps them no longer."""
    clean = _split_credentials(url)[0]
    with repo.config_writer() as config:
        if config.get_value('remote "origin"', "url", clean) != clean:
            config.set_value('remote "origin"', "url", clean)


def _resolve(repo: git.Repo, url: str, ref: str | None) -> str:
    """Fetch what ``ref`` needs and return the full commit sha it names."""
    env = {**_GIT_ENV, **_split_credentials(url)[1]}
    try:
        if ref is None:
            _fetch(repo, env, "+HEAD:refs/rjsync/head", shallow=True)
            return repo.git.rev_parse("--verify", "refs/rjsync/head^{commit}")
        if _HEX.match(ref):
            known = _rev_parse(repo, ref)
            if known:
                return known
            if len(ref) == 40:
                try:
                    _fetch(repo, env, ref, shallow=True)
                    found = _rev_parse(repo, ref)
                    if found:
                        return found
                except git.GitCommandError:
                    pass
            # A short sha can only be found in the full history.
            _fetch_everything(repo, env)
            found = _rev_parse(repo, ref)
            if found:
                return found
            # Not a commit: it may still be a branch or tag whose name looks like hex.
        local = f"refs/rjsync/refs/{ref}"
        _fetch(repo, env, f"+{ref}:{local}", shallow=True)
        return repo.git.rev_parse("--verify", f"{local}^{{commit}}")
    except git.GitCommandError as exc:
        raise _git_error(exc, url, ref) from None


def _rev_parse(repo: git.Repo, ref: str) -> str | None:
    try:
        return repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}")
    except git.GitCommandError:
        return None


def _fetch_everything(repo: git.Repo, env: dict[str, str]) -> None:
    args = ["--quiet", "--tags"]
    if (Path(repo.git_dir) / "shallow").exists():
        args.append("--unshallow")
    args.extend(["origin", "--", "+refs/heads/*:refs/rjsync/heads/*"])
    repo.git.fetch(*args, env=env)


def _read_tree(repo: git.Repo, commit: str):
    """(files, diagnostics) of the commit's tree, read from git's object store.

    The entries come from ``git ls-tree``, not GitPython's traversal, which fails the whole tree
    on one entry named ``..`` or ``.git``: such an entry (a hostile tree; git's own fsck refuses
    it) is skipped with a warning, and nothing else is lost."""
    files: list[SourceFile] = []
    diagnostics: list[Diagnostic] = []
    blobs = {}
    links = {}
    for mode, kind, sha, size, path in _tree_entries(repo, commit):
        if _unsafe_tree_path(path):
            diagnostics.append(Diagnostic("warning", _shown_path(path), None,
                                          "a path git itself refuses ('.', '..' or '.git' in it); skipped"))
            continue
        if kind != "blob":
            if kind == "commit":  # a submodule
                diagnostics.append(Diagnostic("info", path, None,
                                              "submodule; not read"))
            continue
        item = _Blob(repo, sha, size)
        if mode == "120000":
            links[path] = item
        elif path.lower().endswith(_READ_SUFFIXES):
            blobs[path] = item
    for path, item in sorted(blobs.items()):
        if item.size > MAX_FILE_BYTES:
            diagnostics.append(Diagnostic(
                "warning", path, None,
                f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; skipped"))
            continue
        files.append(SourceFile(path, item.data_stream.read()))
    for path, item in sorted(links.items()):
        target = item.data_stream.read().decode("utf-8", errors="replace")
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), target))
        if os.path.isabs(target) or resolved.startswith(".."):
            diagnostics.append(Diagnostic(
                "warning", path, None, "symbolic link pointing outside the source; skipped"))
            continue
        if path.lower().endswith(_READ_SUFFIXES) and resolved in blobs:
            files.append(SourceFile(path, blobs[resolved].data_stream.read()))
    return tuple(files), tuple(diagnostics)


class _Blob:
    """A blob of the tree: its size, and its bytes read on demand from the object store."""

    def __init__(self, repo: git.Repo, sha: str, size: int) -> None:
        self._repo, self._sha, self.size = repo, sha, size

    @property
    def data_stream(self):
        return self._repo.odb.stream(bytes.fromhex(self._sha))


def _tree_entries(repo: git.Repo, commit: str):
    """(mode, type, sha, size, path) of every entry of the commit's tree, recursively."""
    raw = repo.git.ls_tree("-r", "-l", "-z", "--full-tree", commit, stdout_as_string=False)
    for record in raw.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, sha, size = meta.split()
        yield (mode.decode(), kind.decode(), sha.decode(), int(size) if size.isdigit() else 0,
               path.decode("utf-8", errors="replace"))


def _unsafe_tree_path(path: str) -> bool:
    return any(part in ("", ".", "..") or part.lower() == ".git" for part in path.split("/"))


def _shown_path(path: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in path)
