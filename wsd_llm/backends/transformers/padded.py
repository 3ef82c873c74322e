"""Many rows at once through a transformers model: left-padded generation and scoring.

Left padding keeps every row's last token at the same index, so one ``generate`` call can
continue all rows, and one forward pass with ``logits_to_keep`` scores the tails of all rows.
Position ids follow the attention mask, so a padded row computes what it would alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from wsd_llm.backends.transformers.model import TransformersModel, token_probs
from wsd_llm.backends.transformers.sampler import penalty_processors
from wsd_llm.sampling import Sampling

# Logits of one scoring pass are rows x kept positions x vocabulary floats; split larger batches.
LOGITS_BUDGET_BYTES = 2 << 30


class StopStrings(StoppingCriteria):
    """Marks a row done once its generated text holds a stop string, as vLLM does.

    Decoding the new tokens is cheap even for a 262k vocabulary, unlike transformers'
    ``stop_strings``, which precomputes a table over the whole vocabulary.
    """

    def __init__(self, lm: TransformersModel, prompt_width: int, stops: Sequence[str]) -> None:
        self.lm, self.prompt_width, self.stops = lm, prompt_width, tuple(stops)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object) -> torch.BoolTensor:
        """``input_ids`` ``(rows, width)``: prompt and generated ids; returns ``(rows,)`` done flags."""
        done = [any(stop in self.lm.decode(row[self.prompt_width :].tolist()) for stop in self.stops)
                for row in input_ids]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def pad_left(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``rows`` of different lengths as ``(ids, attention_mask)``, both ``(len(rows), longest)``
    long tensors, padded on the left with ``pad_id`` (mask 0 there)."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(list(row))
            mask[i, width - len(row) :] = 1
    return ids.to(device), mask.to(device)


def pad_id(lm: TransformersModel) -> int:
    """The tokenizer's padding id, else its smallest end-of-sequence id."""
    tokenizer = lm.tokenizer
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(lm.eos_token_ids)


def generate_rows(
    lm: TransformersModel,
    rows: Sequence[Sequence[int]],
    sampling: Sampling,
    stops: Sequence[str] = (),
) -> list[list[int]]:
    """Continue every row with transformers' ``generate`` for up to ``sampling.max_tokens`` tokens;
    each result ends before its end-of-sequence or stop token, and after the first stop string."""
    if sampling.seed is not None and not sampling.greedy:
        raise ValueError("seeded sampling is per request: use the pipeline one conversation at a time "
                         "(batch_size=1) or drop the seed")
    ids, mask = pad_left(rows, pad_id(lm), lm.device)
    stop_ids = lm.eos_token_ids | lm.single_token_ids(sampling.stop_tokens)
    options = ({"do_sample": False} if sampling.greedy else
               {"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p,
                "top_k": sampling.top_k})
    # Every row's written tokens start at the same column after left padding. The repetition
    # penalty also sees the pad tokens, as transformers' own batched generate does.
    penalties = penalty_processors(sampling, prompt_length=ids.shape[1])
    criteria = StoppingCriteriaList([StopStrings(lm, ids.shape[1], stops)] if stops else [])
    with lm.lock, torch.inference_mode():
        out = lm.model.generate(ids, attention_mask=mask, max_new_tokens=sampling.max_tokens,
                                eos_token_id=sorted(stop_ids), pad_token_id=pad_id(lm), stopping_criteria=criteria,
                                logits_processor=penalties, **options)
    written = []
    for row in out[:, ids.shape[1] :].tolist():
        end = next((i for i, token in enumerate(row) if token in stop_ids), len(row))
        written.append(row[: _through_first_stop(lm, row[:end], stops)])
    return written


def _through_first_stop(lm: TransformersModel, row: list[int], stops: Sequence[str]) -> int:
    """Tokens up to the one completing the first stop string: rows that stopped early in a
    batch kept generating while the others finished."""
    if not any(stop in lm.decode(row) for stop in stops):
        return len(row)
    return next(end for end in range(1, len(row) + 1) if any(stop in lm.decode(row[:end]) for stop in stops))


def score_rows(lm: TransformersModel, rows: Sequence[Sequence[int]], starts: Sequence[int]) -> list[list[float]]:
    """``P(row[j] | row[:j])`` for ``starts[i] <= j < len(row)`` of every row, without a cache."""
    tail = max(max(len(row) - start for row, start in zip(rows, starts)), 0)
    if tail == 0:
        return [[] for _ in rows]
    per_pass = max(1, LOGITS_BUDGET_BYTES // (4 * (tail + 1) * lm.model.config.get_text_config().vocab_size))
    scores: list[list[float]] = []
    for begin in range(0, len(rows), per_pass):
        chunk, chunk_starts = rows[begin : begin + per_pass], starts[begin : begin + per_pass]
        ids, mask = pad_left(chunk, pad_id(lm), lm.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with lm.lock, torch.inference_mode():
            logits = lm.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False,
                              logits_to_keep=tail + 1).logits
        for row_logits, row, start in zip(logits, chunk, chunk_starts):
            count = len(row) - start
            # Position j is scored by the logits at j - 1; the last kept row predicts past the end.
            scores.append(token_probs(row_logits[-count - 1 : -1], row[start:]) if count > 0 else [])
    return scores
