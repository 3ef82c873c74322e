"""ChatWSD on the real packaged pair: callbacks, the event loop, stop, threads, an agent loop."""

from __future__ import annotations

import asyncio

import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_wsd import ChatWSD
from langchain_wsd.agents import ToolFirstMiddleware
from people import PEOPLE, Person

pytestmark = pytest.mark.real


class TokenCounter(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs) -> None:
        self.tokens.append(token)


def test_stream_fires_one_callback_per_chunk_and_reports_once(real_llm):
    counter = TokenCounter()
    chunks = list(real_llm.stream("Give me three tips for learning Python.", config={"callbacks": [counter]},
                                  gamma=0.5, max_tokens=40))
    assert len(counter.tokens) == len(chunks)
    assert counter.tokens == [chunk.text for chunk in chunks]
    assert [chunk.chunk_position for chunk in chunks] == [None] * (len(chunks) - 1) + ["last"]
    assert [chunk.usage_metadata is not None for chunk in chunks].count(True) == 1
    full = sum(chunks[1:], chunks[0])
    meta = full.response_metadata
    assert meta["switched"] and meta["base_tokens"] > 0
    assert set(meta["wsd_sources"]) == {"draft", "base"}
    assert len(meta["wsd_sources"]) == len(chunks) - 1  # one per text chunk, in order
    usage = full.usage_metadata
    assert usage["output_tokens"] == meta["draft_tokens"] + meta["base_tokens"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


async def test_ainvoke_leaves_the_event_loop_free(real_llm):
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        reply = await real_llm.ainvoke("Say hello.")
    finally:
        task.cancel()
    assert reply.content
    assert ticks > 2  # the loop kept running while the models worked in a thread


def test_stop_cuts_the_reply_before_the_stop_string(real_llm):
    reply = real_llm.invoke("What is the capital of France?", stop=["Paris"])
    assert reply.content == "The capital of France is "
    assert reply.response_metadata["finish_reason"] == "stop"


@pytest.mark.parametrize("choice", [{"type": "any"}, {"type": "tool", "name": "capital_of"}])
def test_a_forced_tool_choice_in_dict_form_gets_a_call(real_llm, choice):
    @tool
    def capital_of(country: str) -> str:
        """Look up the capital city of a country."""
        return "Paris"

    reply = real_llm.bind_tools([capital_of], tool_choice=choice).invoke("What is the capital of France?")
    assert reply.tool_calls[0]["name"] == "capital_of" and reply.tool_calls[0]["args"]["country"].lower() == "france"
    assert reply.response_metadata["finish_reason"] == "tool_calls"


def test_batch_threads_share_one_model_pair(real_llm):
    prompts = ["Say hello.", "What is the capital of France?"]
    alone = [real_llm.invoke(p, max_tokens=8).content for p in prompts]
    together = real_llm.batch(prompts, config={"max_concurrency": 2}, max_tokens=8)
    assert [reply.content for reply in together] == alone


def test_lcel_chain_streams_text(real_llm):
    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("human", "Name a {thing}.")])
    pieces = list((prompt | real_llm | StrOutputParser()).stream({"thing": "colour"}))
    assert all(isinstance(piece, str) for piece in pieces)
    assert "".join(pieces).strip()


def test_agent_calls_the_tool_and_answers(real_llm):
    calls: list[str] = []

    @tool
    def capital_of(country: str) -> str:
        """Look up the capital city of a country."""
        calls.append(country)
        return "Tokyo" if "japan" in country.lower() else "unknown"

    agent = create_agent(real_llm, tools=[capital_of], middleware=[ToolFirstMiddleware()])
    messages = agent.invoke({"messages": [("user", "What is the capital of Japan?")]})["messages"]
    first, tool_message, final = messages[1], messages[2], messages[-1]
    assert first.tool_calls[0]["name"] == "capital_of" and calls
    assert isinstance(tool_message, ToolMessage) and tool_message.tool_call_id == first.tool_calls[0]["id"]
    assert isinstance(final, AIMessage) and not final.tool_calls and final.content.strip()
    assert len(messages) == 4


def test_structured_output_gives_a_valid_object_for_every_prompt(real_pipe):
    llm = ChatWSD(pipeline=real_pipe, max_tokens=48).with_structured_output(Person, include_raw=True)
    found = []
    for prompt, name, age in PEOPLE:
        out = llm.invoke(prompt)
        assert out["parsing_error"] is None and isinstance(out["parsed"], Person)
        assert out["raw"].response_metadata["finish_reason"] == "stop"
        found.append((out["parsed"].name, out["parsed"].age) == (name, age))
    assert sum(found) >= 4  # a 135M drafter reads these right; the format is guaranteed, the facts are not
