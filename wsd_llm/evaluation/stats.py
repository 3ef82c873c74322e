"""Paired comparisons of two systems' scores on the same prompts: win rate and its bootstrap interval."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

CONFIDENCE = 0.95  # the interval level reports use


class WinRate(BaseModel):
    """How often system A's reply scored higher than system B's on the same prompt.

    Attributes:
        rate: wins of A plus half its ties, over the prompts, in [0, 1].
        low, high: the bootstrap confidence interval of ``rate`` (percentile method).
        confidence: the interval's level, e.g. 0.95.
        wins, ties, losses: counts of prompts.
    """

    rate: float
    low: float
    high: float
    confidence: float
    wins: int
    ties: int
    losses: int


def outcomes(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Per prompt: 1 where ``a`` scored higher, 0.5 for a tie, 0 where ``b`` did.

    Raises:
        ValueError: the sequences differ in length or are empty.
    """
    if len(a) != len(b) or not len(a):
        raise ValueError(f"need the same non-zero number of scores for both systems, got {len(a)} and {len(b)}")
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.where(x > y, 1.0, np.where(x == y, 0.5, 0.0))


def win_rate(a: Sequence[float], b: Sequence[float], *, confidence: float = CONFIDENCE, resamples: int = 10_000,
             seed: int = 0) -> WinRate:
    """A's win rate over B with a paired bootstrap interval: prompts are resampled with replacement
    ``resamples`` times (seeded, so the interval is repeatable) and the interval is the central
    ``confidence`` mass of the resampled rates.

    Args:
        a, b: the two systems' scores, aligned by prompt.
        confidence: the interval's level, in (0, 1).
        resamples: bootstrap resamples (> 0).
        seed: numpy seed of the resampling.

    Raises:
        ValueError: mismatched or empty scores, or a confidence outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    points = outcomes(a, b)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(points), size=(resamples, len(points)))
    rates = points[picks].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(rates, [tail, 100 - tail])
    return WinRate(rate=float(points.mean()), low=float(low), high=float(high), confidence=confidence,
                   wins=int((points == 1.0).sum()), ties=int((points == 0.5).sum()),
                   losses=int((points == 0.0).sum()))
