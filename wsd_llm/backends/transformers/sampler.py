"""How a local model picks its next token: transformers' logits processors, built from a ``Sampling``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from wsd_llm.backends.transformers.grammar import GrammarMask


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
    """Picks the next token: penalties first, then the constraint's mask, then argmax at
    temperature 0, else seeded temperature / top-k / top-p sampling with transformers' own warpers."""

    def __init__(self, sampling: Sampling, context: Sequence[int], device: torch.device | str = "cpu",
                 tokenizer: PreTrainedTokenizerBase | None = None) -> None:
        """Args:
            sampling: the call's settings.
            context: the ids before the first token to write.
            device: where the logits are.
            tokenizer: the model's tokenizer; needed when ``sampling`` has a constraint.
        """
        self.greedy = sampling.greedy
        self.penalties = penalty_processors(sampling, len(context))
        self.grammar: GrammarMask | None = None
        if sampling.constraint is not None:
            if tokenizer is None:
                raise ValueError("a constrained Sampler needs the model's tokenizer")
            from wsd_llm.backends.transformers.grammar import GrammarMask

            written = context[len(context) - sampling.constraint_prefix :] if sampling.constraint_prefix else ()
            self.grammar = GrammarMask(tokenizer, sampling.constraint, written)
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
        if self.grammar is not None:
            scores = self.grammar.mask(scores)
        if self.greedy:
            token = int(scores.argmax())
        else:
            probs = torch.softmax(self.warpers(None, scores), dim=-1)
            token = int(torch.multinomial(probs, 1, generator=self.generator))
        if self.grammar is not None:
            self.grammar.accept(token)
        return token
