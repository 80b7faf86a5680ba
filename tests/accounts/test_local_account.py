"""The directory account's own promises: its layout, atomic writes, and a lock two processes share."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
from pathlib import Path

import pytest
from filelock import FileLock

import rjsync.files
from fakes.accounts import receipt_without_stamp
from rjsync.accounts import ModuleImport, RunbookWrite, open_account
from rjsync.accounts.local import LocalAccount
from rjsync.errors import AccountError, GrantsUnreadable


def test_local_account_layout_is_script_and_metadata_beside_it(tmp_path):
    account = open_account(f"local:{tmp_path}")

    account.write_runbook(RunbookWrite("rjgit-org_general_x", b"Write-Output 1", description="X.",
                                       tags={"a": "b"}, receipt={"rjsync.sha256": "s"}))
    account.import_module(ModuleImport("Az.Accounts", "2.13.2"))

    assert (tmp_path / "runbooks" / "rjgit-org_general_x.ps1").read_bytes() == b"Write-Output 1"
    meta = json.loads((tmp_path / "runbooks" / "rjgit-org_general_x.meta.json").read_text())
    meta["tags"] = receipt_without_stamp(meta["tags"])
    assert {k: meta[k] for k in ("runbook_type", "runtime_environment", "description", "tags", "state")} == {
        "runbook_type": "PowerShell", "runtime_environment": None, "description": "X.",
        "tags": {"a": "b", "rjsync.sha256": "s"}, "state": "Published"}
    modules = json.loads((tmp_path / "modules.json").read_text())
    assert modules["modules"]["az.accounts"]["version"] == "2.13.2"


def test_local_account_leaves_no_temporary_files(tmp_path):
    account = open_account(f"local:{tmp_path}")

    for i in range(3):
        account.write_runbook(RunbookWrite("rjgit-org_general_x", f"v{i}".encode()))

    assert sorted(p.name for p in (tmp_path / "runbooks").iterdir()) == [
        "rjgit-org_general_x.meta.json", "rjgit-org_general_x.ps1"]


def test_local_account_hand_made_script_is_a_customer_runbook_modified_at_its_mtime(tmp_path):
    (tmp_path / "runbooks").mkdir()
    script = tmp_path / "runbooks" / "user_general_my-runbook.ps1"
    script.write_bytes(b"Write-Output 'mine'")

    live = open_account(f"local:{tmp_path}").snapshot().runbook("user_general_my-runbook")

    assert (live.runbook_type, live.state, dict(live.tags)) == ("PowerShell", "Published", {})
    assert live.last_modified.timestamp() == pytest.approx(script.stat().st_mtime)


def test_local_account_that_is_a_file_is_a_sentence(tmp_path):
    (tmp_path / "account").write_text("")

    with pytest.raises(AccountError) as caught:
        open_account(f"local:{tmp_path / 'account'}")

    assert str(caught.value) == f"The directory account '{tmp_path / 'account'}' is a file, not a folder."


def test_local_account_locked_by_another_process_is_a_sentence(tmp_path):
    account = LocalAccount(tmp_path, lock_timeout=0.1)

    with FileLock(tmp_path / ".rjsync.lock"):
        with pytest.raises(AccountError) as caught:
            account.snapshot()

    assert str(caught.value) == (
        f"The directory account '{tmp_path}' is locked by another rjsync process (waited 0.1 s for "
        f"{tmp_path / '.rjsync.lock'})."
    )


def _import_many(path: str, prefix: str) -> None:
    account = LocalAccount(path)
    for i in range(15):
        account.import_module(ModuleImport(f"{prefix}.Module{i}", "1.0.0"))
        account.write_runbook(RunbookWrite(f"rjgit-org_{prefix}_runbook-{i}", prefix.encode()))


def test_local_account_two_processes_lose_no_update(tmp_path):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_import_many, args=(str(tmp_path), p)) for p in ("A", "B")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)

    assert [w.exitcode for w in workers] == [0, 0]
    snapshot = LocalAccount(tmp_path).snapshot()
    assert len(snapshot.modules) == 30
    assert len(snapshot.runbooks) == 30


def test_local_account_plan_leaves_a_customers_dot_tmp_file_alone(tmp_path):
    (tmp_path / "runbooks").mkdir()
    customer = [tmp_path / ".backup.tmp", tmp_path / "runbooks" / ".Payroll.ps1.x1y2z3.tmp"]
    for path in customer:
        path.write_bytes(b"customer data")
    ours = tmp_path / "runbooks" / ".rjgit-org_general_x.ps1.rjsync-k2j_a9zq.tmp"
    ours.write_bytes(b"half")

    open_account(f"local:{tmp_path}").snapshot()

    assert [p.read_bytes() for p in customer] == [b"customer data"] * 2
    assert not ours.exists()


def test_local_account_write_error_is_an_account_error_and_releases_the_lock(tmp_path, monkeypatch):
    account = LocalAccount(tmp_path)
    real = os.replace

    def read_only(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", str(dst))

    monkeypatch.setattr(rjsync.files.os, "replace", read_only)
    with pytest.raises(AccountError, match=r"cannot be read or written: Read-only file system \(.*\.meta\.json\)\.$"):
        account.write_runbook(RunbookWrite("rjgit-org_general_x", b"Write-Output 1"))
    monkeypatch.setattr(rjsync.files.os, "replace", real)

    account.write_runbook(RunbookWrite("rjgit-org_general_x", b"Write-Output 1"))  # the lock was released
    assert (tmp_path / "runbooks" / "rjgit-org_general_x.ps1").read_bytes() == b"Write-Output 1"


# -- identity.json ---------------------------------------------------------------------------------

GRAPH = "00000003-0000-0000-c000-000000000000"


def test_local_account_read_grants_from_identity_json_with_bom_and_any_case(tmp_path):
    (tmp_path / "identity.json").write_text(json.dumps({
        "description": "the demo's managed identity", "principalId": "3F2B9C1E-0000-4000-8000-000000000001",
        "appRoles": [{"resource": GRAPH.upper(), "value": "User.Read.All"}],
        "directoryRoles": [{"templateId": "29232CDF-9323-42FD-ADE2-1D097AF3E4DE", "name": "Exchange Administrator"}],
    }), encoding="utf-8-sig")

    grants = open_account(f"local:{tmp_path}").read_grants()

    assert grants.principal_id == "3f2b9c1e-0000-4000-8000-000000000001"
    assert grants.app_roles == {(GRAPH, "User.Read.All")}
    assert grants.directory_roles == {("29232cdf-9323-42fd-ade2-1d097af3e4de", "Exchange Administrator")}


@pytest.mark.parametrize("content, problem", [
    ("[]", "it is not a JSON object"),
    ('{"approles": []}', "unknown key 'approles' (known keys: principalId, appRoles, directoryRoles, description)"),
    ('{"principalId": "me"}', "'principalId' is not a GUID"),
    ('{"appRoles": {}}', "'appRoles' is not a list"),
    ('{"appRoles": [{"resource": "graph", "value": "User.Read.All"}]}', "appRoles[0].resource is not a GUID"),
    (f'{{"appRoles": [{{"resource": "{GRAPH}", "value": " "}}]}}', "appRoles[0].value is not a non-empty text"),
    ('{"directoryRoles": ["User Administrator"]}',
     "directoryRoles[0] is not an object with 'templateId' and 'name' only"),
])
def test_local_account_read_grants_of_a_wrong_identity_file_is_one_sentence(tmp_path, content, problem):
    (tmp_path / "identity.json").write_text(content)

    with pytest.raises(GrantsUnreadable) as caught:
        open_account(f"local:{tmp_path}").read_grants()

    assert caught.value.message == (f"The identity file {tmp_path / 'identity.json'} is wrong: {problem}; "
                                    "fix or delete the file.")


def test_local_account_read_grants_of_an_identity_file_that_is_not_json_names_it(tmp_path):
    (tmp_path / "identity.json").write_text("{principalId: x}")

    with pytest.raises(GrantsUnreadable, match=r"^Cannot read the identity file .*identity\.json: Expecting "):
        open_account(f"local:{tmp_path}").read_grants()


def test_local_account_demo_identity_holds_some_but_not_all_the_example_runbooks_need():
    from fakes.graph import sidecar_needs

    repo = Path(__file__).resolve().parents[2]
    grants = open_account(f"local:{repo / '.rjsync-demo' / 'account'}").read_grants()
    apps, roles = sidecar_needs(repo / "runbooks")
    needed = {(app, value) for app, values in apps.items() for value in values}

    assert grants.app_roles and grants.app_roles < needed
    assert grants.directory_roles and {t for t, _ in grants.directory_roles} < set(roles)
