"""Settings of one sync (``rjsync.settings``): flags over a manifest, and the concurrency contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from rjsync.errors import RjsyncError
from rjsync.settings import (
    DEFAULT_CONCURRENCY,
    SourceSpec,
    SyncSettings,
    override,
    settings_from,
    writes_at_once,
)

EXAMPLE = str(Path(__file__).resolve().parent.parent / "runbooks")


def test_writes_at_once_is_four_per_request_in_flight():
    assert [writes_at_once(n) for n in (1, 2, DEFAULT_CONCURRENCY)] == [4, 8, 32]


def test_settings_from_flags_override_only_what_is_given(tmp_path):
    manifest = tmp_path / "acct.yaml"
    manifest.write_text(f"source:\n  path: {EXAMPLE}\ntarget: local:{tmp_path / 'acct'}\n"
                        "policy:\n  max_deletions: 3\nconcurrency: 2\n", encoding="utf-8")
    settings = settings_from(manifest=str(manifest), source=None, ref=None, target=None,
                             policy={"prefix": None, "keep_drifted": True}, concurrency=None)
    assert settings.policy.max_deletions == 3 and settings.policy.keep_drifted is True
    assert settings.policy.prefix == "rjgit-" and settings.concurrency == 2
    assert override(settings, concurrency=5).concurrency == 5


def test_settings_from_refuses_a_manifest_with_source_or_target(tmp_path):
    with pytest.raises(RjsyncError, match="Give either --manifest or --source and --target, not both."):
        settings_from(manifest="m.yaml", source=EXAMPLE, ref=None, target=None)


def test_settings_from_names_each_missing_flag():
    with pytest.raises(RjsyncError, match=r"^Missing --source and --target: give --manifest FILE"):
        settings_from(manifest=None, source=None, ref=None, target=None)
    settings = settings_from(manifest=None, source=EXAMPLE, ref="main", target="local:/tmp/x")
    assert settings == SyncSettings(SourceSpec(EXAMPLE, "main"), "local:/tmp/x")
