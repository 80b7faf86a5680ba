"""Crash-safe writes: only a regular file or a new path is written, temp files are rjsync's own."""

from __future__ import annotations

import os

import pytest

from rjsync.files import atomic_write, is_own_temp


def test_atomic_write_replaces_a_regular_file_and_creates_a_new_one(tmp_path):
    (tmp_path / "old.json").write_bytes(b"old")
    atomic_write(tmp_path / "old.json", b"new", regular_only=True)
    atomic_write(tmp_path / "fresh.json", b"fresh", regular_only=True)
    assert (tmp_path / "old.json").read_bytes() == b"new"
    assert (tmp_path / "fresh.json").read_bytes() == b"fresh"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.json", "old.json"]


def test_atomic_write_refuses_a_fifo_a_symlink_and_a_folder(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "target.json").write_bytes(b"kept")
    (tmp_path / "link").symlink_to(tmp_path / "target.json")
    (tmp_path / "folder").mkdir()
    for name, kind in (("fifo", "a FIFO"), ("link", "a symbolic link"), ("folder", "a folder")):
        with pytest.raises(OSError) as error:
            atomic_write(tmp_path / name, b"plan", regular_only=True)
        assert error.value.strerror == f"it is {kind}, not a regular file, and is left as it is"
    assert (tmp_path / "fifo").is_fifo()
    assert (tmp_path / "link").is_symlink()
    assert (tmp_path / "target.json").read_bytes() == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "folder", "link", "target.json"]


def test_is_own_temp_names_only_the_temp_files_atomic_write_creates():
    assert is_own_temp(".rjgit-x.ps1.rjsync-k2j_a9zq.tmp")
    assert not is_own_temp(".notes.tmp")
    assert not is_own_temp(".rjgit-x.ps1.a8k2j9zq.tmp")
    assert not is_own_temp("rjgit-x.ps1.rjsync-k2j_a9zq.tmp")
