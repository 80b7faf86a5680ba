"""Apply progress lines given hostile names and messages."""

from __future__ import annotations

from rjsync.commands.sync import outcome_line
from rjsync.engine.apply import Outcome


def test_outcome_line_drops_control_characters_and_workflow_commands():
    line = outcome_line(Outcome("runbook", "create", "rjgit-x\n::error file=a::b", "failed", "no\x1b[2J\rway"))
    assert line == "failed  create runbook rjgit-x ::error file=a::b: no [2J way"
