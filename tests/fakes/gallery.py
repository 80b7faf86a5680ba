"""A small fake PowerShell Gallery: the v2 (OData/Atom) API rjsync reads, on loopback HTTPS.

- ``GET /api/v2/Packages(Id='X',Version='Y')``: one Atom entry, 404 if unknown.
- ``GET /api/v2/FindPackagesById()?id='X'``: a feed of all versions, paged (``$skip``,
  ``<link rel="next">``) by ``page_size``.
- ``GET /api/v2/package/X/Y``: 302 to ``/packages/x.y.nupkg``, as the real gallery answers
  with the package's address in blob storage (shared notes, "Content link"); with
  ``redirects = False`` it serves the package itself, as a mirror may.
- ``GET /packages/x.y.nupkg``: the package (a few placeholder bytes).
- ``serve_at(path)`` moves the API from ``/api/v2`` to another path, as a mirror serves it
  (Azure Artifacts, Nexus, ProGet expose the same v2 API under their own paths: shared notes,
  "Modules and the PowerShell Gallery"); ``reset`` moves it back.

``m:properties`` carry ``d:Id``, ``d:Version``, ``d:Dependencies`` (``Id:Range:Framework``
joined by ``|``) and ``d:IsPrerelease``, as the real gallery sends them. The ARM emulator asks
the same object (in process) whether a content link names a known package and what it
depends on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote
from xml.sax.saxutils import escape, quoteattr

from fakes.server import LoopbackServer, Request, Response, TestTLS

#: (id, version, dependencies) of the default catalog; enough for realistic dependency chains.
DEFAULT_PACKAGES = [
    ("Az.Accounts", "2.12.1", ""),
    ("Az.Accounts", "2.13.2", ""),
    ("Az.Accounts", "3.0.0", ""),
    ("Az.Resources", "6.12.0", "Az.Accounts:[2.13.2, ):"),
    ("Az.Storage", "6.0.0", "Az.Accounts:[2.13.2, ):"),
    ("Az.Websites", "3.1.0", "Az.Accounts:[2.12.1, ):|Az.Storage:[6.0.0, ):"),
    ("Microsoft.Graph.Authentication", "2.15.0", ""),
    ("Microsoft.Graph.Users", "2.15.0", "Microsoft.Graph.Authentication:[2.15.0]:"),
    ("ExchangeOnlineManagement", "3.4.0", ""),
    ("ExchangeOnlineManagement", "3.5.0-Preview1", ""),
    ("RealmJoin.RunbookHelper", "0.8.3", ""),
    ("Az.Orphan", "1.0.0", "Az.Missing:[1.0.0, ):"),
]


@dataclass(frozen=True)
class FakePackage:
    id: str
    version: str
    dependencies: str = ""

    @property
    def is_prerelease(self) -> bool:
        return "-" in self.version

    def parsed_dependencies(self) -> list[tuple[str, str | None]]:
        """(id, minimum version) of each dependency."""
        found = []
        for item in self.dependencies.split("|"):
            if not item.strip():
                continue
            name, _, rest = item.partition(":")
            spec = rest.rsplit(":", 1)[0].strip().strip("[]()")
            minimum = spec.split(",")[0].strip() or None
            found.append((name.strip(), minimum))
        return found


class FakeGallery:
    def __init__(self, tls: TestTLS, *, page_size: int = 100):
        self.page_size = page_size
        self.packages: dict[tuple[str, str], FakePackage] = {}
        self.server = LoopbackServer(tls, self.handle)
        self.reset()

    def serve_at(self, path: str) -> str:
        """Serve the v2 API under ``path`` (e.g. ``/repository/psgallery``); its base URL."""
        self.base_path = "/" + path.strip("/")
        self.base_url = f"{self.server.url}{self.base_path}"
        return self.base_url

    def reset(self) -> None:
        self.serve_at("/api/v2")
        self.packages.clear()
        self.redirects = True
        for pkg in DEFAULT_PACKAGES:
            self.add(*pkg)
        self.server.clear_faults()
        self.server.clear_log()

    def add(self, id: str, version: str, dependencies: str = "") -> FakePackage:  # noqa: A002
        pkg = FakePackage(id, version, dependencies)
        self.packages[(id.lower(), version.lower())] = pkg
        return pkg

    def find(self, id: str, version: str) -> FakePackage | None:  # noqa: A002
        return self.packages.get((id.lower(), version.lower()))

    def nupkg_url(self, pkg: FakePackage) -> str:
        """Where the package's download address redirects to (lower case, as the gallery's blobs)."""
        return f"{self.server.url}/packages/{pkg.id.lower()}.{pkg.version.lower()}.nupkg"

    def find_by_content_link(self, uri: str) -> FakePackage | None:
        """The package a content link names: the gallery's download address or the ``.nupkg`` one."""
        match = re.search(r"/package/([^/]+)/([^/?]+)", uri)
        if match:
            return self.find(unquote(match.group(1)), unquote(match.group(2)))
        match = re.search(r"/packages/([^/?]+)\.nupkg$", uri, re.IGNORECASE)
        if match:
            return next((p for p in self.packages.values()
                         if f"{p.id}.{p.version}".lower() == unquote(match.group(1)).lower()), None)
        return None

    def close(self) -> None:
        self.server.close()

    # -- HTTP -----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        path = unquote(request.path)
        if request.method != "GET":
            return Response(405)
        if not path.lower().startswith(self.base_path.lower() + "/"):
            return Response(404)
        path = path[len(self.base_path):]
        m = re.fullmatch(r"/Packages\(Id='(.*)',Version='(.*)'\)", path, re.IGNORECASE)
        if m:
            pkg = self.find(m.group(1).replace("''", "'"), m.group(2).replace("''", "'"))
            if pkg is None:
                return Response(404, b"<error>not found</error>", {"Content-Type": "application/xml"})
            return self._atom(_entry(pkg, self.base_url, root=True))
        if re.fullmatch(r"/FindPackagesById\(\)", path, re.IGNORECASE):
            wanted = request.query.get("id", "").strip("'").replace("''", "'").lower()
            found = sorted((p for p in self.packages.values() if p.id.lower() == wanted), key=lambda p: p.version)
            skip = int(request.query.get("$skip", "0"))
            page = found[skip: skip + self.page_size]
            link = ""
            if skip + self.page_size < len(found):
                href = f"{self.base_url}/FindPackagesById()?id='{wanted}'&$skip={skip + self.page_size}"
                link = f'<link rel="next" href={quoteattr(href)}/>'
            entries = "".join(_entry(p, self.base_url) for p in page)
            return self._atom(
                f'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:d="{_D}" xmlns:m="{_M}">'
                f"<title type=\"text\">FindPackagesById</title>{entries}{link}</feed>"
            )
        m = re.fullmatch(r"/package/([^/]+)/([^/]+)", path, re.IGNORECASE)
        if m:
            pkg = self.find(m.group(1), m.group(2))
            if pkg is None:
                return Response(404)
            if self.redirects:  # the real gallery's answer (shared notes, "Content link")
                return Response(302, b"", {"Location": self.nupkg_url(pkg)})
            return Response(200, b"PK\x03\x04 fake nupkg", {"Content-Type": "application/zip"})
        if re.fullmatch(r"/packages/[^/]+\.nupkg", path, re.IGNORECASE):
            if self.find_by_content_link(path) is None:
                return Response(404)
            return Response(200, b"PK\x03\x04 fake nupkg", {"Content-Type": "application/octet-stream"})
        return Response(404)

    @staticmethod
    def _atom(xml: str) -> Response:
        body = ('<?xml version="1.0" encoding="utf-8"?>' + xml).encode()
        return Response(200, body, {"Content-Type": "application/atom+xml;type=entry;charset=utf-8"})


_D = "http://schemas.microsoft.com/ado/2007/08/dataservices"
_M = "http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"


def _entry(pkg: FakePackage, base: str, *, root: bool = False) -> str:
    ns = f' xmlns="http://www.w3.org/2005/Atom" xmlns:d="{_D}" xmlns:m="{_M}"' if root else ""
    src = f"{base}/package/{pkg.id}/{pkg.version}"
    return (
        f"<entry{ns}><id>{escape(base)}/Packages(Id='{escape(pkg.id)}',Version='{escape(pkg.version)}')</id>"
        f'<title type="text">{escape(pkg.id)}</title>'
        f'<content type="application/zip" src={quoteattr(src)}/>'
        f"<m:properties><d:Id>{escape(pkg.id)}</d:Id><d:Version>{escape(pkg.version)}</d:Version>"
        f"<d:NormalizedVersion>{escape(pkg.version)}</d:NormalizedVersion>"
        f"<d:Dependencies>{escape(pkg.dependencies)}</d:Dependencies>"
        f'<d:IsPrerelease m:type="Edm.Boolean">{"true" if pkg.is_prerelease else "false"}</d:IsPrerelease>'
        f"</m:properties></entry>"
    )
