"""Credentials of the sync service: timing tells nothing about which users exist (issue 14)."""

from __future__ import annotations

import time

from rjsync.service.auth import Authenticator, Credential, Principal, hash_secret


def _slowest_of_three(check) -> float:
    times = []
    for _ in range(3):
        began = time.perf_counter()
        assert check() is None
        times.append(time.perf_counter() - began)
    return min(times)


def test_authenticator_unknown_user_costs_as_much_as_the_costliest_stored_hash():
    """Finding 7: with one weak stored hash, an unknown user must not answer faster than a known one."""
    weak = Credential(Principal("weak", frozenset({"*"})), hash_secret("w", iterations=1))
    strong = Credential(Principal("strong", frozenset({"*"})), hash_secret("s", iterations=300_000))
    auth = Authenticator({"weak": weak, "strong": strong}, [])

    known = _slowest_of_three(lambda: auth.basic("strong", "wrong"))
    unknown = _slowest_of_three(lambda: auth.basic("nobody", "wrong"))

    assert unknown > 0.5 * known, (unknown, known)
