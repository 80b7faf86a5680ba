"""One error family for rjsync.

The library raises; only the command line turns an error into a message and an exit code
(see ``rjsync.cli``). Messages are sentences a user can act on: what went wrong and, where
we know it, what to do about it.
"""

from __future__ import annotations


class RjsyncError(Exception):
    """Base class of every error a user can cause. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SourceError(RjsyncError):
    """The source (folder, git URL, ref) cannot be read or is refused as unsafe."""


class CatalogError(RjsyncError):
    """The catalog has errors (malformed scripts, name collisions)."""


class OwnershipError(RjsyncError):
    """A write was attempted on a runbook that rjsync does not own."""


class PrefixError(OwnershipError):
    """An owned prefix that would let rjsync own more than its own runbooks (empty, too short, a wildcard)."""


class AccountError(RjsyncError):
    """The automation account cannot be read or written."""


class GrantsUnreadable(AccountError):
    """The grants of the identity the runbooks run as cannot be read (no identity on the
    account, no read rights in Microsoft Graph): a plan says "not checked" and why, and goes on."""


class ManifestError(RjsyncError):
    """A manifest file is missing, not YAML, or names an unknown key or a wrong type."""


class PlanError(RjsyncError):
    """A saved plan cannot be applied: unreadable, of another format version, or stale."""
