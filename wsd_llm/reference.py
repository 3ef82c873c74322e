"""The published WSD algorithm, one shot, for checking the pipeline and benchmarking it.

It follows the reference's three offline stages (F2-Song/Weak-to-Strong-Decoding,
inference/draft.py, check.py, target.py) with transformers' own ``generate``: draft the
whole reply, score every draft token in one forward pass without a cache, then prefill
prompt + accepted prefix again and continue greedily. Only greedy drafts are supported.
The one departure, shared with the pipeline, is that ``max_new_tokens`` bounds the whole
reply (the reference rounds the continuation length up to a multiple of 50).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from wsd_llm import prompts
from wsd_llm.backends.transformers import TransformersModel, token_probs
from wsd_llm.config import WSDConfig
from wsd_llm.messages import Conversation, normalize_messages
from wsd_llm.text import cut_at_stop


@dataclass
class ReferenceResult:
    text: str
    draft_text: str
    prompt_length: int
    accepted_ids: list[int]
    switch_index: int
    switched: bool
    probs: list[float]
    draft_tokens_generated: int
    base_tokens_forwarded: int
    timings: dict[str, float] = field(default_factory=dict)


class _StopText(StoppingCriteria):
    """Stop once the generated text holds a stop string, as vLLM does (cheap for huge vocabularies)."""

    def __init__(self, lm: TransformersModel, prompt_length: int, stops: tuple[str, ...]) -> None:
        self.lm, self.prompt_length, self.stops = lm, prompt_length, stops

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object) -> torch.BoolTensor:
        text = self.lm.decode(input_ids[0, self.prompt_length :].tolist())
        done = any(stop in text for stop in self.stops)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


def _greedy(
    lm: TransformersModel, ids: list[int], max_new_tokens: int, stop_ids: set[int], stops: tuple[str, ...]
) -> list[int]:
    """transformers' greedy ``generate``, ending at a stop token or stop string as vLLM does."""
    with torch.inference_mode():
        out = lm.model.generate(
            torch.tensor([ids], device=lm.device),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=lm.device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=sorted(stop_ids),
            pad_token_id=lm.tokenizer.pad_token_id or sorted(stop_ids)[0],
            stopping_criteria=StoppingCriteriaList([_StopText(lm, len(ids), stops)]),
        )
    new = out[0, len(ids) :].tolist()
    if new and new[-1] in stop_ids:
        new.pop()
    return new


def reference_generate(
    draft: TransformersModel, base: TransformersModel, messages: Conversation, config: WSDConfig | None = None
) -> ReferenceResult:
    """Run WSD the reference way: full draft, one scoring pass, re-prefill and continue."""
    config = config or WSDConfig()
    if config.temperature != 0:
        raise ValueError("the one-shot reference supports greedy drafts only (temperature=0)")
    convo = normalize_messages(messages)
    timings: dict[str, float] = {}

    begin = time.perf_counter()
    draft_ids = draft.encode(prompts.draft_prompt(draft, convo))
    stop_ids = draft.eos_token_ids | draft.single_token_ids(prompts.INSTRUCT_STOPS)
    written = _greedy(draft, draft_ids, config.max_draft_tokens, stop_ids, prompts.INSTRUCT_STOPS)
    draft_text, _ = cut_at_stop(draft.decode(written), prompts.INSTRUCT_STOPS)
    timings["draft_s"] = time.perf_counter() - begin

    begin = time.perf_counter()
    prompt = prompts.base_prompt(base, convo, config.base_format)
    prompt_length = len(base.encode(prompt))
    ids = base.encode(prompts.with_draft(prompt, draft_text))
    with torch.inference_mode():
        logits = base.model(torch.tensor([ids], device=base.device), use_cache=False).logits[0]
    probs = token_probs(logits[prompt_length - 1 : -1], ids[prompt_length:])[: config.max_new_tokens]
    switch = config.policy.first_switch(probs)
    last = len(probs) - 1 if switch is None else switch
    accepted = ids[: prompt_length + last + 1]
    timings["check_s"] = time.perf_counter() - begin

    begin = time.perf_counter()
    budget = config.max_new_tokens - len(accepted[prompt_length:])
    stops = prompts.base_stops(config.base_format) + config.stop
    continuation = _greedy(base, accepted, budget, base.eos_token_ids, stops) if budget > 0 else []
    text, _ = cut_at_stop(base.decode(accepted[prompt_length:] + continuation), stops)
    timings["continue_s"] = time.perf_counter() - begin
    return ReferenceResult(
        text=text,
        draft_text=draft_text,
        prompt_length=prompt_length,
        accepted_ids=accepted,
        switch_index=last,
        switched=switch is not None,
        probs=probs,
        draft_tokens_generated=len(written),
        base_tokens_forwarded=len(ids) + len(accepted) + max(len(continuation) - 1, 0),
        timings=timings,
    )
