"""Microsoft Graph at the upstream's scale: the fake seeded with every app role and directory role
the upstream's ``*.permissions.json`` name, an identity holding every other one, read back through
``rjsync.accounts.graph`` exactly (paged, each resource read once). Skipped without
``RJSYNC_UPSTREAM_REPO``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fakes.graph import READER
from rjsync.accounts.graph import GraphSettings, open_graph

pytestmark = pytest.mark.upstream

UPSTREAM = os.environ.get("RJSYNC_UPSTREAM_REPO")


def test_upstream_grants_of_an_identity_holding_half_of_the_union_read_back_exactly(graph):
    if not UPSTREAM:
        pytest.skip("set RJSYNC_UPSTREAM_REPO to a clone of realmjoin/realmjoin-runbooks")
    apps, roles = graph.seed_from_sidecars(Path(UPSTREAM))
    union = sorted((app, value) for app, values in apps.items() for value in values)
    identity = graph.add_identity()
    held = set(union[::2])
    for app, value in held:
        graph.grant(identity, app, value)
    held_roles = {(t, n) for t, n in sorted(roles.items())[::2]}
    for template, _ in held_roles:
        graph.assign_role(identity, template)
    graph.page_size = 25

    with open_graph(graph_endpoint=graph.endpoint, credential=graph.credential(READER),
                    settings=GraphSettings(retry_backoff_factor=0.001)) as client:
        grants = client.read_grants(identity)

    assert len(union) >= 50 and grants.app_roles == held  # 55 distinct app roles in 167 sidecars
    assert grants.directory_roles == held_roles
    assert len(graph.server.requests("GET", r"/servicePrincipals/[0-9a-f-]{36}$")) == len(apps)
