"""Cost of constrained decoding: WSD replies under a JSON schema against the same prompts unconstrained.

Both run in one process on the packaged pair (or models you name), alternating per prompt so
machine noise hits both alike. Replies differ in length (JSON against free text), so the ratio
compares seconds per reply token. The one-time cost of reading both tokenizers into llguidance
is measured first and reported apart. Run:

    python benchmarks/bench_constraints.py [--max-new-tokens 48] [--output benchmarks/constraint-results.md]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench_wsd import publish
from pydantic import BaseModel, Field
from rich.table import Table

from wsd_llm import WSDConfig, WSDPipeline


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draft")
    parser.add_argument("--base")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    pipe = WSDPipeline.from_pretrained(args.draft, args.base, config=WSDConfig(max_new_tokens=args.max_new_tokens))

    begin = time.perf_counter()
    for model in (pipe.draft, pipe.base):
        model.check_constraint(WSDConfig(constraint=Person).constraint)
    setup = time.perf_counter() - begin

    table = Table(title=f"Constrained (JSON schema) vs unconstrained WSD, max_new_tokens {args.max_new_tokens}")
    for column in ("prompt", "free s", "free tokens", "JSON s", "JSON tokens", "s/token ratio", "JSON parses"):
        table.add_column(column)
    totals = {"free": [0.0, 0], "json": [0.0, 0]}
    for prompt in PROMPTS:
        free = pipe.generate(prompt)
        constrained = pipe.generate(prompt, constraint=Person)
        for key, result in (("free", free), ("json", constrained)):
            totals[key][0] += result.timings.total_s
            totals[key][1] += result.completion_tokens
        ratio = (constrained.timings.total_s / constrained.completion_tokens) / (
            free.timings.total_s / free.completion_tokens)
        table.add_row(prompt, f"{free.timings.total_s:.2f}", str(free.completion_tokens),
                      f"{constrained.timings.total_s:.2f}", str(constrained.completion_tokens), f"{ratio:.2f}",
                      str(constrained.parsed is not None))
    overall = (totals["json"][0] / totals["json"][1]) / (totals["free"][0] / totals["free"][1])
    table.add_row("all", f"{totals['free'][0]:.2f}", str(totals["free"][1]), f"{totals['json'][0]:.2f}",
                  str(totals["json"][1]), f"{overall:.2f}", "")
    table.caption = f"one-time llguidance setup for both tokenizers: {setup:.1f} s"
    publish(table, args.output)


if __name__ == "__main__":
    main()
