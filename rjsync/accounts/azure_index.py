"""The receipt index: what Azure's runbook list leaves out, kept where a snapshot finds it cheaply.

A runbook list item carries no tags and no description (shared notes: the 2024-10-23 list
example; Azure/azure-powershell#752, #17086), yet the planner needs both for every owned
runbook: the receipt tags say whether its content is current, the description whether its
metadata is. A GET per runbook would make a no-op plan of the upstream 170 requests.

So the account keeps, in an Automation variable it owns (``<prefix>rjsync-index``), for each
owned runbook: its tags and description, and the ``lastModifiedTime`` it had right after rjsync
wrote or read them. A snapshot trusts an entry only while the list still shows that very time
(the service moves it on every PUT, PATCH, draft replace and publish: shared notes), and GETs
the runbook otherwise: one request for a runbook the cheap path cannot vouch for, never a wrong
plan. The tags on each runbook stay the source of truth; the index is a cache of them. It is
written once at the end of an apply (never by a plan), so a killed apply leaves entries whose
times no longer match, which the next snapshot reads again.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping

from rjsync.accounts.base import LiveRunbook

#: Version of the stored form; an index of another version is ignored (read again by GETs).
FORMAT = 1
#: Name of the variable, after the owned prefix.
SUFFIX = "rjsync-index"


def variable_name(prefix: str) -> str:
    return f"{prefix}{SUFFIX}"


@dataclass(frozen=True)
class Entry:
    modified: datetime  # the runbook's lastModifiedTime when the entry was recorded
    description: str
    tags: Mapping[str, str]


class ReceiptIndex:
    """Entries by lower-case runbook name; thread-safe (apply writes runbooks concurrently)."""

    def __init__(self, entries: Mapping[str, Entry] | None = None) -> None:
        self._entries: dict[str, Entry] = dict(entries or {})
        self._lock = threading.Lock()
        self.changed = False

    @classmethod
    def parse(cls, text: str | None) -> ReceiptIndex:
        """The index stored as ``text``; an empty one when it is missing, mangled or of another
        format (every runbook is then read by a GET, and the next apply writes it afresh)."""
        try:
            doc = json.loads(text) if text else None
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                return cls()
            entries = {}
            for name, (modified, description, tags) in doc["runbooks"].items():
                if not (isinstance(description, str) and isinstance(tags, dict)
                        and all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())):
                    continue
                entries[name.lower()] = Entry(_utc(datetime.fromisoformat(modified)), description, tags)
            return cls(entries)
        except (ValueError, TypeError, KeyError, AttributeError):
            return cls()

    def to_text(self) -> str:
        with self._lock:
            runbooks = {name: [e.modified.isoformat(), e.description, dict(sorted(e.tags.items()))]
                        for name, e in sorted(self._entries.items())}
        return json.dumps({"format": FORMAT, "runbooks": runbooks}, separators=(",", ":"), ensure_ascii=False)

    def vouch(self, name: str, last_modified: datetime | None) -> Entry | None:
        """The entry of ``name`` if it still describes the runbook the list shows."""
        if last_modified is None:
            return None
        with self._lock:
            entry = self._entries.get(name.lower())
        return entry if entry is not None and entry.modified == _utc(last_modified) else None

    def record(self, live: LiveRunbook) -> None:
        """Remember ``live`` as read or written just now (needs its last-modified time)."""
        if live.last_modified is None:
            return
        entry = Entry(_utc(live.last_modified), live.description, dict(live.tags or {}))
        with self._lock:
            if self._entries.get(live.name.lower()) != entry:
                self._entries[live.name.lower()] = entry
                self.changed = True

    def forget(self, name: str) -> None:
        with self._lock:
            if self._entries.pop(name.lower(), None) is not None:
                self.changed = True

    def retain(self, names: Iterable[str]) -> None:
        """Drop the entries of runbooks that are gone."""
        keep = {n.lower() for n in names}
        with self._lock:
            gone = [n for n in self._entries if n not in keep]
            for name in gone:
                del self._entries[name]
            self.changed = self.changed or bool(gone)

    def __len__(self) -> int:
        return len(self._entries)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
