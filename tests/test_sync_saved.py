"""``prepare_saved`` + ``apply`` (rjsync/sync.py) with saved plans edited by hand: a plan file is
applied only when planning again gives exactly it, so an edit can only be refused, and the
customer's runbook is never touched (fingerprints recomputed, as anyone can: their inputs are public)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rjsync.accounts.local import LocalAccount
from rjsync.cli import cli
from rjsync.engine.planner import snapshot_scope
from rjsync.engine.policy import Policy
from rjsync.engine.saved import catalog_fingerprint, snapshot_fingerprint
from rjsync.errors import PlanError, RjsyncError
from rjsync.settings import AzureOptions, SourceSpec
from rjsync.sync import apply, prepare_saved, read_source

CUSTOMER = b"# the customer's own runbook\r\nWrite-Output 'mine'\r\n"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def script(n: int) -> str:
    return f"<#\n.SYNOPSIS\nJob {n}.\n#>\nWrite-Output {n}\n"


def job(n: int) -> str:
    return f"rjgit-user_general_job-{n:02}"


def make(root: Path) -> tuple[Path, Path, Path]:
    """A source of jobs 0-3 and an account holding jobs 0-2 and 9 (applied before) and the
    customer's ``CustomerRunbook``; job 0 changed since: the saved plan creates 3, updates 0,
    deletes 9 (more than --max-deletions 0 allows)."""
    src, account, planfile = root / "src", root / "account", root / "plan.json"
    (src / "user" / "general").mkdir(parents=True)
    for n in (0, 1, 2, 9):
        (src / "user" / "general" / f"job-{n:02}.ps1").write_text(script(n))
    assert invoke("apply", "--source", src, "--target", f"local:{account}", "--auto-approve",
                  "--no-modules").exit_code == 0
    (account / "runbooks" / "CustomerRunbook.ps1").write_bytes(CUSTOMER)
    (src / "user" / "general" / "job-09.ps1").unlink()
    (src / "user" / "general" / "job-03.ps1").write_text(script(3))
    (src / "user" / "general" / "job-00.ps1").write_text(script(100))
    result = invoke("plan", "--source", src, "--target", f"local:{account}", "--no-modules",
                    "--max-deletions", "0", "--out", planfile)
    assert result.exit_code == 0, result.output
    return src, account, planfile


def files(account: Path) -> dict[str, bytes]:
    return {p.relative_to(account).as_posix(): p.read_bytes()
            for p in sorted(account.rglob("*")) if p.is_file() and p.name != ".rjsync.lock"}


def refingerprint(doc: dict) -> None:
    """Recompute the fingerprints of an edited plan document from its (edited) policy."""
    policy = Policy.from_json(doc["policy"])
    _, catalog = read_source(SourceSpec(doc["source"]["location"]), policy)
    with LocalAccount(doc["target"][len("local:"):], owned_prefix=policy.prefix) as account:
        snapshot = account.snapshot(snapshot_scope(policy))
    doc["fingerprints"] = {"catalog": catalog_fingerprint(catalog), "snapshot": snapshot_fingerprint(snapshot)}


def prepare(planfile: Path):
    return prepare_saved(str(planfile), azure=AzureOptions(), concurrency=2)


@pytest.fixture
def saved(tmp_path):
    src, account, planfile = make(tmp_path)
    return account, planfile, json.loads(planfile.read_text())


def _delete(name: str) -> dict:
    return {"kind": "runbook", "action": "delete", "name": name, "reason": "owned, no longer in the source",
            "before": None, "after": None}


def _edit_customer_delete(doc):
    doc["changes"].append(_delete("CustomerRunbook"))


def _edit_owned_delete(doc):
    doc["changes"].append(_delete(job(1)))


def _edit_max_deletions(doc):
    doc["policy"]["max_deletions"] = 10


def _edit_update_path(doc):
    update = next(c for c in doc["changes"] if c["action"] == "update")
    create = next(c for c in doc["changes"] if c["action"] == "create")
    update["after"] = {**update["after"], "path": create["after"]["path"], "sha256": create["after"]["sha256"]}


@pytest.mark.parametrize("edit", [_edit_customer_delete, _edit_owned_delete, _edit_max_deletions, _edit_update_path])
def test_prepare_saved_refuses_an_edited_plan_and_writes_nothing(saved, edit):
    account, planfile, doc = saved
    edit(doc)
    refingerprint(doc)
    planfile.write_text(json.dumps(doc))
    before = files(account)

    with pytest.raises(PlanError, match=r"^The plan is stale: planning again now does not give .*Plan again\.$"):
        with prepare(planfile) as prepared:
            apply(prepared)
    assert files(account) == before


def test_prepare_saved_names_what_differs(saved):
    account, planfile, doc = saved
    _edit_customer_delete(doc)
    refingerprint(doc)
    planfile.write_text(json.dumps(doc))
    with pytest.raises(PlanError) as raised:
        prepare(planfile)
    assert "delete runbook CustomerRunbook is not in a fresh plan" in raised.value.message


def test_prepare_saved_applies_an_unedited_plan(saved):
    account, planfile, doc = saved
    with prepare(planfile) as prepared:
        result = apply(prepared, max_deletions=1)
    assert result.ok
    assert (account / "runbooks" / "CustomerRunbook.ps1").read_bytes() == CUSTOMER
    assert not (account / "runbooks" / f"{job(9)}.ps1").exists()


# -- random edits ----------------------------------------------------------------------------------

_VALUES = st.one_of(
    st.sampled_from(["CustomerRunbook", "customerrunbook", "", "rjgit-", "r", "*", "delete", "create", "update",
                     "runbook", "module", job(1), job(9), "user/general/job-01.ps1", "0" * 64]),
    st.none(), st.booleans(), st.integers(-2, 10**6), st.just([]), st.just({}),
    st.text(max_size=8),
)


def _paths(value, at=()):
    yield at
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*at, i))


def _mutate(doc, choice: int, value, mode: str):
    paths = [p for p in _paths(doc) if p]
    path = paths[choice % len(paths)]
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if mode == "set":
        parent[last] = value
    elif mode == "drop" and isinstance(parent, dict):
        del parent[last]
    elif mode == "copy" and isinstance(parent, list):
        item = copy.deepcopy(parent[last])
        if isinstance(item, dict) and "name" in item:
            item["name"] = value if isinstance(value, str) else "CustomerRunbook"
        parent.append(item)


_EDITS = st.lists(st.tuples(st.integers(0, 10**6), _VALUES, st.sampled_from(["set", "drop", "copy"])),
                  min_size=1, max_size=4)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    src, account, planfile = make(root)
    return root, json.loads(planfile.read_text()), files(account)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=_EDITS, again=st.booleans())
def test_prepare_saved_random_edits_apply_only_the_fresh_plan(template, edits, again):
    root, original, account_files = template
    account = root / "account"
    shutil.rmtree(account)
    for rel, data in account_files.items():
        (account / rel).parent.mkdir(parents=True, exist_ok=True)
        (account / rel).write_bytes(data)
    doc = copy.deepcopy(original)
    for choice, value, mode in edits:
        _mutate(doc, choice, value, mode)
    if again:
        try:
            refingerprint(doc)
        except (RjsyncError, KeyError, TypeError, ValueError, AttributeError):
            pass  # not a document fingerprints can be made for: it stays as edited
    planfile = root / "plan.json"
    planfile.write_text(json.dumps(doc))

    try:
        with prepare(planfile) as prepared:
            assert [c.to_json() for c in prepared.plan.changes] == original["changes"]
            apply(prepared, max_deletions=1)
    except RjsyncError:
        pass
    assert (account / "runbooks" / "CustomerRunbook.ps1").read_bytes() == CUSTOMER
