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


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_INLINE = re.compile(r"[\\`|\[\]]")


class Markdown(str):
    """Text already written as markdown (``code``): ``cell`` and ``inline`` leave it as it is."""


def terminal(text: Any) -> str:
    """``text`` from input, safe to print: every control character (line breaks, escape
    sequences) a space, and never ``::`` first (a GitHub Actions workflow command)."""
    text = _CONTROL.sub(" ", str(text))
    return ": :" + text[2:] if text.lstrip().startswith("::") else text


def no_workflow_commands(text: str) -> str:
    """``text`` with every line that starts with ``::`` (after blanks) changed to ``: :``, so
    no input a renderer printed becomes a GitHub Actions workflow command in a log."""
    return re.sub(r"(?m)^([ \t]*)::", r"\1: :", text)


def inline(text: Any) -> str:
    """``text`` from input as markdown inline text: on one line (control characters become
    spaces), backslashes, backticks, pipes and brackets escaped, ``<`` as ``&lt;`` (no HTML, no
    ``<!--`` that would hide the rest), so it shows as typed wherever it stands."""
    if isinstance(text, Markdown):
        return text
    text = _INLINE.sub(lambda m: "\\" + m.group(0), _CONTROL.sub(" ", str(text)))
    return text.replace("<", "&lt;")


def code(text: Any, *, in_table: bool = True) -> Markdown:
    """``text`` from input as a code span: on one line, fenced with more backticks than it
    holds, ``|`` escaped in a table (GitHub reads ``\\|`` there as ``|``). Text with a ``<``
    is ``inline`` text instead: raw HTML such as ``<!--`` can win over a code span."""
    text = _CONTROL.sub(" ", str(text))
    if "<" in text:
        return Markdown(inline(text))
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    if text.startswith("`") or text.endswith("`"):
        text = f" {text} "
    if in_table:
        text = text.replace("|", "\\|")
    return Markdown(f"{fence}{text}{fence}")


def cell(text: Any) -> str:
    """``text`` for a table cell: ``inline`` (``code`` spans as they are)."""
    return inline(text)


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
