"""The published WSD algorithm, one shot and batched: the oracle of the tests, and the batch path.

It follows the reference's three offline stages (F2-Song/Weak-to-Strong-Decoding,
inference/draft.py, check.py, target.py) on transformers: draft every reply in full (one
left-padded batch through the draft), score every draft token in one forward pass without a
cache, then prefill prompt + accepted prefix again and continue greedily (one batch through
the base). It is independent of the incremental pipeline in ``wsd_llm.decoding``, which the
tests compare against it, and it is the batch path of ``TransformersModel.generate_batch``. The one departure from the reference, shared with the pipeline, is that
``max_new_tokens`` bounds the whole reply (the reference rounds the continuation up to a
multiple of 50).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from wsd_llm import prompts
from wsd_llm.backends.transformers.model import TransformersModel
from wsd_llm.backends.transformers.padded import generate_rows, score_rows
from wsd_llm.config import WSDConfig
from wsd_llm.messages import Conversation, normalize_messages
from wsd_llm.results import Timings, WSDResult, build_result
from wsd_llm.text import cut_at_stop, finished_text, trim_incomplete_char


def generate_one_shot(
    draft: TransformersModel, base: TransformersModel, conversations: Sequence[Conversation],
    config: WSDConfig | None = None,
) -> list[WSDResult]:
    """Run WSD the reference way for all ``conversations`` at once; timings are the batch's.

    Raises:
        ValueError: a malformed conversation, or a seeded sampling draft (seeds are per request).
    """
    config = config or WSDConfig()
    convos = [normalize_messages(conversation) for conversation in conversations]
    timings = Timings()
    begin = time.perf_counter()

    written = generate_rows(draft, [draft.encode(prompts.draft_prompt(draft, c)) for c in convos],
                            config.draft_sampling())
    draft_texts = [cut_at_stop(trim_incomplete_char(draft.decode(w)), prompts.INSTRUCT_STOPS)[0] for w in written]
    timings.draft_s = time.perf_counter() - begin

    base_prompts = [prompts.base_prompt(base, c, config.base_format) for c in convos]
    prompt_lengths = [len(base.encode(p)) for p in base_prompts]
    rows = [base.encode(prompts.with_draft(p, d)) for p, d in zip(base_prompts, draft_texts)]
    all_probs = [p[: config.max_new_tokens] for p in score_rows(base, rows, prompt_lengths)]
    switches = [config.policy.first_switch(p) for p in all_probs]
    lasts = [len(p) - 1 if k is None else k for p, k in zip(all_probs, switches)]
    accepted = [row[: n + last + 1] for row, n, last in zip(rows, prompt_lengths, lasts)]
    timings.check_s = time.perf_counter() - begin - timings.draft_s

    markers = prompts.base_stops(config.base_format)
    stops = markers + config.stop
    budgets = [config.max_new_tokens - len(a[n:]) for a, n in zip(accepted, prompt_lengths)]
    open_rows = [i for i, budget in enumerate(budgets) if budget > 0]
    continuations: list[list[int]] = [[] for _ in convos]
    if open_rows:
        longest = max(budgets[i] for i in open_rows)
        grown = generate_rows(base, [accepted[i] for i in open_rows], config.base_sampling(longest), stops)
        for i, tokens in zip(open_rows, grown):
            continuations[i] = tokens[: budgets[i]]
    timings.total_s = time.perf_counter() - begin
    timings.continue_s = timings.total_s - timings.draft_s - timings.check_s

    results = []
    for i in range(len(convos)):
        n, kept, more = prompt_lengths[i], accepted[i][prompt_lengths[i]:], continuations[i]
        text, stopped = finished_text(base.decode(kept + more), stops, markers)
        results.append(build_result(
            base.decode,
            text=text,
            kept=kept,
            continuation=more,
            scored=rows[i][n : n + len(all_probs[i])],
            probs=all_probs[i],
            switched=switches[i] is not None,
            switch_index=lasts[i],
            prompt_tokens=n,
            drafted=len(written[i]),
            forwarded=len(rows[i]) + len(accepted[i]) + max(len(more) - 1, 0),
            finish_reason="length" if not stopped and len(more) == max(budgets[i], 0) else "stop",
            draft_model=draft.name,
            base_model=base.name,
            timings=timings,
        ))
    return results


def reference_generate(
    draft: TransformersModel, base: TransformersModel, messages: Conversation, config: WSDConfig | None = None
) -> WSDResult:
    """One conversation the reference way: full draft, one scoring pass, re-prefill and continue."""
    return generate_one_shot(draft, base, [messages], config)[0]
