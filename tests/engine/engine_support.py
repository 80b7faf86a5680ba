"""Small builders for engine tests: catalogs from script texts, snapshots from live runbooks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rjsync.accounts.base import LiveModule, LiveRunbook, LiveRuntimeEnvironment, Snapshot
from rjsync.accounts.receipts import RECEIPT_PATH, RECEIPT_SHA256, stamp
from rjsync.catalog.build import build_catalog
from rjsync.catalog.model import SourceFile, SourceInfo
from rjsync.catalog.text import normalized_sha256

SYNCED_AT = datetime(2026, 11, 1, 12, 0, 0, tzinfo=timezone.utc)


def script(synopsis: str = "Does a thing.", body: str = "Write-Output 1", requires: str = "") -> bytes:
    head = f"#Requires -Modules {requires}\n\n" if requires else ""
    return (f"{head}<#\n.SYNOPSIS\n{synopsis}\n#>\nparam([string] $Name)\n{body}\n").encode()


def catalog(files: dict[str, bytes], *, commit: str | None = "c0ffee0", **options):
    info = SourceInfo("folder", "/src", None, commit)
    return build_catalog(info, [SourceFile(p, d) for p, d in files.items()], **options)


def receipt(data: bytes, path: str, *, at: datetime = SYNCED_AT) -> dict[str, str]:
    return stamp({RECEIPT_SHA256: normalized_sha256(data), RECEIPT_PATH: path}, at)


def live(name: str, *, tags: dict | None = None, state: str = "Published", runbook_type: str = "PowerShell",
         runtime_environment: str | None = "RJ-PowerShell-7.4", description: str = "Does a thing.",
         modified: datetime | None = None) -> LiveRunbook:
    return LiveRunbook(name, runbook_type, runtime_environment, state, description, tags or {},
                       modified or SYNCED_AT + timedelta(seconds=1))


def snapshot(*runbooks: LiveRunbook, packages: dict[str, str] | None = None, environment: bool = True,
             modules: dict[str, str] | None = None, default_packages: dict[str, str] | None = None) -> Snapshot:
    """The environment, when there is one, has the default packages rjsync gives a new one,
    their names in lower case as Azure answers them (unless ``default_packages`` says)."""
    envs = ()
    if environment:
        defaults = {"az": "12.3.0"} if default_packages is None else default_packages
        envs = (LiveRuntimeEnvironment("RJ-PowerShell-7.4", "PowerShell", "7.4", tuple(
            LiveModule(n, v, "Succeeded") for n, v in sorted((packages or {}).items())), defaults),)
    return Snapshot(tuple(sorted(runbooks, key=lambda r: r.name.lower())),
                    tuple(LiveModule(n, v, "Succeeded") for n, v in sorted((modules or {}).items())), envs)
