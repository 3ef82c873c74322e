"""Throughput of padded WSD batches against one request at a time, in one process.

Batches run the one-shot algorithm (full draft, one scoring pass, one continuation) on
groups of prompts; the baseline is the incremental pipeline, one prompt after another.
Run on a GPU for the numbers this path is for (``--device-map cuda``):

    python benchmarks/bench_batch.py [--sizes 1 2 4 8] [--output benchmarks/batch-results.md]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench_wsd import PROMPTS, publish
from rich.table import Table

from wsd_llm import WSDConfig, WSDPipeline
from wsd_llm.backends.transformers.one_shot import generate_one_shot

EXTRA = [
    "Describe a good morning routine.",
    "How can I save money on groceries?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--max-draft-tokens", type=int, default=64)
    parser.add_argument("--device-map", help="e.g. cuda or auto; default: CPU")
    parser.add_argument("--dtype", help="e.g. bfloat16 on a GPU")
    parser.add_argument("--output", type=Path, help="also write the table as text here")
    args = parser.parse_args()

    prompts = PROMPTS + EXTRA
    config = WSDConfig(max_new_tokens=args.max_new_tokens, max_draft_tokens=args.max_draft_tokens)
    load = {key: value for key, value in {"device_map": args.device_map, "dtype": args.dtype}.items() if value}
    pipe = WSDPipeline.from_pretrained(config=config, **load)
    pipe.generate("Hi", max_new_tokens=4)  # warm-up

    begin = time.perf_counter()
    baseline = [pipe.generate(p) for p in prompts]
    base_seconds = time.perf_counter() - begin
    base_tokens = sum(r.draft_tokens + r.base_tokens for r in baseline)

    table = Table(title=f"{len(prompts)} prompts, max_new_tokens={args.max_new_tokens}, "
                        f"max_draft_tokens={args.max_draft_tokens}")
    for column in ("run", "seconds", "output tokens", "tokens/s", "speed-up vs sequential"):
        table.add_column(column)
    table.add_row("incremental, one at a time", f"{base_seconds:.1f}", str(base_tokens),
                  f"{base_tokens / base_seconds:.1f}", "1.00")
    for size in args.sizes:
        begin = time.perf_counter()
        results = []
        for start in range(0, len(prompts), size):
            results += generate_one_shot(pipe.draft, pipe.base, prompts[start : start + size], config)
        seconds = time.perf_counter() - begin
        tokens = sum(r.draft_tokens + r.base_tokens for r in results)
        table.add_row(f"padded batches of {size}", f"{seconds:.1f}", str(tokens), f"{tokens / seconds:.1f}",
                      f"{(tokens / seconds) / (base_tokens / base_seconds):.2f}")
    publish(table, args.output)


if __name__ == "__main__":
    main()
