"""Resource Manager's request budgets (a token bucket per subscription, principal and kind of
request), with the rates shrunk: the emulator refuses what the bucket cannot pay for (429 +
Retry-After), and the client's ``RequestBudget`` spends it evenly. A whole sync under a tight
budget is in ``tests/engine/test_apply.py``, the budget's own tests in ``test_pacing.py``. The
real SDK talks to the emulator."""

from __future__ import annotations

import dataclasses
import time

import pytest
from azure.core.exceptions import HttpResponseError

from fakes.accounts import ARM_ID, GROUP, NAME, SUBSCRIPTION
from rjsync.accounts.base import RunbookWrite

ROOMY = (1000, 1000.0)


@pytest.fixture
def client(sdk_client):
    """A bare SDK client that does not retry: it sees every refusal."""
    return sdk_client(retry_total=0)


def _tag(client, name: str, value: str):
    return client.runbook.update(GROUP, NAME, name, {"tags": {"n": value}})


# -- the emulator ----------------------------------------------------------------------------------


def test_throttling_is_off_by_default(client, arm):
    arm.account.add_runbook("rjgit-a", b"1")

    response = client.runbook.update(GROUP, NAME, "rjgit-a", {"tags": {}},
                                     cls=lambda pipeline_response, *_: pipeline_response.http_response)

    assert arm.throttling is None
    assert not any(h.lower().startswith("x-ms-ratelimit") for h in response.headers)


def test_throttling_refuses_a_write_the_bucket_cannot_pay_for_and_says_when_to_retry(client, arm):
    arm.throttling = {"reads": ROOMY, "writes": (3, 0.5), "deletes": ROOMY}
    arm.account.add_runbook("rjgit-a", b"1")
    remaining = []
    for value in "123":
        client.runbook.update(GROUP, NAME, "rjgit-a", {"tags": {"n": value}},
                              cls=lambda r, *_: remaining.append(
                                  r.http_response.headers["x-ms-ratelimit-remaining-subscription-writes"]))

    with pytest.raises(HttpResponseError) as caught:
        _tag(client, "rjgit-a", "4")

    assert remaining == ["2", "1", "0"]
    refused = caught.value
    assert refused.status_code == 429
    assert refused.error.code == "SubscriptionRequestsThrottled"
    assert "Number of 'write' requests" in refused.error.message
    assert refused.response.headers["Retry-After"] == "2"  # one token at 0.5 per s, whole seconds
    assert arm.account.runbook("rjgit-a").tags == {"n": "3"}  # a refused request is not carried out
    assert [(t.kind, t.method, t.retry_after) for t in arm.throttled] == [("writes", "PATCH", 2)]
    client.runbook.get(GROUP, NAME, "rjgit-a")  # reads have a bucket of their own


def test_throttling_refills_the_bucket_over_time(client, arm):
    arm.throttling = {"reads": ROOMY, "writes": (1, 20.0), "deletes": ROOMY}
    arm.account.add_runbook("rjgit-a", b"1")
    _tag(client, "rjgit-a", "1")
    with pytest.raises(HttpResponseError):
        _tag(client, "rjgit-a", "2")

    time.sleep(0.1)  # two tokens' worth at 20 per s; the bucket holds one
    _tag(client, "rjgit-a", "3")

    assert arm.account.runbook("rjgit-a").tags == {"n": "3"}


def test_throttling_answers_resource_requests_on_its_paths_without_the_kind_header(client, arm):
    assert arm.resource_request_paths == [r"/jobs(/|$)"]  # the job endpoints, by default
    arm.throttling = {"reads": ROOMY, "writes": ROOMY, "deletes": ROOMY, "resource-requests": (5, 1.0)}
    arm.resource_request_paths = [r"/runbooks/[^/]+$"]
    arm.account.add_runbook("rjgit-a", b"1")
    headers = []

    for value in "12":
        client.runbook.update(GROUP, NAME, "rjgit-a", {"tags": {"n": value}},
                              cls=lambda r, *_: headers.append(r.http_response.headers))

    assert [h.get("x-ms-ratelimit-remaining-subscription-resource-requests") for h in headers] == ["4", "3"]
    assert not any("x-ms-ratelimit-remaining-subscription-writes" in h for h in headers)


# -- the client's budget ---------------------------------------------------------------------------


def test_accounts_of_one_subscription_spend_one_budget(arm, open_azure):
    """A fleet's accounts in one subscription, synced by one process, share Resource Manager's
    budget; another subscription has its own."""
    other_subscription = "0f0f0f0f-1b2c-4d5e-8f90-123456789abc"
    first = open_azure()
    second = open_azure(ARM_ID.replace(NAME, "aa-other"))
    elsewhere = open_azure(ARM_ID.replace(SUBSCRIPTION, other_subscription))

    assert first.budgets["writes"] is second.budgets["writes"]
    assert first.budgets["writes"] is not elsewhere.budgets["writes"]
    assert first.budgets["reads"] is not first.budgets["writes"]


def test_client_says_when_resource_manager_throttles_and_for_how_long(arm, open_azure, caplog):
    arm.throttling = {"reads": ROOMY, "writes": (1, 0.5), "deletes": ROOMY}
    arm.account.add_runbook("rjgit-a", b"1")
    arm.account.add_runbook("rjgit-b", b"1")
    account = open_azure()  # FAST: the budget assumes 10 writes per s, the emulator grants 0.5
    spec = RunbookWrite("rjgit-a", b"1", runtime_environment=None, receipt={"rjsync.sha256": "0" * 64})

    with caplog.at_level("INFO", logger="rjsync.accounts"):
        account.write_properties(spec)
        account.write_properties(dataclasses.replace(spec, name="rjgit-b"))

    notes = [(r.getMessage(), r.target) for r in caplog.records if r.name == "rjsync.accounts.pacing"]
    assert notes == [("Resource Manager throttles this subscription's writes (429): waiting 2 s", account.target)]
    assert arm.account.runbook("rjgit-b").tags["rjsync.sha256"] == "0" * 64  # then it went through


def test_client_paces_to_the_resource_requests_header_when_the_kind_header_is_absent(arm, open_azure):
    """Answers that carry only x-ms-ratelimit-remaining-subscription-resource-requests still
    count: the writes are paced to them and none runs into a 429."""
    arm.throttling = {"reads": ROOMY, "writes": ROOMY, "deletes": ROOMY, "resource-requests": (2, 20.0)}
    arm.resource_request_paths = [r"/runbooks/[^/]+$"]
    names = [f"rjgit-{i}" for i in range(8)]
    for name in names:
        arm.account.add_runbook(name, b"1")
    account = open_azure()  # FAST: the budget assumes 10 writes per s, the emulator grants 20

    for name in names:
        account.write_properties(RunbookWrite(name, b"1", receipt={"rjsync.sha256": "0" * 64}))

    assert arm.throttled == []
    assert all(arm.account.runbook(name).tags["rjsync.sha256"] == "0" * 64 for name in names)
