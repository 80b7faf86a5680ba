"""The account protocol test-suite: every test runs against the directory account and against
the Azure account (the real SDK talking to the ARM emulator)."""

from __future__ import annotations

import pytest

from fakes.accounts import receipt_without_stamp
from rjsync.accounts import Account, ModuleImport, RunbookWrite
from rjsync.accounts.base import Grants, same_default_packages
from rjsync.errors import AccountError, GrantsUnreadable, OwnershipError

SCRIPT = b"\xef\xbb\xbf<#\r\n.SYNOPSIS\r\n  Reset a password.\r\n#>\r\nparam([string] $UserName)\r\n"


def write(account, name="rjgit-user_security_reset-password", content=SCRIPT, **fields):
    fields.setdefault("description", "Reset a password.")
    return account.write_runbook(RunbookWrite(name, content, **fields))


def test_account_implements_the_protocol(account):
    assert isinstance(account, Account)
    assert account.owned_prefix == "rjgit-"


def test_account_ensure_runtime_environment_refuses_a_bad_name_before_any_io(account):
    with pytest.raises(AccountError) as caught:
        account.ensure_runtime_environment("RJ PowerShell/7.4")

    assert str(caught.value) == (
        "'RJ PowerShell/7.4' is not a valid runtime environment name: use letters, digits, '.', '_' and "
        "'-', starting with a letter."
    )


def test_account_snapshot_of_a_new_account_lists_the_builtin_runtime_environments(account):
    snapshot = account.snapshot()

    assert snapshot.runbooks == () and snapshot.modules == ()
    assert {e.name: e.version for e in snapshot.runtime_environments} == {
        "PowerShell-5.1": "5.1", "PowerShell-7.1": "7.1", "PowerShell-7.2": "7.2",
        "Python-2.7": "2.7", "Python-3.8": "3.8", "Python-3.10": "3.10",
    }


def test_account_write_runbook_publishes_content_verbatim_with_tags_and_receipt(account):
    live = write(account, tags={"rjsync.path": "user/security/reset-password.ps1"},
                 receipt={"rjsync.sha256": "ab" * 32, "rjsync.commit": "c0ffee"})

    assert account.read_content("rjgit-user_security_reset-password") == SCRIPT
    snap = account.snapshot().runbook("rjgit-user_security_reset-password")
    assert snap == live
    assert (snap.runbook_type, snap.runtime_environment, snap.state, snap.description) == (
        "PowerShell", None, "Published", "Reset a password.")
    assert receipt_without_stamp(snap.tags) == {"rjsync.path": "user/security/reset-password.ps1",
                               "rjsync.sha256": "ab" * 32, "rjsync.commit": "c0ffee"}
    assert snap.last_modified is not None


def test_account_write_runbook_keeps_utf16_and_lf_content_byte_for_byte(account):
    content = "\ufeffparam([string] $Name)\nWrite-Output \"Grüße $Name\"\n".encode("utf-16-le")

    write(account, content=content)

    assert account.read_content("rjgit-user_security_reset-password") == content


def test_account_write_runbook_again_updates_it_and_replaces_the_old_receipt(account):
    write(account, tags={"rjsync.path": "a.ps1"}, receipt={"rjsync.sha256": "old"})

    write(account, content=b"Write-Output 2\r\n", description="Second.", tags={"rjsync.path": "b.ps1"},
          receipt={"rjsync.sha256": "new"})

    snapshot = account.snapshot()
    assert len(snapshot.runbooks) == 1
    assert receipt_without_stamp(snapshot.runbooks[0].tags) == {"rjsync.path": "b.ps1", "rjsync.sha256": "new"}
    assert snapshot.runbooks[0].description == "Second."
    assert account.read_content("rjgit-user_security_reset-password") == b"Write-Output 2\r\n"


def test_account_names_are_case_insensitive_and_keep_their_first_casing(account):
    write(account, name="rjgit-user_general_Reset-MFA", content=b"1")

    write(account, name="rjgit-user_general_reset-mfa", content=b"2")

    snapshot = account.snapshot()
    assert [r.name for r in snapshot.runbooks] == ["rjgit-user_general_Reset-MFA"]
    assert snapshot.runbook("RJGIT-USER_GENERAL_RESET-MFA") is not None
    assert account.read_content("rjgit-user_general_reset-MFA") == b"2"


def test_account_write_runbook_trims_the_description_to_the_service_limit(account):
    live = write(account, description="Resets the password. " * 40)

    assert 500 < len(live.description) <= 512
    assert live.description.endswith("…")
    assert live.description.startswith("Resets the password. Resets")


def test_account_write_runbook_of_a_name_without_the_prefix_raises_before_any_io(account, kind, request):
    with pytest.raises(OwnershipError) as caught:
        write(account, name="user_general_my-runbook")

    assert str(caught.value) == (
        "Refusing to write runbook 'user_general_my-runbook': rjsync only writes runbooks whose name "
        "starts with 'rjgit-' (case-insensitive); every other runbook belongs to the customer."
    )
    if kind == "azure":
        assert request.getfixturevalue("arm").server.log == []
    else:
        assert not account.path.exists()


def test_account_prefix_check_ignores_case(account):
    write(account, name="RJGit-User_General_Shout", content=b"x")

    assert account.read_content("rjgit-user_general_shout") == b"x"


def test_account_delete_runbook_of_a_customer_runbook_raises_and_keeps_it(account, hand_made):
    hand_made("user_general_my-runbook", b"Write-Output 'mine'\r\n")

    with pytest.raises(OwnershipError) as caught:
        account.delete_runbook("user_general_my-runbook")

    assert str(caught.value) == (
        "Refusing to delete runbook 'user_general_my-runbook': rjsync only deletes runbooks whose name "
        "starts with 'rjgit-' (case-insensitive); every other runbook belongs to the customer."
    )
    assert account.read_content("user_general_my-runbook") == b"Write-Output 'mine'\r\n"


def test_account_customer_runbook_appears_in_the_snapshot_as_published_powershell(account, hand_made):
    hand_made("user_general_my-runbook", b"Write-Output 'mine'\r\n")

    live = account.snapshot().runbook("user_general_my-runbook")

    assert (live.name, live.runbook_type, live.state) == ("user_general_my-runbook", "PowerShell", "Published")
    assert account.read_content("user_general_my-runbook") == b"Write-Output 'mine'\r\n"


def test_account_delete_runbook_removes_an_owned_runbook_and_ignores_a_missing_one(account):
    write(account)

    account.delete_runbook("RJGIT-user_security_reset-password")
    account.delete_runbook("rjgit-never-existed")

    assert account.snapshot().runbooks == ()
    assert account.read_content("rjgit-user_security_reset-password") is None


def test_account_read_content_of_a_missing_runbook_is_none(account):
    assert account.read_content("rjgit-nothing") is None


def test_account_read_runbook_reads_one_runbook_with_its_tags_in_any_case(account):
    written = write(account, tags={"team": "it"})

    live = account.read_runbook("RJGIT-user_security_reset-password")

    assert live is not None and live.name == written.name
    assert live.tags.get("team") == "it" and live.description == "Reset a password."
    assert account.read_runbook("rjgit-nothing") is None
    assert account.read_runbook("../not a name") is None


def test_account_write_runbook_refuses_a_classic_type_change(account):
    write(account, runbook_type="PowerShell")

    with pytest.raises(AccountError) as caught:
        write(account, runbook_type="PowerShell72")

    assert str(caught.value) == (
        "Runbook 'rjgit-user_security_reset-password' is a PowerShell runbook and cannot become a "
        "PowerShell72 runbook in place: delete it and create it again (its job schedules and webhooks "
        "are lost)."
    )
    assert account.snapshot().runbooks[0].runbook_type == "PowerShell"



def test_account_write_runbook_in_place_refuses_a_classic_type_change_too(account):
    write(account, runbook_type="PowerShell72")

    with pytest.raises(AccountError) as caught:
        write(account, runbook_type="PowerShell", exists=True)

    assert str(caught.value) == (
        "Runbook 'rjgit-user_security_reset-password' is a PowerShell72 runbook and cannot become a "
        "PowerShell runbook in place: delete it and create it again (its job schedules and webhooks "
        "are lost)."
    )
    assert account.snapshot().runbooks[0].runbook_type == "PowerShell72"
    assert account.read_content("rjgit-user_security_reset-password") == SCRIPT


def test_account_write_runbook_said_to_exist_is_created_when_it_does_not(account):
    live = write(account, exists=True, receipt={"rjsync.sha256": "1"})

    assert (live.name, live.state) == ("rjgit-user_security_reset-password", "Published")
    assert account.read_content("rjgit-user_security_reset-password") == SCRIPT

def test_account_runtime_environment_change_is_an_update_of_the_same_runbook(account):
    write(account, content=b"v1", receipt={"rjsync.sha256": "1"})
    environment = account.ensure_runtime_environment("RJ-PowerShell-7.4")

    live = write(account, content=b"v2", runtime_environment=environment.name, receipt={"rjsync.sha256": "2"})

    assert (live.runtime_environment, live.state, receipt_without_stamp(live.tags)) == ("RJ-PowerShell-7.4", "Published", {"rjsync.sha256": "2"})
    assert [r.name for r in account.snapshot().runbooks] == ["rjgit-user_security_reset-password"]
    assert account.read_content("rjgit-user_security_reset-password") == b"v2"


def test_account_write_runbook_into_a_missing_runtime_environment_fails(account):
    with pytest.raises(AccountError, match="RJ-PowerShell-7.4"):
        write(account, runtime_environment="RJ-PowerShell-7.4")


def test_account_ensure_runtime_environment_creates_it_once(account):
    first = account.ensure_runtime_environment()
    second = account.ensure_runtime_environment()

    assert first == second
    assert (first.name, first.language, first.version) == ("RJ-PowerShell-7.4", "PowerShell", "7.4")
    assert [e.name for e in account.snapshot().runtime_environments].count("RJ-PowerShell-7.4") == 1


def test_account_ensure_runtime_environment_gives_a_new_one_the_portals_default_packages(account):
    created = account.ensure_runtime_environment()

    assert same_default_packages(created.default_packages, {"Az": "12.3.0"})
    listed = account.snapshot().runtime_environment("RJ-PowerShell-7.4")
    assert same_default_packages(listed.default_packages, {"Az": "12.3.0"})


def test_account_ensure_runtime_environment_with_other_default_packages_then_leaves_them_alone(account):
    asked = {"Az": "11.6.0", "Azure CLI": "2.64.0"}
    account.ensure_runtime_environment(default_packages=asked)

    again = account.ensure_runtime_environment()  # exists: its default packages are not changed

    assert same_default_packages(again.default_packages, asked)
    assert same_default_packages(account.snapshot().runtime_environment("RJ-PowerShell-7.4").default_packages, asked)


def test_account_ensure_runtime_environment_refuses_another_version_under_the_name(account):
    with pytest.raises(AccountError) as caught:
        account.ensure_runtime_environment("PowerShell-7.2", version="7.4")

    assert str(caught.value) == (
        "Runtime environment 'PowerShell-7.2' exists with PowerShell 7.2, not PowerShell 7.4; its "
        "language and version cannot change: delete it or pick another name."
    )


def test_account_import_module_records_version_and_success(account):
    live = account.import_module(ModuleImport("Az.Accounts", "2.13.2"))

    assert live == account.snapshot().module("az.accounts")
    assert (live.name, live.version, live.provisioning_state, live.error) == ("Az.Accounts", "2.13.2", "Succeeded", None)


def test_account_import_module_upgrades_but_never_downgrades(account):
    account.import_module(ModuleImport("Az.Accounts", "2.12.1"))
    account.import_module(ModuleImport("Az.Accounts", "3.0.0"))

    kept = account.import_module(ModuleImport("Az.Accounts", "2.13.2"))

    assert kept.version == "3.0.0"
    assert account.snapshot().module("Az.Accounts").version == "3.0.0"


def test_account_import_module_into_a_runtime_environment_lists_it_as_a_package(account):
    account.ensure_runtime_environment()

    account.import_module(ModuleImport("ExchangeOnlineManagement", "3.4.0", runtime_environment="RJ-PowerShell-7.4"))

    snapshot = account.snapshot()
    package = snapshot.runtime_environment("rj-powershell-7.4").package("exchangeonlinemanagement")
    assert (package.version, package.provisioning_state) == ("3.4.0", "Succeeded")
    assert snapshot.module("ExchangeOnlineManagement") is None


@pytest.mark.parametrize("name", ["rjgit-../../etc/passwd", "rjgit-a b", "rjgit-x.ps1"])
def test_account_write_runbook_refuses_a_name_azure_would_refuse(account, name):
    with pytest.raises(AccountError) as caught:
        write(account, name=name)

    assert str(caught.value) == (
        f"'{name}' is not a valid runbook name: use letters, digits, '_' and '-', starting with a letter."
    )


def test_account_write_runbook_refuses_a_tag_name_azure_forbids(account):
    with pytest.raises(AccountError) as caught:
        write(account, tags={"rjsync/path": "x"})

    assert str(caught.value) == (
        "Tag name 'rjsync/path' on runbook 'rjgit-user_security_reset-password' is not allowed by Azure: "
        "tag names cannot be empty or contain < > % & \\ ? /."
    )


def test_account_write_properties_updates_in_place_when_the_content_is_current(account):
    account.ensure_runtime_environment("RJ-PowerShell-7.4")
    write(account, tags={"owner": "it"})
    same = SCRIPT.replace(b"\r\n", b"\n")[3:]  # equal once normalized: no BOM, LF endings

    live = account.write_properties(RunbookWrite(
        "rjgit-user_security_reset-password", same, runtime_environment="RJ-PowerShell-7.4",
        description="Reset a password now.", tags={"owner": "it"}, receipt={"rjsync.sha256": "cd" * 32}))

    assert account.read_content("rjgit-user_security_reset-password") == SCRIPT  # not uploaded again
    assert live == account.snapshot().runbook("rjgit-user_security_reset-password")
    assert (live.runtime_environment, live.state, live.description) == (
        "RJ-PowerShell-7.4", "Published", "Reset a password now.")
    assert receipt_without_stamp(live.tags) == {"owner": "it", "rjsync.sha256": "cd" * 32}
    assert live.tags["rjsync.published"]


def test_account_write_properties_writes_nothing_when_the_content_differs_or_is_missing(account):
    before = write(account, receipt={"rjsync.sha256": "ab" * 32})
    spec = RunbookWrite("rjgit-user_security_reset-password", b"Write-Output 'other'",
                        description="changed", receipt={"rjsync.sha256": "cd" * 32})

    assert account.write_properties(spec) is None
    assert account.write_properties(RunbookWrite("rjgit-user_missing", SCRIPT)) is None
    assert account.snapshot().runbook("rjgit-user_security_reset-password") == before
    assert account.read_content("rjgit-user_missing") is None


def test_account_write_properties_of_a_name_without_the_prefix_raises(account, hand_made):
    hand_made("user_general_mine", SCRIPT)

    with pytest.raises(OwnershipError):
        account.write_properties(RunbookWrite("user_general_mine", SCRIPT, receipt={"rjsync.sha256": "ab" * 32}))
    assert "rjsync.sha256" not in account.snapshot().runbook("user_general_mine").tags


# -- the identity's grants -----------------------------------------------------------------------

EXCHANGE_ADMIN = ("29232cdf-9323-42fd-ade2-1d097af3e4de", "Exchange Administrator")
HELD = {("00000003-0000-0000-c000-000000000000", "User.Read.All"),
        ("00000002-0000-0ff1-ce00-000000000000", "Exchange.ManageAsApp")}


def test_account_read_grants_answers_what_the_identity_holds(holding):
    from fakes.accounts import NAME
    from fakes.arm import system_identity

    grants = holding(HELD, {EXCHANGE_ADMIN}).read_grants()

    assert grants == Grants(system_identity(NAME), frozenset(HELD), frozenset({EXCHANGE_ADMIN}))


def test_account_read_grants_of_an_identity_holding_nothing_is_empty(holding):
    grants = holding().read_grants()

    assert (grants.app_roles, grants.directory_roles) == (frozenset(), frozenset())


def test_account_read_grants_without_an_identity_says_why(kind, account, request):
    if kind == "azure":
        request.getfixturevalue("arm").account.identity = None

    with pytest.raises(GrantsUnreadable) as caught:
        account.read_grants()

    assert caught.value.message.startswith({
        "local": "This directory account describes no identity: add ",
        "azure": "Automation account 'aa-realmjoin-test' has no system-assigned managed identity"}[kind])
