"""Request pacing on its own, without an account or the emulator: which budget a request
spends, how a ``RequestBudget`` spends Resource Manager's tokens, which accounts share one, and
how an ``ImportPacer`` keeps to the service's import window."""

from __future__ import annotations

import threading
import time

from rjsync.accounts.pacing import (
    ImportPacer,
    RequestBudget,
    remaining_header,
    request_budgets,
    request_kind,
)

RATES = {"reads": 25.0, "writes": 10.0, "deletes": 10.0}
SUBSCRIPTION = "4e2c8f10-1b2c-4d5e-8f90-123456789abc"


def test_request_kind_names_the_budget_each_method_spends():
    assert [request_kind(m) for m in ("GET", "head", "PUT", "PATCH", "POST", "DELETE")] == [
        "reads", "reads", "writes", "writes", "writes", "deletes"]


def test_budget_lets_requests_through_until_an_answer_says_how_many_tokens_remain():
    budget = RequestBudget(1.0)
    started = time.monotonic()
    for _ in range(50):
        budget.acquire()
    assert time.monotonic() - started < 0.5


def test_budget_waits_for_the_refill_once_the_remaining_tokens_are_spent():
    budget = RequestBudget(20.0)  # a token every 50 ms
    budget.observe(200, "2", None)
    started = time.monotonic()
    for _ in range(2):
        budget.acquire()
    assert time.monotonic() - started < 0.04
    for _ in range(4):
        budget.acquire()
    assert time.monotonic() - started >= 4 * 0.05 - 0.01


def test_budget_believes_the_lower_count_of_its_own_and_the_answer():
    budget = RequestBudget(10.0)
    budget.observe(200, "100", None)
    budget.observe(200, "1", None)  # someone else spent the bucket
    budget.acquire()
    started = time.monotonic()
    budget.acquire()
    assert time.monotonic() - started >= 0.09  # the next token, at 10 per s


def test_budget_keeps_its_pace_when_answers_with_and_without_its_header_alternate():
    budget = RequestBudget(20.0)  # a token every 50 ms
    budget.observe(200, "0", None)
    started = time.monotonic()
    for i in range(6):
        budget.acquire()
        budget.observe(200, "0" if i % 2 else None, None)  # every other answer says nothing of it

    assert time.monotonic() - started >= 6 * 0.05 - 0.01  # never "unlimited" in between


def test_remaining_header_reads_resource_requests_when_the_kind_header_is_absent():
    own = {"x-ms-ratelimit-remaining-subscription-writes": "7",
           "x-ms-ratelimit-remaining-subscription-resource-requests": "3"}
    other = {"x-ms-ratelimit-remaining-subscription-resource-requests": "3"}

    assert [remaining_header(own, "writes"), remaining_header(other, "writes"),
            remaining_header(other, "reads"), remaining_header({}, "writes")] == ["7", "3", "3", None]


def test_budget_closes_until_the_retry_after_of_a_429():
    budget = RequestBudget(1000.0)
    budget.observe(200, "50", None)
    budget.observe(429, "0", "0.3")
    started = time.monotonic()
    budget.acquire()
    assert time.monotonic() - started >= 0.29


def test_budget_wakes_every_waiter_in_turn():
    budget = RequestBudget(50.0)
    budget.observe(200, "0", None)
    done: list[float] = []
    started = time.monotonic()
    threads = [threading.Thread(target=lambda: (budget.acquire(), done.append(time.monotonic())))
               for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(done) == 5
    assert max(done) - started >= 5 / 50 - 0.01  # one token every 20 ms, no more




def test_request_budgets_are_shared_by_one_subscription_at_one_endpoint_however_spelled():
    first = request_budgets("https://arm.example", SUBSCRIPTION, **RATES)
    again = request_budgets("HTTPS://ARM.EXAMPLE", SUBSCRIPTION.upper(), **RATES)

    assert first.keys() == {"reads", "writes", "deletes"}
    assert all(first[kind] is again[kind] for kind in first)
    assert [first[kind].refill for kind in ("reads", "writes", "deletes")] == [25.0, 10.0, 10.0]


def test_request_budgets_differ_by_subscription_endpoint_and_rate():
    first = request_budgets("https://arm.example", SUBSCRIPTION, **RATES)
    others = [
        request_budgets("https://arm.example", SUBSCRIPTION.replace("4e2c", "0f0f"), **RATES),
        request_budgets("https://other-arm.example", SUBSCRIPTION, **RATES),
        request_budgets("https://arm.example", SUBSCRIPTION, **{**RATES, "writes": 5.0}),
    ]

    assert all(other["writes"] is not first["writes"] for other in others)
    assert others[2]["reads"] is first["reads"]  # only the writes' rate differs


# -- the import window -----------------------------------------------------------------------------


def test_import_pacer_lets_limit_imports_through_then_waits_for_the_oldest_to_leave_the_window():
    pacer = ImportPacer(2, 0.2)
    announced: list[float] = []
    started = time.monotonic()
    for _ in range(2):
        pacer.acquire(announced.append)
    assert time.monotonic() - started < 0.1

    pacer.acquire(announced.append)

    assert time.monotonic() - started >= 0.19
    assert len(announced) == 1 and 0.1 < announced[0] <= 0.2  # said once, before the wait
    assert len(pacer.waits) == 3 and max(pacer.waits[:2]) < 0.05 and pacer.waits[2] >= 0.15


def test_import_pacer_dates_a_slot_again_when_its_answer_arrives():
    pacer = ImportPacer(1, 0.2)
    slot = pacer.acquire()
    time.sleep(0.1)  # the answer is slow: the service may have started the import only now
    pacer.sent(slot)
    started = time.monotonic()

    pacer.acquire()

    assert time.monotonic() - started >= 0.19  # a window after the answer, not after the send


def test_import_pacer_gives_back_the_slot_of_an_import_the_service_refused():
    pacer = ImportPacer(1, 5.0)
    slot = pacer.acquire()
    pacer.release(slot)  # a 429: the service started nothing
    started = time.monotonic()

    pacer.acquire()

    assert time.monotonic() - started < 0.1
