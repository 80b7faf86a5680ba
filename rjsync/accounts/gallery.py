"""PowerShell Gallery lookups: which versions a module has and what it depends on.

Azure Automation imports a module from a content link but never its dependencies, so they
are imported first, at the versions ``rjsync.accounts.resolution.resolve_set`` decides for all
the modules of one apply together, from what this module reads. The gallery's v2 (OData) API is
read: ``Packages(Id='X',Version='Y')`` answers one Atom entry, ``FindPackagesById()?id='X'``
a feed of all versions (paged with ``rel="next"``); ``m:properties`` carry ``d:Id``,
``d:Version``, ``d:IsPrerelease`` and ``d:Dependencies`` (``Id:VersionRange:Framework``
joined by ``|``, the range in NuGet syntax, e.g. ``Az.Accounts:[2.13.2, ):``).

The content link Azure downloads a package from is the direct ``.nupkg`` URL: the gallery's
``/api/v2/package/{Id}/{Version}`` answers a 302 to the package in blob storage, and the
documentation's runtime-environment examples use the direct URL (``content_link`` asks once,
without following the redirect; a gallery that serves the package itself keeps its URL).
Answers are cached for the life of the ``Gallery`` (one run). HTTP goes through azure-core, so
throttling and transient faults get its retry policy.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

from azure.core import PipelineClient
from azure.core.exceptions import AzureError
from azure.core.pipeline.policies import HeadersPolicy, RetryPolicy, UserAgentPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest

from rjsync.accounts.base import version_key
from rjsync.errors import AccountError
from rjsync.source import redact

DEFAULT_GALLERY_URL = "https://www.powershellgallery.com/api/v2"

#: The environment variable naming the gallery when neither --gallery nor the manifest does.
GALLERY_ENV = "RJSYNC_GALLERY"

_ATOM = "{http://www.w3.org/2005/Atom}"
_M = "{http://schemas.microsoft.com/ado/2007/08/dataservices/metadata}"
_D = "{http://schemas.microsoft.com/ado/2007/08/dataservices}"


class GalleryError(AccountError):
    """The PowerShell Gallery cannot answer, or does not have what was asked for."""


def check_gallery_url(url: str) -> str:
    """``url`` without a trailing '/' if it can be a gallery's v2 API: https, a host, no query
    or fragment. Plain http is refused, also on loopback: Azure Automation downloads the
    content links itself (a loopback mirror cannot serve it), and lookups and packages are not
    fetched where anyone on the way can change them. Credentials in it are never shown."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        valid = (parts.scheme.lower() == "https" and bool(parts.hostname) and not parts.query
                 and not parts.fragment)
    except ValueError:  # e.g. a port that is not a number
        valid = False
    if not valid:
        raise GalleryError(
            f"'{redact(url.strip())}' is not a gallery URL: give the https:// URL of the PowerShell "
            f"Gallery's v2 API ({DEFAULT_GALLERY_URL}) or of a mirror of it, without a query.")
    return url.strip().rstrip("/")


@dataclass(frozen=True)
class Dependency:
    """``id`` within a NuGet version range; None bounds are open."""

    id: str
    min_version: str | None = None
    min_inclusive: bool = True
    max_version: str | None = None
    max_inclusive: bool = False

    def allows(self, version: str | None) -> bool:
        key = version_key(version)
        if self.min_version is not None:
            low = version_key(self.min_version)
            if key < low or (key == low and not self.min_inclusive):
                return False
        if self.max_version is not None:
            high = version_key(self.max_version)
            if key > high or (key == high and not self.max_inclusive):
                return False
        return True


@dataclass(frozen=True)
class GalleryPackage:
    id: str
    version: str
    dependencies: tuple[Dependency, ...] = ()
    is_prerelease: bool = False


def parse_dependencies(text: str | None) -> tuple[Dependency, ...]:
    """``"A:[1.0, ):|B:2.0:"`` -> dependencies (duplicates for other frameworks dropped)."""
    found: dict[str, Dependency] = {}
    for item in (text or "").split("|"):
        item = item.strip()
        if not item:
            continue
        name, _, rest = item.partition(":")
        spec = rest.rsplit(":", 1)[0] if rest.count(":") >= 1 else rest
        dep = _parse_range(name.strip(), spec.strip())
        found.setdefault(dep.id.lower(), dep)
    return tuple(found.values())


def _parse_range(name: str, spec: str) -> Dependency:
    if not spec:
        return Dependency(name)
    if spec[0] not in "[(":
        return Dependency(name, spec, True)  # a bare version is a minimum
    low_incl, high_incl = spec[0] == "[", spec[-1] == "]"
    inner = spec[1:-1]
    if "," not in inner:  # [1.0] is exactly 1.0
        version = inner.strip()
        return Dependency(name, version, True, version, True)
    low, high = (s.strip() or None for s in inner.split(",", 1))
    return Dependency(name, low, low_incl, high, high_incl)


class Gallery:
    """A PowerShell Gallery v2 API at ``base_url``, cached for one run."""

    def __init__(self, base_url: str = DEFAULT_GALLERY_URL, *, connection_verify=None,
                 retry_backoff_factor: float = 0.8, timeout: float = 60.0):
        self.base_url = check_gallery_url(base_url)
        self.shown_url = redact(self.base_url)  # for messages: credentials masked
        transport_options = {} if connection_verify is None else {"connection_verify": connection_verify}
        self._client = PipelineClient(
            self.base_url + "/",
            policies=[
                HeadersPolicy({"Accept": "application/atom+xml"}),
                UserAgentPolicy("rjsync"),
                RetryPolicy(retry_backoff_factor=retry_backoff_factor, retry_backoff_max=30),
            ],
            transport=RequestsTransport(connection_timeout=timeout, read_timeout=timeout, **transport_options),
        )
        self._packages: dict[tuple[str, str], GalleryPackage] = {}
        self._versions: dict[str, tuple[GalleryPackage, ...]] = {}
        self._links: dict[str, str] = {}
        self._lock = threading.Lock()

    def content_url(self, name: str, version: str) -> str:
        """The gallery's download address of a package (it may redirect)."""
        return f"{self.base_url}/package/{quote(name)}/{quote(version)}"

    def content_link(self, name: str, version: str) -> str:
        """The content link Azure Automation downloads the package from: where the gallery's
        download address redirects to (one request, the redirect not followed), else that address."""
        url = self.content_url(name, version)
        with self._lock:
            if url in self._links:
                return self._links[url]
        try:
            response = self._client.send_request(HttpRequest("GET", url), stream=True)
        except AzureError as err:
            raise GalleryError(f"Cannot reach the PowerShell Gallery at {self.base_url}: {err.message}") from None
        try:
            status, location = response.status_code, response.headers.get("Location")
        finally:
            response.close()
        if status in (301, 302, 303, 307, 308) and location:
            link = urljoin(url, location)
        elif status < 300:
            link = url
        elif status == 404:
            raise GalleryError(f"Module '{name}' version {version} cannot be downloaded from the PowerShell "
                               f"Gallery ({self.base_url}): check the module name and version.")
        else:
            raise GalleryError(f"The PowerShell Gallery at {self.base_url} answered HTTP {status} for the "
                               f"package of module '{name}' {version}; try again later.")
        with self._lock:
            self._links[url] = link
        return link

    def package(self, name: str, version: str) -> GalleryPackage:
        key = (name.lower(), version.lower())
        with self._lock:
            if key in self._packages:
                return self._packages[key]
        root = self._get(f"Packages(Id='{_odata(name)}',Version='{_odata(version)}')",
                         missing=f"Module '{name}' version {version} is not in the PowerShell Gallery "
                                 f"({self.shown_url}): check the module name and version.")
        entries = [root] if root.tag == f"{_ATOM}entry" else root.findall(f"{_ATOM}entry")
        if not entries:
            raise GalleryError(
                f"Module '{name}' version {version} is not in the PowerShell Gallery ({self.shown_url}): "
                "check the module name and version."
            )
        pkg = _entry(entries[0])
        with self._lock:
            self._packages[key] = pkg
        return pkg

    def versions(self, name: str) -> tuple[GalleryPackage, ...]:
        """Every version of module ``name`` the gallery has, oldest first."""
        with self._lock:
            if name.lower() in self._versions:
                return self._versions[name.lower()]
        found: list[GalleryPackage] = []
        url = f"FindPackagesById()?id='{quote(_odata(name))}'"
        while url:
            feed = self._get(url, missing=f"Module '{name}' is not in the PowerShell Gallery ({self.shown_url}).")
            found.extend(_entry(e) for e in feed.findall(f"{_ATOM}entry"))
            nxt = feed.find(f"{_ATOM}link[@rel='next']")
            url = nxt.get("href") if nxt is not None else None
        if not found:
            raise GalleryError(
                f"Module '{name}' is not in the PowerShell Gallery ({self.shown_url}): check the module name."
            )
        result = tuple(sorted(found, key=lambda p: version_key(p.version)))
        with self._lock:
            self._versions[name.lower()] = result
            for pkg in result:
                self._packages.setdefault((pkg.id.lower(), pkg.version.lower()), pkg)
        return result

    def latest(self, name: str) -> GalleryPackage:
        stable = [p for p in self.versions(name) if not p.is_prerelease]
        if not stable:
            raise GalleryError(f"Module '{name}' has only prerelease versions in the PowerShell Gallery; pin one.")
        return stable[-1]

    def close(self) -> None:
        self._client.close()

    def _get(self, url: str, *, missing: str) -> ET.Element:
        full = urljoin(self.base_url + "/", url)
        try:
            response = self._client.send_request(HttpRequest("GET", full))
        except AzureError as err:
            raise GalleryError(f"Cannot reach the PowerShell Gallery at {self.shown_url}: {err.message}") from None
        if response.status_code == 404:
            raise GalleryError(missing)
        if response.status_code >= 400:
            raise GalleryError(
                f"The PowerShell Gallery at {self.shown_url} answered HTTP {response.status_code} "
                f"{response.reason}; try again later."
            )
        try:
            return ET.fromstring(response.content)
        except ET.ParseError as err:
            raise GalleryError(f"The PowerShell Gallery at {self.shown_url} sent unreadable metadata: {err}.") from None


def _entry(entry: ET.Element) -> GalleryPackage:
    props = entry.find(f"{_M}properties")
    if props is None:
        raise GalleryError("The PowerShell Gallery sent a package entry without properties.")
    name = props.findtext(f"{_D}Id") or entry.findtext(f"{_ATOM}title") or ""
    return GalleryPackage(
        id=name.strip(),
        version=(props.findtext(f"{_D}Version") or "").strip(),
        dependencies=parse_dependencies(props.findtext(f"{_D}Dependencies")),
        is_prerelease=(props.findtext(f"{_D}IsPrerelease") or "").strip().lower() == "true",
    )


def _odata(value: str) -> str:
    return value.replace("'", "''")

