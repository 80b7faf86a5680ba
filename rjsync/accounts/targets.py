"""Targets: the text that names an account, parsed once into a value.

A target is ``local:PATH`` (a directory account, ``LocalTarget``) or an automation account's
ARM id ``/subscriptions/S/resourceGroups/G/providers/Microsoft.Automation/automationAccounts/A``
(``ArmId``). ``parse_target`` reads either and says exactly what is wrong with anything else.
Each kind gives its canonical text (``str``) and a ``key``: two targets with one key are one
account (the same folder however spelled; an ARM id in any case), which is how a fleet finds
two manifests that would write one account at once.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from typing import Literal

from rjsync.errors import AccountError

ARM_ID_FORM = (
    "/subscriptions/<subscription-id>/resourceGroups/<group>/providers/"
    "Microsoft.Automation/automationAccounts/<account>"
)

_GROUP = re.compile(r"^[-\w.()]{1,90}$")
_ACCOUNT = re.compile(r"^[A-Za-z][A-Za-z0-9-]{4,48}[A-Za-z0-9]$")


@dataclass(frozen=True)
class LocalTarget:
    """A directory account: ``path`` as given (relative paths are relative to the working folder)."""

    path: str

    def __str__(self) -> str:
        return f"local:{self.path}"

    @property
    def key(self) -> str:
        return "local:" + os.path.normcase(os.path.realpath(self.path))


@dataclass(frozen=True)
class ArmId:
    """An automation account in Azure, by its Resource Manager id."""

    subscription: str
    resource_group: str
    account: str

    def __str__(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Automation/automationAccounts/{self.account}"
        )

    @property
    def key(self) -> str:
        return str(self).lower()  # Resource Manager compares ids case-insensitively


Target = LocalTarget | ArmId

#: What is wrong with a target text: nothing given, ``local:`` without a folder, neither form,
#: or an ARM id that is not an automation account's.
Problem = Literal["empty", "no folder", "unknown", "arm id"]


class TargetError(AccountError):
    """A target text that names no account. ``problem`` says which way, so that a caller who
    words it differently (the manifest reader) does not have to tell the cases apart again."""

    def __init__(self, message: str, problem: Problem) -> None:
        super().__init__(message)
        self.problem = problem


def parse_target(text: str) -> Target:
    """Parse ``local:PATH`` or an automation account's ARM id, or say what is wrong with it."""
    stripped = (text or "").strip()
    if not stripped:
        raise TargetError(
            f"No target given: use local:PATH for a directory account, or an automation account's "
            f"ARM id {ARM_ID_FORM}.", "empty"
        )
    if stripped.lower().startswith("local:"):
        path = stripped[len("local:"):]
        if not path:
            raise TargetError("The target 'local:' names no folder: use local:PATH, e.g. local:./account.",
                              "no folder")
        return LocalTarget(path)
    if not (stripped.startswith("/") or "://" in stripped):  # a URL gets parse_arm_id's hint
        raise TargetError(
            f"Unknown target '{text}': use local:PATH for a directory account, or an automation "
            f"account's ARM id {ARM_ID_FORM}.", "unknown"
        )
    return parse_arm_id(stripped)


def parse_arm_id(target: str) -> ArmId:
    """Parse an automation account's ARM id, or say exactly what is wrong with it."""

    def bad(why: str) -> TargetError:
        return TargetError(f"'{target}' is not an automation account's ARM id: {why}. Expected {ARM_ID_FORM}.",
                           "arm id")

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
