"""A LangChain agent with one tool on the packaged WSD pair.

    python examples/langchain_agent.py

The first turn must call the tool; after its result the model answers in text
(``ToolFirstMiddleware``), which keeps the loop reliable on a 135M draft model.
"""

from __future__ import annotations

import time

from langchain.agents import create_agent
from langchain_core.tools import tool

from langchain_wsd import ChatWSD
from langchain_wsd.agents import ToolFirstMiddleware

CAPITALS = {"france": "Paris", "japan": "Tokyo", "kenya": "Nairobi", "peru": "Lima"}


@tool
def capital_of(country: str) -> str:
    """Look up the capital city of a country."""
    return CAPITALS.get(country.strip().lower(), f"unknown country: {country}")


def main() -> None:
    started = time.perf_counter()
    agent = create_agent(ChatWSD(max_tokens=40), tools=[capital_of], middleware=[ToolFirstMiddleware()])
    state = agent.invoke({"messages": [("user", "What is the capital of Japan?")]})
    for message in state["messages"]:
        calls = getattr(message, "tool_calls", None)
        print(f"[{message.type}] {message.content!r}" + (f" tool_calls={calls}" if calls else ""))
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
