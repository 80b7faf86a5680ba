"""The ``serve`` fixture: real sync services on loopback (see service_support)."""

from __future__ import annotations

import pytest
from service_support import Server, make_config

from rjsync.service import create_app


@pytest.fixture
def serve(tmp_path):
    """``serve(**config changes)`` -> a running Server; all stopped at the end."""
    servers = []

    def start(**changes) -> Server:
        server = Server(create_app(make_config(tmp_path, **changes)))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
