"""The RealmJoin naming convention: where a script lives decides what the runbook is called.

``user/general/add-additional-alias.ps1`` is the runbook ``rjgit-user_general_add-additional-alias``
shown as "Add Additional Alias" in the category "General". Account names are lowercase;
Azure compares them case-insensitively.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rjsync.errors import PrefixError

#: Runbooks whose name starts with this prefix (case-insensitive) belong to rjsync: the catalog
#: names every runbook with it, and an account lets rjsync write only those.
OWNED_PREFIX = "rjgit-"
#: Characters an owned prefix never holds: whitespace and the wildcards of glob patterns.
_PREFIX_BAD = re.compile(r"[\s*?\[\]]")
MIN_PREFIX_LENGTH = 3
DEFAULT_CONTEXTS = ("device", "group", "org", "user")
MAX_NAME_LENGTH = 63
SCHEDULED_SUFFIX = "_scheduled"

_VALID_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def check_prefix(prefix: object) -> str:
    """``prefix`` when it can be an owned prefix, else ``PrefixError``: at least 3 characters,
    no whitespace or wildcard, ending in '-' or '_', so that it never makes a customer's
    runbook (``Payroll``) look owned. Every way a prefix comes in (flag, manifest, saved plan,
    service, account) passes here."""
    if (not isinstance(prefix, str) or len(prefix) < MIN_PREFIX_LENGTH or _PREFIX_BAD.search(prefix)
            or not prefix.endswith(("-", "_"))):
        raise PrefixError(
            f"The owned prefix {prefix!r} is not allowed: give at least {MIN_PREFIX_LENGTH} characters without "
            f"spaces or wildcards, ending in '-' or '_' (like '{OWNED_PREFIX}'), so that no customer runbook "
            "counts as owned.")
    return prefix


@dataclass(frozen=True)
class RunbookName:
    name: str
    context: str
    category: str
    display_name: str
    schedulable: bool


def title_case(text: str) -> str:
    """Title case as .NET's TextInfo.ToTitleCase does it: an all-capitals word (an acronym
    such as MFA) stays as it is, any other word gets a capital first letter and the rest lower."""

    def word(match: re.Match[str]) -> str:
        w = match.group(0)
        letters = [c for c in w if c.isalpha()]
        if letters and all(c.isupper() for c in letters):
            return w
        return w[0].upper() + w[1:].lower()

    return _WORD.sub(word, text)


def display_name(stem: str) -> str:
    """'add-additional-alias' -> 'Add Additional Alias'; '_scheduled' is not part of it."""
    if stem.lower().endswith(SCHEDULED_SUFFIX):
        stem = stem[: -len(SCHEDULED_SUFFIX)]
    return title_case(stem.replace("-", " ")).strip()


def runbook_name(context: str, category: str, stem: str, prefix: str = OWNED_PREFIX) -> RunbookName:
    """The runbook for the script ``<context>/<category>/<stem>.ps1``."""
    name = f"{prefix}{context}_{category}_{stem}".lower()
    return RunbookName(
        name=name,
        context=context.lower(),
        category=title_case(category),
        display_name=display_name(stem),
        schedulable=stem.lower().endswith(SCHEDULED_SUFFIX),
    )


def name_problems(name: str) -> list[str]:
    """Why Azure Automation may refuse this runbook name (empty when it is fine)."""
    problems = []
    if not _VALID_NAME.match(name):
        problems.append(
            f"runbook name {name!r} has characters Azure Automation does not allow "
            "(letters, digits, '_' and '-', starting with a letter)"
        )
    if len(name) > MAX_NAME_LENGTH:
        problems.append(
            f"runbook name {name!r} is {len(name)} characters long; Azure documents at most "
            f"{MAX_NAME_LENGTH}, the service may refuse it"
        )
    return problems
