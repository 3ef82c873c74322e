"""Throughput of `wsd-llm serve` under 8 concurrent OpenAI clients vs 1 client sequential.

Starts the server on 127.0.0.1 with the packaged pair (one process per --workers value),
sends the same prompts one after another from one client, then all at once from 8 clients
(the openai async client), and reports requests/s and completion tokens/s:

    python benchmarks/bench_server.py [--workers 1 2] [--output benchmarks/server-results.md]
    python benchmarks/bench_server.py --engine vllm --workers 8 [--output benchmarks/server-vllm-results.md]

With ``--engine vllm`` (where vLLM is installed) the models run on in-process vLLM engines, which
batch the concurrent runs' requests; start-up takes a few minutes on a CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import openai
from bench_batch import EXTRA
from bench_wsd import PROMPTS, publish
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from live_servers import free_port, server_process  # noqa: E402  (the test suite's process helper)


async def ask(client: openai.AsyncOpenAI, prompt: str, max_tokens: int) -> tuple[int, float]:
    begin = time.perf_counter()
    reply = await client.chat.completions.create(
        model="wsd", messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens)
    return reply.usage.completion_tokens, time.perf_counter() - begin


async def measure(url: str, prompts: list[str], max_tokens: int, clients: int) -> tuple[float, int, float]:
    """Wall seconds, completion tokens and mean latency; ``clients`` requests in flight at a time."""
    async with openai.AsyncOpenAI(base_url=url, api_key="unused", timeout=3600, max_retries=0) as client:
        begin = time.perf_counter()
        if clients == 1:
            answers = [await ask(client, p, max_tokens) for p in prompts]
        else:
            answers = await asyncio.gather(*(ask(client, p, max_tokens) for p in prompts))
        seconds = time.perf_counter() - begin
    return seconds, sum(t for t, _ in answers), sum(s for _, s in answers) / len(answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="server --workers values")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--max-draft-tokens", type=int, default=32)
    parser.add_argument("--engine", choices=["transformers", "vllm"], default="transformers")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()

    prompts = (PROMPTS + EXTRA)[: args.clients]
    table = Table(title=f"wsd-llm serve --engine {args.engine}, packaged pair, {len(prompts)} prompts, max_tokens={args.max_tokens}, "
                        f"max_draft_tokens={args.max_draft_tokens}")
    for column in ("server workers", "clients", "wall s", "requests/s", "completion tok/s", "mean latency s"):
        table.add_column(column, justify="right")
    for workers in args.workers:
        port = free_port()
        command = [sys.executable, "-m", "wsd_llm.cli", "serve", "--port", str(port), "--workers", str(workers),
                   "--max-draft-tokens", str(args.max_draft_tokens), "--engine", args.engine]
        with server_process(command, port, ready_path="/health", timeout=900) as root:
            url = root + "/v1"
            # Warm-up: the first requests page in the weights and warm torch (several times slower).
            asyncio.run(measure(url, prompts, args.max_tokens, args.clients))
            for clients in (1, args.clients):
                seconds, tokens, latency = asyncio.run(measure(url, prompts, args.max_tokens, clients))
                table.add_row(str(workers), "1 (sequential)" if clients == 1 else f"{clients} (concurrent)",
                              f"{seconds:.1f}", f"{len(prompts) / seconds:.3f}", f"{tokens / seconds:.2f}",
                              f"{latency:.1f}")
    publish(table, args.output)


if __name__ == "__main__":
    main()
