"""WSDLLM's LlamaIndex contract on the tiny random pair: responses, streams, prompts, stop, events, async."""

from __future__ import annotations

import asyncio
import json

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.llms.wsd import WSDLLM

from wsd_llm import WSDResult

PROMPT = "Give me tips."
CHAT = [
    ChatMessage(role="system", content="You are brief."),
    ChatMessage(role="user", content="Hello!"),
    ChatMessage(role="assistant", content="Hi. How can I help?"),
    ChatMessage(role="user", content=PROMPT),
]
CHAT_TURNS = [{"role": m.role.value, "content": m.content} for m in CHAT]


def assert_cumulative(chunks, text_of) -> None:
    """``text`` grows by exactly ``delta`` at each chunk."""
    so_far = ""
    for chunk in chunks:
        so_far += chunk.delta
        assert text_of(chunk) == so_far


def test_metadata_names_both_models_and_their_limits(tiny_llm, tiny_draft, tiny_base, small_pipe):
    metadata = tiny_llm.metadata
    assert metadata.is_chat_model
    assert metadata.context_window == min(tiny_draft.context_window, tiny_base.context_window)
    assert metadata.num_output == small_pipe.config.max_new_tokens
    assert tiny_draft.name in metadata.model_name and tiny_base.name in metadata.model_name
    assert WSDLLM(pipeline=small_pipe, max_new_tokens=7).metadata.num_output == 7


def test_models_can_be_given_as_backend_objects(tiny_draft, tiny_base, small_pipe):
    llm = WSDLLM(draft=tiny_draft, base=tiny_base, max_new_tokens=12, gamma=small_pipe.config.gamma)
    assert llm.pipeline.draft is tiny_draft and llm.pipeline.base is tiny_base
    assert llm.complete(PROMPT).text == small_pipe.generate(PROMPT, max_new_tokens=12).text


def test_complete_and_chat_return_the_wsd_reply(tiny_llm, small_pipe):
    assert tiny_llm.complete(PROMPT).text == small_pipe.generate(PROMPT).text
    reply = tiny_llm.chat(CHAT)
    assert reply.message.role == "assistant"
    assert reply.message.content == small_pipe.generate(CHAT_TURNS).text


def test_streams_are_cumulative_and_add_up_to_the_reply(tiny_llm, small_pipe):
    expected = small_pipe.generate(PROMPT)
    chunks = list(tiny_llm.stream_complete(PROMPT))
    assert len(chunks) > 1 and all(chunk.delta for chunk in chunks)
    assert_cumulative(chunks, lambda c: c.text)
    assert chunks[-1].text == expected.text
    for source in ("draft", "base"):
        written = "".join(c.delta for c in chunks if c.raw["source"] == source)
        assert written == getattr(expected, f"{source}_text")

    chat_chunks = list(tiny_llm.stream_chat(CHAT))
    assert_cumulative(chat_chunks, lambda c: c.message.content)
    assert chat_chunks[-1].message.content == small_pipe.generate(CHAT_TURNS).text


def test_raw_is_the_json_of_the_wsd_result(tiny_llm):
    responses = [tiny_llm.complete(PROMPT), tiny_llm.chat(CHAT), list(tiny_llm.stream_chat(CHAT))[-1]]
    for response in responses:
        raw = json.loads(json.dumps(response.raw))
        result = WSDResult.model_validate(raw)  # every field of the result is there
        assert raw["usage"]["completion_tokens"] == result.draft_tokens + result.base_tokens
    assert responses[1].raw["text"] == responses[2].raw["text"] == responses[2].message.content


def test_a_reply_with_no_text_still_streams_one_chunk(tiny_llm, small_pipe):
    full = small_pipe.generate(PROMPT).text
    chunks = list(tiny_llm.stream_complete(PROMPT, stop=[full[:2]]))
    assert len(chunks) == 1
    assert chunks[0].text == chunks[0].delta == ""
    assert chunks[0].raw["finish_reason"] == "stop"


def test_completion_to_prompt_applies_only_to_unformatted_prompts(small_pipe):
    llm = WSDLLM(pipeline=small_pipe, completion_to_prompt=lambda p: f"Question: {p}\nAnswer briefly.")
    wrapped = small_pipe.generate(f"Question: {PROMPT}\nAnswer briefly.").text
    assert wrapped != small_pipe.generate(PROMPT).text
    assert llm.complete(PROMPT).text == wrapped
    assert list(llm.stream_complete(PROMPT))[-1].text == wrapped
    assert llm.complete(PROMPT, formatted=True).text == small_pipe.generate(PROMPT).text


def test_messages_map_to_turns_unless_messages_to_prompt_is_given(small_pipe, tiny_llm):
    def flatten(messages) -> str:
        return "\n".join(f"{m.role.value}: {m.content}" for m in messages)

    llm = WSDLLM(pipeline=small_pipe, messages_to_prompt=flatten)
    assert llm.chat(CHAT).message.content == small_pipe.generate(flatten(CHAT)).text
    # Without it, tool output (a ReAct observation with role=tool) is a user turn.
    tool_chat = [*CHAT[:3], ChatMessage(role="tool", content="Observation: 42")]
    assert tiny_llm.chat(tool_chat).message.content == small_pipe.generate(
        [*CHAT_TURNS[:3], {"role": "user", "content": "Observation: 42"}]).text


def test_stop_strings_from_the_field_and_the_call_cut_the_reply(small_pipe):
    full = small_pipe.generate(PROMPT).text
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    expected = full[: full.index(stop)]
    llm = WSDLLM(pipeline=small_pipe, stop=[stop])
    for response in (llm.complete(PROMPT), list(llm.stream_complete(PROMPT))[-1]):
        assert response.text == expected and response.raw["finish_reason"] == "stop"
    unstopped = WSDLLM(pipeline=small_pipe)
    assert unstopped.complete(PROMPT).text == full
    assert unstopped.complete(PROMPT, stop=[stop]).text == expected


def test_instrumentation_events_fire_once_per_chunk(tiny_llm, recorder):
    chunks = list(tiny_llm.stream_chat(CHAT))
    assert recorder.names().count("LLMChatStartEvent") == 1
    assert recorder.names().count("LLMChatInProgressEvent") == len(chunks)
    assert recorder.names().count("LLMChatEndEvent") == 1
    assert not any("Completion" in name for name in recorder.names())  # chat does not go through complete
    end = next(e for e in recorder.events if type(e).__name__ == "LLMChatEndEvent")
    assert end.response.raw["text"] == chunks[-1].message.content

    recorder.events.clear()
    completion_chunks = list(tiny_llm.stream_complete(PROMPT))
    assert recorder.names().count("LLMCompletionStartEvent") == 1
    assert recorder.names().count("LLMCompletionInProgressEvent") == len(completion_chunks)
    assert recorder.names().count("LLMCompletionEndEvent") == 1
    assert not any("Chat" in name for name in recorder.names())


async def test_async_events_fire_once_per_chunk(tiny_llm, recorder):
    chunks = [chunk async for chunk in await tiny_llm.astream_chat(CHAT)]
    assert recorder.names().count("LLMChatInProgressEvent") == len(chunks) > 1
    assert recorder.names().count("LLMChatStartEvent") == recorder.names().count("LLMChatEndEvent") == 1


async def test_async_methods_give_the_same_replies_without_blocking_the_loop(tiny_llm):
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        calls = {
            "acomplete": lambda: tiny_llm.acomplete(PROMPT),
            "achat": lambda: tiny_llm.achat(CHAT),
            "astream_complete": lambda: _last(tiny_llm.astream_complete(PROMPT)),
            "astream_chat": lambda: _last(tiny_llm.astream_chat(CHAT)),
        }
        seen = {}
        for name, call in calls.items():
            before = ticks
            response = await call()
            seen[name] = (ticks - before, str(response))
    finally:
        task.cancel()
    # A blocking call runs the models without giving the loop a turn: the ticker would stand still.
    assert all(spun > 10 for spun, _ in seen.values()), seen
    assert seen["acomplete"][1] == seen["astream_complete"][1] == tiny_llm.complete(PROMPT).text
    assert seen["achat"][1] == seen["astream_chat"][1] == str(tiny_llm.chat(CHAT))


async def _last(stream):
    chunks = [chunk async for chunk in await stream]
    return chunks[-1]


def test_bad_input_is_refused_with_a_clear_message(small_pipe, tiny_draft, tiny_llm):
    with pytest.raises(ValueError, match="either pipeline= or draft="):
        WSDLLM(pipeline=small_pipe, draft=tiny_draft)
    with pytest.raises(ValueError, match="gamma"):
        WSDLLM(pipeline=small_pipe, gamma=2.0)
    with pytest.raises(TypeError, match="unknown generation option"):
        tiny_llm.complete(PROMPT, temprature=0.5)
    with pytest.raises(ValueError, match="last message must come from the user"):
        tiny_llm.chat(CHAT[:3])
