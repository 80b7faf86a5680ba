"""The permissions section on the real upstream's sidecars, with an identity holding half of them,
read through the fake Microsoft Graph by the Azure account on the ARM emulator (the real SDK and
azure-core over HTTPS): the whole path a plan of a real account takes.

The union of every ``<runbook>.permissions.json`` is computed here from the JSON files alone
(not through rjsync's catalog), split in two halves, and the identity given one: the plan of
the whole repository must list exactly the other half, required ones as missing and the
optional-only ones under their features. A ``X.Read.All`` and a ``X.ReadWrite.All`` of one
resource stay in the same half, as the second holds the first (``rjsync.engine.permissions``).
Skipped without ``RJSYNC_UPSTREAM_REPO``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import rjsync.sync
from fakes.accounts import ARM_ID, FAST, NAME
from fakes.arm import system_identity
from fakes.graph import READER
from rjsync.settings import SourceSpec, SyncSettings
from rjsync.sync import prepare

pytestmark = pytest.mark.upstream

UPSTREAM = os.environ.get("RJSYNC_UPSTREAM_REPO")
CONTEXTS = ("device", "group", "org", "user")


def sidecar_union(root: Path) -> tuple[dict, set, int]:
    """grant key -> (spelling, template/appid, required?), the keys needed optionally only, and
    the number of sidecars. Keys: ("app", appid, value lower) or ("role", template id or name)."""
    grants: dict[tuple, dict] = {}
    files = sorted(p for context in CONTEXTS for p in (root / context).glob("*/*.permissions.json"))
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        for resource in data.get("Permissions") or []:
            for entry in resource.get("AppRoleAssignments") or []:
                value, optional = (entry, False) if isinstance(entry, str) else (entry["Value"], entry.get("Optional"))
                key = ("app", resource["Id"].lower(), value.strip().lower())
                grant = grants.setdefault(key, {"value": value.strip(), "id": resource["Id"].lower(), "required": False})
                grant["required"] |= not optional
        for entry in data.get("Roles") or []:
            name, template, optional = ((entry, None, False) if isinstance(entry, str)
                                        else (entry["Name"], entry.get("TemplateId"), entry.get("Optional")))
            key = ("role", (template or " ".join(name.split())).lower())
            grant = grants.setdefault(key, {"value": name.strip(), "id": (template or "").lower(), "required": False})
            grant["required"] |= not optional
    return grants, {k for k, g in grants.items() if not g["required"]}, len(files)


def halves(keys) -> tuple[set, set]:
    """Two halves of ``keys`` (the first has len // 2), Read.All and ReadWrite.All together."""
    families: dict[tuple, list] = {}
    for key in sorted(keys):
        family = (key[0], key[1], re.sub(r"\.read(write)?\.all$", "", key[2])) if key[0] == "app" else key
        families.setdefault(family, []).append(key)
    held, other = [], []
    for members in families.values():
        (held if len(held) <= len(other) else other).extend(members)
    while len(held) > len(keys) // 2:  # move single grants until held is exactly half
        single = next(f for f in families.values() if len(f) == 1 and f[0] in held)
        held.remove(single[0])
        other.append(single[0])
    while len(held) < len(keys) // 2:
        single = next(f for f in families.values() if len(f) == 1 and f[0] in other)
        other.remove(single[0])
        held.append(single[0])
    return set(held), set(other)


def listed(report: dict) -> tuple[set, set]:
    """The grant keys the plan lists as missing, and as missing optional ones."""

    def keys(grouped: dict) -> set:
        found = {("app", g["resource_id"], r["name"].lower()) for g in grouped["app_roles"] for r in g["roles"]}
        return found | {("role", (r["template_id"] or " ".join(r["name"].split())).lower())
                        for r in grouped["directory_roles"]}

    return keys(report["missing"]), set().union(*(keys(group) for group in report["optional"]))


def test_upstream_identity_holding_half_of_the_union_is_told_exactly_the_other_half(arm, gallery, graph, monkeypatch):
    if not UPSTREAM:
        pytest.skip("set RJSYNC_UPSTREAM_REPO to a clone of realmjoin/realmjoin-runbooks")
    grants, optional_only, sidecars = sidecar_union(Path(UPSTREAM))
    held, other = halves(grants)
    graph.seed_from_sidecars(Path(UPSTREAM))
    principal = graph.add_identity(NAME, system_identity(NAME))
    by_name = {d["displayName"].lower(): key for key, d in graph.role_definitions.items()}
    for key in held:
        grant = grants[key]
        if key[0] == "app":
            graph.grant(principal, grant["id"], grant["value"])
        else:
            graph.assign_role(principal, grant["id"] or by_name[grant["value"].lower()])
    graph.page_size = 25
    real_open_account = rjsync.sync.open_account

    def on_the_emulator(target, **options):
        return real_open_account(target, **{**options, "arm_endpoint": arm.endpoint, "settings": FAST,
                                            "credential": graph.credential(READER), "graph_endpoint": graph.endpoint,
                                            "gallery_url": gallery.base_url})

    monkeypatch.setattr(rjsync.sync, "open_account", on_the_emulator)

    with prepare(SyncSettings(SourceSpec(UPSTREAM), ARM_ID)) as prepared:
        report = prepared.plan.to_json()["permissions"]

    assert report["status"] == "checked" and report["principal_id"] == principal
    missing, optional = listed(report)
    assert missing == other - optional_only
    assert optional == other & optional_only
    counts = report["counts"]
    assert (counts["needed"], counts["held"], counts["missing"], counts["missing_optional"]) == (
        len(grants), len(held), len(other - optional_only), len(other & optional_only))
    print(f"\nupstream: {sidecars} sidecars, {len(grants)} grants needed ({counts['required']} required, "
          f"{counts['optional']} optional only), {counts['held']} held, {counts['missing']} missing, "
          f"{counts['missing_optional']} optional missing, {counts['manual']} manual steps")
