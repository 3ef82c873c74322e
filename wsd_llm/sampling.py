"""How a model picks its tokens: one frozen object per role, built by ``WSDConfig``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sampling:
    """Decoding settings of one model call, as a backend receives them.

    ``WSDConfig.draft_sampling()`` builds the draft's (the reference drafts greedily, up to 512
    tokens, stopping at end-of-turn markers); ``WSDConfig.base_sampling(n)`` the base's
    continuation (greedy, as the reference's ``inference/target.py``).

    Attributes:
        max_tokens: most tokens to write (> 0).
        temperature: 0 picks the most likely token (greedy); above 0 samples.
        top_p: nucleus mass kept when sampling, in (0, 1].
        seed: seed of the sampler for repeatable samples; None draws a fresh one.
        stop_tokens: texts of tokens that end the reply when written (each must be one token
            of the model's vocabulary to count).
        ignore_eos: keep writing past end-of-sequence (vLLM's ``ignore_eos``; benchmarks use it
            to write exactly ``max_tokens``).
    """

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop_tokens: Sequence[str] = field(default=())
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0
