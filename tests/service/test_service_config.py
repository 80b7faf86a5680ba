"""``rjsync serve`` configuration: credentials stored as hashes, accounts, and clear errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rjsync.cli import cli
from rjsync.errors import RjsyncError
from rjsync.service.auth import hash_secret, verify_secret
from rjsync.service.config import ConfigError, load_config

SECRET = hash_secret("s3cret", iterations=100_000)  # the weakest the service accepts (issue 14)


def write(tmp_path, text: str):
    path = tmp_path / "service.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_service_config_reads_users_tokens_and_resolves_paths_against_the_file(tmp_path):
    path = write(tmp_path, f"manifests: manifests\ndatabase: jobs.db\naccounts_at_once: 2\n"
                           f"users: {{portal: {{password: '{SECRET}', accounts: ['*']}}}}\n"
                           f"tokens: {{ci: {{token: '{SECRET}', accounts: demo}}}}\n")

    config = load_config(path, environ={})

    assert (config.manifests, config.database, config.accounts_at_once) == (
        str(tmp_path / "manifests"), str(tmp_path / "jobs.db"), 2)
    assert list(config.authenticator.users) == ["portal"]
    assert [c.principal.accounts for c in config.authenticator.tokens] == [frozenset({"demo"})]


def test_service_config_credentials_from_the_environment_replace_the_file(tmp_path):
    path = write(tmp_path, f"manifests: m\nusers: {{old: {{password: '{SECRET}'}}}}\n")
    env = {"RJSYNC_SERVICE_CREDENTIALS": json.dumps({"users": {"new": {"password": SECRET, "accounts": ["*"]}}})}

    assert list(load_config(path, environ=env).authenticator.users) == ["new"]


@pytest.mark.parametrize("text, message", [
    ("manifests: m\n", "The service has no credentials: add users or tokens to the config file, or set "
                       "$RJSYNC_SERVICE_CREDENTIALS (hash secrets with rjsync serve --hash-secret)."),
    ("manifests: m\nusers: {portal: {password: plain-text}}\n",
     "{path}: users.portal.password is "),
    ("manifests: m\nusers: {portal: 42}\n",
     "{path}: users.portal needs 'password: pbkdf2_sha256$...' (rjsync serve --hash-secret)."),
    (f"users: {{portal: {{password: '{SECRET}'}}}}\n",
     "No accounts: give --manifests DIR (or $RJSYNC_MANIFESTS, or 'manifests' in the config), a folder of "
     "manifests named after their accounts."),
    (f"manifests: m\naccounts_at_once: 0\nusers: {{portal: {{password: '{SECRET}'}}}}\n",
     "{path}: accounts_at_once must be a whole number from 1 to 64."),
    ("- a list\n", "{path} must be a mapping (manifests, database, users, tokens)."),
    # issue 14, finding 7: weak hashes are refused at start, a huge iteration count is a sentence
    (f"manifests: m\nusers: {{portal: {{password: '{hash_secret('x', iterations=1)}'}}}}\n",
     "{path}: users.portal.password is a weak hash (1 iteration, a 16-byte salt): the service needs at least "
     "100,000 iterations and a 16-byte salt (make one with rjsync serve --hash-secret)."),
    (f"manifests: m\ntokens: {{ci: {{token: '{hash_secret('x', iterations=100_000, salt=b'1')}'}}}}\n",
     "{path}: tokens.ci.token is a weak hash (100,000 iterations, a 1-byte salt)"),
    (f"manifests: m\nusers: {{portal: {{password: 'pbkdf2_sha256${10**30}${'ab' * 16}${'cd' * 32}'}}}}\n",
     "{path}: users.portal.password is a hash of 1,000,000,000,000,000,000,000,000,000,000 iterations, more "
     "than the 10,000,000 the service allows."),
    (f"manifests: m\npublic_docs: 'yes'\nusers: {{portal: {{password: '{SECRET}'}}}}\n",
     "{path}: public_docs must be true or false."),
])
def test_service_config_errors_say_what_to_fix(tmp_path, text, message):
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})

    assert caught.value.message.startswith(message.format(path=path))


def test_service_config_missing_file_is_a_sentence(tmp_path):
    with pytest.raises(ConfigError, match=r"^Cannot read the service config .*nope.yaml: No such file"):
        load_config(str(tmp_path / "nope.yaml"), environ={})


def test_serve_hash_secret_prints_a_hash_that_verifies_and_never_the_secret():
    result = CliRunner().invoke(cli, ["serve", "--hash-secret"], input="hunter2\nhunter2\n")

    assert result.exit_code == 0, result.output
    stored = result.stdout.strip().splitlines()[-1]
    assert stored.startswith("pbkdf2_sha256$") and "hunter2" not in result.stdout
    assert verify_secret("hunter2", stored) and not verify_secret("hunter3", stored)


def test_serve_without_credentials_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("RJSYNC_SERVICE_CREDENTIALS", raising=False)
    monkeypatch.delenv("RJSYNC_SERVICE_CONFIG", raising=False)

    result = CliRunner().invoke(cli, ["serve", "--manifests", str(tmp_path)])

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: The service has no credentials")


# -- the runbook job API's keys -------------------------------------------------------------------


PERMISSIONS = '{"DisabledRunbookPatterns": ["*_danger"], // a comment, as the portal allows\n' \
              ' "Roles": {"Helpdesk": {"AllowedRunbookPatterns": ["rjgit-user_*"]},}}'


def test_service_config_runbook_jobs_reads_permissions_customization_and_roles(tmp_path):
    (tmp_path / "permissions.json").write_text(PERMISSIONS, encoding="utf-8")
    (tmp_path / "customization.json").write_text('{"Runbooks": {}}', encoding="utf-8")
    path = write(tmp_path, f"manifests: m\nusers: {{desk: {{password: '{SECRET}', accounts: [a], roles: [helpdesk]}}}}\n"
                           "runbook_jobs: {permissions: permissions.json, customization: customization.json, "
                           "run_timeout: 600, poll_interval: 0.5, worker_process: false}\n")

    config = load_config(path, environ={})

    assert config.permissions.roles["helpdesk"].name == "Helpdesk"
    assert config.customization == {"Runbooks": {}}
    assert (config.run_timeout, config.poll_interval) == (600.0, 0.5)
    assert config.job_process is False  # threads of the serving process
    default = write(tmp_path, f"manifests: m\nusers: {{desk: {{password: '{SECRET}', accounts: [a]}}}}\n")
    assert load_config(default, environ={}).job_process is None  # a process, as the opener allows
    assert config.authenticator.users["desk"].principal.roles == frozenset({"helpdesk"})


@pytest.mark.parametrize(("jobs", "users", "message"), [
    ("{permissions: permissions.json}", "roles: [Auditor]",
     "holds the role 'Auditor', which the runbook permissions' Roles do not define."),
    ("{}", "roles: [Helpdesk]", "desk holds roles, but runbook_jobs.permissions defines no Roles"),
    ("{permissions: missing.json}", "", "cannot read runbook_jobs.permissions"),
    ("{permissions: {Roles: []}}", "", "Roles must be an object of role names."),
    ("{customization: [1]}", "", "runbook_jobs.customization must be the tenant's customization JSON"),
    ("{run_timeout: 0}", "", "runbook_jobs.run_timeout must be a number of seconds from 1 to 86400."),
    ("{wait: 1}", "", "runbook_jobs has an unknown key 'wait'"),
    ("{worker_process: 'no'}", "", "runbook_jobs.worker_process must be true or false."),
    ("{permissions: permissions.json}", "roles: {a: 1}", "desk.roles must be a list of role names"),
])
def test_service_config_runbook_jobs_errors_are_one_sentence(tmp_path, jobs, users, message):
    (tmp_path / "permissions.json").write_text(PERMISSIONS, encoding="utf-8")
    extra = f", {users}" if users else ""
    path = write(tmp_path, f"manifests: m\nusers: {{desk: {{password: '{SECRET}'{extra}}}}}\n"
                           f"runbook_jobs: {jobs}\n")

    with pytest.raises(RjsyncError) as caught:
        load_config(path, environ={})
    assert message in caught.value.message and "\n" not in caught.value.message
