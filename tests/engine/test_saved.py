"""Saved plans: the plan document on disk, and refusing it once the source or the account changed."""

from __future__ import annotations

import dataclasses
import json

import pytest

from engine_support import catalog, live, receipt, script, snapshot
from rjsync.catalog.model import SourceInfo
from rjsync.engine.planner import pair, plan_sync
from rjsync.engine.policy import Policy
from rjsync.engine.saved import (
    already_applied,
    catalog_fingerprint,
    check_account_fresh,
    check_source_fresh,
    load_plan,
    save_plan,
    snapshot_fingerprint,
)
from rjsync.errors import PlanError

RESET = "user/security/reset-password.ps1"
RESET_NAME = "rjgit-user_security_reset-password"
OLD_NAME = "rjgit-user_security_old"


def make_plan(cat=None, snap=None):
    cat = cat or catalog({RESET: script()})
    snap = snap or snapshot(live(OLD_NAME))
    return plan_sync(pair(cat, snap, Policy()), target="local:/acc")


def test_save_plan_then_load_plan_gives_the_same_plan(tmp_path):
    plan = make_plan()
    path = str(tmp_path / "plan.json")

    save_plan(plan, path)

    assert load_plan(path) == plan
    assert json.loads((tmp_path / "plan.json").read_text())["format_version"] == 1


def test_load_plan_refuses_a_missing_file(tmp_path):
    path = str(tmp_path / "nope.json")
    with pytest.raises(PlanError) as err:
        load_plan(path)
    assert str(err.value) == f"The plan file {path} does not exist."


@pytest.mark.parametrize("doc, message", [
    ({"changes": []}, "{path} is not an rjsync plan (no format_version); make one with rjsync plan --out."),
    ({"format_version": 99}, "{path} is a plan of format version 99; this rjsync applies version 1. "
                             "Plan again with this version."),
    ({"format_version": 1}, "{path} is not a valid rjsync plan (KeyError: 'source')."),
])
def test_load_plan_refuses_what_is_not_a_plan_of_this_version(tmp_path, doc, message):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanError) as err:
        load_plan(str(path))
    assert str(err.value) == message.format(path=path)


@pytest.mark.parametrize("key, value", [("source", []), ("target", 123), ("changes", {"a": 1}),
                                        ("policy", "x"), ("drift", 7), ("fingerprints", [])])
def test_load_plan_refuses_values_of_the_wrong_type_in_one_sentence(tmp_path, key, value):
    # issue 14, finding 9: `source: []` or `target: 123` in a plan file was a traceback
    path = tmp_path / "plan.json"
    save_plan(make_plan(), str(path))
    doc = json.loads(path.read_text())
    doc[key] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanError) as err:
        load_plan(str(path))
    assert str(err.value).startswith(f"{path} is not a valid rjsync plan (")


def test_check_source_fresh_accepts_the_same_catalog_read_elsewhere():
    plan = make_plan()
    moved = dataclasses.replace(catalog({RESET: script()}), source=SourceInfo("folder", "/elsewhere"))

    check_source_fresh(plan, moved, "plan.json")
    assert catalog_fingerprint(moved) == plan.fingerprints["catalog"]


def test_check_source_fresh_refuses_a_changed_catalog():
    plan = make_plan()
    with pytest.raises(PlanError) as err:
        check_source_fresh(plan, catalog({RESET: script(body="Write-Output 2")}), "plan.json")
    assert str(err.value) == "The plan is stale: the source /src changed since plan.json was made. Plan again."


def test_check_account_fresh_refuses_a_changed_account():
    snap = snapshot(live(OLD_NAME))
    plan = make_plan(snap=snap)
    check_account_fresh(plan, snap, "plan.json")

    with pytest.raises(PlanError) as err:
        check_account_fresh(plan, snapshot(live(OLD_NAME, state="Edit")), "plan.json")
    assert str(err.value) == ("The plan is stale: the account local:/acc changed since plan.json was made. "
                              "Plan again.")


def test_check_account_fresh_says_when_the_plan_was_applied_already():
    plan = make_plan()
    applied = snapshot(live(RESET_NAME, tags=receipt(script(), RESET)))

    with pytest.raises(PlanError) as err:
        check_account_fresh(plan, applied, "plan.json")
    assert str(err.value) == ("The plan is stale: the account local:/acc changed since plan.json was made. "
                              "Every change in it is already in the account: was it applied before? Plan again.")


def test_already_applied_needs_every_receipt_written_and_every_deletion_done():
    plan = make_plan()

    assert already_applied(plan, snapshot(live(RESET_NAME, tags=receipt(script(), RESET))))
    assert not already_applied(plan, snapshot(live(RESET_NAME, tags=receipt(b"other", RESET))))
    assert not already_applied(plan, snapshot(live(RESET_NAME)))
    assert not already_applied(plan, snapshot(live(RESET_NAME, tags=receipt(script(), RESET)), live(OLD_NAME)))


def test_already_applied_is_false_without_runbook_changes():
    assert not already_applied(make_plan(catalog({}), snapshot()), snapshot())


def test_snapshot_fingerprint_changes_with_the_account_only():
    assert snapshot_fingerprint(snapshot(live(OLD_NAME))) == snapshot_fingerprint(snapshot(live(OLD_NAME)))
    assert snapshot_fingerprint(snapshot(live(OLD_NAME))) != snapshot_fingerprint(
        snapshot(live(OLD_NAME, description="Changed.")))
