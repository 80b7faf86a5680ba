"""Operator access: RealmJoin's runbook-permissions JSON, loaded and validated, and may_start."""

from __future__ import annotations

import time

import pytest

from rjsync.errors import RjsyncError
from rjsync.jobs.access import (
    Pattern,
    PermissionsError,
    load_permissions,
    may_start,
    roles_of_groups,
    unknown_roles,
)

# RealmJoin's own example (realmjoin-docs, "Runbook Permissions"), comments and all.
EXAMPLE = """{
  "EnabledRunbookPatterns": [
    "rjgit-group_general_remove-group",
    "rjgit-device_*",
    "rjgit-user_*",
    "user_*",
  ],
  "DisabledRunbookPatterns": ["rjgit-*_security_*"],
  "Roles": {
    "DeviceAdmin": {
      "Groups": ["9cbfc0af-c217-41e9-b790-3043788f1234", // 1st Device Supporter group
                 "5555c0af-c217-41e9-b790-3043788f1234"],
      "AllowedRunbookPatterns": ["rjgit-device_*"]
    },
    "UserAdmin": {
      "Groups": ["1234c0af-c217-41e9-b790-3043788f1234"],
      "AllowedRunbookPatterns": ["rjgit-user_general_assign-or-unassign-license",
                                 "rjgit-user_mail_*", "user_*"]
    }
  },
  "TargetEntityGroups": {"0000c0af-c217-41e9-b790-3043788f0000": {"RestrictRoles": {}}}
}"""


@pytest.fixture(scope="module")
def example():
    return load_permissions(EXAMPLE)


@pytest.mark.parametrize(("runbook", "roles", "allowed", "reason"), [
    ("rjgit-device_general_wipe", ["DeviceAdmin"], True,
     'role "DeviceAdmin" allows it (pattern "rjgit-device_*")'),
    ("RJGIT-DEVICE_general_wipe", ["deviceadmin"], True, 'role "DeviceAdmin" allows it'),
    ("rjgit-device_security_enable-or-disable-device", ["DeviceAdmin"], False,
     '"rjgit-device_security_enable-or-disable-device" is disabled by the pattern '
     '"rjgit-*_security_*" of DisabledRunbookPatterns'),
    ("rjgit-org_general_add-user", ["DeviceAdmin", "UserAdmin"], False,
     '"rjgit-org_general_add-user" matches none of the EnabledRunbookPatterns'),
    ("rjgit-user_mail_set-out-of-office", ["DeviceAdmin"], False,
     'none of the caller\'s roles ("DeviceAdmin") allows "rjgit-user_mail_set-out-of-office"'),
    ("rjgit-user_mail_set-out-of-office", ["UserAdmin", "Nobody"], True,
     'role "UserAdmin" allows it (pattern "rjgit-user_mail_*")'),
    ("user_userinfo_custom", [], False,
     "the caller holds none of the roles the runbook permissions define"),
    ("user_userinfo_custom", ["Auditor"], False, "holds none of the roles"),
])
def test_may_start_decides_by_patterns_and_roles(example, runbook, roles, allowed, reason):
    decision = may_start(example, runbook, roles)
    assert decision.allowed is allowed
    assert reason in decision.reason


def test_may_start_without_roles_or_without_a_config():
    no_roles = load_permissions('{"DisabledRunbookPatterns": ["*_scheduled"]}')
    assert may_start(no_roles, "rjgit-org_general_x", []).allowed
    assert not may_start(no_roles, "rjgit-org_general_x_scheduled", ["Any"]).allowed
    assert may_start(None, "anything", []).reason == "no runbook permissions are configured"
    nothing_enabled = load_permissions('{"EnabledRunbookPatterns": []}')
    assert not may_start(nothing_enabled, "rjgit-user_general_x", []).allowed
    empty_role = load_permissions('{"Roles": {"R": {}}}')
    assert not may_start(empty_role, "rjgit-user_general_x", ["R"]).allowed


@pytest.mark.parametrize(("pattern", "name", "matches"), [
    ("rjgit-*_security_*", "rjgit-org_security_list-inactive-users", True),
    ("rjgit-*_security_*", "rjgit-org_securityx", False),
    ("*", "", True), ("a*", "a", True), ("*a", "ba", True), ("a*a", "a", False),
    ("a*b*c", "aXbYc", True), ("a*b*c", "acb", False), ("ab*ba", "aba", False),
    ("exact", "EXACT", True), ("exact", "exactly", False), ("**", "x", True),
])
def test_pattern_matches_with_stars_case_insensitively(pattern, name, matches):
    assert Pattern.compile(pattern).matches(name) is matches


def test_pattern_hostile_stars_stay_linear():
    pattern = Pattern.compile("*a" * 2000 + "*b")
    started = time.perf_counter()
    assert not pattern.matches("a" * 100_000)
    assert time.perf_counter() - started < 1


def test_roles_of_groups_and_unknown_roles(example):
    assert roles_of_groups(example, ["5555C0AF-c217-41e9-b790-3043788f1234"]) == {"DeviceAdmin"}
    assert roles_of_groups(example, ["nope"]) == frozenset()
    assert unknown_roles(example, ["useradmin", "Auditor"]) == ["Auditor"]


@pytest.mark.parametrize(("text", "message"), [
    ("{", "The runbook-permissions JSON is not valid JSON: "),
    ("[1]", "The runbook-permissions JSON must be a JSON object with EnabledRunbookPatterns, "
            "DisabledRunbookPatterns and Roles."),
    ('{"DisabledRunbookPattern": ["x"]}', 'The runbook-permissions JSON has an unknown key '
     '"DisabledRunbookPattern"; the keys are EnabledRunbookPatterns, '),
    ('{"EnabledRunbookPatterns": "rjgit-*"}',
     "The runbook-permissions JSON: EnabledRunbookPatterns must be a list of runbook name "
     "patterns (text, with * for any characters)."),
    ('{"DisabledRunbookPatterns": [""]}', "DisabledRunbookPatterns must be a list"),
    ('{"Roles": []}', "The runbook-permissions JSON: Roles must be an object of role names."),
    ('{"Roles": {"R": {"Group": []}}}', 'role "R" has an unknown key "Group"; a role has '
     "Groups and AllowedRunbookPatterns."),
    ('{"Roles": {"R": {"Groups": "g"}}}', 'role "R": Groups must be a list of group object ids.'),
    ('{"Roles": {"R": {}, "r": {}}}', 'role "r" is defined twice'),
    ('{"Roles": {"R": {"AllowedRunbookPatterns": [1]}}}', "AllowedRunbookPatterns must be a list"),
    ('{"TargetEntityGroups": 1}', "TargetEntityGroups must be an object of group ids."),
    ("[" * 100_000, "The runbook-permissions JSON is not valid JSON"),
])
def test_load_permissions_a_wrong_file_is_one_sentence(text, message):
    with pytest.raises(PermissionsError) as caught:
        load_permissions(text)
    assert isinstance(caught.value, RjsyncError)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value) and str(caught.value).endswith(".")


def test_load_permissions_names_its_source_and_never_prints_control_characters():
    with pytest.raises(PermissionsError) as caught:
        load_permissions('{"Bad\\u001b[31mKey": 1}', source="service.yaml runbook_permissions")
    assert str(caught.value).startswith('service.yaml runbook_permissions has an unknown key '
                                        '"Bad?[31mKey"')


def test_load_permissions_keeps_scheduling_patterns_and_reads_null_as_omitted():
    config = load_permissions('{"EnabledRunbookPatterns": null, '
                              '"SchedulingDisabledRunbookPatterns": ["*_x_scheduled"]}')
    assert config.enabled is None and config.roles is None
    assert [p.text for p in config.scheduling_enabled] == ["*_scheduled"]
    assert [p.text for p in config.scheduling_disabled] == ["*_x_scheduled"]
