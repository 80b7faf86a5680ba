"""Building a catalog from source files: layout, collisions, sidecars, modules, diagnostics."""

from __future__ import annotations

import json
import textwrap

import pytest

from rjsync.catalog.build import build_catalog
from rjsync.catalog.model import SourceFile, SourceInfo

SOURCE = SourceInfo(kind="folder", location="test")


def ps1(synopsis="Does a thing.", requires="", params="[string]$Name", inputs=""):
    help_inputs = f".INPUTS\n{inputs}\n" if inputs else ""
    return textwrap.dedent(f"""\
        <#
        .SYNOPSIS
        {synopsis}
        {help_inputs}#>
        {requires}
        param({params})
        """).encode()


def build(files: dict[str, bytes], **kwargs):
    return build_catalog(SOURCE, [SourceFile(p, d) for p, d in files.items()], **kwargs)


def messages(catalog):
    return [(d.severity, d.path, d.message) for d in catalog.diagnostics]


def test_build_catalog_reads_the_layout_and_skips_tooling():
    catalog = build({
        "user/general/a.ps1": ps1(),
        "org/reporting/b_scheduled.ps1": ps1(),
        ".github/scripts/tool.ps1": ps1(),
        "README.md": b"# hi",
    })
    assert [(r.name, r.path, r.schedulable) for r in catalog.runbooks] == [
        ("rjgit-org_reporting_b_scheduled", "org/reporting/b_scheduled.ps1", True),
        ("rjgit-user_general_a", "user/general/a.ps1", False),
    ]
    assert catalog.diagnostics == ()


def test_build_catalog_lists_other_folders_and_stray_scripts_as_diagnostics():
    catalog = build({
        "internal/device/x.ps1": ps1(),
        "internal/device/y.ps1": ps1(),
        "user/loose.ps1": ps1(),
        "user/a/b/deep.ps1": ps1(),
    })
    assert catalog.runbooks == ()
    assert messages(catalog) == [
        ("info", "internal", "folder 'internal' holds 2 script(s) in the runbook layout but is "
         "not a synced context (contexts: device, group, org, user); list it in the contexts "
         "to sync it"),
        ("warning", "user/a/b/deep.ps1",
         "not in the <context>/<category>/<name>.ps1 layout; not synced"),
        ("warning", "user/loose.ps1",
         "not in the <context>/<category>/<name>.ps1 layout; not synced"),
    ]
    opted_in = build({"internal/device/x.ps1": ps1()},
                     contexts=("device", "group", "org", "user", "internal"))
    assert [r.name for r in opted_in.runbooks] == ["rjgit-internal_device_x"]


def test_build_catalog_syncs_neither_of_two_files_with_one_name():
    catalog = build({
        "user/security/reset-mfa.ps1": ps1(),
        "user/security/reset-MFA.ps1": ps1(),
        "user/security/other.ps1": ps1(),
    })
    assert [r.name for r in catalog.runbooks] == ["rjgit-user_security_other"]
    assert [(d.severity, d.path) for d in catalog.errors] == [
        ("error", "user/security/reset-MFA.ps1"), ("error", "user/security/reset-mfa.ps1")]
    assert "none of them is synced" in catalog.errors[0].message


def test_build_catalog_keeps_a_broken_script_out_and_reports_it():
    catalog = build({
        "user/general/broken.ps1": b"param(\n  [string]$a = 'x'\n",
        "user/general/fine.ps1": ps1(),
    })
    assert [r.name for r in catalog.runbooks] == ["rjgit-user_general_fine"]
    assert [(d.severity, d.path, d.line) for d in catalog.errors] == [
        ("error", "user/general/broken.ps1", 1)]


def test_build_catalog_warns_about_a_missing_synopsis():
    catalog = build({"user/general/a.ps1": b"param([string]$Name)\n"})
    assert messages(catalog) == [("warning", "user/general/a.ps1",
                                  "no .SYNOPSIS in the comment-based help; the portal shows no "
                                  "description")]
    assert catalog.runbooks[0].synopsis is None


def test_build_catalog_parses_customization_leniently_and_reports_bad_json():
    good = ps1(inputs='RunbookCustomization: {\n  "Parameters": {\n'
                      '    "Name": { "Hide": true }, // the portal fills it\n  },\n}')
    bad = ps1(inputs='RunbookCustomization: {\n  "Parameters": { "Name": }\n}')
    catalog = build({"user/general/good.ps1": good, "user/general/bad.ps1": bad})
    by_name = {r.name: r for r in catalog.runbooks}
    assert by_name["rjgit-user_general_good"].customization == {
        "Parameters": {"Name": {"Hide": True}}}
    assert by_name["rjgit-user_general_bad"].customization is None
    [diagnostic] = catalog.diagnostics
    assert (diagnostic.severity, diagnostic.path, diagnostic.line) == (
        "warning", "user/general/bad.ps1", 5)
    assert diagnostic.message.startswith("RunbookCustomization in .INPUTS is not valid JSON")


def test_build_catalog_reads_permissions_sidecars_of_both_schemas():
    v1 = {"Permissions": [{"Name": "Microsoft Graph", "AppRoleAssignments": ["User.Read.All"]}],
          "Roles": ["User Administrator"]}
    v2 = {"SchemaVersion": 2,
          "Permissions": [{"Name": "Microsoft Graph", "Id": "00000003-0000-0000-c000-000000000000",
                           "AppRoleAssignments": ["Mail.Send", {"Value": "Sites.Read.All",
                                                                "Optional": True,
                                                                "Feature": "Report"}]}],
          "Roles": [{"Name": "Exchange Administrator", "TemplateId": "29232cdf"}],
          "ManualPermissions": ["Owner on the subscription"]}
    catalog = build({
        "user/general/a.ps1": ps1(), "user/general/a.permissions.json": json.dumps(v1).encode(),
        "user/general/b.ps1": ps1(), "user/general/b.permissions.json": json.dumps(v2).encode(),
        "user/general/c.ps1": ps1(), "user/general/c.permissions.json": b'{"Permissions": [',
    })
    a, b, c = catalog.runbooks
    assert a.permissions == {
        "schema_version": 1,
        "permissions": [{"name": "Microsoft Graph", "id": None,
                         "app_roles": [{"value": "User.Read.All", "optional": False}]}],
        "roles": [{"name": "User Administrator", "optional": False}],
        "manual": [],
    }
    assert b.permissions == {
        "schema_version": 2,
        "permissions": [{"name": "Microsoft Graph", "id": "00000003-0000-0000-c000-000000000000",
                         "app_roles": [{"value": "Mail.Send", "optional": False},
                                       {"value": "Sites.Read.All", "optional": True,
                                        "feature": "Report"}]}],
        "roles": [{"name": "Exchange Administrator", "optional": False,
                   "template_id": "29232cdf"}],
        "manual": ["Owner on the subscription"],
    }
    assert c.permissions is None
    assert [(d.severity, d.path) for d in catalog.diagnostics] == [
        ("warning", "user/general/c.permissions.json")]


def test_build_catalog_takes_the_highest_minimum_version_per_module():
    catalog = build({
        "user/general/a.ps1": ps1(requires='#Requires -Modules @{ModuleName="M"; '
                                           'ModuleVersion="0.8.10"}, Other'),
        "user/general/b.ps1": ps1(requires='#Requires -Modules @{ModuleName="m"; '
                                           'ModuleVersion="0.8.9"}'),
        "user/general/c.ps1": ps1(requires="#Requires -Modules @{ModuleName='Pinned'; "
                                           "RequiredVersion='1.0'}"),
        "user/general/d.ps1": ps1(requires="#Requires -Modules @{ModuleName='Pinned'; "
                                           "RequiredVersion='1.2'}"),
    })
    assert [m.to_json() for m in catalog.modules] == [
        {"name": "M", "minimum_version": "0.8.10",
         "runbooks": ["rjgit-user_general_a", "rjgit-user_general_b"]},
        {"name": "Other", "minimum_version": None, "runbooks": ["rjgit-user_general_a"]},
        {"name": "Pinned", "minimum_version": "1.2", "required_versions": ["1.0", "1.2"],
         "runbooks": ["rjgit-user_general_c", "rjgit-user_general_d"]},
    ]
    assert [d.message for d in catalog.warnings] == [
        "module Pinned: runbooks require the exact versions 1.0, 1.2; an account holds one "
        "version of a module"]


def test_build_catalog_hash_does_not_change_when_a_file_is_re_encoded():
    text = ps1().decode()
    first = build({"user/general/a.ps1": text.encode()})
    second = build({"user/general/a.ps1": b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()})
    assert first.runbooks[0].sha256 == second.runbooks[0].sha256
    assert second.runbooks[0].encoding == "utf-8-bom"


DEEP = 3000  # past Python's recursion limit (1,000): each parser recurses once per level


@pytest.mark.parametrize("params", ["$x = " + "@(" * DEEP + ")" * DEEP,
                                    "[ValidateSet(" + "@(" * DEEP + ")" * DEEP + ")] $x"])
def test_build_catalog_keeps_a_script_with_deeply_nested_literals_out_with_an_error(params):
    catalog = build({"user/general/deep.ps1": ps1(params=params), "user/general/fine.ps1": ps1()})

    assert [r.path for r in catalog.runbooks] == ["user/general/fine.ps1"]
    assert ("error", "user/general/deep.ps1", "param block is nested too deeply to be read") in messages(catalog)


@pytest.mark.parametrize("tail", ["", ","])  # strict JSON, then json5 (a trailing comma)
def test_build_catalog_reports_deeply_nested_permissions_and_customization_as_warnings(tail):
    nested = "[" * DEEP + "]" * DEEP + tail
    catalog = build({"user/general/a.ps1": ps1(inputs=f"RunbookCustomization: {nested}"),
                     "user/general/a.permissions.json": nested.encode()})

    assert [r.customization for r in catalog.runbooks] == [None]
    assert [r.permissions for r in catalog.runbooks] == [None]
    assert ("warning", "user/general/a.permissions.json",
            "permissions file cannot be read: it is nested too deeply") in messages(catalog)
    assert ("warning", "user/general/a.ps1", "RunbookCustomization in .INPUTS is not valid JSON: it is "
            "nested too deeply; the portal ignores it") in messages(catalog)
