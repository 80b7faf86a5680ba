"""Crash-safe file writes, shared by the directory account and saved plans."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

# Temporary files carry this tag, so a cleanup removes only files rjsync itself named
# (``.<name>.rjsync-<random>.tmp``), never a customer's ``.*.tmp``.
_TEMP_TAG = ".rjsync-"
_OWN_TEMP = re.compile(r"^\..+\.rjsync-[A-Za-z0-9_]+\.tmp$")


def is_own_temp(name: str) -> bool:
    """Whether a file name is one of the temporary files :func:`atomic_write` creates."""
    return bool(_OWN_TEMP.match(name))


def atomic_write(path: Path, data: bytes, *, regular_only: bool = False) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, move it in place.

    With ``regular_only`` (a path the user names, like ``plan --out``), only a regular file or a
    new path is written: a FIFO, a device, a folder or a symbolic link at ``path`` is refused
    (``OSError``) rather than replaced by a regular file."""
    try:
        mode = os.lstat(path).st_mode if regular_only else None
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        kind = ("a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode)
                else "a FIFO" if stat.S_ISFIFO(mode) else "a device or other special file")
        raise OSError(0, f"it is {kind}, not a regular file, and is left as it is", str(path))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{_TEMP_TAG}", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
