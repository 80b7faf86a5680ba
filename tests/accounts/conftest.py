"""Fixtures for account tests: the ARM emulator, the fake gallery, and both account kinds.

- ``arm``: the ARM emulator (``fakes.arm.ArmEmulator``), reset for each test, with one
  automation account ``ARM_ID`` (``arm.account``); faults and the request log are on
  ``arm.server``.
- ``gallery``: the fake PowerShell Gallery (``fakes.gallery.FakeGallery``), reset per test.
- ``azure_account``: ``open_account(ARM_ID)`` through the real SDK against the emulator, with
  a static token, the test CA in REQUESTS_CA_BUNDLE and no waiting (``FAST``).
- ``local_account``: a directory account in a temporary folder.
- ``account``: each test that takes it runs once per kind: the protocol test-suite.
"""

from __future__ import annotations

import dataclasses

import pytest

from fakes.arm import ArmEmulator, StaticTokenCredential
from fakes.gallery import FakeGallery
from fakes.server import TestTLS
from rjsync.accounts import open_account
from account_support import ARM_ID, FAST, GROUP, NAME, SUBSCRIPTION

@pytest.fixture(scope="session")
def tls(tmp_path_factory):
    return TestTLS(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def _gallery_server(tls):
    gallery = FakeGallery(tls)
    yield gallery
    gallery.close()


@pytest.fixture(scope="session")
def _arm_server(tls, _gallery_server):
    emulator = ArmEmulator(tls, _gallery_server)
    yield emulator
    emulator.close()


@pytest.fixture
def gallery(_gallery_server):
    _gallery_server.reset()
    yield _gallery_server
    assert not _gallery_server.server.errors, _gallery_server.server.errors[0]


@pytest.fixture
def arm(_arm_server, gallery, tls, monkeypatch):
    _arm_server.reset()
    _arm_server.account = _arm_server.add_account(SUBSCRIPTION, GROUP, NAME)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_path))
    yield _arm_server
    assert not _arm_server.server.errors, _arm_server.server.errors[0]


@pytest.fixture
def credential():
    return StaticTokenCredential("test-token")


@pytest.fixture
def open_azure(arm, gallery, credential):
    """``open_azure(**settings)`` opens ARM_ID on the emulator with FAST settings changed."""
    opened = []

    def open_(target: str = ARM_ID, *, credential=credential, **changes):
        account = open_account(target, arm_endpoint=arm.endpoint, credential=credential,
                               gallery_url=gallery.base_url, settings=dataclasses.replace(FAST, **changes))
        opened.append(account)
        return account

    yield open_
    for account in opened:
        account.close()


@pytest.fixture
def azure_account(open_azure):
    return open_azure()


@pytest.fixture
def local_account(tmp_path):
    return open_account(f"local:{tmp_path / 'account'}")


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
