"""Target texts parsed into values: ``local:PATH`` or an automation account's ARM id, each with
its canonical text and the key that says whether two targets are one account."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakes.accounts import ARM_ID, GROUP, NAME, SUBSCRIPTION
from rjsync.accounts.targets import (
    ARM_ID_FORM,
    ArmId,
    LocalTarget,
    TargetError,
    parse_arm_id,
    parse_target,
)

SUB = SUBSCRIPTION


def test_parse_target_local_is_a_local_target_with_the_path_as_given():
    target = parse_target("  LOCAL:./account  ")

    assert target == LocalTarget("./account")
    assert str(target) == "local:./account"


def test_parse_target_arm_id_is_an_arm_id_in_its_canonical_spelling():
    target = parse_target(ARM_ID.replace("resourceGroups", "resourcegroups").replace("/providers", "/PROVIDERS") + "/")

    assert target == ArmId(SUB, GROUP, NAME)
    assert str(target) == ARM_ID


@pytest.mark.parametrize("text, problem, message", [
    ("", "empty",
     f"No target given: use local:PATH for a directory account, or an automation account's ARM id {ARM_ID_FORM}."),
    ("local:", "no folder", "The target 'local:' names no folder: use local:PATH, e.g. local:./account."),
    ("aa-realmjoin-test", "unknown", "Unknown target 'aa-realmjoin-test': use local:PATH for a directory "
                                     f"account, or an automation account's ARM id {ARM_ID_FORM}."),
    (f"/subscriptions/{SUB}/resourceGroups/{GROUP}", "arm id",
     f"'/subscriptions/{SUB}/resourceGroups/{GROUP}' is not an automation account's ARM id: 'providers' "
     f"is missing. Expected {ARM_ID_FORM}."),
    (f"https://portal.azure.com/#@contoso/resource/subscriptions/{SUB}", "arm id",
     f"'https://portal.azure.com/#@contoso/resource/subscriptions/{SUB}' is not an automation account's "
     f"ARM id: it is a URL; use the part from /subscriptions/ on. Expected {ARM_ID_FORM}."),
])
def test_parse_target_says_what_is_wrong_and_which_way(text, problem, message):
    with pytest.raises(TargetError) as caught:
        parse_target(text)

    assert (caught.value.problem, str(caught.value)) == (problem, message)


def test_target_key_two_spellings_of_one_folder_are_one_account(tmp_path, monkeypatch):
    (tmp_path / "account").mkdir()
    monkeypatch.chdir(tmp_path)

    spellings = [f"local:{tmp_path}/account", "local:./account", "local:account/", "local:sub/../account"]

    assert len({parse_target(text).key for text in spellings}) == 1
    assert parse_target("local:./account").key == "local:" + os.path.normcase(os.path.realpath(tmp_path / "account"))


def test_target_key_follows_a_symlink_to_the_folder(tmp_path):
    (tmp_path / "account").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "account")

    assert parse_target(f"local:{tmp_path}/link").key == parse_target(f"local:{tmp_path}/account").key


def test_target_key_an_arm_id_in_any_case_is_one_account():
    spellings = [ARM_ID, ARM_ID.upper(), ARM_ID.lower() + "/", f"  {ARM_ID}  "]

    assert len({parse_target(text).key for text in spellings}) == 1
    assert parse_target(ARM_ID).key == ARM_ID.lower()


def test_target_key_different_accounts_differ(tmp_path):
    keys = [
        parse_target(f"local:{tmp_path}/one").key,
        parse_target(f"local:{tmp_path}/two").key,
        parse_target(ARM_ID).key,
        parse_target(ARM_ID.replace(NAME, "aa-other")).key,
        parse_target(ARM_ID.replace(GROUP, "rg-other")).key,
        parse_target(ARM_ID.replace(SUB, "0f0f0f0f-1b2c-4d5e-8f90-123456789abc")).key,
    ]

    assert len(set(keys)) == len(keys)


# -- ARM ids ---------------------------------------------------------------------------------------


def test_parse_arm_id_accepts_any_casing_and_a_trailing_slash():
    parsed = parse_arm_id(ARM_ID.upper().replace(SUB.upper(), SUB).replace(NAME.upper(), NAME) + "/")

    assert (parsed.subscription, parsed.account) == (SUB, NAME)




@given(
    subscription=st.uuids().map(str),
    group=st.from_regex(r"[-\w.()]{0,89}[-\w()]", fullmatch=True).filter(lambda g: g.isascii()),
    account=st.from_regex(r"[A-Za-z][A-Za-z0-9-]{4,48}[A-Za-z0-9]", fullmatch=True),
)
def test_parse_arm_id_reads_back_every_valid_id(subscription, group, account):
    arm_id = ArmId(subscription, group, account)

    assert parse_arm_id(str(arm_id)) == arm_id
