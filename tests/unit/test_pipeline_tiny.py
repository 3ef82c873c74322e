"""Pipeline mechanics on tiny random models: fast, and with two very different tokenizers."""

from __future__ import annotations

import asyncio
import threading

import pytest
from tiny_models import tiny_draft_tokenizer, tiny_llama

from wsd_llm import TransformersModel, WSDConfig, WSDPipeline, normalize_messages
from wsd_llm.backends.transformers.one_shot import reference_generate
from wsd_llm.prompts import base_prompt

PROMPTS = ["Hello!", "How are you today?", "Give me tips.", "The quick brown fox"]
# Random models give every token a probability near 1/vocab; these thresholds switch at varied places.
GAMMAS = [0.0034, 0.0035, 0.0036, 1.0]
SMALL = WSDConfig(max_new_tokens=48, max_draft_tokens=40)


def base_prompt_tokens(pipe: WSDPipeline, prompt: str) -> int:
    return len(pipe.base.encode(base_prompt(pipe.base, normalize_messages(prompt), "plain")))


@pytest.fixture(scope="module")
def same_vocab_pipe() -> WSDPipeline:
    tokenizer = tiny_draft_tokenizer()
    return WSDPipeline(tiny_llama(tokenizer, seed=0), tiny_llama(tokenizer, seed=2), SMALL)


@pytest.fixture(scope="module")
def pipe(tiny_draft, tiny_base) -> WSDPipeline:
    return WSDPipeline(tiny_draft, tiny_base, SMALL)


@pytest.fixture(params=["cross_vocab", "same_vocab"])
def any_pipe(request, pipe, same_vocab_pipe) -> WSDPipeline:
    return pipe if request.param == "cross_vocab" else same_vocab_pipe


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("prompt", PROMPTS)
def test_faithful_mode_equals_the_one_shot_reference(any_pipe, prompt, gamma):
    config = SMALL.updated(gamma=gamma)
    expected = reference_generate(any_pipe.draft, any_pipe.base, prompt, config)
    result = any_pipe.generate(prompt, gamma=gamma, mode="faithful")
    assert (result.switch_index, result.switched) == (expected.switch_index, expected.switched)
    assert result.probs == pytest.approx(expected.probs, rel=1e-4)
    assert result.text == expected.text
    assert (result.draft_tokens, result.prompt_tokens) == (expected.draft_tokens, expected.prompt_tokens)


@pytest.mark.parametrize("chunk_size", [1, 5, 16])
@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("prompt", PROMPTS)
def test_incremental_switch_equals_faithful(any_pipe, prompt, gamma, chunk_size):
    faithful = any_pipe.generate(prompt, gamma=gamma, mode="faithful")
    incremental = any_pipe.generate(prompt, gamma=gamma, chunk_size=chunk_size)
    assert (incremental.switch_index, incremental.switched) == (faithful.switch_index, faithful.switched)
    assert incremental.draft_text == faithful.draft_text
    assert incremental.probs == pytest.approx(faithful.probs[: len(incremental.probs)], rel=1e-3)
    if faithful.switched:
        assert incremental.draft_tokens_generated <= faithful.draft_tokens_generated


def test_some_case_switches_and_some_does_not(pipe):
    switched = {pipe.generate(p, gamma=g).switched for p in PROMPTS for g in GAMMAS}
    assert switched == {True, False}


def test_the_prompt_is_prefilled_once(pipe):
    for prompt in PROMPTS:
        result = pipe.generate(prompt, gamma=0.0035)
        # Scoring forwards prompt + draft minus its last token; the handover re-runs at most one token
        # per re-tokenized chunk; the continuation forwards each token it writes. An earlier call with
        # the same prompt left part of it in the prefix cache: those tokens are read, not forwarded.
        assert result.prompt_tokens == base_prompt_tokens(pipe, prompt)
        once = result.prompt_tokens + len(result.probs) + result.base_tokens
        assert once - 1 <= result.base_tokens_forwarded + result.base_tokens_cached <= once + SMALL.chunk_size


@pytest.mark.parametrize("gamma", GAMMAS)
def test_stream_adds_up_to_generate(any_pipe, gamma):
    for prompt in PROMPTS:
        events = list(any_pipe.stream(prompt, gamma=gamma))
        result = events[-1].result
        assert result is not None and all(e.result is None for e in events[:-1])
        assert "".join(e.text for e in events) == result.text == any_pipe.generate(prompt, gamma=gamma).text
        sources = [e.source for e in events[:-1] if e.text]
        assert sources == sorted(sources, key=["draft", "base"].index)
        assert "".join(e.text for e in events if e.source == "draft") == result.draft_text
        assert len(result.tokens) == len(result.probs)


def test_stop_strings_cut_the_reply_and_never_leak(pipe):
    for prompt in PROMPTS:
        full = pipe.generate(prompt, gamma=0.0035).text
        if len(full) < 12:
            continue
        stop = full[len(full) // 2 : len(full) // 2 + 3]
        events = list(pipe.stream(prompt, gamma=0.0035, stop=[stop]))
        text = "".join(e.text for e in events)
        assert text == full[: full.index(stop)]
        assert events[-1].result.text == text and events[-1].result.finish_reason == "stop"


def test_max_new_tokens_bounds_the_reply(pipe):
    for limit in (1, 3, 10):
        result = pipe.generate("Give me tips.", max_new_tokens=limit, gamma=0.0035)
        assert result.draft_tokens + result.base_tokens <= limit


def test_threads_sharing_a_pipeline_get_their_own_answers(pipe):
    expected = {p: pipe.generate(p, gamma=0.0035).text for p in PROMPTS}
    got: dict[str, str] = {}

    def work(prompt: str) -> None:
        got[prompt] = "".join(e.text for e in pipe.stream(prompt, gamma=0.0035))

    threads = [threading.Thread(target=work, args=(p,)) for p in PROMPTS * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert got == expected


async def test_async_calls_do_not_block_the_event_loop(pipe):
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    result = await pipe.agenerate("How are you today?", max_draft_tokens=40)
    events = [event async for event in pipe.astream("How are you today?", max_draft_tokens=40)]
    task.cancel()
    assert ticks > 20
    assert "".join(e.text for e in events) == result.text == pipe.generate("How are you today?").text


async def test_leaving_an_async_stream_early_frees_the_models(pipe):
    async for _ in pipe.astream("Give me tips.", gamma=1.0, chunk_size=1):
        break
    assert (await pipe.agenerate("Hello!")).text == pipe.generate("Hello!").text


def test_closing_a_stream_midway_frees_the_models(pipe):
    stream = pipe.stream("Give me tips.", gamma=1.0, chunk_size=1)
    next(stream)
    stream.close()
    assert pipe.generate("Hello!").text == pipe.generate("Hello!").text


def test_batch_returns_one_result_per_conversation_in_order(pipe):
    results = pipe.batch(PROMPTS[:3], gamma=0.0035)
    assert [r.text for r in results] == [pipe.generate(p, gamma=0.0035).text for p in PROMPTS[:3]]


def test_batch_checks_every_input_before_generating(pipe):
    with pytest.raises(ValueError, match="message 0"):
        pipe.batch(["fine", [{"role": "robot", "content": "x"}]])


def test_seeded_sampling_repeats(pipe):
    first = pipe.generate("Hello!", temperature=0.9, seed=3, gamma=1.0)
    assert first.text == pipe.generate("Hello!", temperature=0.9, seed=3, gamma=1.0).text
    others = {pipe.generate("Hello!", temperature=0.9, seed=s, gamma=1.0).text for s in range(4, 8)}
    assert len(others | {first.text}) > 1


def test_chat_template_base_format(same_vocab_pipe):
    result = same_vocab_pipe.generate("Hello!", base_format="chat_template", gamma=0.0035)
    assert result.text == "".join(e.text for e in same_vocab_pipe.stream(
        "Hello!", base_format="chat_template", gamma=0.0035))


def test_chat_template_format_needs_a_template(pipe):
    with pytest.raises(ValueError, match="no chat template"):
        pipe.generate("Hello!", base_format="chat_template")


def test_prompt_longer_than_the_context_window_is_refused(pipe):
    with pytest.raises(ValueError, match="reads at most 256; shorten the conversation"):
        pipe.generate("hello " * 400)


@pytest.mark.parametrize(
    ("messages", "message"),
    [([], "non-empty"), ([{"role": "assistant", "content": "x"}], "last message must come from the user")],
)
def test_bad_input_is_refused_before_any_model_runs(pipe, messages, message):
    with pytest.raises(ValueError, match=message):
        pipe.generate(messages)


def test_zero_max_tokens_is_refused(pipe):
    with pytest.raises(ValueError, match="max_new_tokens"):
        pipe.generate("Hello!", max_new_tokens=0)


def test_a_model_tokenizer_pair_is_accepted(tiny_draft, tiny_base):
    pipe = WSDPipeline((tiny_draft.model, tiny_draft.tokenizer), (tiny_base.model, tiny_base.tokenizer), SMALL)
    assert pipe.generate("Hello!").text == WSDPipeline(tiny_draft, tiny_base, SMALL).generate("Hello!").text


def test_something_else_is_refused_with_the_accepted_kinds():
    with pytest.raises(TypeError, match="draft must be a model backend"):
        WSDPipeline(draft=42, base=42)


def test_a_saved_directory_loads(tmp_path, tiny_draft):
    tiny_draft.model.save_pretrained(tmp_path)
    tiny_draft.tokenizer.save_pretrained(tmp_path)
    loaded = TransformersModel.from_pretrained(tmp_path)
    assert loaded.encode("Hello world") == tiny_draft.encode("Hello world")
    assert loaded.context_window == 256


@pytest.mark.parametrize(("device_map", "dtype"), [("auto", "float32"), ("cpu", "bfloat16")])
def test_accelerate_placement_and_dtypes_load_and_run(tmp_path, tiny_draft, tiny_base, device_map, dtype):
    tiny_draft.model.save_pretrained(tmp_path)
    tiny_draft.tokenizer.save_pretrained(tmp_path)
    draft = TransformersModel.from_pretrained(tmp_path, device_map=device_map, dtype=dtype)
    assert str(draft.model.dtype) == f"torch.{dtype}" and draft.device.type == "cpu"
    events = list(WSDPipeline(draft, tiny_base, SMALL).stream("Hello!", gamma=0.0035))
    assert "".join(e.text for e in events) == events[-1].result.text
    assert events[-1].result.draft_tokens_generated > 0


@pytest.mark.parametrize("gamma", [0.0035, 1.0])
def test_padded_batches_match_faithful_runs_one_by_one(pipe, gamma):
    batched = pipe.batch(PROMPTS, batch_size=3, gamma=gamma)
    for prompt, result in zip(PROMPTS, batched):
        alone = pipe.generate(prompt, gamma=gamma, mode="faithful")
        assert (result.switch_index, result.switched, result.draft_text) == (
            alone.switch_index, alone.switched, alone.draft_text)
        assert result.probs == pytest.approx(alone.probs, rel=1e-3)
        assert result.text == alone.text
        assert (result.base_tokens, result.finish_reason) == (alone.base_tokens, alone.finish_reason)


def test_batch_size_must_be_positive(pipe):
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        pipe.batch(PROMPTS, batch_size=0)


def test_seeded_sampling_is_refused_in_padded_batches(pipe):
    with pytest.raises(ValueError, match="seeded sampling is per request"):
        pipe.batch(PROMPTS, batch_size=2, temperature=0.7, seed=1)


def test_usage_counts_the_prompt_and_the_whole_reply(pipe):
    result = pipe.generate(PROMPTS[0])
    reply = result.draft_tokens + result.base_tokens
    assert result.completion_tokens == reply > 0
    assert result.usage() == {"prompt_tokens": result.prompt_tokens, "completion_tokens": reply,
                              "total_tokens": result.prompt_tokens + reply}
