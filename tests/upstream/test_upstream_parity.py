"""The catalog against PowerShell itself, on the real upstream repository.

The upstream repository commits the output of PowerShell's ``Get-Help -Full`` for every runbook
(``docs/other/json/RunbookDetails.json``, written by its documentation workflow). Point
``RJSYNC_UPSTREAM_REPO`` at a local clone of ``realmjoin/realmjoin-runbooks`` and these tests
check that every runbook is in our catalog and that every parameter's name, type, mandatory flag,
order and default, and every synopsis, are what PowerShell reported. Nothing of the upstream
repository is committed here; without the variable the tests are skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rjsync.commands.catalog import load_catalog

pytestmark = pytest.mark.upstream

UPSTREAM = os.environ.get("RJSYNC_UPSTREAM_REPO")
DETAILS = "docs/other/json/RunbookDetails.json"


@pytest.fixture(scope="module")
def upstream():
    if not UPSTREAM:
        pytest.skip("set RJSYNC_UPSTREAM_REPO to a clone of realmjoin/realmjoin-runbooks")
    root = Path(UPSTREAM)
    details = json.loads((root / DETAILS).read_text(encoding="utf-8-sig"))
    catalog = load_catalog(str(root))
    return details, {r.path: r for r in catalog.runbooks}, catalog


def _get_help_parameters(entry) -> list[dict]:
    parameters = entry["Parameters"] or []
    return [parameters] if isinstance(parameters, dict) else parameters


def _get_help_default(parameter) -> str:
    """What Get-Help shows as a parameter's default: the constant's text, else the expression."""
    if parameter.default_expression is not None:
        return parameter.default_expression
    value = parameter.default
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def test_upstream_every_runbook_is_in_the_catalog(upstream):
    details, by_path, catalog = upstream
    missing = [e["RelativeRunbookPath"] for e in details
               if e["RelativeRunbookPath"] not in by_path]
    assert missing == []
    assert catalog.errors == ()


def test_upstream_synopsis_matches_get_help(upstream):
    details, by_path, _ = upstream
    wrong = {}
    for entry in details:
        ours = by_path[entry["RelativeRunbookPath"]].synopsis
        if (ours or "") != (entry["Synopsis"] or "").strip():
            wrong[entry["RelativeRunbookPath"]] = (ours, entry["Synopsis"])
    assert wrong == {}


def test_upstream_parameters_match_get_help(upstream):
    details, by_path, _ = upstream
    wrong = {}
    for entry in details:
        path = entry["RelativeRunbookPath"]
        # PowerShell numbers positions in declaration order, skipping switch parameters.
        positional = [p for p in by_path[path].parameters if p.type != "SwitchParameter"]
        ours = {p.name: (positional.index(p) if p in positional else None, p)
                for p in by_path[path].parameters}
        theirs = _get_help_parameters(entry)
        problems = []
        if sorted(ours, key=str.lower) != sorted((p["name"] for p in theirs), key=str.lower):
            problems.append(("names", sorted(ours), sorted(p["name"] for p in theirs)))
        for reported in theirs:
            if reported["name"] not in ours:
                continue
            index, parameter = ours[reported["name"]]
            if parameter.type != reported["type"]["name"]:
                problems.append((reported["name"], "type", parameter.type,
                                 reported["type"]["name"]))
            if parameter.mandatory != (reported["required"] == "true"):
                problems.append((reported["name"], "mandatory", parameter.mandatory,
                                 reported["required"]))
            if _get_help_default(parameter).strip() != (reported.get("defaultValue") or ""):
                problems.append((reported["name"], "default", _get_help_default(parameter),
                                 reported.get("defaultValue")))
            if reported["position"] != "named" and (index is None
                                                    or int(reported["position"]) != index + 1):
                problems.append((reported["name"], "position", index, reported["position"]))
        if problems:
            wrong[path] = problems
    assert wrong == {}


def test_upstream_parameter_help_matches_get_help(upstream):
    details, by_path, _ = upstream
    wrong = {}
    for entry in details:
        path = entry["RelativeRunbookPath"]
        ours = {p.name: p for p in by_path[path].parameters}
        for reported in _get_help_parameters(entry):
            text = "\n".join(d["Text"] for d in reported.get("description") or []).strip()
            mine = (ours[reported["name"]].help or "") if reported["name"] in ours else None
            if mine != text:
                wrong[(path, reported["name"])] = (mine, text)
    assert wrong == {}
