"""Prefix reuse across calls: a chat and a tool-using agent loop with ChatWSD, with and without it.

Two ChatWSD models on the packaged pair, one with the default prefix cache and one loaded with
``load_kwargs={"prefix_cache_bytes": 0}``, run the same two loops side by side in one process:

- a 6-turn chat with a system turn, each turn resending the whole history;
- a 4-step agent loop with 8 tools bound: three steps forced to call a tool (``tool_choice="any"``,
  as ``ToolFirstMiddleware`` forces its first call), then ``tool_choice="auto"``; the loop runs the
  tools each call asks for and sends their results back.

Each call runs on both models one after the other, the order alternating from call to call, so the
machine's noise falls on both alike; each call's time is the fastest of its runs. Replies are
greedy. Run (about 7 minutes on a quiet 2-core CPU):

    python benchmarks/bench_prefix_cache.py [--max-tokens 24] [--repeats 2] [--output FILE.md]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import transformers
from bench_wsd import machine
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_wsd import ChatWSD
from rich.console import Console
from rich.table import Table

SYSTEM = (
    "You are Sage, the assistant of a small travel agency. Answer the customer's questions about trips, "
    "bookings, luggage, visas and local customs. Be friendly, precise and brief: answer in one or two short "
    "sentences, never invent prices or schedules, and say so when you do not know. If a question is not "
    "about travel, politely bring the conversation back to travel.\n"
    "Agency rules: prefer trains over planes for trips under five hundred kilometres. Always remind "
    "customers to check the entry rules of the country they visit and that their passport must be valid "
    "for six months. "
    "Bookings can be changed for free up to seven days before departure; after that, the carrier's own rules "
    "apply. Refunds take up to two weeks. We recommend travel insurance for every trip abroad, but never "
    "insist. Cabin bags must weigh under eight kilograms on most airlines we work with.\n"
    "Our office is open from nine to six, Monday to Saturday, and customers can reach us by phone or e-mail. "
    "Do not share the personal data of other customers, and never ask for card numbers in the chat."
)
CHAT = [
    "Hi! I want to plan a weekend trip to Lyon from Paris.",
    "Should I take the train or fly?",
    "What should I pack for two days in October?",
    "Which neighbourhood is nice to stay in?",
    "What local food should I try?",
    "Thanks! Any tip for the trip back on Sunday evening?",
]
AGENT_TASK = "I am flying from Paris to Tokyo next week. What do I need to know before I go?"


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"{city}: 14 C, light rain."


@tool
def convert_currency(amount: float, source: str, target: str) -> str:
    """Convert an amount of money from one currency (ISO code) to another."""
    return f"{amount} {source} = {round(amount * 162.4, 2)} {target}"


@tool
def local_time(city: str) -> str:
    """The local time in a city now."""
    return f"It is 21:40 in {city}."


@tool
def visa_rules(nationality: str, country: str) -> str:
    """The entry and visa rules of a country for travellers of a nationality."""
    return f"{nationality} travellers may visit {country} for up to 90 days without a visa."


@tool
def flight_status(flight_number: str) -> str:
    """Whether a flight is on time, delayed or cancelled."""
    return f"Flight {flight_number} is on time."


@tool
def plug_type(country: str) -> str:
    """The electrical plug types and voltage used in a country."""
    return f"{country}: plug types A and B, 100 V."


@tool
def emergency_number(country: str) -> str:
    """The emergency phone numbers of a country."""
    return f"{country}: police 110, ambulance and fire 119."


@tool
def translate(text: str, language: str) -> str:
    """Translate a short text into a language."""
    return f"[{language}] {text}"


TOOLS = [get_weather, convert_currency, local_time, visa_rules, flight_status, plug_type, emergency_number,
         translate]
BY_NAME = {t.name: t for t in TOOLS}
AGENT_CHOICES = ["any", "any", "any", "auto"]  # three forced tool calls, then the model's choice


@dataclass
class Call:
    """One model call: its reply, its cost, and how much of its prompt each model ran."""

    reply: tuple
    wall_s: float
    prompt: int
    base_prefill: int
    draft_forwarded: int


@dataclass
class Side:
    """One of the two models and the calls it made."""

    name: str
    llm: ChatWSD
    calls: dict[tuple[str, int, int], Call] = field(default_factory=dict)  # by (loop, run, call)

    def call(self, key: tuple[str, int, int], messages: list[BaseMessage],
             tool_choice: str | None) -> AIMessage:
        llm = self.llm if tool_choice is None else self.llm.bind_tools(TOOLS, tool_choice=tool_choice)
        begin = time.perf_counter()
        reply = llm.invoke(messages)
        wall = time.perf_counter() - begin
        meta, prompt = reply.response_metadata, reply.usage_metadata["input_tokens"]
        written = (reply.content, [(call["name"], call["args"]) for call in reply.tool_calls])
        self.calls[key] = Call(written, wall, prompt, prompt - meta["base_tokens_cached"],
                               meta["draft_tokens_forwarded"])
        return reply

    def forget(self) -> None:
        """Empty the prefix caches, so a repeat starts as cold as the first run."""
        for model in (self.llm.wsd_pipeline.draft, self.llm.wsd_pipeline.base):
            if model.prefix_cache is not None:
                model.prefix_cache.clear()


def chat(side: Side, repeat: int) -> Iterator[None]:
    """The chat, one call per step; every turn resends the system turn and the history."""
    history: list[BaseMessage] = [SystemMessage(SYSTEM)]
    for turn, question in enumerate(CHAT):
        history.append(HumanMessage(question))
        history.append(AIMessage(side.call(("chat", repeat, turn), history, None).content))
        yield


def agent(side: Side, repeat: int) -> Iterator[None]:
    """The agent loop, one call per step; the loop runs the tools each call asks for."""
    history: list[BaseMessage] = [HumanMessage(AGENT_TASK)]
    for step, choice in enumerate(AGENT_CHOICES):
        reply = side.call(("agent", repeat, step), history, choice)
        history.append(reply)
        history += [BY_NAME[call["name"]].invoke(call) for call in reply.tool_calls]
        yield


def side_by_side(sides: list[Side], loop: Callable[[Side, int], Iterator[None]], repeat: int) -> None:
    """Step ``loop`` on every side in turn, call by call, alternating which side goes first."""
    runs = [loop(side, repeat) for side in sides]
    for step in itertools.count():
        order = runs if step % 2 == 0 else runs[::-1]
        if [next(run, "done") for run in order] != [None] * len(runs):
            return


def measure(max_tokens: int, repeats: int) -> tuple[Side, Side]:
    """Both loops, ``repeats`` times, on a model pair with prefix reuse and one without."""
    reuse = Side("reuse", ChatWSD(max_tokens=max_tokens))
    off = Side("off", ChatWSD(max_tokens=max_tokens, load_kwargs={"prefix_cache_bytes": 0}))
    for side in (reuse, off):  # loads the models and pays one-time costs (grammar set-up) outside the timing
        side.llm.invoke("Hi", max_tokens=2)
        side.llm.bind_tools([translate], tool_choice="any").invoke("Say hi in French.", max_tokens=8)
    for repeat in range(repeats):
        reuse.forget()
        for loop in (chat, agent):
            side_by_side([reuse, off], loop, repeat)
    return reuse, off


def tables(reuse: Side, off: Side, max_tokens: int, repeats: int) -> tuple[Table, Table]:
    """Per call (its fastest run on each side: the least disturbed by other work on the machine), then
    the totals per loop."""
    steps = list(dict.fromkeys((loop, call) for loop, _, call in reuse.calls))  # in the order they ran
    same = {step: all(reuse.calls[step[0], run, step[1]].reply == off.calls[step[0], run, step[1]].reply
                      for run in range(repeats)) for step in steps}

    def best(side: Side, step: tuple[str, int]) -> float:
        return min(side.calls[step[0], run, step[1]].wall_s for run in range(repeats))

    calls = Table(title=f"Prefix reuse: ChatWSD on the packaged pair, max_tokens={max_tokens}, greedy, "
                        f"fastest of {repeats} run(s) per call")
    for column in ("loop", "call", "prompt tok", "base prefill reuse/off", "draft fwd reuse/off",
                   "wall s reuse/off", "same reply"):
        calls.add_column(column, justify="right")
    for loop, call in steps:
        on, no = reuse.calls[loop, 0, call], off.calls[loop, 0, call]
        calls.add_row(loop, str(call + 1), str(on.prompt), f"{on.base_prefill}/{no.base_prefill}",
                      f"{on.draft_forwarded}/{no.draft_forwarded}",
                      f"{best(reuse, (loop, call)):.1f}/{best(off, (loop, call)):.1f}",
                      "yes" if same[loop, call] else "NO")

    totals = Table(title="Totals")
    for column in ("loop", "wall s reuse/off", "ratio", "all runs: wall s reuse/off", "ratio",
                   "same replies"):
        totals.add_column(column, justify="right")
    for name, loop in (("chat (6 turns)", "chat"), ("agent (4 steps, 8 tools)", "agent"), ("both", None)):
        chosen = [step for step in steps if loop in (None, step[0])]
        fastest = [sum(best(side, step) for step in chosen) for side in (reuse, off)]
        every = [sum(call.wall_s for key, call in side.calls.items() if loop in (None, key[0]))
                 for side in (reuse, off)]
        totals.add_row(name, f"{fastest[0]:.1f}/{fastest[1]:.1f}", f"{fastest[0] / fastest[1]:.2f}",
                       f"{every[0]:.1f}/{every[1]:.1f}", f"{every[0] / every[1]:.2f}",
                       "yes" if all(same[step] for step in chosen) else "NO")
    return calls, totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=2, help="runs of both loops (caches emptied between)")
    parser.add_argument("--output", type=Path, help="also write the results as Markdown here")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    console = Console(record=True, width=150)
    for table in tables(*measure(args.max_tokens, args.repeats), args.max_tokens, args.repeats):
        console.print(table)
    console.print(f"machine: {machine()}, {os.cpu_count()} cores, transformers {transformers.__version__}; "
                  f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    if args.output:
        args.output.write_text(
            "# Prefix reuse across calls\n\n"
            "Base prefill: prompt tokens the base ran (`prompt_tokens - base_tokens_cached`). Draft fwd: "
            "tokens the draft ran (`draft_tokens_forwarded`: its prompt's prefill and the tokens it wrote). "
            "Wall seconds of each call: the fastest of its runs on each side (the machine is shared, and a "
            "call's time varies with the load), and the sum over all runs.\n\n"
            f"```\n{console.export_text()}```\n\nCommand: `python {' '.join(sys.argv)}`\n")


if __name__ == "__main__":
    main()
