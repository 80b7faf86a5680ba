"""The union of the runbooks' permission sidecars (``rjsync catalog --format json``)."""

from __future__ import annotations

import json

from rjsync.catalog.build import build_catalog
from rjsync.catalog.model import SourceFile, SourceInfo
from rjsync.catalog.permissions import permission_union

GRAPH = "00000003-0000-0000-c000-000000000000"
SCRIPT = b"<#\n.SYNOPSIS\nDoes a thing.\n#>\nparam([string] $Name)\n"


def union(**sidecars: dict) -> dict:
    files = []
    for name, data in sidecars.items():
        files += [SourceFile(f"user/general/{name}.ps1", SCRIPT),
                  SourceFile(f"user/general/{name}.permissions.json", json.dumps(data).encode())]
    return permission_union(build_catalog(SourceInfo("folder", "/src"), files).runbooks)


def test_permission_union_required_and_optional_apart_each_grant_once():
    doc = union(
        a={"SchemaVersion": 2, "Permissions": [{"Name": "Microsoft Graph", "Id": GRAPH, "AppRoleAssignments": [
            "User.Read.All", {"Value": "Mail.Send", "Optional": True, "Feature": "Email report"}]}],
           "Roles": [{"Name": "User Administrator", "TemplateId": "FE930BE7-5E62-47DB-91AF-98C3A49A38B1"}],
           "ManualPermissions": ["Exclude break-glass accounts"]},
        b={"Permissions": [{"Name": "Microsoft Graph", "Id": GRAPH, "AppRoleAssignments": [
            "user.read.all", "Group.Read.All"]}],
           "Roles": ["user administrator", {"Name": "Teams Administrator", "Optional": True}],
           "ManualPermissions": ["Exclude break-glass accounts"]})

    assert doc == {
        "required": {"app_roles": [{"name": "Microsoft Graph", "id": GRAPH,
                                    "values": ["Group.Read.All", "User.Read.All"]}],
                     "directory_roles": [{"name": "User Administrator",
                                          "template_id": "fe930be7-5e62-47db-91af-98c3a49a38b1"}]},
        "optional": {"app_roles": [{"name": "Microsoft Graph", "id": GRAPH, "values": ["Mail.Send"]}],
                     "directory_roles": [{"name": "Teams Administrator", "template_id": None}]},
        "manual": ["Exclude break-glass accounts"],
    }


def test_permission_union_of_runbooks_without_sidecars_is_empty():
    empty = {"app_roles": [], "directory_roles": []}
    assert permission_union([]) == {"required": empty, "optional": empty, "manual": []}
