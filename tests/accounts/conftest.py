"""Fixtures for account tests: both account kinds, parametrised.

The emulator fixtures live in ``tests/conftest.py`` (shared with the engine tests):

- ``arm``: the ARM emulator (``fakes.arm.ArmEmulator``), reset for each test, with one
  automation account ``ARM_ID`` (``arm.account``); faults and the request log are on
  ``arm.server``.
- ``gallery``: the fake PowerShell Gallery (``fakes.gallery.FakeGallery``), reset per test.
- ``azure_account``: ``open_account(ARM_ID)`` through the real SDK against the emulator, with
  a static token, the test CA in REQUESTS_CA_BUNDLE and no waiting (``FAST``).
- ``local_account``: a directory account in a temporary folder.
- ``account``: each test that takes it runs once per kind: the protocol test-suite.
- ``sdk_client(**options)``: a bare SDK client on the emulator, to speak to it directly.
- ``holding(app_roles, directory_roles)``: an account (of each kind) whose identity holds them.
"""

from __future__ import annotations

import json

import pytest
from azure.mgmt.automation import AutomationClient

from fakes.accounts import SUBSCRIPTION


@pytest.fixture(params=["local", "azure"])
def kind(request):
    return request.param


@pytest.fixture
def account(kind, request):
    return request.getfixturevalue(f"{kind}_account")


@pytest.fixture
def hand_made(kind, request):
    """``hand_made(name, content)`` puts a runbook into the account the way a customer would."""
    if kind == "local":
        account = request.getfixturevalue("local_account")

        def seed(name: str, content: bytes) -> None:
            (account.path / "runbooks").mkdir(parents=True, exist_ok=True)
            (account.path / "runbooks" / f"{name}.ps1").write_bytes(content)
    else:
        arm = request.getfixturevalue("arm")

        def seed(name: str, content: bytes) -> None:
            arm.account.add_runbook(name, content)
    return seed


@pytest.fixture
def sdk_client(arm, credential, tls):
    """``sdk_client(**options)``: an ``AutomationClient`` on the emulator with ``options`` (retry
    settings, ...), polling at once; closed after the test."""
    made = []

    def make(**options) -> AutomationClient:
        client = AutomationClient(credential, SUBSCRIPTION, base_url=arm.endpoint, polling_interval=0,
                                  connection_verify=str(tls.ca_path), **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def holding(kind, request):
    """``holding(app_roles, directory_roles)``: an account whose identity holds them: a directory
    account with ``identity.json``, or the Azure account whose system-assigned identity holds
    them in the fake Graph (read with a token holding the read permissions)."""
    from fakes.accounts import ARM_ID, FAST, NAME
    from fakes.arm import system_identity
    from fakes.graph import READER
    from rjsync.accounts import open_account

    principal = system_identity(NAME)
    opened = []

    def make(app_roles=(), directory_roles=()):
        if kind == "local":
            account = request.getfixturevalue("local_account")
            account.path.mkdir(parents=True, exist_ok=True)
            (account.path / "identity.json").write_text(json.dumps({
                "principalId": principal,
                "appRoles": [{"resource": a, "value": v} for a, v in sorted(app_roles)],
                "directoryRoles": [{"templateId": t, "name": n} for t, n in sorted(directory_roles)]}))
            return account
        arm, graph = request.getfixturevalue("arm"), request.getfixturevalue("graph")
        graph.add_identity(NAME, principal)
        for app_id, value in app_roles:
            graph.add_app_roles(app_id, [value])
            graph.grant(principal, app_id, value)
        for template, name in directory_roles:
            graph.add_role_definition(template, name)
            graph.assign_role(principal, template)
        account = open_account(ARM_ID, arm_endpoint=arm.endpoint, graph_endpoint=graph.endpoint,
                               credential=graph.credential(READER), settings=FAST)
        opened.append(account)
        return account

    yield make
    for account in opened:
        account.close()
