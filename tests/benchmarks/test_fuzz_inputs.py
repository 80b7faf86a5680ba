"""The fuzz of user inputs, briefly (``python -m tests.benchmarks.fuzz_inputs`` runs it longer)."""

from __future__ import annotations

from benchmarks.fuzz_inputs import fuzz


def test_fuzz_inputs_raise_only_rjsync_errors():
    tried, failures = fuzz(3.0, seed=14)

    assert tried > 10
    assert failures == [], "\n".join(failures[:5])
