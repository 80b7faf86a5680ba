"""The command line: exit codes and the exact text users and automation rely on."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from rjsync.cli import cli

EXAMPLE = str(Path(__file__).resolve().parent.parent / "runbooks")


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_cli_help_lists_the_catalog_command():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "catalog" in result.output
    assert "rjgit-" in result.output


def test_catalog_of_the_example_repository_is_clean():
    result = invoke("catalog", EXAMPLE)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"Source: {EXAMPLE} (commit ")
    assert lines[-1] == "16 runbooks, 6 modules, 0 errors, 0 warnings"
    assert "user / Mail" in lines
    assert any(line.startswith("  rjgit-org_reporting_export-licence-usage_scheduled ")
               and line.endswith("[scheduled]") for line in lines)
    assert "  RealmJoin.RunbookHelper   >= 0.8.9        16 runbooks" in lines


def test_catalog_json_follows_the_contract():
    result = invoke("catalog", EXAMPLE, "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert list(data) == ["source", "runbooks", "modules", "permissions", "diagnostics"]
    assert data["source"]["kind"] == "folder" and len(data["source"]["commit"]) == 40
    alias = next(r for r in data["runbooks"] if r["name"] == "rjgit-user_mail_add-mail-alias")
    assert {k: alias[k] for k in ("path", "context", "category", "display_name", "schedulable",
                                  "encoding")} == {
        "path": "user/mail/add-mail-alias.ps1", "context": "user", "category": "Mail",
        "display_name": "Add Mail Alias", "schedulable": False, "encoding": "utf-8-bom"}
    assert set(alias["parameters"][0]) >= {"name", "type", "mandatory", "default", "help",
                                           "validate_set", "rj_interface"}
    assert alias["permissions"]["schema_version"] == 2
    utf16 = next(r for r in data["runbooks"] if r["encoding"] == "utf-16-le-bom")
    assert utf16["synopsis"] and utf16["parameters"]
    assert [m["name"] for m in data["modules"]] == [
        "Az.Accounts", "Az.Resources", "Az.Storage", "ExchangeOnlineManagement",
        "MicrosoftTeams", "RealmJoin.RunbookHelper"]
    assert data["permissions"]["optional"] == {"app_roles": [], "directory_roles": [
        {"name": "Cloud Device Administrator", "template_id": "7698a772-787b-4ac8-901f-60d6b08affd2"}]}
    assert data["diagnostics"] == []
    # byte-stable: the same input gives the same bytes
    assert invoke("catalog", EXAMPLE, "--format", "json").output == result.output


def test_catalog_exits_1_on_catalog_errors(tmp_path):
    folder = tmp_path / "user" / "general"
    folder.mkdir(parents=True)
    (folder / "a.ps1").write_text("<#\n.SYNOPSIS\nA\n#>\nparam(\n")
    result = invoke("catalog", str(tmp_path))
    assert result.exit_code == 1
    assert ("  error   user/general/a.ps1:5: param block cannot be parsed: check its brackets, "
            "quotes and commas") in result.output.splitlines()
    assert result.output.splitlines()[-1] == "0 runbooks, 0 modules, 1 error, 0 warnings"


def test_catalog_reports_a_bad_source_in_one_line():
    result = invoke("catalog", "ext::sh -c id", "--ref", "main")
    assert result.exit_code == 1
    assert result.output == ("Error: refusing source 'ext::sh -c id': transport-helper URLs "
                             "('ext::') can run arbitrary commands; use an https, ssh or file "
                             "URL\n")


# -- unexpected errors -----------------------------------------------------------------------------


def _crash(*_args, **_kwargs):
    raise RuntimeError("while reading https://x-access-token:ghp_secret@github.com/o/r.git\x1b[2J")


def test_cli_unexpected_error_is_one_sentence_with_its_own_exit_code(monkeypatch):
    monkeypatch.setattr("rjsync.commands.catalog.run", _crash)
    monkeypatch.delenv("RJSYNC_DEBUG", raising=False)
    result = CliRunner().invoke(cli, ["catalog", EXAMPLE])
    assert result.exit_code == 70
    assert result.output.splitlines() == [
        "Error: rjsync failed unexpectedly (RuntimeError: while reading https://***@github.com/o/r.git[2J). "
        "This is a bug; run again with --debug (or RJSYNC_DEBUG=1) for the traceback, and report it."]
    assert "Traceback" not in result.output and "ghp_secret" not in result.output


def test_cli_unexpected_error_shows_the_traceback_with_debug(monkeypatch):
    monkeypatch.setattr("rjsync.commands.catalog.run", _crash)
    result = CliRunner().invoke(cli, ["--debug", "catalog", EXAMPLE])
    assert isinstance(result.exception, RuntimeError)  # raised on: click prints the traceback
    monkeypatch.setenv("RJSYNC_DEBUG", "1")
    result = CliRunner().invoke(cli, ["catalog", EXAMPLE])
    assert isinstance(result.exception, RuntimeError)


def test_cli_user_errors_still_exit_1_with_their_sentence():
    result = invoke("plan", "--source", EXAMPLE)
    assert result.exit_code == 1
    assert result.output.startswith("Error: Missing --target: give --manifest FILE")


# -- --gallery -------------------------------------------------------------------------------------


def test_apply_gallery_flag_comes_before_the_manifest_and_the_environment(tmp_path, arm, gallery, credential,
                                                                          monkeypatch):
    import rjsync.sync
    from fakes.accounts import ARM_ID, FAST, write_storage_source

    mirror = gallery.serve_at("/nuget/psgallery")
    gallery.redirects = False  # a mirror that serves the package itself: the links are on the mirror
    monkeypatch.setenv("RJSYNC_GALLERY", "https://127.0.0.1:9/environment")
    write_storage_source(tmp_path / "src")
    manifest = tmp_path / "acct.yaml"
    manifest.write_text(f"source: {{path: src}}\ntarget: {ARM_ID}\nazure: {{gallery: 'https://127.0.0.1:9/manifest'}}\n")
    opened = []
    real = rjsync.sync.open_account

    def on_the_emulator(target, **options):  # default_opener's account, on the emulator
        opened.append(options["gallery_url"])
        return real(target, **{**options, "arm_endpoint": arm.endpoint, "credential": credential, "settings": FAST})

    monkeypatch.setattr(rjsync.sync, "open_account", on_the_emulator)

    result = invoke("apply", "--manifest", str(manifest), "--gallery", mirror + "/", "--auto-approve")

    assert result.exit_code == 0, result.output
    assert opened == [mirror]
    links = sorted(p.content_uri for p in arm.account.environments["rj-powershell-7.4"].packages.values())
    assert links == [f"{mirror}/package/Az.Accounts/2.13.2", f"{mirror}/package/Az.Storage/6.0.0"]


def test_plan_refuses_a_gallery_flag_that_is_not_https_without_showing_its_credentials(tmp_path):
    result = invoke("plan", "--source", EXAMPLE, "--target", f"local:{tmp_path / 'acct'}",
                    "--gallery", "http://ci:tok3n@nexus.example/repository/psgallery")

    assert result.exit_code == 1
    assert "tok3n" not in result.output
    assert result.output.splitlines()[-1] == (
        "Error: Invalid value for '--gallery': 'http://***@nexus.example/repository/psgallery' is not a gallery "
        "URL: give the https:// URL of the PowerShell Gallery's v2 API (https://www.powershellgallery.com/api/v2) "
        "or of a mirror of it, without a query.")


def test_apply_planfile_takes_the_gallery_flag_like_the_other_azure_options(tmp_path):
    planfile = tmp_path / "plan.json"
    target = f"local:{tmp_path / 'acct'}"
    assert invoke("plan", "--source", EXAMPLE, "--target", target, "--out", str(planfile)).exit_code == 0

    result = invoke("apply", str(planfile), "--gallery", "https://nexus.example/repository/psgallery",
                    "--auto-approve")

    assert result.exit_code == 0, result.output


def test_plan_out_refuses_to_replace_a_fifo_or_a_symlink_with_one_sentence(tmp_path):
    import os
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "kept.txt").write_text("kept")
    (tmp_path / "link.json").symlink_to(tmp_path / "kept.txt")
    target = f"local:{tmp_path / 'acct'}"
    for name, kind in (("fifo", "a FIFO"), ("link.json", "a symbolic link")):
        out = tmp_path / name
        result = invoke("plan", "--source", EXAMPLE, "--target", target, "--out", str(out))
        assert result.exit_code != 0
        assert result.output.splitlines()[-1] == (
            f"Error: Cannot write the plan to {out}: it is {kind}, not a regular file, "
            "and is left as it is.")
    assert (tmp_path / "fifo").is_fifo() and (tmp_path / "link.json").is_symlink()
    assert (tmp_path / "kept.txt").read_text() == "kept"


def test_plan_of_a_folder_runs_nothing_from_its_git_config(tmp_path):
    import shutil
    import subprocess
    source = tmp_path / "source"
    shutil.copytree(EXAMPLE, source)
    marker = tmp_path / "ran"
    hook = tmp_path / "monitor.sh"
    hook.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n")
    hook.chmod(0o755)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid", "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "x"],
                 ["config", "core.fsmonitor", str(hook)]):
        subprocess.run(["git", *args], cwd=source, env=env, check=True, capture_output=True)

    result = invoke("plan", "--source", str(source), "--target", f"local:{tmp_path / 'acct'}")

    assert result.exit_code == 0, result.output
    assert not marker.exists(), "core.fsmonitor of the source's repository ran"
