"""How a local model picks its next token: transformers' logits processors, built from a ``Sampling``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from wsd_llm.sampling import Sampling


class OutputPenaltyLogitsProcessor(LogitsProcessor):
    """OpenAI's ``frequency_penalty`` and ``presence_penalty`` (as vLLM applies them): every token
    already written after the prompt loses ``frequency * count + presence`` from its logit.

    transformers has no processor for these two (its ``RepetitionPenaltyLogitsProcessor`` is the
    multiplicative CTRL penalty over the whole context, prompt included).
    """

    def __init__(self, frequency: float, presence: float, prompt_length: int) -> None:
        self.frequency = frequency
        self.presence = presence
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        written = input_ids[:, self.prompt_length :]
        counts = torch.zeros_like(scores).scatter_add_(1, written, torch.ones_like(written, dtype=scores.dtype))
        return scores - self.frequency * counts - self.presence * (counts > 0).to(scores.dtype)


def penalty_processors(sampling: Sampling, prompt_length: int) -> LogitsProcessorList:
    """The penalties of ``sampling`` (they apply to greedy decoding too); empty when there are none.

    Args:
        sampling: the call's settings.
        prompt_length: tokens of context before the first written one (``input_ids`` columns).
    """
    processors = LogitsProcessorList()
    if sampling.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(sampling.repetition_penalty))
    if sampling.frequency_penalty or sampling.presence_penalty:
        processors.append(OutputPenaltyLogitsProcessor(sampling.frequency_penalty, sampling.presence_penalty,
                                                       prompt_length))
    return processors


class Sampler:
    """Picks the next token: penalties first, then argmax at temperature 0, else seeded
    temperature / top-k / top-p sampling with transformers' own logits warpers."""

    def __init__(self, sampling: Sampling, prompt_length: int, device: torch.device | str = "cpu") -> None:
        self.greedy = sampling.greedy
        self.penalties = penalty_processors(sampling, prompt_length)
        self.warpers = LogitsProcessorList()
        if not self.greedy:
            self.warpers.append(TemperatureLogitsWarper(sampling.temperature))
            if sampling.top_k:
                self.warpers.append(TopKLogitsWarper(sampling.top_k))
            if sampling.top_p < 1.0:
                self.warpers.append(TopPLogitsWarper(sampling.top_p))
        self.generator = torch.Generator(device=device)
        if sampling.seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(sampling.seed)

    def __call__(self, logits: torch.Tensor, ids: Sequence[int]) -> int:
        """The next token id after ``ids`` (the whole context), from ``logits`` of shape ``(vocab,)``."""
        scores = logits.float().unsqueeze(0)
        if self.penalties:
            scores = self.penalties(torch.tensor([ids], device=logits.device), scores)
        if self.greedy:
            return int(scores.argmax())
        probs = torch.softmax(self.warpers(None, scores), dim=-1)
        return int(torch.multinomial(probs, 1, generator=self.generator))
