"""What one sync is asked to do: source, target, policy, Azure options and concurrency.

A ``SyncSettings`` comes from a manifest (``rjsync.manifest``), from the command line's
``--source``/``--target`` flags, or from both (flags given explicitly override the manifest:
``settings_from``). The pipeline (``rjsync.sync``) takes it as it is.

The concurrency contract, the same for ``rjsync plan|apply``, a fleet and the sync service:

- ``--concurrency N`` (``concurrency``, default 8) is the number of requests to the account
  in flight at once (Resource Manager calls; for Azure also the limit of the SDK client).
- Runbook writes under way at once are ``WRITES_PER_REQUEST`` x N (default 32): a write
  spends most of its time waiting for the service's two long-running operations (draft
  upload, publish) between its requests, and a wait holds no request slot. Module imports
  all start at once; the account paces them to the service's 5 per 30 s.
- Content reads while planning and deletions run N at once (one request each).
- Resource Manager's request budgets (200 writes, then 10 per s, per subscription) are kept by
  the account's pacing whatever N is, so a larger N never makes the service refuse requests.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from rjsync.engine.policy import Policy
from rjsync.errors import RjsyncError

#: Requests to the account in flight at once (``--concurrency``).
DEFAULT_CONCURRENCY = 8

#: Runbook writes under way per request in flight (see the module docstring).
WRITES_PER_REQUEST = 4

#: Accounts planned or applied at once by a fleet (``--accounts-at-once``) and by the sync
#: service (``accounts_at_once``); each account still runs its own ``concurrency``.
DEFAULT_ACCOUNTS_AT_ONCE = 4


def writes_at_once(concurrency: int) -> int:
    """Runbook writes under way at once for ``--concurrency`` ``concurrency``."""
    return WRITES_PER_REQUEST * max(1, concurrency)


@dataclass(frozen=True)
class AzureOptions:
    """How to reach an Azure target: identity (``auth``, ``client_id``), cloud, and the
    PowerShell Gallery (``gallery``: its v2 API, or a mirror's; None: ``gallery_url`` decides).
    ``permissions_identity``: the principal (object) id of the user-assigned identity the
    runbooks run as, whose grants the plan checks (None: the account's system-assigned one);
    ``graph_endpoint``: Microsoft Graph instead of the cloud's (tests, a proxy)."""

    auth: str = "default"
    client_id: str | None = None
    cloud: str = "public"
    arm_endpoint: str | None = None
    gallery: str | None = None
    permissions_identity: str | None = None
    graph_endpoint: str | None = None


def gallery_url(azure: AzureOptions, environ: Mapping[str, str] = os.environ) -> str | None:
    """The gallery modules are looked up in and imported from: ``--gallery``, else the
    manifest's ``azure.gallery`` (both land in ``azure.gallery``), else $RJSYNC_GALLERY, else
    None (the PowerShell Gallery). Raises ``RjsyncError`` when it is not an https URL."""
    from rjsync.accounts.gallery import GALLERY_ENV, GalleryError, check_gallery_url

    if azure.gallery:
        return check_gallery_url(azure.gallery)
    value = (environ.get(GALLERY_ENV) or "").strip()
    if not value:
        return None
    try:
        return check_gallery_url(value)
    except GalleryError as err:
        raise RjsyncError(f"{GALLERY_ENV} is wrong: {err.message}") from None


@dataclass(frozen=True)
class SourceSpec:
    """Where runbooks come from: a folder or git repository (URL or path), and a ref."""

    location: str
    ref: str | None = None


@dataclass(frozen=True)
class SyncSettings:
    """Everything one sync needs: what a manifest file holds, or the flags that replace it."""

    source: SourceSpec
    target: str
    policy: Policy = field(default_factory=Policy)
    azure: AzureOptions = field(default_factory=AzureOptions)
    concurrency: int = DEFAULT_CONCURRENCY
    #: a required grant the identity lacks (or grants that cannot be read) is an error: plan
    #: exits 1, apply writes nothing (``--require-permissions``, the manifest's permissions.require)
    require_permissions: bool = False
    name: str | None = None  # the manifest's name (its file stem), for messages and fleets
    manifest: str | None = None  # the manifest file it came from


def settings_from(
    *,
    manifest: str | None,
    source: str | None,
    ref: str | None,
    target: str | None,
    policy: Mapping[str, Any] | None = None,
    azure: Mapping[str, Any] | None = None,
    concurrency: int | None = None,
    require_permissions: bool | None = None,
) -> SyncSettings:
    """A manifest, or --source/--target; flags given explicitly override the manifest."""
    if manifest:
        if source or target:
            raise RjsyncError("Give either --manifest or --source and --target, not both.")
        from rjsync.manifest import load_manifest

        return override(load_manifest(manifest), ref=ref, policy=policy, azure=azure, concurrency=concurrency,
                        require_permissions=require_permissions)
    if not source or not target:
        missing = " and ".join(o for o, v in (("--source", source), ("--target", target)) if not v)
        raise RjsyncError(
            f"Missing {missing}: give --manifest FILE, or --source SOURCE and --target TARGET "
            "(local:PATH or an automation account's ARM id).")
    settings = SyncSettings(source=SourceSpec(source, ref), target=target)
    return override(settings, policy=policy, azure=azure, concurrency=concurrency,
                    require_permissions=require_permissions)


def override(
    settings: SyncSettings,
    *,
    ref: str | None = None,
    policy: Mapping[str, Any] | None = None,
    azure: Mapping[str, Any] | None = None,
    concurrency: int | None = None,
    require_permissions: bool | None = None,
) -> SyncSettings:
    """``settings`` with the values given (not None) in place of the manifest's."""
    policy = {k: v for k, v in (policy or {}).items() if v is not None}
    azure = {k: v for k, v in (azure or {}).items() if v is not None}
    if ref:
        settings = dataclasses.replace(settings, source=dataclasses.replace(settings.source, ref=ref))
    if policy:
        settings = dataclasses.replace(settings, policy=dataclasses.replace(settings.policy, **policy))
    if azure:
        settings = dataclasses.replace(settings, azure=dataclasses.replace(settings.azure, **azure))
    if concurrency is not None:
        settings = dataclasses.replace(settings, concurrency=concurrency)
    if require_permissions is not None:
        settings = dataclasses.replace(settings, require_permissions=require_permissions)
    return settings
