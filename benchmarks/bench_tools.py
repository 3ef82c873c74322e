"""Tool calls under the grammar against the prompt protocol alone (what remote models get), on the
same prompts and tools: how many replies are valid calls, and what the grammar costs in time.

Both run in one process on the packaged pair (or models you name), alternating per prompt so
machine noise hits both alike. A call is valid when it parses, names a given tool and its
arguments validate against that tool's parameters. Run:

    python benchmarks/bench_tools.py [--max-new-tokens 40] [--output benchmarks/tools-results.md]
"""

from __future__ import annotations

from collections.abc import Iterator

from bench_wsd import pair_parser, publish
from pydantic import BaseModel, Field, ValidationError
from rich.table import Table

from wsd_llm import ToolCall, WSDConfig, WSDPipeline, WSDResult


class CapitalOf(BaseModel):
    """Look up the capital city of a country."""

    country: str = Field(description="The country's name")


class Add(BaseModel):
    """Add two integers."""

    a: int
    b: int


class Weather(BaseModel):
    """Get the current weather in a city."""

    city: str = Field(description="The city's name")


ARGUMENTS = {"capital_of": CapitalOf, "add": Add, "get_weather": Weather}
TOOLS = [{"type": "function", "function": {"name": name, "description": model.__doc__,
                                           "parameters": model.model_json_schema()}}
         for name, model in ARGUMENTS.items()]
PROMPTS = [
    "What is the capital of France?",
    "What is 12 plus 30?",
    "What is the weather like in Rome today?",
    "Which city is the capital of Japan?",
    "Add 7 and 5 for me.",
]


class PromptOnly:
    """A model seen without its grammar support, as the tool layer sees a remote model."""

    def __init__(self, model) -> None:
        self._model = model

    def __getattr__(self, name: str):
        if name in ("constrainable", "check_constraint"):
            raise AttributeError(name)
        return getattr(self._model, name)


def valid(call: ToolCall) -> bool:
    try:
        ARGUMENTS[call.name].model_validate_json(call.arguments)
    except (KeyError, ValidationError):
        return False
    return True


def runs(pipes: dict[str, WSDPipeline], choices: list[str]) -> Iterator[tuple[str, str, str, WSDResult]]:
    for prompt in PROMPTS:
        for choice in choices:
            for mode, pipe in pipes.items():  # alternating: noise hits both modes alike
                yield prompt, choice, mode, pipe.generate(prompt, tools=TOOLS, tool_choice=choice)


def main() -> None:
    args = pair_parser(__doc__.splitlines()[0], max_new_tokens=40).parse_args()
    grammar = WSDPipeline.from_pretrained(args.draft, args.base, config=WSDConfig(max_new_tokens=args.max_new_tokens))
    pipes = {"grammar": grammar,
             "prompt only": WSDPipeline(PromptOnly(grammar.draft), PromptOnly(grammar.base), grammar.config)}
    grammar.generate("Hi", tools=TOOLS, tool_choice="required", max_new_tokens=1)  # llguidance reads both tokenizers

    choices = ["required", "auto"]
    stats = {(mode, choice): {"replies": 0, "calls": 0, "valid": 0, "seconds": 0.0, "tokens": 0}
             for mode in pipes for choice in choices}
    for prompt, choice, mode, result in runs(pipes, choices):
        row = stats[mode, choice]
        row["replies"] += 1
        row["calls"] += bool(result.tool_calls)
        row["valid"] += bool(result.tool_calls) and valid(result.tool_calls[0])
        row["seconds"] += result.timings.total_s
        row["tokens"] += result.completion_tokens
        print(f"{mode:11} {choice:8} {prompt!r}: {result.text!r}", flush=True)

    table = Table(title=f"Tool calls with the grammar vs the prompt protocol alone, 3 tools, "
                        f"max_new_tokens {args.max_new_tokens}")
    for column in ("tool_choice", "mode", "replies", "calls", "valid calls", "reply tokens", "seconds",
                   "grammar s / prompt-only s"):
        table.add_column(column)
    for choice in choices:
        for mode in pipes:
            row = stats[mode, choice]
            ratio = row["seconds"] / stats["prompt only", choice]["seconds"]
            table.add_row(choice, mode, str(row["replies"]), str(row["calls"]), str(row["valid"]),
                          str(row["tokens"]), f"{row['seconds']:.1f}", f"{ratio:.3f}" if mode == "grammar" else "")
    table.caption = ("valid: parses, names a given tool, arguments validate against its parameters. "
                     "Seconds are WSD run times (llguidance's one-time tokenizer setup excluded).")
    publish(table, args.output)


if __name__ == "__main__":
    main()
