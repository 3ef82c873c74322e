"""Switch policies: when does the base model take over from the draft?

A policy sees the base model's probabilities of the draft tokens, in base-token order, and
names the first index at which the base takes over. The pipeline calls it after every chunk
with only the new indices to examine, so a policy must depend on probabilities up to the
index it returns and no further.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@runtime_checkable
class SwitchPolicy(Protocol):
    """Decides the switch point from the base model's draft-token probabilities."""

    def first_switch(self, probs: Sequence[float], start: int = 0) -> int | None:
        """The first index ``i >= start`` where the base takes over, or None if there is none yet."""
        ...


@dataclass(frozen=True)
class GeometricMeanWindow:
    """The reference rule: switch at the first i whose window geometric mean reaches gamma.

    ``a_i = 0`` for ``i < window - 1``, else ``(p_{i-w+1} * ... * p_i) ** (1 / w)``, computed
    exactly as the reference does (product, then power) so that ties break the same way.
    """

    gamma: float = 0.8
    window: int = 6

    def __post_init__(self) -> None:
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"window must be a positive number of tokens, got {self.window!r}")

    def window_mean(self, probs: Sequence[float], i: int) -> float:
        """``a_i``: 0 before the window is full, else the geometric mean of ``probs[i-w+1 : i+1]``."""
        if i + 1 < self.window:
            return 0.0
        return math.pow(math.prod(probs[i + 1 - self.window : i + 1]), 1 / self.window)

    def window_means(self, probs: Sequence[float]) -> list[float]:
        """``a_i`` for every index of ``probs``."""
        return [self.window_mean(probs, i) for i in range(len(probs))]

    def first_switch(self, probs: Sequence[float], start: int = 0) -> int | None:
        for i in range(max(start, self.window - 1), len(probs)):
            if self.window_mean(probs, i) >= self.gamma:
                return i
        return None
