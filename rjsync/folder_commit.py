"""The commit a folder source is in, read without running git.

A folder may be anyone's, and so may its repository's configuration: ``git diff`` or
``git status`` there would run ``core.fsmonitor``, clean filters and the like. So neither runs:
refs are read in Python, objects by ``git cat-file --batch`` (which runs no filter, hook or
monitor; ``core.fsmonitor`` and ``core.hooksPath`` are overridden all the same), and
"uncommitted changes" means the files a source reads (``.ps1``, ``.json``, ``.md``) differ from
the commit's, compared by their git blob hash.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import git

READ_SUFFIXES = (".ps1", ".json", ".md")


def _safe_config() -> dict[str, str]:
    """Settings that win over the repository's own, appended to any the caller's environment sets."""
    index = int(os.environ.get("GIT_CONFIG_COUNT", "0") or 0)
    env = {"GIT_CONFIG_COUNT": str(index + 2), "GIT_TERMINAL_PROMPT": "0"}
    for offset, (key, value) in enumerate((("core.fsmonitor", "false"),
                                           ("core.hooksPath", os.devnull))):
        env[f"GIT_CONFIG_KEY_{index + offset}"] = key
        env[f"GIT_CONFIG_VALUE_{index + offset}"] = value
    return env


_SAFE_CONFIG = _safe_config()


def folder_commit(root: Path) -> tuple[str | None, bool]:
    """The commit of the repository the folder is in, if any, and whether it has changes."""
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None, False
    except Exception:  # an unreadable repository: the folder is still a folder
        return None, False
    repo.git.update_environment(**_SAFE_CONFIG)
    try:
        if repo.working_tree_dir is None:
            return None, False
        rel = os.path.relpath(root, repo.working_tree_dir)
        if rel == ".." or rel.startswith(".." + os.sep):
            return None, False
        try:
            commit = repo.head.commit
        except ValueError:  # a repository without commits
            return None, True
        except Exception:  # e.g. objects GitDB cannot read (a partial clone): say what is known
            return None, False
        try:
            committed = _committed(commit.tree, rel)
            dirty = committed != _on_disk(root, committed)
        except Exception:  # cannot compare: say it may have changes rather than that it has none
            dirty = True
        return commit.hexsha, dirty
    finally:
        repo.close()


def _committed(tree, rel: str) -> dict[str, str]:
    """{path under the folder: blob sha} of the runbook files in the commit."""
    if rel != ".":
        try:
            tree = tree / Path(rel).as_posix()
        except KeyError:
            return {}
        if tree.type != "tree":
            return {}
    prefix = len(tree.path) + 1 if tree.path else 0
    return {item.path[prefix:]: item.hexsha for item in tree.traverse()
            if item.type == "blob" and item.path.lower().endswith(READ_SUFFIXES)}


def _on_disk(root: Path, committed: dict[str, str]) -> dict[str, str]:
    """{path under the folder: blob sha} of the runbook files on disk (a link: its target text)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        current = Path(dirpath)
        for filename in filenames:
            if not filename.lower().endswith(READ_SUFFIXES):
                continue
            full = current / filename
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                found[rel] = _blob_sha(os.fsencode(os.readlink(full)))
                continue
            data = full.read_bytes()
            found[rel] = _blob_sha(data)
            if found[rel] != committed.get(rel) and b"\r\n" in data:
                # checked out with core.autocrlf: git holds the file with LF line ends
                normalized = _blob_sha(data.replace(b"\r\n", b"\n"))
                if normalized == committed.get(rel):
                    found[rel] = normalized
    return found


def _blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
