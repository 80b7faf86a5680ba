"""Test-wide guards (no test reaches the internet, none touches the real $HOME), and the
loopback Azure fixtures shared by account and engine tests: ``tls``, ``gallery``, ``arm`` (the
ARM emulator with the account ``ARM_ID``), ``graph`` (the fake Microsoft Graph), ``credential``, ``open_azure``, ``azure_account``
and ``local_account``."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket

import pytest

from fakes.accounts import ARM_ID, FAST, GROUP, NAME, SUBSCRIPTION
from fakes.arm import ArmEmulator, StaticTokenCredential
from fakes.gallery import FakeGallery
from fakes.graph import FakeGraph
from fakes.server import TestTLS
from rjsync.accounts import open_account
from rjsync.accounts.pacing import forget_budgets

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self, address):
    if not _is_local(address):
        raise AssertionError(f"test tried to reach the network: {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if not _is_local(address):
        raise AssertionError(f"test tried to reach the network: {address!r}")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Point $HOME and the rjsync cache at throw-away folders."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("RJSYNC_CACHE", str(home / ".cache" / "rjsync"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    return home


# -- loopback Azure ------------------------------------------------------------------------------


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
    forget_budgets()  # the client's request budgets live for the process: each test starts anew
    _arm_server.account = _arm_server.add_account(SUBSCRIPTION, GROUP, NAME)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_path))
    yield _arm_server
    assert not _arm_server.server.errors, _arm_server.server.errors[0]


@pytest.fixture(scope="session")
def _graph_server(tls):
    graph = FakeGraph(tls)
    yield graph
    graph.close()


@pytest.fixture
def graph(_graph_server, tls, monkeypatch):
    """The fake Microsoft Graph (``fakes.graph.FakeGraph``), reset for each test."""
    _graph_server.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_path))
    yield _graph_server
    assert not _graph_server.server.errors, _graph_server.server.errors[0]


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
