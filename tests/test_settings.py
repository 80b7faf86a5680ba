"""Settings of one sync (``rjsync.settings``): flags over a manifest, and the concurrency contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from rjsync.errors import RjsyncError
from rjsync.settings import (
    DEFAULT_CONCURRENCY,
    AzureOptions,
    SourceSpec,
    SyncSettings,
    gallery_url,
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


def test_gallery_url_is_the_flag_then_the_manifest_then_the_environment_then_the_default(tmp_path):
    manifest = tmp_path / "acct.yaml"
    manifest.write_text(f"source:\n  path: {EXAMPLE}\ntarget: local:{tmp_path / 'acct'}\n"
                        "azure:\n  gallery: https://manifest.example/nuget/v2/\n", encoding="utf-8")
    environ = {"RJSYNC_GALLERY": "https://environment.example/api/v2"}

    from_manifest = settings_from(manifest=str(manifest), source=None, ref=None, target=None)
    from_flag = settings_from(manifest=str(manifest), source=None, ref=None, target=None,
                              azure={"gallery": "https://flag.example/psgallery"})

    assert gallery_url(from_flag.azure, environ) == "https://flag.example/psgallery"
    assert gallery_url(from_manifest.azure, environ) == "https://manifest.example/nuget/v2"
    assert gallery_url(AzureOptions(), environ) == "https://environment.example/api/v2"
    assert gallery_url(AzureOptions(), {}) is None  # the PowerShell Gallery


def test_gallery_url_from_the_environment_must_be_https_and_its_credentials_are_never_shown():
    with pytest.raises(RjsyncError) as caught:
        gallery_url(AzureOptions(), {"RJSYNC_GALLERY": "http://build:s3cret@nexus.example/repository/psgallery"})

    assert str(caught.value) == (
        "RJSYNC_GALLERY is wrong: 'http://***@nexus.example/repository/psgallery' is not a gallery URL: give "
        "the https:// URL of the PowerShell Gallery's v2 API (https://www.powershellgallery.com/api/v2) or of "
        "a mirror of it, without a query.")
    assert "s3cret" not in str(caught.value)
