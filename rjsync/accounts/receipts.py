"""Receipts (design invariant 4): the tags on every runbook rjsync published.

A receipt holds the sha256 of the normalized content, the source commit and path, and the UTC
time the account published the content. The engine builds the receipt of a write, the account
stamps its publish time right before writing it (``stamp``), and the planner reads it back
(``Receipt.of``) to tell whether content is current without reading it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping

RECEIPT_SHA256 = "rjsync.sha256"
RECEIPT_COMMIT = "rjsync.commit"
RECEIPT_PATH = "rjsync.path"
#: Stamped with the UTC time the account published the content, right before it writes the
#: receipt; the planner compares a runbook's last-modified time with it to notice content
#: published in the portal since (drift).
RECEIPT_TIME_TAG = "rjsync.published"
RECEIPT_TAGS = (RECEIPT_SHA256, RECEIPT_COMMIT, RECEIPT_PATH, RECEIPT_TIME_TAG)

#: How ``RECEIPT_TIME_TAG`` writes the time: UTC, whole seconds.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

#: A runbook modified later than this after its receipt's publish time was published again by
#: someone else (writing the receipt itself moves the last-modified time by a moment).
DRIFT_TOLERANCE = timedelta(seconds=120)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def receipt_tags(sha256: str, path: str, commit: str | None = None) -> dict[str, str]:
    """The receipt of a write (without its time: the account stamps that when it writes it)."""
    receipt = {RECEIPT_SHA256: sha256, RECEIPT_PATH: path}
    if commit:
        receipt[RECEIPT_COMMIT] = commit
    return receipt


def stamp(receipt: Mapping[str, str], now: datetime | None = None) -> dict[str, str]:
    """The receipt tags with ``RECEIPT_TIME_TAG`` set to ``now`` (default: this machine's clock;
    UTC, whole seconds). It is compared with the account's last-modified time, so an account
    whose clock is not this machine's passes its own time."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    return {**receipt, RECEIPT_TIME_TAG: now.strftime(TIME_FORMAT)}


@dataclass(frozen=True)
class Receipt:
    """The receipt a live runbook carries, as read from its tags.

    ``sha256`` is None unless the tag holds a valid sha256 (lower-case hex). ``published`` is
    None when there is no time stamp, or when it is ``mangled`` (present but not a time).
    """

    sha256: str | None
    path: str | None
    commit: str | None
    published: datetime | None
    mangled: bool = False

    @classmethod
    def of(cls, tags: Mapping[str, str] | None) -> Receipt:
        tags = tags or {}
        value = tags.get(RECEIPT_SHA256, "")
        published, mangled = None, False
        text = tags.get(RECEIPT_TIME_TAG)
        if text:
            try:
                published = datetime.strptime(text, TIME_FORMAT).replace(tzinfo=timezone.utc)
            except ValueError:
                mangled = True
        return cls(sha256=value if _SHA256.match(value) else None, path=tags.get(RECEIPT_PATH),
                   commit=tags.get(RECEIPT_COMMIT), published=published, mangled=mangled)

    def republished(self, last_modified: datetime | None, tolerance: timedelta = DRIFT_TOLERANCE) -> bool:
        """Published again after the receipt was written (someone else published content), judged
        from the runbook's ``last_modified`` time (naive: UTC)."""
        if last_modified is None or (self.published is None and not self.mangled):
            return False
        if self.published is None:
            return True  # a mangled receipt is no receipt: compare content
        if last_modified.tzinfo is None:
            last_modified = last_modified.replace(tzinfo=timezone.utc)
        return last_modified > self.published + tolerance
