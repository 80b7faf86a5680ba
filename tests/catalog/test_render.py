"""The catalog's text table given hostile names and synopses."""

from __future__ import annotations

import re

from rjsync.catalog.build import build_catalog
from rjsync.catalog.model import SourceFile, SourceInfo
from rjsync.catalog.render import to_text


def test_to_text_drops_control_characters_and_workflow_commands():
    script = b"<#\n.SYNOPSIS\nRed \x1b[31malert\x1b]0;title\x07 here.\n#>\nparam([string] $Name)\n"
    info = SourceInfo("folder", "/src\x1b[2J", None, "c0ffee0")
    files = [SourceFile("org/general/list\x1bx.ps1", script), SourceFile("org/::error file=x::y.ps1", b"param(")]
    text = to_text(build_catalog(info, files))
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", text)
    assert not any(line.lstrip().startswith("::") for line in text.split("\n"))
    assert "Red [31malert ]0;title here." in text
