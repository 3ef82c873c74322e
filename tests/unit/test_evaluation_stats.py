"""Win rates and their bootstrap intervals, on cases whose answers are known by hand."""

from __future__ import annotations

import pytest

from wsd_llm.evaluation.stats import outcomes, win_rate


def test_ties_count_half():
    assert outcomes([3, 1, 2, 5], [1, 2, 2, 4]).tolist() == [1.0, 0.0, 0.5, 1.0]
    rate = win_rate([3, 1, 2, 5], [1, 2, 2, 4])
    assert rate.rate == pytest.approx(2.5 / 4)
    assert (rate.wins, rate.ties, rate.losses) == (2, 1, 1)


def test_a_sweep_has_a_degenerate_interval():
    rate = win_rate([2.0] * 10, [1.0] * 10)
    assert (rate.rate, rate.low, rate.high) == (1.0, 1.0, 1.0)
    rate = win_rate([0.0] * 7, [0.0] * 7)
    assert (rate.rate, rate.low, rate.high) == (0.5, 0.5, 0.5)


def test_the_interval_matches_the_binomial_spread_and_is_seeded():
    # 50 wins and 50 losses: rate 0.5, bootstrap sd = sqrt(0.25 / 100) = 0.05, so the 95% interval
    # is about 0.5 -/+ 1.96 * 0.05 = [0.40, 0.60].
    a, b = [1.0] * 50 + [0.0] * 50, [0.0] * 50 + [1.0] * 50
    rate = win_rate(a, b, resamples=20_000, seed=3)
    assert rate.rate == 0.5
    assert rate.low == pytest.approx(0.40, abs=0.015) and rate.high == pytest.approx(0.60, abs=0.015)
    assert win_rate(a, b, resamples=20_000, seed=3) == rate
    assert rate.low <= rate.rate <= rate.high


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="same non-zero number"):
        win_rate([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="same non-zero number"):
        win_rate([], [])
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        win_rate([1.0], [0.0], confidence=95)
