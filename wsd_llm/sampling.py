"""How a model picks its tokens: one frozen object per role, built by ``WSDConfig``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from wsd_llm.constraints import Constraint


@dataclass(frozen=True)
class Sampling:
    """Decoding settings of one model call, as a backend receives them.

    ``WSDConfig.draft_sampling()`` builds the draft's (the reference drafts greedily, up to 512
    tokens, stopping at end-of-turn markers); ``WSDConfig.base_sampling(n)`` the base's
    continuation (greedy and without penalties by default, as the reference's ``inference/target.py``).
    Names and meanings follow vLLM's ``SamplingParams``.

    Attributes:
        max_tokens: most tokens to write (> 0).
        temperature: 0 picks the most likely token (greedy); above 0 samples.
        top_p: nucleus mass kept when sampling, in (0, 1].
        top_k: keep only the ``top_k`` most likely tokens when sampling; 0 keeps them all.
        repetition_penalty: above 1 makes every token already in the context (prompt included)
            less likely, below 1 more likely; 1 is off (Keskar et al. 2019, CTRL; transformers'
            ``RepetitionPenaltyLogitsProcessor``). Applies to greedy decoding too.
        frequency_penalty: subtracted from a token's logit once per time the model has already
            written it in this call (OpenAI's definition, prompt excluded); 0 is off.
        presence_penalty: subtracted once from the logit of every token already written in this
            call; 0 is off.
        seed: seed of the sampler for repeatable samples; None draws a fresh one.
        stop_tokens: texts of tokens that end the reply when written (each must be one token
            of the model's vocabulary to count).
        ignore_eos: keep writing past end-of-sequence (vLLM's ``ignore_eos``; benchmarks use it
            to write exactly ``max_tokens``).
        constraint: what the reply must match; the model may only write tokens that keep it
            possible, and ends once it is complete.
        constraint_prefix: how many of the last context tokens are already part of the
            constrained reply (the accepted draft, when the base continues it).
    """

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    stop_tokens: Sequence[str] = field(default=())
    ignore_eos: bool = False
    constraint: Constraint | None = None
    constraint_prefix: int = 0

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def penalised(self) -> bool:
        """Whether a penalty reshapes the logits (then the written tokens matter to the next pick)."""
        return self.repetition_penalty != 1.0 or self.frequency_penalty != 0.0 or self.presence_penalty != 0.0
