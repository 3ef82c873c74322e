"""Cost of constrained decoding: WSD replies under a JSON schema against the same prompts unconstrained.

Both run in one process on the packaged pair (or models you name), alternating per prompt so
machine noise hits both alike. Replies differ in length (a short JSON object against free text),
so whole-reply times are not comparable; the table gives them, and the ratio that answers "what
does the constraint cost" comes from the constrained replies themselves: the time spent computing
masks and advancing the matchers (both models, every token each one wrote or read) replayed on
the same tokens, against the run's own time. The one-time cost of reading both tokenizers into
llguidance is measured first and reported apart. Run:

    python benchmarks/bench_constraints.py [--max-new-tokens 48] [--output benchmarks/constraint-results.md]
"""

from __future__ import annotations

import time

import torch
from bench_wsd import pair_parser, publish
from pydantic import BaseModel, Field
from rich.table import Table

from wsd_llm import WSDConfig, WSDPipeline
from wsd_llm.backends.transformers.grammar import GrammarMask
from wsd_llm.constraints import Constraint


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(description="The person's first name")
    age: int = Field(description="Age in years")


PROMPTS = [
    "Alice is 30 years old.",
    "Bob turned 45 last week.",
    "My grandmother Rose is 82.",
    "Tom, aged 19, studies physics.",
    "The new manager, Priya, is 38 years old.",
]


def mask_seconds(model, constraint: Constraint, ids: list[int]) -> float:
    """Seconds to mask the logits before, and read, each of ``ids`` under ``constraint``."""
    mask = GrammarMask(model.tokenizer, constraint)
    scores = torch.zeros(1, model.model.config.get_text_config().vocab_size)
    begin = time.perf_counter()
    for token in ids:
        mask.mask(scores)
        mask.accept(token)
    return time.perf_counter() - begin


def main() -> None:
    args = pair_parser(__doc__.splitlines()[0], max_new_tokens=48).parse_args()
    pipe = WSDPipeline.from_pretrained(args.draft, args.base, config=WSDConfig(max_new_tokens=args.max_new_tokens))

    begin = time.perf_counter()
    for model in (pipe.draft, pipe.base):
        model.check_constraint(WSDConfig(constraint=Person).constraint)
    setup = time.perf_counter() - begin

    constraint = WSDConfig(constraint=Person).constraint
    table = Table(title=f"Constrained (JSON schema) vs unconstrained WSD, max_new_tokens {args.max_new_tokens}")
    columns = ("prompt", "free s", "free tokens", "JSON s", "JSON tokens", "mask s", "JSON s / (JSON s - mask s)",
               "JSON parses")
    for column in columns:
        table.add_column(column)
    totals = [0.0, 0.0]
    for prompt in PROMPTS:
        free = pipe.generate(prompt)
        constrained = pipe.generate(prompt, constraint=Person)
        # Replay the masking work on the reply: the draft's part in draft tokens, the whole reply in
        # base tokens (the base masks only what it writes; reading the accepted draft is cheaper).
        draft_ids = pipe.draft.encode(constrained.draft_text)
        base_ids = pipe.base.encode(constrained.text)
        masked = mask_seconds(pipe.draft, constraint, draft_ids) + mask_seconds(pipe.base, constraint, base_ids)
        total = constrained.timings.total_s
        totals[0] += total
        totals[1] += masked
        table.add_row(prompt, f"{free.timings.total_s:.2f}", str(free.completion_tokens), f"{total:.2f}",
                      str(constrained.completion_tokens), f"{masked:.3f}", f"{total / (total - masked):.3f}",
                      str(constrained.parsed is not None))
    overall = totals[0] / (totals[0] - totals[1])
    table.add_row("all", "", "", f"{totals[0]:.2f}", "", f"{totals[1]:.3f}", f"{overall:.3f}", "")
    table.caption = (f"one-time llguidance setup for both tokenizers: {setup:.1f} s (once per process). "
                     "mask s: masks for every reply token in both models (an upper bound: the base only "
                     "reads the accepted draft)")
    publish(table, args.output)


if __name__ == "__main__":
    main()
