"""Renderers given hostile input: names, reasons, targets and errors that try to forge output."""

from __future__ import annotations

import copy
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from test_render import rich_plan

from rjsync.engine import render, render_fleet

DOC = rich_plan().to_json()
RUNBOOKS = [c for c in DOC["changes"] if c["kind"] == "runbook"]
HOSTILE = "x\n\n<!-- hidden\r| a | b |`code`\x1b[31m\n::error file=x::owned\x07\\"


def hostile_doc(text: str) -> dict:
    doc = copy.deepcopy(DOC)
    doc["target"] = text
    doc["policy"]["exclude"] = [text]
    for item in doc["changes"] + doc["drift"] + doc["skipped"]:
        item["name"] = text + item["name"]
        item["reason"] = text
    for diag in doc["diagnostics"]:
        diag["path"], diag["message"] = text, text
    perm = doc["permissions"]
    perm["principal_id"] = text
    for grouped in [perm["missing"], *perm["optional"]]:
        grouped["feature"] = text
        for group in grouped["app_roles"]:
            group["resource"] = text
        for entry in [e for g in grouped["app_roles"] for e in g["roles"]] + grouped["directory_roles"]:
            entry["name"], entry["runbooks"], entry["reasons"] = text, [text, text], [text]
    for step in perm["manual"]:
        step["text"], step["runbooks"] = text, [text]
    return doc


def check_markdown(text: str, doc: dict) -> None:
    assert text.count("<!--") == 1  # the marker, nothing an input opened
    lines = text.split("\n")
    rows = [line for line in lines if line.startswith("| create ") or line.startswith("| update ")
            or line.startswith("| replace ") or line.startswith("| delete ")]
    assert len(rows) == len(doc["changes"])
    # every row has as many cell delimiters as the header: none from the input. GFM splits a row
    # before inline parsing, and a pipe right after a backslash is never a delimiter there (the
    # table extension's cell scanner), whatever precedes that backslash.
    for row in rows:
        assert len(re.findall(r"(?<!\\)\|", row)) in (4, 5)
    # every table (the permissions' too): each row has its header's number of delimiters
    header = None
    for line in lines:
        if not line.startswith("|"):
            header = None
        elif header is None:
            header = len(re.findall(r"(?<!\\)\|", line))
        else:
            assert len(re.findall(r"(?<!\\)\|", line)) == header, line
    assert not any(line.lstrip().startswith("::") for line in lines)


def check_text(text: str) -> None:
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", text)
    assert not any(line.lstrip().startswith("::") for line in text.split("\n"))


def test_render_markdown_escapes_what_the_input_wrote():
    doc = hostile_doc(HOSTILE)
    text = render.to_markdown(doc)
    check_markdown(text, doc)
    assert "&lt;!-- hidden" in text and "\\`code\\`" in text
    assert text.count("<details") == text.count("</details>") == text.count("<summary>") == 6
    assert text.rstrip().endswith("</details>")  # the summary and every section still there


def test_render_text_drops_control_characters_and_workflow_commands():
    text = render.to_text(hostile_doc(HOSTILE))
    check_text(text)
    assert "\x1b" not in text
    text = render.to_text(hostile_doc("::error file=x::owned"))
    check_text(text)
    assert "  : :error file=x::owned" in text


def test_render_text_colours_only_its_own_escape_sequences():
    text = render.to_text(hostile_doc(HOSTILE), color=True)
    assert "\x1b[31m::" not in text and "\x07" not in text


def test_render_fleet_output_escapes_account_names_and_errors():
    plan = hostile_doc(HOSTILE)
    account = {"name": HOSTILE, "manifest": HOSTILE, "target": HOSTILE, "plan": plan, "status": "changes",
               "error": HOSTILE, "applied": None}
    doc = {"accounts": [account], "summary": {"accounts": 1, "changes": 1, "no_changes": 0, "errors": 0}}
    markdown = render_fleet.fleet_to_markdown(doc, folder=HOSTILE)
    assert markdown.count("<!--") == 1
    check_text(render_fleet.section_text(account, False))
    check_text(render_fleet.fleet_summary_text(doc, command="plan", folder=HOSTILE))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "-", "\n", "\r", "\x1b", "\x00", "\x9b", "`", "|", "\\", "<!--", "::", " ",
                                  "<", "[", "]"]), min_size=1, max_size=30))
def test_render_property_no_input_forges_markdown_or_text(pieces):
    text = "".join(pieces)
    doc = hostile_doc(text)
    check_markdown(render.to_markdown(doc), doc)
    check_text(render.to_text(doc))
