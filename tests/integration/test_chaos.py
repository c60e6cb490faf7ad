"""The reliability invariants under seeded random faults: a small `make chaos` per
configuration (runs, then a last run per thread, then every thread deleted)."""

from __future__ import annotations

import pytest

from local.chaos import CONFIGURATIONS, run_chaos


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_every_invariant_holds_under_random_faults(configuration: str) -> None:
    report = run_chaos(configuration, runs=6, threads=3, users=2, rate=0.25, seed=7)

    assert sum(report.faults_injected.values()) > 0, "the faults must have happened"
    assert report.runs_terminal == report.runs
    assert report.locks_held == 0
    assert report.threads_usable == report.threads
    assert report.duplicate_messages == 0
    assert report.orphaned_objects == dict.fromkeys(report.orphaned_objects, 0)
    assert report.tokens_spent > 0
    assert report.tokens_not_in_ledger == 0
    assert report.events_off == 0
