"""Automation accounts: open one from a target (``rjsync.accounts.targets``).

``local:PATH`` opens a directory account; an ARM id
``/subscriptions/S/resourceGroups/G/providers/Microsoft.Automation/automationAccounts/A``
opens the Azure Automation account through Resource Manager. Both implement
``rjsync.accounts.base.Account``.
"""

from __future__ import annotations

from rjsync.accounts.base import (
    RJ_RUNTIME_ENVIRONMENT,
    Account,
    LiveModule,
    LiveRunbook,
    LiveRuntimeEnvironment,
    ModuleImport,
    RunbookWrite,
    Snapshot,
)
from rjsync.accounts.targets import ArmId, LocalTarget, Target, parse_target
from rjsync.catalog.naming import OWNED_PREFIX

__all__ = [
    "RJ_RUNTIME_ENVIRONMENT",
    "Account",
    "LiveModule",
    "LiveRunbook",
    "LiveRuntimeEnvironment",
    "ModuleImport",
    "RunbookWrite",
    "Snapshot",
    "open_account",
]


def open_account(
    target: str | Target,
    *,
    owned_prefix: str = OWNED_PREFIX,
    auth: str = "default",
    client_id: str | None = None,
    cloud: str = "public",
    arm_endpoint: str | None = None,
    credential=None,
    gallery_url: str | None = None,
    settings=None,
    graph_endpoint: str | None = None,
    permissions_identity: str | None = None,
) -> Account:
    """Open the account ``target`` names: ``local:PATH`` or an automation account's ARM id, as
    text (``parse_target`` reads it) or already parsed.

    The Azure options: ``auth`` picks the identity (see ``rjsync.accounts.credentials``;
    ``client_id`` selects a user-assigned managed identity), ``cloud`` (public, china,
    usgovernment) or ``arm_endpoint`` the Resource Manager to talk to, ``credential`` replaces
    the identity altogether (tests), ``gallery_url`` the PowerShell Gallery's v2 API,
    ``settings`` (``rjsync.accounts.azure.AzureSettings``) polling, pacing and retries,
    ``graph_endpoint`` the Microsoft Graph to read grants from (else the cloud's), and
    ``permissions_identity`` the principal id of the user-assigned identity the runbooks run as
    (else the account's system-assigned identity).
    Nothing is contacted until the first call.
    """
    parsed = target if isinstance(target, (LocalTarget, ArmId)) else parse_target(target)
    if isinstance(parsed, LocalTarget):
        from rjsync.accounts.local import LocalAccount

        return LocalAccount(parsed.path, owned_prefix=owned_prefix)
    from rjsync.accounts.azure import AzureAccount, AzureSettings
    from rjsync.accounts.credentials import make_credential, resolve_cloud

    endpoints = resolve_cloud(cloud, arm_endpoint, graph_endpoint)
    label = auth
    if credential is None:
        credential = make_credential(auth, client_id=client_id, cloud=endpoints)
    else:
        label = "custom credential"
    return AzureAccount(
        parsed,
        credential=credential,
        endpoints=endpoints,
        owned_prefix=owned_prefix,
        gallery_url=gallery_url,
        settings=settings or AzureSettings(),
        auth=label,
        permissions_identity=permissions_identity,
    )
