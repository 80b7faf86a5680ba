"""Comment-based help, read the way PowerShell's own help parser reads it.

PowerShell (``HelpCommentsParser``) takes a script's help from the first block of adjacent
comments before any code that *is* help, or else from the comment block at the very end of the
script. A block is help only if every non-blank line outside a section is a known directive
(``.SYNOPSIS``, ``.PARAMETER Name``…); one unknown directive (``.AUTHOR``) or a stray line
(e.g. a ``#Requires`` line glued to the block) disqualifies the whole block. A section runs to
the next directive; the first line's indentation is stripped from every line of the section.

This module works on plain values (comment texts with line numbers) and does no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_DIRECTIVE = re.compile(r"^\s*\.(\w+)(\s+(\S.*))?\s*$")
_BLANK = re.compile(r"^\s*$")
_NBSP = "\u00a0"

# Directives that take no argument, and those that do. Anything else makes a block "not help".
_SECTIONS = {
    "SYNOPSIS", "DESCRIPTION", "NOTES", "LINK", "EXAMPLE", "INPUTS", "OUTPUTS",
    "COMPONENT", "ROLE", "FUNCTIONALITY",
}
_WITH_ARGUMENT = {
    "PARAMETER", "FORWARDHELPTARGETNAME", "FORWARDHELPCATEGORY", "REMOTEHELPRUNSPACE",
    "EXTERNALHELP",
}


@dataclass(frozen=True)
class Comment:
    """One comment token: its full text (with ``#`` or ``<# #>``) and its lines (1-based)."""

    text: str
    start_line: int
    end_line: int


@dataclass
class HelpInfo:
    """The sections of a help block. Texts are as PowerShell builds them, then trimmed."""

    synopsis: str | None = None
    description: str | None = None
    notes: str | None = None
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)  # keyed by upper-case name
    start_line: int = 0
    # Line (1-based, in the file) where each section's directive stands, e.g. {"INPUTS": 12}.
    section_lines: dict[str, int] = field(default_factory=dict)


def comment_lines(comment: str) -> list[str]:
    """Split one comment token into lines as PowerShell does (``<#``/``#>`` and leading ``#`` off)."""
    if comment.startswith("<#"):
        body = comment[2:-2] if comment.endswith("#>") else comment[2:]
        return re.split(r"\r\n|\r|\n", body)
    return [comment.lstrip("#")]


def _section(lines: list[str], i: int) -> tuple[str, int]:
    """Collect the section after line ``i``; return its text and the index of its last line."""
    capturing = False
    indent = 0
    out: list[str] = []
    i += 1
    while i < len(lines):
        line = lines[i]
        if not capturing and _BLANK.match(line):
            i += 1
            continue
        if _DIRECTIVE.match(line):
            break
        if not capturing:
            indent = len(line) - len(line.lstrip(" \t" + _NBSP))
            capturing = True
        start = 0
        while start < len(line) and start < indent and line[start] in (" ", "\t", _NBSP):
            start += 1
        out.append(line[start:] + "\n")
        i += 1
    return "".join(out), i - 1


def parse_help_block(block: list[Comment]) -> HelpInfo | None:
    """Return the help in ``block``, or None when PowerShell would not take it as help."""
    lines: list[str] = []
    line_numbers: list[int] = []
    for comment in block:
        split = comment_lines(comment.text)
        lines.extend(split)
        line_numbers.extend(range(comment.start_line, comment.start_line + len(split)))
    info = HelpInfo(start_line=block[0].start_line if block else 0)
    found = False
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if match:
            found = True
            keyword = match.group(1).upper()
            argument = match.group(3)
            info.section_lines.setdefault(keyword, line_numbers[i])
            if argument is not None:
                if keyword not in _WITH_ARGUMENT:
                    return None
                if keyword == "PARAMETER":
                    text, i = _section(lines, i)
                    info.parameters.setdefault(argument.upper().strip(), text.strip())
            else:
                if keyword not in _SECTIONS:
                    return None
                text, i = _section(lines, i)
                if keyword == "SYNOPSIS":
                    info.synopsis = text.strip()
                elif keyword == "DESCRIPTION":
                    info.description = text.strip()
                elif keyword == "NOTES":
                    info.notes = text.strip()
                elif keyword == "INPUTS":
                    info.inputs.append(text)
                elif keyword == "OUTPUTS":
                    info.outputs.append(text)
                elif keyword == "EXAMPLE":
                    info.examples.append(text)
                elif keyword == "LINK":
                    info.links.append(text.strip())
        elif not _BLANK.match(lines[i]):
            return None
        i += 1
    return info if found else None


def comment_blocks(leading: list[Comment]) -> list[list[Comment]]:
    """Split the comments before the first code token into chunks of adjacent comments.

    A chunk ends where the next comment starts more than one line below the previous one's end.
    """
    chunks: list[list[Comment]] = []
    current: list[Comment] = []
    for token in leading:
        if current and token.start_line > current[-1].end_line + 1:
            chunks.append(current)
            current = []
        current.append(token)
    if current:
        chunks.append(current)
    return chunks


def trailing_block(trailing: list[Comment]) -> list[Comment]:
    """The chunk of adjacent comments at the very end of the script."""
    block: list[Comment] = []
    for token in reversed(trailing):
        if block and token.end_line < block[0].start_line - 1:
            break
        block.insert(0, token)
    return block


def find_script_help(
    leading: list[Comment], trailing: list[Comment], first_function_line: int | None
) -> HelpInfo | None:
    """Pick a script's help block as PowerShell does.

    ``leading`` are the comments before the first code token, ``trailing`` those after the last
    one. ``first_function_line`` is the start line of the script's first statement when that
    statement is a function definition: a help block within two lines of it belongs to the
    function, not the script.
    """
    for chunk in comment_blocks(leading):
        info = parse_help_block(chunk)
        if info is None:
            continue
        if first_function_line is not None and first_function_line - chunk[-1].end_line <= 2:
            break
        return info
    tail = trailing_block(trailing)
    if tail:
        return parse_help_block(tail)
    return None


def parameter_comment(lines: list[str]) -> str:
    """Help text from comments around a parameter (used when ``.PARAMETER`` is absent)."""
    text, _ = _section(lines, -1)
    return text.strip()
