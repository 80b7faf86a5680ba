"""GitHub markdown pieces (rjsync/markdown.py): escaping, tables, and cutting a text to a limit
without leaving a section or a code block open."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rjsync.markdown import TRUNCATED, cell, code, cut_markdown, inline, table, terminal

NOTE = "\n\n> [!NOTE]\n> Cut.\n"
CLOSERS = re.compile(r"(\n```+|\n~~~+|\n</details>)*")


def unclosed(text: str) -> tuple[str | None, int]:
    """The code fence and the number of <details> left open at the end of ``text``, for texts
    made of ``LINES``."""
    fence, depth = None, 0
    for line in text.split("\n"):
        if fence:
            if line.strip() == fence:
                fence = None
        elif line.startswith(("```", "~~~")):
            fence = line[:3]
        else:
            depth = max(0, depth + line.count("<details") - line.count("</details>"))
    return fence, depth


def kept_part(text: str, result: str, note: str) -> str:
    """What ``result`` kept of ``text``: the lines before the closing fences and tags (whole
    lines when they can be)."""
    assert result.endswith(note)
    body = result[: len(result) - len(note)]
    splits = [end for end in range(len(body), -1, -1) if CLOSERS.fullmatch(body[end:]) and text.startswith(body[:end])]
    for end in splits:
        if end in (0, len(text)) or text[end] == "\n":
            return body[:end]
    if splits:
        return body[: splits[0]]
    raise AssertionError(f"{result!r} does not start with a part of {text!r}")


LINES = st.sampled_from(["```", "```ps1", "~~~", "<details><summary>Runbooks</summary>", "<details open>",
                         "</details>", "", "text", "| a | b |", "Write-Output 'x'", "<details>nested</details>"])


# -- cell, table -----------------------------------------------------------------------------------


def test_cell_escapes_pipes_backslashes_newlines_and_tags():
    assert cell("a|b\\c\nd <b>") == "a\\|b\\\\c d &lt;b>"
    assert cell(3) == "3"


def test_table_escapes_the_rows_and_keeps_an_empty_title():
    assert table(["", "name"], [["✅", code("a|b")]]) == ["| | name |", "|---|---|", "| ✅ | `a\\|b` |"]


# -- cut_markdown ----------------------------------------------------------------------------------


def test_cut_markdown_keeps_a_text_that_fits():
    text = "<details>\n\n```\nopen"
    assert cut_markdown(text, len(text)) == text


def test_cut_markdown_cuts_at_a_line_and_closes_the_open_fence_and_sections():
    text = "# plan\n<details><summary>a</summary>\n\n```ps1\n" + "line\n" * 9 + "```\n</details>\n"

    assert cut_markdown(text, 78, NOTE) == "# plan\n<details><summary>a</summary>\n\n```ps1\n```\n</details>" + NOTE
    assert cut_markdown(text, 66, NOTE) == "# plan\n<details><summary>a</summary>\n</details>" + NOTE
    assert cut_markdown(text, 63) == "# plan\n<details><summary>a</summary>\n</details>" + TRUNCATED


def test_cut_markdown_ignores_tags_inside_a_code_block():
    text = "```\n<details>\n```\n" + "x" * 100
    assert cut_markdown(text, 40, NOTE) == "```\n<details>\n```" + NOTE


def test_cut_markdown_cuts_a_first_line_longer_than_the_room():
    assert cut_markdown("x" * 100, 50, NOTE) == "x" * (50 - len(NOTE)) + NOTE


def test_cut_markdown_needs_room_for_the_note():
    with pytest.raises(ValueError, match="no room for the note"):
        cut_markdown("x" * 100, len(NOTE) - 1, NOTE)


@given(st.text(), st.integers(min_value=len(TRUNCATED), max_value=300))
def test_cut_markdown_never_exceeds_the_limit(text, limit):
    result = cut_markdown(text, limit)
    assert len(result) <= limit
    assert result == text if len(text) <= limit else result.endswith(TRUNCATED)


@given(st.lists(LINES, max_size=40).map("\n".join), st.integers(min_value=len(NOTE), max_value=400))
def test_cut_markdown_leaves_no_fence_or_section_open(text, limit):
    result = cut_markdown(text, limit, NOTE)

    assert len(result) <= limit
    if len(text) > limit:
        kept = kept_part(text, result, NOTE)
        first_line = text.split("\n", 1)[0]
        assert kept == "" or text[len(kept)] == "\n" or len(first_line) > limit - len(NOTE)  # cut at a line
        assert unclosed(result[: len(result) - len(NOTE)]) == (None, 0)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(["<details>", "<details><summary>x</summary>", "</details>", "```", "````", "~~~",
                                 "```py", "text", "x" * 700, "| a | b |", ""]), min_size=1, max_size=200),
       st.integers(min_value=60, max_value=3000))
def test_cut_markdown_property_never_exceeds_the_limit(lines, limit):
    assert len(cut_markdown("\n".join(lines), limit)) <= limit


def test_inline_and_code_escape_what_could_end_a_cell_or_open_html():
    assert inline("a|b`c<!--\r\nd\\[e]") == "a\\|b\\`c&lt;!--  d\\\\\\[e\\]"
    assert code("a``b|") == "```a``b\\|```" and code("`x", in_table=False) == "`` `x ``"
    assert terminal("\x1b[31m::x\x07") == " [31m::x " and terminal("::error x") == ": :error x"
