"""``rjsync run`` and ``rjsync job`` against a directory account whose jobs the pwsh stand-in runs."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from fakes.job_runbooks import BROKEN, HELLO, stand_in, write_source
from rjsync.cli import cli
from rjsync.commands.jobs import parse_params
from rjsync.settings import SourceSpec, SyncSettings
from rjsync.sync import apply, prepare


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def synced(tmp_path, monkeypatch):
    """(--source, --target) of a directory account synced with ``fakes.job_runbooks``."""
    monkeypatch.setenv("RJSYNC_PWSH", str(stand_in(tmp_path / "bin")))
    source, target = str(write_source(tmp_path / "src")), f"local:{tmp_path / 'account'}"
    with prepare(SyncSettings(SourceSpec(source), target)) as prepared:
        assert apply(prepared).ok
    return ("--source", source, "--target", target)


def test_parse_params_reads_json_values_and_keeps_other_text_as_text():
    assert parse_params(("Name=Ada", "Count=3", "Loud=true", "Ids=[\"a\"]", "Code=\"3\"", "Eq=a=b", "Empty=")) == {
        "Name": "Ada", "Count": 3, "Loud": True, "Ids": ["a"], "Code": "3", "Eq": "a=b", "Empty": ""}


def test_run_wait_prints_the_streams_and_exits_0_when_the_job_completes(synced):
    result = invoke("run", HELLO, *synced, "--param", "Name=Ada", "--param", "Count=2",
                    "--param", "CallerName=me", "--wait")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert re.fullmatch(rf"Started job [0-9a-f-]{{36}} of {HELLO} \(New\)\.", lines[0])
    assert lines[1:5] == ["Output   Ada", "Verbose  checking", "Output   2", "Output   me"]
    assert re.fullmatch(r"Job [0-9a-f-]{36} Completed\.", lines[5])


def test_run_wait_exits_1_with_the_exception_when_the_job_fails(synced):
    result = invoke("run", BROKEN, *synced, "--wait")
    assert result.exit_code == 1
    assert "Output   before\nWarning  careful\n" in result.output
    assert re.search(r"Job [0-9a-f-]{36} Failed: The user does not exist\.\n$", result.output)


def test_run_lists_every_parameter_problem_and_starts_nothing(synced, tmp_path):
    result = invoke("run", HELLO, *synced, "--param", "Count=many", "--param", "Bogus=1")
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == f"Error: The parameters of {HELLO} have 3 problems; nothing was started."
    assert "  - Missing mandatory parameter Name (String)." in result.output
    assert "parameter CallerName" not in result.output  # filled by the command, as the portal fills it
    assert not (tmp_path / "account" / "jobs").exists()


def test_run_fills_callername_with_the_local_user_unless_given(synced, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "ada")
    filled = invoke("run", HELLO, *synced, "--param", "Name=Ada", "--wait")
    given = invoke("run", HELLO, *synced, "--param", "Name=Ada", "--param", "CallerName=bob", "--wait")
    assert filled.exit_code == 0 and "Output   ada (rjsync run)" in filled.output.splitlines(), filled.output
    assert given.exit_code == 0 and "Output   bob" in given.output.splitlines(), given.output


def test_run_refuses_a_runbook_the_account_does_not_hold_in_one_sentence(synced):
    result = invoke("run", "rjgit-user_general_nothing", *synced)
    assert (result.exit_code, result.output) == (1, 'Error: Runbook "rjgit-user_general_nothing" is not in the '
                                                    "account: only the runbooks rjsync syncs (named rjgit-*) can "
                                                    "be started.\n")


def test_run_a_param_without_equals_is_a_usage_error(synced):
    result = invoke("run", HELLO, *synced, "--param", "Name")
    assert result.exit_code == 1 and "--param takes NAME=VALUE" in result.output


def test_job_shows_status_output_and_streams(synced):
    started = invoke("run", HELLO, *synced, "--param", "Name=Ada", "--param", "Count=1", "--param", "CallerName=me",
                     "--wait")
    job_id = re.search(r"Started job ([0-9a-f-]{36})", started.output).group(1)
    target = synced[3]
    shown = invoke("job", job_id, "--target", target)
    assert (shown.exit_code, shown.output) == (0, f"Job {job_id} of {HELLO}: Completed (Completed in the account).\n"
                                                  "Ada\n1\nme\n")
    streams = invoke("job", job_id, "--target", target, "--streams")
    assert "Verbose  checking\n" in streams.output
    failed = re.search(r"Started job ([0-9a-f-]{36})", invoke("run", BROKEN, *synced, "--wait").output).group(1)
    shown = invoke("job", failed, "--target", target)
    assert shown.exit_code == 1 and shown.output.endswith(f"Job {failed} Failed: The user does not exist.\n")
    unknown = invoke("job", "00000000-0000-0000-0000-000000000000", "--target", target)
    assert (unknown.exit_code, unknown.output) == (
        1, "Error: The account has no job '00000000-0000-0000-0000-000000000000'.\n")


def test_job_output_cannot_forge_lines(synced, tmp_path):
    started = invoke("run", HELLO, *synced, "--param", "Name=Ada\u001b[2J\n::error::forged", "--param",
                     "CallerName=me", "--wait")
    assert started.exit_code == 0, started.output
    assert "\u001b" not in started.output and "\n::error" not in started.output
