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
"""

from __future__ import annotations

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
