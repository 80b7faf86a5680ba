"""Automation accounts: open one from a target string.

``local:PATH`` opens a directory account; an ARM id
``/subscriptions/S/resourceGroups/G/providers/Microsoft.Automation/automationAccounts/A``
opens the Azure Automation account through Resource Manager. Both implement
``rjsync.accounts.base.Account``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from rjsync.accounts.base import (
    OWNED_PREFIX,
    RJ_RUNTIME_ENVIRONMENT,
    Account,
    LiveModule,
    LiveRunbook,
    LiveRuntimeEnvironment,
    ModuleImport,
    RunbookWrite,
    Snapshot,
)
from rjsync.errors import AccountError

__all__ = [
    "OWNED_PREFIX",
    "RJ_RUNTIME_ENVIRONMENT",
    "Account",
    "ArmId",
    "LiveModule",
    "LiveRunbook",
    "LiveRuntimeEnvironment",
    "ModuleImport",
    "RunbookWrite",
    "Snapshot",
    "open_account",
    "parse_arm_id",
]

ARM_ID_FORM = (
    "/subscriptions/<subscription-id>/resourceGroups/<group>/providers/"
    "Microsoft.Automation/automationAccounts/<account>"
)

_GROUP = re.compile(r"^[-\w.()]{1,90}$")
_ACCOUNT = re.compile(r"^[A-Za-z][A-Za-z0-9-]{4,48}[A-Za-z0-9]$")


@dataclass(frozen=True)
class ArmId:
    subscription: str
    resource_group: str
    account: str

    def __str__(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Automation/automationAccounts/{self.account}"
        )


def parse_arm_id(target: str) -> ArmId:
    """Parse an automation account's ARM id, or say exactly what is wrong with it."""

    def bad(why: str) -> AccountError:
        return AccountError(f"'{target}' is not an automation account's ARM id: {why}. Expected {ARM_ID_FORM}.")

    text = target.strip()
    if "://" in text:
        at = text.lower().find("/subscriptions/")
        hint = "; use the part from /subscriptions/ on" if at >= 0 else ""
        raise bad(f"it is a URL{hint}")
    parts = text.strip("/").split("/")
    expected = ["subscriptions", None, "resourcegroups", None, "providers", "microsoft.automation", "automationaccounts", None]
    labels = {0: "subscriptions", 2: "resourceGroups", 4: "providers", 5: "Microsoft.Automation", 6: "automationAccounts"}
    for index, want in enumerate(expected):
        if index >= len(parts) or not parts[index]:
            missing = {1: "the subscription id", 3: "the resource group", 7: "the account name"}.get(index)
            raise bad(f"{missing or repr(labels[index])} is missing")
        if want is not None and parts[index].lower() != want:
            if index == 5:
                raise bad(f"it names a {parts[index]} resource, not Microsoft.Automation")
            if index == 6:
                raise bad(f"it names {parts[5]}/{parts[index]}, not an automation account")
            raise bad(f"expected '{labels[index]}' where it says '{parts[index]}'")
    if len(parts) > len(expected):
        extra = "/".join(parts[len(expected):])
        raise bad(f"remove the trailing '/{extra}'; the id ends with the account name")
    subscription, group, account = parts[1], parts[3], parts[7]
    try:
        uuid.UUID(subscription)
    except ValueError:
        raise bad(f"the subscription id '{subscription}' is not a GUID") from None
    if not _GROUP.match(group) or group.endswith("."):
        raise bad(f"'{group}' is not a valid resource group name")
    if not _ACCOUNT.match(account):
        raise bad(
            f"'{account}' is not a valid automation account name (6-50 letters, digits and "
            "hyphens, starting with a letter)"
        )
    return ArmId(subscription, group, account)


def open_account(
    target: str,
    *,
    owned_prefix: str = OWNED_PREFIX,
    auth: str = "default",
    client_id: str | None = None,
    cloud: str = "public",
    arm_endpoint: str | None = None,
    credential=None,
    gallery_url: str | None = None,
    settings=None,
) -> Account:
    """Open the account ``target`` names: ``local:PATH`` or an automation account's ARM id.

    The Azure options: ``auth`` picks the identity (see ``rjsync.accounts.credentials``;
    ``client_id`` selects a user-assigned managed identity), ``cloud`` (public, china,
    usgovernment) or ``arm_endpoint`` the Resource Manager to talk to, ``credential`` replaces
    the identity altogether (tests), ``gallery_url`` the PowerShell Gallery's v2 API, and
    ``settings`` (``rjsync.accounts.azure.AzureSettings``) polling, pacing and retries.
    Nothing is contacted until the first call.
    """
    text = (target or "").strip()
    if not text:
        raise AccountError(
            f"No target given: use local:PATH for a directory account, or an automation account's "
            f"ARM id {ARM_ID_FORM}."
        )
    if text.lower().startswith("local:"):
        path = text[len("local:"):]
        if not path:
            raise AccountError("The target 'local:' names no folder: use local:PATH, e.g. local:./account.")
        from rjsync.accounts.local import LocalAccount

        return LocalAccount(path, owned_prefix=owned_prefix)
    if not (text.startswith("/") or "://" in text):
        raise AccountError(
            f"Unknown target '{target}': use local:PATH for a directory account, or an automation "
            f"account's ARM id {ARM_ID_FORM}."
        )
    arm_id = parse_arm_id(text)
    from rjsync.accounts.azure import AzureAccount, AzureSettings
    from rjsync.accounts.credentials import make_credential, resolve_cloud

    endpoints = resolve_cloud(cloud, arm_endpoint)
    label = auth
    if credential is None:
        credential = make_credential(auth, client_id=client_id, cloud=endpoints)
    else:
        label = "custom credential"
    return AzureAccount(
        arm_id,
        credential=credential,
        endpoints=endpoints,
        owned_prefix=owned_prefix,
        gallery_url=gallery_url,
        settings=settings or AzureSettings(),
        auth=label,
    )
