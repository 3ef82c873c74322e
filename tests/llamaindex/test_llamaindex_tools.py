"""WSDLLM as a LlamaIndex FunctionCallingLLM on the tiny random pair: calls, forced calls, streamed
calls, tool-loop history, and what a reply that is not a call gives."""

import json
from itertools import pairwise
from typing import Literal

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.bridge.pydantic import BaseModel
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from llama_index.llms.wsd import WSDLLM
from llama_index.llms.wsd.base import to_conversation
from tiny_models import tiny_base_tokenizer, tiny_draft_tokenizer, tiny_gemma3, tiny_llama

from wsd_llm import WSDConfig, WSDPipeline, normalize_messages

# Sampled, so the random models write varied calls; the grammar keeps every one valid.
SAMPLED = {"temperature": 1.0, "base_temperature": 1.0}
SEEDS = range(3)


# No `from __future__ import annotations` here: FunctionTool reads these annotations as objects.
def weather(city: Literal["Paris", "Rome"]) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def now() -> str:
    """The current time."""
    return "noon"


TOOLS = [FunctionTool.from_defaults(weather), FunctionTool.from_defaults(now)]
NAMES = {"weather", "now"}


@pytest.fixture(scope="module")
def tool_pipe() -> WSDPipeline:
    # Long contexts: the tool descriptions alone are some 400 tokens of these tiny tokenizers.
    base = tiny_gemma3(tiny_base_tokenizer(gemma_decoder=True), context=2048)
    config = WSDConfig(max_new_tokens=120, max_draft_tokens=60, gamma=0.0035)
    return WSDPipeline(tiny_llama(tiny_draft_tokenizer(), context=2048), base, config)


@pytest.fixture(scope="module")
def llm(tool_pipe) -> WSDLLM:
    return WSDLLM(pipeline=tool_pipe)


def the_call(llm: WSDLLM, response):
    """The one call of a response, checked against its message, its raw statistics and the tools."""
    (selection,) = llm.get_tool_calls_from_response(response)
    (block,) = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
    (openai_call,) = response.message.additional_kwargs["tool_calls"]
    assert response.message.content == ""
    assert (selection.tool_id, selection.tool_name) == (block.tool_call_id, block.tool_name)
    assert openai_call == {"id": block.tool_call_id, "type": "function",
                           "function": {"name": block.tool_name, "arguments": block.tool_kwargs}}
    assert selection.tool_kwargs == json.loads(block.tool_kwargs)
    assert response.raw["finish_reason"] == "tool_calls"
    assert response.raw["tool_calls"] == [{"id": selection.tool_id, "name": selection.tool_name,
                                           "arguments": block.tool_kwargs}]
    assert selection.tool_name in NAMES
    return selection


def test_it_is_a_function_calling_model(llm):
    assert llm.metadata.is_function_calling_model


@pytest.mark.parametrize("seed", SEEDS)
def test_a_required_call_names_a_given_tool_and_its_kwargs_run_it(llm, seed):
    response = llm.chat_with_tools(TOOLS, user_msg="What is the weather in Rome?", tool_required=True,
                                   seed=seed, **SAMPLED)
    selection = the_call(llm, response)
    tool = next(t for t in TOOLS if t.metadata.name == selection.tool_name)
    assert tool(**selection.tool_kwargs).raw_output in ("noon", "sunny in Paris", "sunny in Rome")


def test_a_tool_named_in_tool_choice_is_the_one_called(llm):
    for choice in ("now", {"type": "function", "function": {"name": "weather"}}):
        response = llm.chat_with_tools(TOOLS, user_msg="Hi", tool_choice=choice, seed=0, **SAMPLED)
        assert the_call(llm, response).tool_name == (choice if isinstance(choice, str) else "weather")


def test_predict_and_call_runs_the_called_tool(llm):
    answer = llm.predict_and_call(TOOLS, user_msg="What time is it?", tool_choice="now", seed=0, **SAMPLED)
    assert answer.response == "noon" and answer.sources[0].tool_name == "now"


async def test_async_calls_match_the_sync_ones(llm):
    options = {"user_msg": "Weather?", "tool_choice": "weather", "seed": 1, **SAMPLED}
    sync = the_call(llm, llm.chat_with_tools(TOOLS, **options))
    awaited = the_call(llm, await llm.achat_with_tools(TOOLS, **options))
    chunks = [chunk async for chunk in await llm.astream_chat_with_tools(TOOLS, **options)]
    streamed = the_call(llm, chunks[-1])
    assert (sync.tool_name, sync.tool_kwargs) == (awaited.tool_name, awaited.tool_kwargs) == (
        streamed.tool_name, streamed.tool_kwargs)


def test_a_streamed_call_grows_chunk_by_chunk(llm):
    chunks = list(llm.stream_chat_with_tools(TOOLS, user_msg="Weather?", tool_choice="weather", seed=1, **SAMPLED))
    final = the_call(llm, chunks[-1])
    blocks = [next(b for b in c.message.blocks if isinstance(b, ToolCallBlock)) for c in chunks]
    assert len(chunks) > 2
    assert {(b.tool_call_id, b.tool_name) for b in blocks} == {(final.tool_id, "weather")}  # named from the first
    written = [b.tool_kwargs for b in blocks]
    assert all(later.startswith(earlier) for earlier, later in pairwise(written))
    assert len(set(written)) > 2  # the arguments arrive as they are written
    assert all(c.delta == "" and c.message.content == "" for c in chunks)  # a call is never text
    for chunk in chunks[:-1]:  # before the end: what is written so far, never an error
        (partial,) = llm.get_tool_calls_from_response(chunk, error_on_no_tool_call=False)
        assert set(partial.tool_kwargs) <= {"city"}


def test_a_reply_that_calls_no_tool(llm):
    response = llm.chat_with_tools(TOOLS, user_msg="Hello!", tool_choice="none", seed=0, **SAMPLED)
    assert response.message.content and "tool_calls" not in response.message.additional_kwargs
    assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="the reply calls no tool .*pass tool_required=True"):
        llm.get_tool_calls_from_response(response)


def test_a_call_cut_by_the_budget_is_an_error_not_a_tool_run(llm):
    response = llm.chat_with_tools(TOOLS, user_msg="Weather?", tool_choice="weather", max_new_tokens=12)
    assert response.raw["finish_reason"] == "length"
    with pytest.raises(ValueError, match="call of tool 'weather' has arguments that are not a JSON object .*, "
                                         "so it is not run; the budget cut the call: raise max_new_tokens"):
        llm.get_tool_calls_from_response(response, error_on_no_tool_call=False)


HISTORY_TURNS = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is the weather in Rome?"},
    {"role": "assistant", "content": '{"tool": "weather", "arguments": {"city": "Rome"}}'},
    {"role": "user", "content": "Tool result (weather): sunny in Rome\n\nNow answer my question using this result."},
]


def tool_loop(call_message: ChatMessage) -> list[ChatMessage]:
    """A FunctionAgent's history after one call: the call, then the tool's result."""
    return [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="What is the weather in Rome?"),
            call_message, ChatMessage(role="tool", content="sunny in Rome", additional_kwargs={"tool_call_id": "c1"})]


@pytest.mark.parametrize("call_message", [
    ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_call_id="c1", tool_name="weather",
                                                        tool_kwargs='{"city": "Rome"}')]),
    ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_call_id="c1", tool_name="weather",
                                                        tool_kwargs={"city": "Rome"})]),
    ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [  # older integrations
        {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Rome"}'}}]}),
], ids=["block", "block with dict kwargs", "additional_kwargs"])
def test_tool_loop_history_becomes_the_cores_tool_turns(llm, tool_pipe, call_message):
    history = tool_loop(call_message)
    assert normalize_messages(to_conversation(history)) == HISTORY_TURNS
    assert llm.chat(history).message.content == tool_pipe.generate(HISTORY_TURNS).text


def test_a_calls_own_response_message_round_trips(llm, tool_pipe):
    response = llm.chat_with_tools(TOOLS, user_msg="What is the weather in Rome?", tool_choice="weather", seed=0,
                                   **SAMPLED)
    call = the_call(llm, response)
    history = [ChatMessage(role="user", content="What is the weather in Rome?"), response.message,
               ChatMessage(role="tool", content="sunny", additional_kwargs={"tool_call_id": call.tool_id})]
    turns = normalize_messages(to_conversation(history))
    assert turns[1] == {"role": "assistant", "content": json.dumps({"tool": "weather", "arguments": call.tool_kwargs})}
    assert turns[2]["content"].startswith("Tool result (weather): sunny")
    answer = llm.chat_with_tools(TOOLS, chat_history=history, tool_choice="none")
    assert answer.message.content == tool_pipe.generate(turns).text


def test_tool_first_calls_until_a_tool_has_answered(tool_pipe):
    llm = WSDLLM(pipeline=tool_pipe, tool_first=True)
    first = llm.chat_with_tools(TOOLS, user_msg="Hello!", seed=0, **SAMPLED)
    call = the_call(llm, first)
    history = [ChatMessage(role="user", content="Hello!"), first.message,
               ChatMessage(role=MessageRole.TOOL, content="noon", additional_kwargs={"tool_call_id": call.tool_id})]
    answer = llm.chat_with_tools(TOOLS, chat_history=history, seed=0, **SAMPLED)
    assert llm.get_tool_calls_from_response(answer, error_on_no_tool_call=False) == []
    # A new question after an answered one needs its own call.
    again = [*history, answer.message, ChatMessage(role="user", content="And now?")]
    assert the_call(llm, llm.chat_with_tools(TOOLS, chat_history=again, seed=0, **SAMPLED))


def test_tool_misuse_gets_one_line_errors(llm):
    with pytest.raises(ValueError, match="names the tool 'subtract', which is not given; tools: weather, now"):
        llm.chat_with_tools(TOOLS, user_msg="Hi", tool_choice="subtract")
    with pytest.raises(ValueError, match="requires a tool call, but no tools are given"):
        llm.chat_with_tools([], user_msg="Hi", tool_required=True)
    with pytest.raises(TypeError, match="complete\\(\\) takes no tools"):
        llm.complete("Hi", tools=[TOOLS[0].metadata.to_openai_tool()])
    stray = ChatMessage(role="user", blocks=[ToolCallBlock(tool_call_id="c", tool_name="now")])
    with pytest.raises(ValueError, match="has tool_calls but role 'user'; only assistant turns call tools"):
        llm.chat([stray])


class Verdict(BaseModel):
    ok: bool


def test_structured_output_still_goes_through_the_constraint(llm):
    prompt = PromptTemplate("Is this fine? {text}")
    assert isinstance(llm.structured_predict(Verdict, prompt, text="yes").ok, bool)
    partials = list(llm.stream_structured_predict(Verdict, prompt, text="yes"))
    assert isinstance(partials[-1], Verdict) and isinstance(partials[-1].ok, bool)
