"""Module version ordering, shared by the catalog (highest minimum) and the accounts (upgrade,
never downgrade), so both sides of a plan compare versions the same way."""

from __future__ import annotations


def version_key(version: str | None) -> tuple:
    """Order PowerShell module versions ("2.13.2", "3.0.0-preview1"); None sorts first."""
    if not version:
        return ((-1,),)
    main, _, pre = version.partition("-")
    numbers = []
    for part in main.split("."):
        numbers.append(int(part) if part.isdigit() else -1)
    while len(numbers) < 4:
        numbers.append(0)
    # a prerelease sorts before its release
    return (tuple(numbers), 0 if pre else 1, pre)


def version_known(version: str | None) -> bool:
    """Whether ``version`` is a version at all: the service may report none, or ``Unknown``."""
    return bool(version) and version.strip().lower() != "unknown"
