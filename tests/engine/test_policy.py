"""The policy as a value, and its JSON form in saved plans."""

from __future__ import annotations

from rjsync.engine.policy import Policy


def test_policy_default_packages_default_to_what_the_portal_gives_powershell_74():
    assert Policy().default_packages == (("Az", "12.3.0"),)


def test_policy_to_json_and_back_keeps_the_default_packages():
    policy = Policy(default_packages=(("Az", "11.6.0"), ("Azure CLI", "2.64.0")))

    assert policy.to_json()["default_packages"] == {"Az": "11.6.0", "Azure CLI": "2.64.0"}
    assert Policy.from_json(policy.to_json()) == policy
    assert Policy.from_json(Policy(default_packages=()).to_json()).default_packages == ()


def test_policy_from_json_of_a_plan_saved_before_default_packages_reads_the_default():
    saved = Policy().to_json()
    del saved["default_packages"]

    assert Policy.from_json(saved) == Policy()
