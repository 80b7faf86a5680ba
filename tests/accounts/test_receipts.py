"""Receipts: the tags a write carries, the publish time the account stamps, and reading them back."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from rjsync.accounts.receipts import (
    DRIFT_TOLERANCE,
    RECEIPT_COMMIT,
    RECEIPT_PATH,
    RECEIPT_SHA256,
    RECEIPT_TAGS,
    RECEIPT_TIME_TAG,
    Receipt,
    receipt_tags,
    stamp,
)

SHA = "ab" * 32
AT = datetime(2026, 11, 1, 12, 0, 0, tzinfo=timezone.utc)


def test_receipt_tags_hold_sha_path_and_commit():
    assert receipt_tags(SHA, "user/a.ps1", "c0ffee") == {
        RECEIPT_SHA256: SHA, RECEIPT_PATH: "user/a.ps1", RECEIPT_COMMIT: "c0ffee"}


@pytest.mark.parametrize("commit", [None, ""])
def test_receipt_tags_leave_out_an_unknown_commit(commit):
    assert receipt_tags(SHA, "user/a.ps1", commit) == {RECEIPT_SHA256: SHA, RECEIPT_PATH: "user/a.ps1"}


def test_receipt_tags_names_are_the_four_tags():
    assert RECEIPT_TAGS == ("rjsync.sha256", "rjsync.commit", "rjsync.path", "rjsync.published")


def test_stamp_writes_the_time_in_utc_whole_seconds():
    plus_two = timezone(timedelta(hours=2))
    now = datetime(2026, 11, 1, 14, 0, 5, 987654, tzinfo=plus_two)

    assert stamp({RECEIPT_SHA256: SHA}, now) == {RECEIPT_SHA256: SHA, RECEIPT_TIME_TAG: "2026-11-01T12:00:05Z"}


def test_stamp_defaults_to_this_machines_clock():
    before = datetime.now(timezone.utc).replace(microsecond=0)
    published = Receipt.of(stamp({})).published
    assert published is not None and before <= published <= datetime.now(timezone.utc)


def test_receipt_of_reads_back_what_was_stamped():
    receipt = Receipt.of(stamp(receipt_tags(SHA, "user/a.ps1", "c0ffee"), AT))

    assert receipt == Receipt(sha256=SHA, path="user/a.ps1", commit="c0ffee", published=AT, mangled=False)


@pytest.mark.parametrize("tags", [None, {}, {"owner": "it"}])
def test_receipt_of_no_receipt_is_empty(tags):
    assert Receipt.of(tags) == Receipt(sha256=None, path=None, commit=None, published=None, mangled=False)


@pytest.mark.parametrize("value", ["not-a-sha", "AB" * 32, "ab" * 31, ""])
def test_receipt_of_an_invalid_sha256_is_none(value):
    assert Receipt.of({RECEIPT_SHA256: value, RECEIPT_PATH: "a.ps1"}).sha256 is None


def test_receipt_of_a_mangled_time_is_marked():
    receipt = Receipt.of({RECEIPT_SHA256: SHA, RECEIPT_TIME_TAG: "yesterday"})
    assert (receipt.published, receipt.mangled) == (None, True)


def test_receipt_republished_only_beyond_the_tolerance():
    receipt = Receipt.of(stamp({RECEIPT_SHA256: SHA}, AT))

    assert not receipt.republished(AT + DRIFT_TOLERANCE)
    assert receipt.republished(AT + DRIFT_TOLERANCE + timedelta(seconds=1))
    assert not receipt.republished(AT + timedelta(minutes=5), timedelta(minutes=10))


def test_receipt_republished_reads_a_naive_time_as_utc():
    receipt = Receipt.of(stamp({}, AT))
    later = (AT + DRIFT_TOLERANCE + timedelta(seconds=1)).replace(tzinfo=None)

    assert receipt.republished(later)
    assert not receipt.republished(AT.replace(tzinfo=None))


def test_receipt_republished_is_false_without_a_time_or_a_last_modified_time():
    assert not Receipt.of({RECEIPT_SHA256: SHA}).republished(AT)
    assert not Receipt.of({RECEIPT_TIME_TAG: ""}).republished(AT)
    assert not Receipt.of(stamp({}, AT)).republished(None)
    assert not Receipt.of({RECEIPT_TIME_TAG: "yesterday"}).republished(None)


def test_receipt_republished_when_the_time_is_mangled():
    assert Receipt.of({RECEIPT_SHA256: SHA, RECEIPT_TIME_TAG: "yesterday"}).republished(AT)
