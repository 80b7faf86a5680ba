"""Sentences, never tracebacks: a full disk, corrupt account files and deeply nested inputs
end in one ``Error:`` sentence (or fail one change of an apply), exit 1, no traceback."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from test_cli_sync import apply, invoke, job, jobs, plan, runbooks, write_source

import rjsync.accounts.local


def sentence(result) -> str:
    """The one error line; the run exited 1 without a traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, (RecursionError, OSError, ValueError, TypeError,
                                             AttributeError, KeyError)), repr(result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_apply_full_disk_fails_that_change_and_applies_the_others(tmp_path, monkeypatch):
    src, account = write_source(tmp_path / "src", jobs(1, 2, 3)), tmp_path / "account"
    real = rjsync.accounts.local.atomic_write

    def full_disk(path: Path, data: bytes, **kw):
        if "job-02" in path.name:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data, **kw)

    monkeypatch.setattr(rjsync.accounts.local, "atomic_write", full_disk)
    result = apply(src, account)

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, OSError), repr(result.exception)
    assert "No space left on device" in result.output
    assert {job(1), job(3)} <= set(runbooks(account))
    assert job(2) not in runbooks(account)


@pytest.mark.parametrize("command", [plan, apply])
@pytest.mark.parametrize("corrupt", ["not json", "[1, 2]", '{"modules": []}', '{"runtime_environments": 7}'])
def test_plan_and_apply_corrupt_modules_json_is_a_sentence_naming_it(tmp_path, command, corrupt):
    src, account = write_source(tmp_path / "src", jobs(1)), tmp_path / "account"
    account.mkdir()
    (account / "modules.json").write_text(corrupt)

    line = sentence(command(src, account))

    assert "modules.json" in line


@pytest.mark.parametrize("command", [plan, apply])
@pytest.mark.parametrize("corrupt", ["{", '"text"', "[]", '{"tags": [1]}', '{"last_modified": "yesterday"}',
                                     '{"runbook_type": 5}'])
def test_plan_and_apply_corrupt_runbook_metadata_is_a_sentence_naming_it(tmp_path, command, corrupt):
    src, account = write_source(tmp_path / "src", jobs(1)), tmp_path / "account"
    folder = account / "runbooks"
    folder.mkdir(parents=True)
    (folder / f"{job(1)}.ps1").write_text("Write-Output 1")
    (folder / f"{job(1)}.meta.json").write_text(corrupt)

    line = sentence(command(src, account))

    assert f"{job(1)}.meta.json" in line


@pytest.mark.parametrize("command", [plan, apply])
@pytest.mark.parametrize("lock", ["symlink to nowhere", "symlink to a file", "folder"])
def test_plan_and_apply_unusable_lock_file_is_a_sentence_and_follows_no_link(tmp_path, command, lock):
    # A read-only account folder fails the same way (EACCES) for a non-root user; as root only a
    # lock path that cannot be a plain file shows it. The link target is never written.
    src, account = write_source(tmp_path / "src", jobs(1)), tmp_path / "account"
    account.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    path = account / ".rjsync.lock"
    if lock == "folder":
        path.mkdir()
    else:
        path.symlink_to(victim if lock == "symlink to a file" else tmp_path / "no" / "such")

    line = sentence(command(src, account))

    assert "cannot be locked" in line and ".rjsync.lock" in line
    assert victim.read_text() == "keep me"


def test_plan_deeply_nested_manifest_is_a_sentence(tmp_path):
    manifest = tmp_path / "rjsync.yml"
    manifest.write_text("target: local:x\npolicy: " + "[" * 5000 + "]" * 5000 + "\n")

    line = sentence(invoke("plan", "--manifest", manifest))

    assert "rjsync.yml" in line


def test_apply_deeply_nested_plan_file_is_a_sentence(tmp_path):
    planfile = tmp_path / "plan.json"
    planfile.write_text('{"format": ' + "[" * 100_000 + "]" * 100_000 + "}")

    line = sentence(invoke("apply", planfile))

    assert "plan.json" in line


def test_plan_deeply_nested_literal_is_a_catalog_error_not_a_traceback(tmp_path):
    src = write_source(tmp_path / "src", {"user/general/deep.ps1": "param($x = " + "@(" * 3000 + ")" * 3000 + ")\n"})

    result = plan(src, tmp_path / "account")

    sentence(result)
    assert "param block is nested too deeply to be read" in result.output
