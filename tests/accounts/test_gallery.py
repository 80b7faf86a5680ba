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


def test_gallery_answers_are_cached_for_the_run(client, gallery):
    client.package("Az.Resources", "6.12.0")
    client.versions("Az.Accounts")
    asked = len(gallery.server.log)

    client.package("Az.Resources", "6.12.0")
    client.versions("Az.Accounts")
    client.package("Az.Accounts", "2.13.2")  # listed with every version

    assert asked == 2 and len(gallery.server.log) == asked


def test_gallery_latest_follows_feed_paging_and_skips_prereleases(client, gallery):
    gallery.page_size = 1

    assert client.latest("Az.Accounts").version == "3.0.0"
    assert client.latest("ExchangeOnlineManagement").version == "3.4.0"
    assert len(gallery.server.requests("GET", "FindPackagesById")) == 3 + 2


def test_gallery_unknown_module_version_is_a_sentence(client, gallery):
    with pytest.raises(GalleryError) as caught:
        client.package("Az.Nope", "1.0.0")

    assert str(caught.value) == (
        f"Module 'Az.Nope' version 1.0.0 is not in the PowerShell Gallery ({gallery.base_url}): check the "
        "module name and version."
    )


def test_gallery_unknown_module_is_a_sentence(client, gallery):
    with pytest.raises(GalleryError) as caught:
        client.versions("Az.Missing")

    assert str(caught.value) == (
        f"Module 'Az.Missing' is not in the PowerShell Gallery ({gallery.base_url}): check the module name."
    )


def test_gallery_content_link_is_where_the_download_address_redirects_with_one_request(client, gallery):
    links = [client.content_link("Az.Accounts", "2.13.2") for _ in range(2)]

    assert links == [gallery.nupkg_url(gallery.find("Az.Accounts", "2.13.2"))] * 2
    assert [(r.path, r.status) for r in gallery.server.log] == [("/api/v2/package/Az.Accounts/2.13.2", 302)]


def test_gallery_content_link_of_an_unknown_package_is_a_sentence(client, gallery):
    with pytest.raises(GalleryError) as caught:
        client.content_link("Az.Nope", "1.0.0")

    assert str(caught.value) == (
        f"Module 'Az.Nope' version 1.0.0 cannot be downloaded from the PowerShell Gallery ({gallery.base_url}): "
        "check the module name and version."
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
        storage = client.package("Az.Storage", "6.0.0")
        assert (storage.id, storage.version) == ("Az.Storage", "6.0.0")
        assert [d.id for d in storage.dependencies] == ["Az.Accounts"]
        with pytest.raises(GalleryError) as caught:
            client.package("Az.Nope", "1.0.0")
    finally:
        client.close()

    shown = mirror.replace("https://", "https://***@")
    assert str(caught.value) == (
        f"Module 'Az.Nope' version 1.0.0 is not in the PowerShell Gallery ({shown}): check the module name and version.")
    assert all(r.path.startswith("/repository/psgallery/") for r in gallery.server.requests("GET"))
