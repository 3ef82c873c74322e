"""Wall time of incremental WSD against the one-shot reference and the base model alone.

All three run in one process on the same prompts with the packaged pair (or models you
name). The base-only baseline writes exactly as many tokens as the WSD reply has, so the
ratios compare equal output lengths. Run:

    python benchmarks/bench_wsd.py [--max-new-tokens 128] [--output benchmarks/results.md]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from wsd_llm import WSDConfig, WSDPipeline
from wsd_llm.backends.transformers.one_shot import reference_generate
from wsd_llm.baselines import base_only

PROMPTS = [
    "How do I stay focused?",
    "Give me three tips for learning Python.",
    "Explain photosynthesis to a child.",
    "What should I pack for a weekend hiking trip?",
    "Write a short note thanking a colleague for their help.",
    "What is the capital of France?",
]


def base_only_seconds(pipe: WSDPipeline, prompt: str, tokens: int) -> float:
    """Greedy decoding of ``tokens`` tokens by the base alone, in the plain format, no early stop."""
    return base_only(pipe.base, prompt, pipe.config.updated(max_new_tokens=tokens), ignore_eos=True).seconds


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
            f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}")


def publish(tables: Table | list[Table], output: Path | None) -> None:
    """Print the tables with the machine they were measured on; keep a copy if asked."""
    console = Console(record=True, width=160)
    for table in tables if isinstance(tables, list) else [tables]:
        console.print(table)
    console.print(f"machine: {machine()}")
    if output:
        output.write_text(console.export_text())


def pair_parser(description: str, max_new_tokens: int) -> argparse.ArgumentParser:
    """The options every benchmark of a model pair takes: ``--draft``, ``--base``, ``--max-new-tokens``,
    ``--output``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--draft", help="draft model (default: packaged SmolLM2-135M-Instruct)")
    parser.add_argument("--base", help="base model (default: packaged Gemma-3-270M)")
    parser.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    parser.add_argument("--output", type=Path, help="also write the table as text here")
    return parser


def main() -> None:
    parser = pair_parser(__doc__.splitlines()[0], max_new_tokens=128)
    parser.add_argument("--max-draft-tokens", type=int, default=512)
    parser.add_argument("--gamma", type=float, default=0.8)
    args = parser.parse_args()

    config = WSDConfig(max_new_tokens=args.max_new_tokens, max_draft_tokens=args.max_draft_tokens, gamma=args.gamma)
    pipe = WSDPipeline.from_pretrained(draft=args.draft, base=args.base, config=config)
    pipe.generate("Hi", max_new_tokens=4)  # warm-up

    table = Table(title=f"WSD benchmark (gamma={args.gamma}, max_new_tokens={args.max_new_tokens})")
    for column in ("prompt", "k", "draft gen/kept (inc)", "draft gen (ref)", "base fwd (inc/ref)",
                   "out tok", "inc s", "ref s", "base s", "inc/ref", "inc/base"):
        table.add_column(column)
    totals = {"inc": 0.0, "ref": 0.0, "base": 0.0}
    for prompt in PROMPTS:
        begin = time.perf_counter()
        inc = pipe.generate(prompt)
        inc_s = time.perf_counter() - begin
        begin = time.perf_counter()
        ref = reference_generate(pipe.draft, pipe.base, prompt, config)
        ref_s = time.perf_counter() - begin
        out_tokens = inc.draft_tokens + inc.base_tokens
        base_s = base_only_seconds(pipe, prompt, out_tokens)
        totals["inc"] += inc_s
        totals["ref"] += ref_s
        totals["base"] += base_s
        table.add_row(prompt[:32], f"{inc.switch_index}{'' if inc.switched else ' (none)'}",
                      f"{inc.draft_tokens_generated}/{inc.draft_tokens}", str(ref.draft_tokens_generated),
                      f"{inc.base_tokens_forwarded}/{ref.base_tokens_forwarded}", str(out_tokens),
                      f"{inc_s:.1f}", f"{ref_s:.1f}", f"{base_s:.1f}", f"{inc_s / ref_s:.2f}", f"{inc_s / base_s:.2f}")
    table.add_row("total", "", "", "", "", "", f"{totals['inc']:.1f}", f"{totals['ref']:.1f}",
                  f"{totals['base']:.1f}", f"{totals['inc'] / totals['ref']:.2f}",
                  f"{totals['inc'] / totals['base']:.2f}")
    publish(table, args.output)


if __name__ == "__main__":
    main()
