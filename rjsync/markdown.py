"""GitHub-flavoured markdown shared by every markdown renderer and ``rjsync github comment``.

GitHub's size limit for a comment, escaping text for a table cell, a table, and cutting a text
to a limit without leaving a ``<details>`` section or a code block open. Pure: no I/O, so the
renderers can use it without importing ``rjsync.github`` (which talks to GitHub).
"""

from __future__ import annotations

import re
from typing import Any

#: GitHub refuses issue and pull-request comments longer than this many characters.
GITHUB_COMMENT_LIMIT = 65536

#: What ``cut_markdown`` appends to a text it cuts, unless the caller gives its own note.
TRUNCATED = "\n\n… (truncated)\n"

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_DETAILS_OPEN = re.compile(r"<details(?=[\s>/]|$)", re.IGNORECASE)
_DETAILS_CLOSE = re.compile(r"</details\s*>", re.IGNORECASE)


def cell(text: Any) -> str:
    """``text`` for a table cell: backslashes and pipes escaped, on one line, no HTML tags."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """The lines of a table: ``header`` as given (an empty title stays empty), every row's
    cells escaped with ``cell``."""
    return ["|" + "|".join(f" {title} " if title else " " for title in header) + "|",
            "|" + "---|" * len(header),
            *("| " + " | ".join(cell(c) for c in row) + " |" for row in rows)]


def cut_markdown(text: str, limit: int, note: str = TRUNCATED) -> str:
    """``text`` if it has at most ``limit`` characters; else as many of its first lines as fit
    with what closes them and ``note``: a code block left open gets its closing fence and every
    ``<details>`` left open its ``</details>``, so what follows the cut renders as intended.

    Cuts only at the end of a line, except when the first line alone is longer than the room
    left by ``note``. Raises ``ValueError`` when ``limit`` is shorter than ``note``.
    """
    if len(text) <= limit:
        return text
    room = limit - len(note)
    if room < 0:
        raise ValueError(f"A limit of {limit} characters leaves no room for the note ({len(note)} characters).")
    first = text.find("\n")
    if first == -1 or first > room:  # no whole line fits: cut the first one
        cut = room
        while True:
            closing = _closing(*_after(text[:cut], None, 0))
            if cut + len(closing) <= room:
                return text[:cut] + closing + note
            cut = max(0, min(cut - 1, room - len(closing)))
    best, best_closing = 0, ""
    fence: str | None = None
    depth = start = 0
    while (end := text.find("\n", start)) != -1 and end <= room:
        fence, depth = _after(text[start:end], fence, depth)
        closing = _closing(fence, depth)
        if end + len(closing) <= room:
            best, best_closing = end, closing
        start = end + 1
    return text[:best] + best_closing + note


def _after(line: str, fence: str | None, depth: int) -> tuple[str | None, int]:
    """The open code fence (its marker, or None) and the number of open ``<details>`` after
    ``line``, given those before it. Inside a code block, tags are text."""
    if fence is not None:
        closes = re.fullmatch(rf" {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*", line)
        return (None if closes else fence), depth
    match = _FENCE.fullmatch(line)
    if match and not (match.group(1)[0] == "`" and "`" in match.group(2)):
        return match.group(1), depth
    return fence, max(0, depth + len(_DETAILS_OPEN.findall(line)) - len(_DETAILS_CLOSE.findall(line)))


def _closing(fence: str | None, depth: int) -> str:
    return (f"\n{fence}" if fence else "") + "\n</details>" * depth
