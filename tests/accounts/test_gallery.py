"""PowerShell Gallery lookups against the fake gallery: dependencies, ordering, paging, caching."""

from __future__ import annotations

import socket

import pytest

from rjsync.accounts.gallery import (
    Dependency,
    Gallery,
    GalleryError,
    check_gallery_url,
    parse_dependencies,
)


@pytest.fixture
def client(gallery, tls):
    client = Gallery(gallery.base_url, connection_verify=str(tls.ca_path), retry_backoff_factor=0.001)
    yield client
    client.close()


@pytest.mark.parametrize("text, expected", [
    ("", ()),
    ("Az.Accounts:[2.13.2, ):", (Dependency("Az.Accounts", "2.13.2", True, None, False),)),
    ("A:1.0:|B:[2.0]:", (Dependency("A", "1.0", True), Dependency("B", "2.0", True, "2.0", True))),
    ("A:(1.0,2.0]:net45|A:[1.0, ):netstandard2.0", (Dependency("A", "1.0", False, "2.0", True),)),
    ("A::", (Dependency("A"),)),
])
def test_parse_dependencies_reads_nuget_ranges(text, expected):
    assert parse_dependencies(text) == expected


@pytest.mark.parametrize("version, allowed", [("1.0", False), ("1.0.1", True), ("2.0.0", True), ("2.0.1", False)])
def test_dependency_allows_versions_in_its_range(version, allowed):
    assert Dependency("A", "1.0", False, "2.0", True).allows(version) is allowed


def test_gallery_resolve_orders_dependencies_first_at_the_lowest_allowed_version(client):
    order = client.resolve("Az.Websites", "3.1.0")

    assert [(p.id, p.version) for p in order] == [
        ("Az.Accounts", "2.13.2"), ("Az.Storage", "6.0.0"), ("Az.Websites", "3.1.0")]


def test_gallery_resolve_takes_a_preferred_version_its_range_allows(client):
    assert [(p.id, p.version) for p in client.resolve("Az.Resources", "6.12.0", {"Az.Accounts": "3.0.0"})] == [
        ("Az.Accounts", "3.0.0"), ("Az.Resources", "6.12.0")]
    # one the range does not allow, or the gallery does not have, is not taken
    assert [(p.id, p.version) for p in client.resolve("Az.Resources", "6.12.0", {"az.accounts": "2.12.1"})] == [
        ("Az.Accounts", "2.13.2"), ("Az.Resources", "6.12.0")]
    assert [(p.id, p.version) for p in client.resolve("Az.Resources", "6.12.0", {"az.accounts": "9.9.9"})] == [
        ("Az.Accounts", "2.13.2"), ("Az.Resources", "6.12.0")]


def test_gallery_answers_are_cached_for_the_run(client, gallery):
    client.resolve("Az.Resources", "6.12.0")
    asked = len(gallery.server.log)

    client.resolve("Az.Resources", "6.12.0")

    assert asked > 0 and len(gallery.server.log) == asked


def test_gallery_latest_follows_feed_paging_and_skips_prereleases(client, gallery):
    gallery.page_size = 1

    assert client.latest("Az.Accounts").version == "3.0.0"
    assert client.latest("ExchangeOnlineManagement").version == "3.4.0"
    assert len(gallery.server.requests("GET", "FindPackagesById")) == 3 + 2


def test_gallery_resolve_without_a_version_takes_the_latest_stable(client):
    assert [(p.id, p.version) for p in client.resolve("Az.Accounts")] == [("Az.Accounts", "3.0.0")]


def test_gallery_unknown_module_is_a_sentence(client, gallery):
    with pytest.raises(GalleryError) as caught:
        client.resolve("Az.Nope", "1.0.0")

    assert str(caught.value) == (
        f"Module 'Az.Nope' version 1.0.0 is not in the PowerShell Gallery ({gallery.base_url}): check the "
        "module name and version."
    )


def test_gallery_dependency_missing_from_the_gallery_is_a_sentence(client, gallery):
    with pytest.raises(GalleryError) as caught:
        client.resolve("Az.Orphan", "1.0.0")

    assert str(caught.value) == (
        f"Module 'Az.Missing' is not in the PowerShell Gallery ({gallery.base_url}): check the module name."
    )


def test_gallery_retries_a_transient_fault(client, gallery):
    gallery.server.fail(503, nth=1)

    assert client.package("Az.Accounts", "2.13.2").version == "2.13.2"
    assert [r.status for r in gallery.server.log] == [503, 200]


def test_gallery_unreachable_is_a_sentence(tls):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = Gallery(f"https://127.0.0.1:{port}/api/v2", connection_verify=str(tls.ca_path), retry_backoff_factor=0.001)

    with pytest.raises(GalleryError) as caught:
        client.package("Az.Accounts", "2.13.2")

    assert str(caught.value).startswith(f"Cannot reach the PowerShell Gallery at https://127.0.0.1:{port}/api/v2: ")


@pytest.mark.parametrize("url", [
    "http://nexus.example/repository/psgallery", "http://127.0.0.1:8080/api/v2", "https://mirror.example/api/v2?x=1",
    "https://mirror.example/api/v2#top", "https:///api/v2", "ftp://mirror.example/api/v2", "mirror.example/api/v2",
    "https://mirror.example:port/api/v2",
])
def test_check_gallery_url_refuses_what_is_not_an_https_url(url):
    with pytest.raises(GalleryError, match="is not a gallery URL: give the https:// URL of the PowerShell Gallery"):
        check_gallery_url(url)


def test_check_gallery_url_keeps_a_mirrors_own_path():
    assert check_gallery_url(" https://pkgs.dev.azure.com/org/_packaging/psgallery/nuget/v2/ ") == (
        "https://pkgs.dev.azure.com/org/_packaging/psgallery/nuget/v2")


def test_gallery_at_a_mirrors_path_never_shows_the_credentials_in_its_url(gallery, tls):
    mirror = gallery.serve_at("/repository/psgallery")
    client = Gallery(mirror.replace("https://", "https://ci:tok3n@"), connection_verify=str(tls.ca_path),
                     retry_backoff_factor=0.001)
    try:
        assert [(p.id, p.version) for p in client.resolve("Az.Storage", "6.0.0")] == [
            ("Az.Accounts", "2.13.2"), ("Az.Storage", "6.0.0")]
        with pytest.raises(GalleryError) as caught:
            client.package("Az.Nope", "1.0.0")
    finally:
        client.close()

    shown = mirror.replace("https://", "https://***@")
    assert str(caught.value) == (
        f"Module 'Az.Nope' version 1.0.0 is not in the PowerShell Gallery ({shown}): check the module name and version.")
    assert all(r.path.startswith("/repository/psgallery/") for r in gallery.server.requests("GET"))
