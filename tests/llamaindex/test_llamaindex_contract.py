"""WSDLLM's LlamaIndex contract on the tiny random pair: responses, streams, prompts, stop, events, async."""

from __future__ import annotations

import asyncio
import json
import threading

import llama_index.core
import pytest
from llama_index.core import Settings
from llama_index.core.base.llms.types import ChatResponse, ImageBlock, TextBlock
from llama_index.core.llms import ChatMessage
from llama_index.llms.wsd import WSDLLM

from wsd_llm import WSDPipeline

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


def test_metadata_names_both_models_and_their_limits(tiny_llm, small_pipe):
    metadata = tiny_llm.metadata
    assert metadata.is_chat_model
    assert metadata.num_output == small_pipe.config.max_new_tokens
    assert metadata.model_name == small_pipe.model_name
    assert WSDLLM(pipeline=small_pipe, max_new_tokens=7).metadata.num_output == 7


# Texts LlamaIndex's default tokenizer (tiktoken) packs much tighter than the models do, or looser.
DENSE_TEXTS = {
    "digits": "".join(str(i * 7919 % 10) for i in range(5000)),
    "csv": "\n".join(f"{i},{i * 7919 % 100_000},{i * 104_729 % 1000}.{i % 97}" for i in range(2000)),
    "prose": "The quick brown fox jumps over the lazy dog. " * 400,
}


@pytest.mark.parametrize("kind", DENSE_TEXTS)
@pytest.mark.parametrize("ours", [False, True], ids=["tiktoken", "llm.tokenizer"])
def test_text_that_fits_the_reported_window_fits_both_models(small_pipe, monkeypatch, kind, ours):
    """What LlamaIndex counts as filling metadata.context_window (less num_output) is a
    conversation both models read, whichever tokenizer LlamaIndex counts with."""
    llm = WSDLLM(pipeline=small_pipe)
    monkeypatch.setattr(llama_index.core, "global_tokenizer", llm.tokenizer if ours else None)
    counted = Settings.tokenizer
    metadata = llm.metadata
    budget = metadata.context_window - metadata.num_output
    text = DENSE_TEXTS[kind]
    low, high = 0, len(text)  # the longest prefix LlamaIndex counts within the budget
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if len(counted(text[:mid])) <= budget else (low, mid - 1)
    assert low > 0
    small_pipe.prepare([{"role": "user", "content": text[:low]}])  # raises if it does not fit
    if ours:  # counting in model tokens leaves only the markup reserve unused
        window = min(small_pipe.draft.context_window, small_pipe.base.context_window)
        assert window - 64 == metadata.context_window


def test_models_load_on_first_use_once_across_threads(tiny_draft, tiny_base):
    assert WSDLLM(draft="no/such-model", base="no/such-base", gamma=0.5).gamma == 0.5  # nothing loads yet
    llm = WSDLLM(draft=tiny_draft, base=tiny_base)
    start = threading.Barrier(8)
    seen: list[WSDPipeline] = []

    def first_use() -> None:
        start.wait()
        seen.append(llm.pipeline)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8 and all(pipeline is seen[0] for pipeline in seen)
    assert seen[0].draft is tiny_draft and llm.metadata.model_name == seen[0].model_name


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


def test_raw_is_the_json_of_the_wsd_result(tiny_llm, small_pipe):
    expected = small_pipe.generate(PROMPT)
    # Timings and the counts that depend on what earlier calls left in the prefix cache vary between calls.
    varying = {"timings", "base_tokens_forwarded", "base_tokens_cached", "draft_tokens_forwarded",
               "draft_tokens_cached"}
    stats = {key: value for key, value in expected.stats().items() if key not in varying}
    responses = [tiny_llm.complete(PROMPT), list(tiny_llm.stream_complete(PROMPT))[-1]]
    for response in responses:
        raw = json.loads(json.dumps(response.raw))
        assert raw["usage"] == expected.usage()
        assert {key: raw[key] for key in stats} == stats
        assert (raw["text"], raw["draft_text"], raw["base_text"]) == (
            expected.text, expected.draft_text, expected.base_text)
        assert set(raw["timings"]) == set(expected.timings.model_dump())
    chat, last_chunk = tiny_llm.chat(CHAT), list(tiny_llm.stream_chat(CHAT))[-1]
    assert chat.raw["text"] == last_chunk.raw["text"] == last_chunk.message.content


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
    # Without it, tool output with no tool_call_id (a ReAct observation with role=tool) is a user turn.
    tool_chat = [*CHAT[:3], ChatMessage(role="tool", content="Observation: 42")]
    assert tiny_llm.chat(tool_chat).message.content == small_pipe.generate(
        [*CHAT_TURNS[:3], {"role": "user", "content": "Observation: 42"}]).text


def test_stop_strings_of_the_pipeline_the_field_and_the_call_all_apply(small_pipe):
    full = small_pipe.generate(PROMPT).text
    stops = [full[i : i + 3] for i in (len(full) // 4, len(full) // 2, 3 * len(full) // 4)]
    stops = [stop for stop in stops if full.index(stop) > 0]
    assert len(set(stops)) == 3, full
    for order in ([0, 1, 2], [2, 0, 1], [1, 2, 0]):  # each level holds the earliest stop once
        configured, field, call = (stops[i] for i in order)
        pipe = WSDPipeline(small_pipe.draft, small_pipe.base, small_pipe.config.updated(stop=[configured]))
        reply = WSDLLM(pipeline=pipe, stop=[field]).complete(PROMPT, stop=[call]).text
        assert reply == full[: min(full.index(stop) for stop in stops)]


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


@pytest.mark.parametrize("blocks", [
    [TextBlock(text="What is in this picture?"), "image"],
    ["image"],
], ids=["text and image", "image only"])
def test_non_text_blocks_are_refused_by_name(tiny_llm, tmp_path, blocks):
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")  # a PNG signature is all ImageBlock reads of a path
    message = ChatMessage(role="user", blocks=[ImageBlock(path=image) if b == "image" else b for b in blocks])
    for call in (tiny_llm.chat, tiny_llm.stream_chat, WSDLLM(pipeline=tiny_llm.pipeline,
                                                            messages_to_prompt=str).chat):
        with pytest.raises(ValueError, match=r"cannot read ImageBlock content \(block_type 'image'\) in a user message"):
            call([message])


def test_bad_input_is_refused_with_a_clear_message(small_pipe, tiny_draft, tiny_llm):
    with pytest.raises(ValueError, match="either pipeline= or draft="):
        WSDLLM(pipeline=small_pipe, draft=tiny_draft)
    with pytest.raises(ValueError, match="gamma"):
        WSDLLM(pipeline=small_pipe, gamma=2.0)
    with pytest.raises(ValueError, match="stop strings must be non-empty"):
        WSDLLM(stop=[""])
    with pytest.raises(TypeError, match="unknown generation option"):
        tiny_llm.complete(PROMPT, temprature=0.5)
    with pytest.raises(ValueError, match="last message must come from the user"):
        tiny_llm.chat(CHAT[:3])


def test_chat_responses_carry_logprobs_when_asked(small_pipe):
    expected = small_pipe.generate(CHAT_TURNS, logprobs=True, top_logprobs=1)
    llm = WSDLLM(pipeline=small_pipe, logprobs=True, top_logprobs=1)
    for response in (llm.chat(CHAT), list(llm.stream_chat(CHAT))[-1], llm.complete(CHAT_TURNS[-1]["content"])):
        if not isinstance(response, ChatResponse):  # a completion: one user turn, not the chat
            assert response.raw["logprobs"]["content"][0]["token"] == response.logprobs[0][0].token
            continue
        assert [[p.token for p in token] for token in response.logprobs] == [
            [t.token, t.top_logprobs[0].token] for t in expected.logprobs]
        assert response.raw["logprobs"] == expected.openai_logprobs()
    assert WSDLLM(pipeline=small_pipe).chat(CHAT).logprobs is None
