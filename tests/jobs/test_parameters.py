"""A job's parameters checked against real catalog runbooks: PowerShell's binding rules, the
portal's customization (defaults, hidden, Select), names, sizes, and what Azure's PUT gets."""

from __future__ import annotations

import json
import textwrap
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rjsync.catalog.build import build_catalog
from rjsync.catalog.model import SourceFile, SourceInfo
from rjsync.jobs.parameters import MAX_TOTAL_BYTES, check_parameters

SOURCE = SourceInfo(kind="folder", location="test")


def runbook(params: str, customization: dict | None = None, path: str = "user/general/job.ps1"):
    inputs = (f".INPUTS\nRunbookCustomization: {json.dumps(customization, indent=2)}\n"
              if customization is not None else "")
    text = f"<#\n.SYNOPSIS\nA job.\n{inputs}#>\nparam(\n{textwrap.dedent(params)}\n)\n"
    catalog = build_catalog(SOURCE, [SourceFile(path, text.encode())])
    assert catalog.errors == () and len(catalog.runbooks) == 1, catalog.diagnostics
    return catalog.runbooks[0]


TYPED = runbook("""
    [Parameter(Mandatory = $true)] [string] $UserName,
    [bool] $Flag = $true,
    [switch] $Force,
    [int] $Count = 1,
    [long] $Big = 0,
    [double] $Ratio = 0.5,
    [datetime] $When,
    [string[]] $Tags,
    [guid] $Id,
    [object] $Anything,
    $Untyped
""")


def check(values, rb=TYPED, customization=None, **kwargs):
    return check_parameters(rb, {"UserName": "someone@contoso.com", **values}
                            if rb is TYPED else values, customization, **kwargs)


def test_check_parameters_valid_body_gives_json_texts_under_the_declared_names():
    result = check_parameters(TYPED, {"username": " someone@contoso.com ", "FLAG": False,
                                      "Count": "0x10", "Tags": ["a", " b "], "Ratio": 2,
                                      "Anything": {"k": " v "}, "When": "2024-05-31T14:00:00Z"})
    assert result.problems == []
    assert result.values == {
        "UserName": '"someone@contoso.com"',  # trimmed, as Az.Automation trims strings
        "Flag": "false", "Count": '"0x10"', "Ratio": "2",
        "When": '"2024-05-31T14:00:00Z"',
        "Tags": '["a","b"]',
        "Anything": '{"k":" v "}',  # strings inside objects are not trimmed
    }
    assert list(result.values) == ["UserName", "Flag", "Count", "Ratio", "When", "Tags",
                                   "Anything"]  # the runbook's order


# PowerShell's binding rules (conversion.py cites the sources): values it binds ...
ACCEPTED = [
    ("Flag", True), ("Flag", 0), ("Flag", 2.5), ("Force", False), ("Force", 1),
    ("Count", 42), ("Count", " 42 "), ("Count", "0x10"), ("Count", "1e3"), ("Count", 4.5),
    ("Count", "1,000"), ("Count", "1kb"), ("Count", "#ff"), ("Count", "&h10"), ("Count", ""),
    ("Count", "0xFFFFFFFF"), ("Count", -2147483648), ("Count", True), ("Count", "-12l"),
    ("Big", 2**40), ("Big", "9223372036854775807"),
    ("Ratio", "1.5e3"), ("Ratio", "-.5"), ("Ratio", 3),
    ("When", "2024-05-31"), ("When", "2024-05-31 14:00"), ("When", "05/31/2024 2:00 PM"),
    ("When", "31 May 2024"), ("When", "Friday, May 31, 2024"), ("When", "14:00:00"),
    ("When", "2024-05-31T14:00:00.1234567+02:00"),
    ("Tags", "one"), ("Tags", []), ("Tags", [1, True, "x"]),
    ("Id", "0f8fad5b-d9cb-469f-a165-70867728950e"),
    ("Id", "{0F8FAD5B-D9CB-469F-A165-70867728950E}"),
    ("Id", "0f8fad5bd9cb469fa16570867728950e"),
    ("Anything", [1, {"a": None}]), ("Untyped", {"x": [1]}), ("UserName", 42), ("UserName", True),
]


@pytest.mark.parametrize(("name", "value"), ACCEPTED)
def test_check_parameters_accepts_what_powershell_binds(name, value):
    assert check({name: value}).problems == []


# ... and values it refuses, with the reason the problem gives.
REFUSED = [
    ("Flag", "false", "binds only true, false or a number to a Boolean parameter, not text"),
    ("Flag", "true", "not text"), ("Flag", None, "not null"), ("Flag", [True], "a list"),
    ("Force", "yes", "SwitchParameter parameter, not text"),
    ("Count", "abc", "not a number PowerShell can convert to Int32"),
    ("Count", 2**31, "out of the Int32 range (-2147483648 to 2147483647)"),
    ("Count", 2147483647.5, "out of the Int32 range"),  # rounds to even: 2147483648
    ("Count", "0x1FFFFFFFF", "out of the Int32 range"),
    ("Count", "12 apples", "not a number"), ("Count", {"n": 1}, "a JSON object"),
    ("Big", "9223372036854775808", "out of the Int64 range"),
    ("Ratio", "1.2.3", "not a number PowerShell can convert to Double"),
    ("When", "2024-02-30", "not a date PowerShell can read"),
    ("When", "tomorrow", "use ISO 8601"), ("When", 1717000000, "only text can be bound"),
    ("When", "13/01/2024", "not a date"),  # invariant culture reads month first
    ("Tags", [["nested"]], "item 1 of the list: a list cannot be bound to a String parameter"),
    ("Tags", [{"a": 1}], "a JSON object cannot be bound"),
    ("Id", "not-a-guid", "not a GUID"), ("Id", 12, "only text"),
    ("UserName", ["a", "b"], "a list cannot be bound to a String parameter"),
    ("UserName", {"a": 1}, "a JSON object cannot be bound to a String parameter"),
    ("UserName", "", "mandatory and PowerShell refuses an empty string"),
    ("UserName", "   ", "refuses an empty string"),  # Az.Automation trims it first
    ("UserName", None, "refuses null"),
]


@pytest.mark.parametrize(("name", "value", "reason"), REFUSED)
def test_check_parameters_refuses_what_powershell_would_not_bind(name, value, reason):
    result = check({name: value})
    assert len(result.problems) == 1 and result.values == {}
    assert result.problems[0].startswith(f"Parameter {name}")
    assert reason in result.problems[0]


def test_check_parameters_numbers_round_to_even_as_convert_toint32_does():
    rb = runbook("[int] $N")
    assert check_parameters(rb, {"N": 2.5}).ok and check_parameters(rb, {"N": "3.5"}).ok
    assert "out of the Int32 range" in check_parameters(rb, {"N": -2147483648.75}).problems[0]


def test_check_parameters_names_unknown_ones_and_the_names_that_exist():
    rb = runbook("[string] $UserName, [bool] $Revoke")
    result = check_parameters(rb, {"username": "a", "Revok": True, "Extra\n": 1})
    assert result.problems == ['Unknown parameters "Revok", "Extra\\n": rjgit-user_general_job '
                               "takes UserName, Revoke."]


def test_check_parameters_one_name_given_twice_in_two_casings():
    rb = runbook("[string] $UserName")
    assert check_parameters(rb, {"UserName": "a", "USERNAME": "b"}).problems == [
        'Parameter UserName is given twice ("UserName" and "USERNAME"); PowerShell matches '
        "names case-insensitively."]


def test_check_parameters_missing_mandatory_ones():
    rb = runbook("[Parameter(Mandatory)] [string] $UserName, [Parameter(Mandatory)] [int] $Days")
    assert check_parameters(rb, {}).problems == [
        "Missing mandatory parameter UserName (String).",
        "Missing mandatory parameter Days (Int32)."]


def test_check_parameters_customization_defaults_fill_mandatory_ones_tenant_first():
    rb = runbook("[Parameter(Mandatory)] [string] $Site, [Parameter(Mandatory)] [int] $Days",
                 customization={"Parameters": {"Site": {"DefaultValue": "script"},
                                               "Days": {"Default": 7}}})
    assert check_parameters(rb, {}).values == {"Site": '"script"', "Days": "7"}
    tenant = {"Runbooks": {"RJGIT-user_general_job": {  # the name matches case-insensitively
        "Parameters": {"Site": {"Default": "tenant"}}}}}
    assert check_parameters(rb, {}, tenant).values == {"Site": '"tenant"', "Days": "7"}
    assert check_parameters(rb, {"Site": "mine"}, tenant).values["Site"] == '"mine"'


def test_check_parameters_a_customization_default_is_checked_too():
    rb = runbook("[int] $Days", customization={"Parameters": {"Days": {"DefaultValue": "soon"}}})
    assert check_parameters(rb, {}).problems == [
        "Parameter Days (the customization's default): \"soon\" cannot be bound to Int32: the "
        "text is not a number PowerShell can convert to Int32."]


HIDDEN = runbook("""
    [Parameter(Mandatory = $true)] [string] $UserName,
    [string] $Prefix = "cfg - ",
    [string] $Fixed = "a",
    [Parameter(Mandatory = $true)] [string] $CallerName
""", customization={"Parameters": {
    "UserName": {"Hide": True}, "CallerName": {"Hide": True}, "Prefix": {"Hide": True},
    "Fixed": {"ReadOnly": True}}})


def test_check_parameters_hidden_ones_set_by_the_caller():
    result = check_parameters(HIDDEN, {"UserName": "u", "CallerName": "c", "Prefix": "x",
                                       "Fixed": "b"})
    assert result.problems == [
        "Parameter Prefix is hidden in the portal and cannot be set by the caller.",
        "Parameter Fixed is read-only in the portal and cannot be set by the caller."]
    # UserName and CallerName: hidden, mandatory, no default: context the caller gives
    assert check_parameters(HIDDEN, {"UserName": "u", "CallerName": "c"}).ok


def test_check_parameters_context_is_filled_by_the_service_not_the_caller():
    result = check_parameters(HIDDEN, {"UserName": "u"}, context={"CallerName": "alice",
                                                                 "NotAParameter": 1})
    assert result.values == {"UserName": '"u"', "CallerName": '"alice"'}
    forged = check_parameters(HIDDEN, {"UserName": "u", "callername": "mallory"},
                              context={"CallerName": "alice"})
    assert forged.problems == ["Parameter CallerName is filled by the service and cannot be set "
                               "by the caller."]


OUT_OF_OFFICE = runbook("""
    [bool] $Disable = $false,
    [datetime] $Start,
    [string] $MessageInternal,
    [ValidateSet("None", "Known", "All")] [string] $ExternalAudience = "All"
""", customization={"Parameters": {"Disable": {"Select": {"Options": [
    {"Display": "Enable", "ParameterValue": False,
     "Customization": {"Mandatory": ["Start", "MessageInternal"]}},
    {"Display": "Disable", "ParameterValue": True,
     "Customization": {"Hide": ["Start", "MessageInternal", "ExternalAudience"]}}]}}}})


def test_check_parameters_a_select_option_hides_and_requires_others():
    assert check_parameters(OUT_OF_OFFICE, {"Disable": True, "Start": "2024-05-31"}).problems == [
        "Parameter Start is hidden in the portal when Disable is true and cannot be set by the "
        "caller."]
    assert check_parameters(OUT_OF_OFFICE, {"Start": "2024-05-31"}).problems == [
        "Missing parameter MessageInternal (String), mandatory in the portal when Disable is "
        "false."]
    assert check_parameters(OUT_OF_OFFICE, {"Disable": True}).values == {"Disable": "true"}


def test_check_parameters_values_outside_a_select_or_a_validateset():
    assert check_parameters(OUT_OF_OFFICE, {"Disable": 2}).ok  # binds to $true: an option
    hidden = check_parameters(OUT_OF_OFFICE, {"Disable": True, "externalaudience": "known"})
    assert hidden.problems == ["Parameter ExternalAudience is hidden in the portal when Disable "
                               "is true and cannot be set by the caller."]
    ok = check_parameters(OUT_OF_OFFICE, {"Start": "2024-05-31", "MessageInternal": "away",
                                          "ExternalAudience": "known"})
    assert ok.ok  # ValidateSet compares case-insensitively
    wrong = check_parameters(OUT_OF_OFFICE, {"Start": "2024-05-31", "MessageInternal": "x",
                                             "ExternalAudience": "Everyone"})
    assert wrong.problems == ['Parameter ExternalAudience: "Everyone" is not one of "None", '
                              '"Known", "All" (its ValidateSet).']


def test_check_parameters_selectsimple_options_and_allowedit():
    tenant = {"Runbooks": {"rjgit-user_general_job": {"Parameters": {"Policy": {
        "SelectSimple": {"Win 11": "cfg - Win11", "Win 10": "cfg - Win10"}}}}}}
    rb = runbook('[string] $Policy = "cfg - Win11"')
    assert check_parameters(rb, {"Policy": "cfg - win10"}, tenant).ok
    assert check_parameters(rb, {"Policy": "cfg - Win7"}, tenant).problems == [
        'Parameter Policy: "cfg - Win7" is not one of the portal\'s options (SelectSimple: '
        '"cfg - Win11", "cfg - Win10").']
    tenant["Runbooks"]["rjgit-user_general_job"]["Parameters"]["Policy"]["AllowEdit"] = True
    assert check_parameters(rb, {"Policy": "cfg - Win7"}, tenant).ok


ADDRESS_BOOK = runbook("""
    [Parameter(Mandatory = $true)] [string] $UserName,
    [bool] $HideMailbox = $true
""", customization={"Parameters": {"UserName": {"Hide": True},
                                   "HideMailbox": {"Hide": True}},
                    "ParameterList": [{"DisplayName": "Action", "Default": "Hide it", "Select": {
                        "Options": [{"Display": "Hide it",
                                     "Customization": {"Default": {"HideMailbox": True}}},
                                    {"Display": "Show it",
                                     "Customization": {"Default": {"HideMailbox": False}}}]}}]})


def test_check_parameters_a_portal_choice_sets_a_hidden_parameter():
    assert check_parameters(ADDRESS_BOOK, {"UserName": "u"}).values == {
        "UserName": '"u"', "HideMailbox": "true"}  # the default option's default
    assert check_parameters(ADDRESS_BOOK, {"UserName": "u", "HideMailbox": False}).values[
        "HideMailbox"] == "false"
    assert check_parameters(ADDRESS_BOOK, {"UserName": "u", "HideMailbox": 7}).ok  # binds $true
    assert check_parameters(ADDRESS_BOOK, {"UserName": "u", "HideMailbox": "no"}).problems[0] == (
        'Parameter HideMailbox: no option of "Action" in the portal gives this value.')


def test_check_parameters_never_shows_a_secret_value():
    rb = runbook("[int] $ApiToken, [Parameter(Mandatory)] [string] $NewPassword, [int] $Count")
    result = check_parameters(rb, {"ApiToken": "s3cr3t-value", "NewPassword": ["hunter2"],
                                   "Count": "x" * 100})
    assert result.problems == [
        "Parameter ApiToken: the value cannot be bound to Int32: the text is not a number "
        "PowerShell can convert to Int32.",
        "Parameter NewPassword: the value cannot be bound to String: a list cannot be bound to a "
        "String parameter.",
        f'Parameter Count: "{"x" * 40}…" cannot be bound to Int32: the text is not a number '
        "PowerShell can convert to Int32."]
    assert "s3cr3t" not in str(result) and "hunter2" not in str(result)


def test_check_parameters_json_as_newtonsoft_writes_it():
    rb = runbook("[string] $Text")
    assert check_parameters(rb, {"Text": ' é "q" \\ \n\u2028. '}).values == {
        "Text": '"é \\"q\\" \\\\ \\n\\u2028."'}  # trimmed; U+2028 escaped


def test_check_parameters_over_azures_512_kib_is_one_problem():
    rb = runbook("[string] $A, [string] $B")
    assert check_parameters(rb, {"A": "x" * 200_000, "B": "y" * 200_000}).ok
    result = check_parameters(rb, {"A": "x" * 300_000, "B": "y" * 300_000})
    assert result.problems == [f"The parameters take 585 KiB as Azure receives them; Azure "
                               f"accepts at most {MAX_TOTAL_BYTES // 1024} KiB in all for one job."]


def test_check_parameters_hostile_sizes_stay_linear_and_bounded():
    rb = runbook("[int] $Count, [string] $Text, [string[]] $Many")
    started = time.perf_counter()
    huge = check_parameters(rb, {"Count": "9" * 10_000_000, "Text": "x" * 10_000_000})
    keys = check_parameters(rb, {f"k{i}": i for i in range(10_000)})
    listed = check_parameters(rb, {"Many": ["a"] * 200_000})
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    deep = check_parameters(rb, {"Many": nested})
    assert time.perf_counter() - started < 5
    assert huge.problems[0] == ('Parameter Count: "' + "9" * 40 + '…" cannot be bound to Int32: '
                                "the text is too long to be a number.")
    assert huge.problems[1].startswith("The parameters take 9765 KiB")
    assert len(keys.problems) == 1 and keys.problems[0].endswith(
        "and 9990 more: rjgit-user_general_job takes Count, Text, Many.")
    assert listed.problems[0].startswith("The parameters take 781 KiB")
    assert deep.problems == ["Parameter Many is nested more than 64 levels deep."]


def test_check_parameters_a_body_that_is_not_an_object():
    assert check_parameters(TYPED, ["UserName"]).problems == [  # type: ignore[arg-type]
        "The parameters must be a JSON object of names and values."]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
NAMES = st.sampled_from([p.name for p in TYPED.parameters] + ["userNAME", "unknown", ""])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(NAMES, JSON, max_size=6), st.sampled_from([None, {"Runbooks": []},
                                                                   {"Runbooks": {"x": 1}}]))
def test_check_parameters_random_json_gives_values_or_problems(values, tenant):
    for rb in (TYPED, OUT_OF_OFFICE, ADDRESS_BOOK, HIDDEN):
        result = check_parameters(rb, values, tenant)
        assert bool(result.values) != bool(result.problems) or not result.values
        for text in result.values.values():
            json.loads(text)
        assert all(p.endswith(".") and "\n" not in p for p in result.problems)


FORWARDING = runbook("""
    [string] $TargetUser,
    [string] $TargetNumber,
    [bool] $ToVoicemail = $false
""", customization={"ParameterList": [{"DisplayName": "Forward to", "Select": {"Options": [
    {"Display": "Teams user", "Customization": {
        "Hide": ["TargetNumber"], "Mandatory": ["TargetUser"],
        "Default": {"ToVoicemail": False, "TargetNumber": ""}}},
    {"Display": "Phone number", "Customization": {
        "Hide": ["TargetUser"], "Mandatory": ["TargetNumber"],
        "Default": {"ToVoicemail": False, "TargetUser": ""}}},
    {"Display": "Voicemail", "Customization": {
        "Hide": ["TargetUser", "TargetNumber"],
        "Default": {"ToVoicemail": True, "TargetUser": "", "TargetNumber": ""}}}]}}]})


def test_check_parameters_the_values_given_pick_the_portal_choice():
    assert check_parameters(FORWARDING, {"TargetNumber": "+49 30 1234"}).values == {
        "TargetUser": '""', "TargetNumber": '"+49 30 1234"', "ToVoicemail": "false"}
    assert check_parameters(FORWARDING, {"ToVoicemail": True}).values == {
        "TargetUser": '""', "TargetNumber": '""', "ToVoicemail": "true"}
    assert check_parameters(FORWARDING, {}).problems == [
        'Missing parameter TargetUser (String), mandatory in the portal when "Forward to" is '
        '"Teams user".']
    assert check_parameters(FORWARDING, {"TargetUser": "bob", "ToVoicemail": True}).problems == [
        'Parameters TargetUser, ToVoicemail: no option of "Forward to" in the portal gives these '
        "values."]


def test_check_parameters_a_boolean_default_written_as_text_is_the_portal_toggles():
    rb = runbook("[Parameter(Mandatory = $true)] [bool] $DrainMode",
                 customization={"Parameters": {"DrainMode": {"DefaultValue": "false"}}})
    assert check_parameters(rb, {}).values == {"DrainMode": "false"}
    assert not check_parameters(rb, {"DrainMode": "false"}).ok  # the caller's text is refused


@pytest.mark.upstream
def test_check_parameters_real_upstream_runbooks_accept_valid_bodies_and_refuse_bad_ones():
    import os

    from rjsync.commands.catalog import load_catalog

    if not os.environ.get("RJSYNC_UPSTREAM_REPO"):
        pytest.skip("set RJSYNC_UPSTREAM_REPO to a clone of realmjoin/realmjoin-runbooks")
    catalog = load_catalog(os.environ["RJSYNC_UPSTREAM_REPO"])
    by_path = {r.path: r for r in catalog.runbooks}
    reset = by_path["user/security/reset-password.ps1"]
    ok = check_parameters(reset, {"UserName": "a@contoso.com", "EnableUserIfNeeded": False},
                          context={"CallerName": "operator@contoso.com"})
    assert ok.values == {"UserName": '"a@contoso.com"', "EnableUserIfNeeded": "false",
                         "CallerName": '"operator@contoso.com"'}
    bad = check_parameters(reset, {"UserName": "", "EnableUserIfNeeded": "false", "Revoke": 1})
    assert bad.problems == [
        'Unknown parameter "Revoke": rjgit-user_security_reset-password takes UserName, '
        "EnableUserIfNeeded, ForceChangePasswordNextSignIn, CallerName.",
        "Missing mandatory parameter CallerName (String).",
        "Parameter UserName is mandatory and PowerShell refuses an empty string for it.",
        'Parameter EnableUserIfNeeded: "false" cannot be bound to Boolean: PowerShell binds '
        "only true, false or a number to a Boolean parameter, not text."]
    away = by_path["user/mail/set-out-of-office.ps1"]
    body = {"UserName": "a@contoso.com", "CallerName": "op", "Disable": True}
    assert check_parameters(away, body).ok
    assert check_parameters(away, {**body, "Start": "2024-05-31"}).problems == [
        "Parameter Start is hidden in the portal when Disable is true and cannot be set by the "
        "caller."]
    book = by_path["user/mail/hide-or-unhide-in-addressbook.ps1"]
    assert check_parameters(book, {**body, "HideMailbox": False}).problems == [
        'Unknown parameter "Disable": rjgit-user_mail_hide-or-unhide-in-addressbook takes '
        "UserName, HideMailbox, CallerName."]
    assert check_parameters(book, {"UserName": "a", "CallerName": "op", "HideMailbox": 0}).values[
        "HideMailbox"] == "0"  # a number binds to a [bool]: 0 is $false, an option's value
    # Every runbook's own customization gives defaults PowerShell binds.
    for rb in catalog.runbooks:
        assert all(p.startswith("Missing") for p in check_parameters(rb, {}).problems), rb.name
