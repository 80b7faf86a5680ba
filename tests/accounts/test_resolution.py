"""The modules of one apply resolved as one set (``rjsync.accounts.resolution``): against an
in-memory gallery (the resolution is pure apart from its look-ups), and once against the fake
gallery's v2 API."""

from __future__ import annotations

import pytest

from rjsync.accounts.gallery import Gallery, GalleryError, GalleryPackage, parse_dependencies
from rjsync.accounts.resolution import resolve_set
from rjsync.versions import version_key

UPSTREAM_LIKE = [
    ("Az.Accounts", "5.5.2", ""),
    ("Az.Accounts", "5.6.0", ""),
    ("Az.Accounts", "5.7.0", ""),
    ("Az.Storage", "9.3.0", "Az.Accounts:[5.3.0, ):"),
    ("Az.Resources", "8.1.1", "Az.Accounts:[5.3.0, ):"),
    ("Az.DesktopVirtualization", "6.0.0", "Az.Accounts:[5.6.0, ):"),
    ("Microsoft.Graph.Authentication", "2.15.0", ""),
    ("Microsoft.Graph.Authentication", "2.16.0", ""),
    ("Microsoft.Graph.Users", "2.15.0", "Microsoft.Graph.Authentication:[2.15.0]:"),
    ("Az.Orphan", "1.0.0", "Az.Missing:[1.0.0, ):"),
    ("Legacy.Tool", "1.0.0", "Az.Accounts:[5.0.0, 5.6.0):"),
    # a newer version of A needs a newer B: the set settles only after A moved
    ("RJ.A", "1.0.0", "RJ.B:[1.0.0, ):"),
    ("RJ.A", "2.0.0", "RJ.B:[2.0.0, ):"),
    ("RJ.B", "1.0.0", ""),
    ("RJ.B", "2.0.0", ""),
    ("RJ.C", "1.0.0", "RJ.A:[2.0.0, ):"),
    ("RJ.Preview", "1.0.0", ""),
    ("RJ.Preview", "2.0.0-preview1", ""),
]


class MemoryGallery:
    """The look-ups ``resolve_set`` makes, from a list; ``asked`` records each one."""

    def __init__(self, packages):
        self.packages = [GalleryPackage(i, v, parse_dependencies(d), "-" in v) for i, v, d in packages]
        self.asked: list[tuple[str, ...]] = []

    def package(self, name, version):
        self.asked.append(("package", name, version))
        for pkg in self.packages:
            if pkg.id.lower() == name.lower() and pkg.version == version:
                return pkg
        raise GalleryError(f"Module '{name}' version {version} is not in the PowerShell Gallery.")

    def versions(self, name):
        self.asked.append(("versions", name))
        found = sorted((p for p in self.packages if p.id.lower() == name.lower()), key=lambda p: version_key(p.version))
        if not found:
            raise GalleryError(f"Module '{name}' is not in the PowerShell Gallery.")
        return tuple(found)

    def latest(self, name):
        return [p for p in self.versions(name) if not p.is_prerelease][-1]


@pytest.fixture
def lookup():
    return MemoryGallery(UPSTREAM_LIKE)


def _versions(modules) -> list[tuple[str, str, bool]]:
    return [(m.id, m.version, m.installed) for m in modules.modules]


def test_resolve_set_imports_a_shared_dependency_once_at_the_highest_version_any_module_needs(lookup):
    modules = resolve_set({"Az.Accounts": "5.5.2", "Az.Storage": "9.3.0", "Az.DesktopVirtualization": "6.0.0"},
                          {}, lookup)

    assert _versions(modules) == [("Az.Accounts", "5.6.0", False), ("Az.DesktopVirtualization", "6.0.0", False),
                                  ("Az.Storage", "9.3.0", False)]
    assert modules.errors == {}
    assert [m.id for m in modules.closure("Az.Storage")] == ["Az.Accounts", "Az.Storage"]
    assert [m.id for m in modules.closure("az.accounts")] == ["Az.Accounts"]


def test_resolve_set_takes_the_lowest_version_every_range_allows(lookup):
    modules = resolve_set({"Az.Storage": "9.3.0", "Az.Resources": "8.1.1"}, {}, lookup)

    assert _versions(modules)[0] == ("Az.Accounts", "5.5.2", False)  # >= 5.3.0: the lowest the gallery has


def test_resolve_set_keeps_what_the_account_has_when_every_range_allows_it(lookup):
    modules = resolve_set({"Az.Storage": "9.3.0", "Az.DesktopVirtualization": "6.0.0"}, {"az.accounts": "5.7.0"}, lookup)

    assert _versions(modules) == [("Az.Accounts", "5.7.0", True), ("Az.DesktopVirtualization", "6.0.0", False),
                                  ("Az.Storage", "9.3.0", False)]


def test_resolve_set_never_goes_below_what_the_account_has(lookup):
    # the account's 5.5.2 is too old for Az.DesktopVirtualization: upgraded to the lowest that fits
    assert _versions(resolve_set({"Az.DesktopVirtualization": "6.0.0"}, {"Az.Accounts": "5.5.2"}, lookup))[0] == (
        "Az.Accounts", "5.6.0", False)
    # a requirement below what the account has is left as it is
    assert _versions(resolve_set({"Az.Accounts": "5.5.2"}, {"Az.Accounts": "5.7.0"}, lookup)) == [
        ("Az.Accounts", "5.7.0", True)]


@pytest.mark.parametrize("unknown", ["Unknown", None])
def test_resolve_set_counts_an_installed_version_the_service_reports_unknown_as_satisfying(lookup, unknown):
    modules = resolve_set({"Az.DesktopVirtualization": "6.0.0"}, {"Az.Accounts": unknown}, lookup)

    assert _versions(modules) == [("Az.Accounts", unknown, True), ("Az.DesktopVirtualization", "6.0.0", False)]


def test_resolve_set_moves_a_dependency_again_when_its_dependant_moved(lookup):
    modules = resolve_set({"RJ.A": "1.0.0", "RJ.C": "1.0.0"}, {}, lookup)

    assert _versions(modules) == [("RJ.B", "2.0.0", False), ("RJ.A", "2.0.0", False), ("RJ.C", "1.0.0", False)]


def test_resolve_set_without_a_version_takes_the_newest_stable(lookup):
    assert _versions(resolve_set({"RJ.Preview": None}, {}, lookup)) == [("RJ.Preview", "1.0.0", False)]


def test_resolve_set_sets_aside_what_cannot_be_resolved_and_resolves_the_rest(lookup):
    modules = resolve_set({"Az.Nope": "1.0.0", "Az.Orphan": "1.0.0", "Az.Storage": "9.3.0"}, {}, lookup)

    assert _versions(modules) == [("Az.Accounts", "5.5.2", False), ("Az.Storage", "9.3.0", False)]
    assert modules.errors == {
        "az.nope": "Module 'Az.Nope' version 1.0.0 is not in the PowerShell Gallery.",
        "az.orphan": "Module 'Az.Missing' is not in the PowerShell Gallery.",
    }


def test_resolve_set_ranges_that_exclude_each_other_fail_every_module_that_needs_them(lookup):
    modules = resolve_set({"Microsoft.Graph.Users": "2.15.0", "Microsoft.Graph.Authentication": "2.16.0",
                           "Az.Storage": "9.3.0"}, {}, lookup)

    message = ("No version of module 'Microsoft.Graph.Authentication' in the PowerShell Gallery satisfies "
               ">= 2.16.0 (the runbooks); = 2.15.0 (Microsoft.Graph.Users 2.15.0).")
    assert modules.errors == {"microsoft.graph.users": message, "microsoft.graph.authentication": message}
    assert [m.id for m in modules.modules] == ["Az.Accounts", "Az.Storage"]


def test_resolve_set_never_downgrades_for_a_range_with_a_maximum(lookup):
    modules = resolve_set({"Legacy.Tool": "1.0.0"}, {"Az.Accounts": "5.7.0"}, lookup)

    assert modules.errors == {"legacy.tool": (
        "No version of module 'Az.Accounts' in the PowerShell Gallery satisfies >= 5.0.0 and < 5.6.0 "
        "(Legacy.Tool 1.0.0); >= 5.7.0 (the account's version (never downgraded)).")}


def test_resolve_set_asks_for_the_one_version_it_needs_before_listing_every_version(lookup):
    resolve_set({"Az.Accounts": "5.5.2", "Az.DesktopVirtualization": "6.0.0"}, {}, lookup)

    assert ("versions", "Az.Accounts") not in lookup.asked
    assert ("package", "Az.Accounts", "5.6.0") in lookup.asked


def test_resolve_set_against_the_gallery_api_orders_dependencies_first(gallery, tls):
    client = Gallery(gallery.base_url, connection_verify=str(tls.ca_path), retry_backoff_factor=0.001)
    try:
        modules = resolve_set({"Az.Websites": "3.1.0", "Az.Resources": "6.12.0"}, {}, client)
    finally:
        client.close()

    assert _versions(modules) == [("Az.Accounts", "2.13.2", False), ("Az.Resources", "6.12.0", False),
                                  ("Az.Storage", "6.0.0", False), ("Az.Websites", "3.1.0", False)]
