import pytest

from rjsync.catalog.naming import display_name, name_problems, runbook_name, title_case


@pytest.mark.parametrize("path, name, category, display, schedulable", [
    ("user/general/add-additional-alias", "rjgit-user_general_add-additional-alias", "General",
     "Add Additional Alias", False),
    ("device/AVD/restart-host", "rjgit-device_avd_restart-host", "AVD", "Restart Host", False),
    ("user/security/reset-MFA", "rjgit-user_security_reset-mfa", "Security", "Reset MFA", False),
    ("org/devices/report-stale-devices_scheduled",
     "rjgit-org_devices_report-stale-devices_scheduled", "Devices", "Report Stale Devices", True),
    ("device/general/change-groupTag", "rjgit-device_general_change-grouptag", "General",
     "Change Grouptag", False),
    ("user/userinfo/rename-user", "rjgit-user_userinfo_rename-user", "Userinfo", "Rename User",
     False),
])
def test_runbook_name_follows_the_realmjoin_convention(path, name, category, display,
                                                       schedulable):
    context, folder, stem = path.split("/")
    result = runbook_name(context, folder, stem)
    assert (result.name, result.context, result.category, result.display_name,
            result.schedulable) == (name, context.lower(), category, display, schedulable)


def test_title_case_keeps_acronyms_and_lowers_the_rest():
    assert title_case("list users by MFA methods-count") == "List Users By MFA Methods-Count"
    assert display_name("report-users-with-more-than-5-devices") == \
        "Report Users With More Than 5 Devices"


def test_runbook_name_uses_the_given_prefix():
    assert runbook_name("user", "general", "x", prefix="acme-").name == "acme-user_general_x"


def test_name_problems_warns_about_long_and_invalid_names():
    assert name_problems("rjgit-user_general_ok") == []
    long_name = "rjgit-" + "a" * 58
    assert name_problems(long_name) == [
        f"runbook name '{long_name}' is 64 characters long; Azure documents at most 63, "
        "the service may refuse it"]
    assert name_problems("rjgit-user_general_with space") == [
        "runbook name 'rjgit-user_general_with space' has characters Azure Automation does not "
        "allow (letters, digits, '_' and '-', starting with a letter)"]
