"""WSD on the real packaged models: faithful to the reference, incremental equal to faithful."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading

import pytest

from wsd_llm import TransformersModel, cache_home, packaged
from wsd_llm.backends.transformers.one_shot import reference_generate

# (prompt, gamma): chosen so that some drafts hand over early and some end before any switch.
CASES = [
    ("What is the capital of France?", 0.8),
    ("What is the capital of France?", 0.5),
    ("Give me three tips for learning Python.", 0.5),
    ("Say hello.", 0.8),
    ("How do I stay focused?", 0.3),
    ("Write a haiku about the sea.", 0.5),
]
OUTCOMES: dict[tuple[str, float], tuple[bool, bool]] = {}


@pytest.mark.parametrize(("prompt", "gamma"), CASES)
def test_faithful_equals_reference_and_incremental_equals_faithful(real_pipe, prompt, gamma):
    config = real_pipe.config.updated(gamma=gamma)
    expected = reference_generate(real_pipe.draft, real_pipe.base, prompt, config)
    faithful = real_pipe.generate(prompt, gamma=gamma, mode="faithful")
    incremental = real_pipe.generate(prompt, gamma=gamma)

    assert (faithful.switch_index, faithful.switched) == (expected.switch_index, expected.switched)
    assert faithful.probs == pytest.approx(expected.probs, rel=1e-3, abs=1e-5)
    assert faithful.text == expected.text
    assert faithful.draft_tokens == expected.draft_tokens

    assert (incremental.switch_index, incremental.switched) == (faithful.switch_index, faithful.switched)
    assert incremental.draft_text == faithful.draft_text
    assert incremental.draft_tokens_generated <= faithful.draft_tokens_generated
    draft_ended_first = not expected.switched and expected.draft_tokens_generated < config.max_draft_tokens
    OUTCOMES[(prompt, gamma)] = (expected.switched, draft_ended_first)


def test_cases_cover_early_switches_and_drafts_that_end_first(real_pipe):
    if len(OUTCOMES) < len(CASES):
        pytest.skip("runs after the parametrized comparison above")
    assert any(switched for switched, _ in OUTCOMES.values())
    assert any(ended for _, ended in OUTCOMES.values())


def test_stream_adds_up_and_names_the_writer(real_pipe):
    events = list(real_pipe.stream("Give me three tips for learning Python.", gamma=0.5))
    result = events[-1].result
    assert result.switched and result.base_tokens > 0
    assert "".join(e.text for e in events) == result.text
    assert "".join(e.text for e in events if e.source == "draft") == result.draft_text
    assert "".join(e.text for e in events if e.source == "base") == result.base_text


def test_a_stop_string_never_reaches_the_stream(real_pipe):
    events = list(real_pipe.stream("What is the capital of France?", stop=["Paris"]))
    text = "".join(e.text for e in events)
    assert text == events[-1].result.text == "The capital of France is "
    assert all("Paris" not in e.text for e in events)


def test_threads_share_the_real_pipeline(real_pipe):
    prompts = ["Say hello.", "What is the capital of France?"]
    expected = {p: real_pipe.generate(p, max_new_tokens=12).text for p in prompts}
    got: dict[str, str] = {}
    threads = [threading.Thread(target=lambda p=p: got.__setitem__(p, real_pipe.generate(p, max_new_tokens=12).text))
               for p in prompts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert got == expected


async def test_async_generate_matches(real_pipe):
    result = await real_pipe.agenerate("Say hello.", max_new_tokens=12)
    assert result.text == real_pipe.generate("Say hello.", max_new_tokens=12).text


def test_a_prompt_beyond_the_context_window_is_refused(real_pipe):
    with pytest.raises(ValueError, match=r"reads at most 8192; shorten the conversation"):
        real_pipe.generate("word " * 9000)


def test_gguf_copies_are_cached_as_safetensors(real_pipe):
    converted = list((cache_home() / "converted").glob("*/model.safetensors"))
    assert {p.parent.name.rsplit("-", 1)[0] for p in converted} >= {
        "SmolLM2-135M-Instruct.Q4_1", "gemma-3-270m-q4_k_m"}
    path = packaged.draft_gguf()
    again = TransformersModel.from_pretrained(path.parent, gguf_file=path.name)
    assert again.encode("Hello, world!") == real_pipe.draft.encode("Hello, world!")


def test_converted_copy_computes_what_the_gguf_computes(real_pipe):
    import torch
    from transformers import AutoModelForCausalLM

    path = packaged.draft_gguf()
    direct = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    ids = torch.tensor([real_pipe.draft.encode("The capital of France is Paris.")])
    with torch.inference_mode():
        assert torch.equal(direct(ids).logits, real_pipe.draft.model(ids).logits)


def test_cli_streams_a_reply_and_says_where_the_switch_happened(real_pipe):
    done = subprocess.run(
        [sys.executable, "-m", "wsd_llm.cli", "generate", "What is the capital of France?",
         "--max-new-tokens", "16"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout
    assert "no switch: the base never reached gamma=0.8" in done.stderr


def test_padded_batches_match_faithful_runs_on_the_real_pair(real_pipe):
    prompts = ["What is the capital of France?", "Give me three tips for learning Python.", "Say hello."]
    batched = real_pipe.batch(prompts, batch_size=3, gamma=0.5)
    for prompt, result in zip(prompts, batched):
        alone = real_pipe.generate(prompt, gamma=0.5, mode="faithful")
        assert (result.switch_index, result.switched, result.draft_text) == (
            alone.switch_index, alone.switched, alone.draft_text)
        assert result.probs == pytest.approx(alone.probs, rel=1e-3, abs=1e-5)
        assert (result.text, result.base_tokens) == (alone.text, alone.base_tokens)


def test_cli_runs_a_dataset_and_writes_the_summary(real_pipe, tmp_path):
    source = tmp_path / "prompts.jsonl"
    source.write_text('{"instruction": "What is the capital of France?"}\n{"instruction": "Say hello."}\n')
    output = tmp_path / "out.jsonl"
    done = subprocess.run([sys.executable, "-m", "wsd_llm.cli", "run", str(source), "-o", str(output),
                           "--max-new-tokens", "12"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert len(output.read_text().splitlines()) == 2
    assert "no switch |" in done.stdout and "2 lines" in done.stdout
    assert output.with_suffix(".histogram.png").stat().st_size > 0
    assert '"lines": 2' in output.with_suffix(".summary.json").read_text()


@pytest.mark.parametrize("max_draft_tokens", [1, 2, 30])
def test_emoji_split_across_draft_tokens(real_pipe, max_draft_tokens):
    """SmolLM2 writes 🎉 as three byte tokens; a draft cut inside one must not leak broken bytes."""
    events = list(real_pipe.stream("Repeat exactly this text: 🎉🎉 party 🎉", gamma=0.3,
                                   max_draft_tokens=max_draft_tokens, max_new_tokens=12))
    result = events[-1].result
    assert "".join(e.text for e in events) == result.text
    assert "\ufffd" not in result.draft_text
    if max_draft_tokens == 30:
        assert result.text.startswith("🎉🎉 party 🎉")


@pytest.mark.parametrize("budget", [9, 10])
def test_a_turn_marker_cut_short_by_the_budget_never_reaches_the_reply(real_pipe, budget):
    """With 9 or 10 tokens the base starts its next turn (`\\n\\n[Assistant`) before the budget ends."""
    events = list(real_pipe.stream("What is the capital of France? Answer in one sentence.", max_new_tokens=budget))
    result = events[-1].result
    assert "".join(e.text for e in events) == result.text == "The capital of France is Paris."
    assert result.finish_reason == "length"


def test_usage_counts_the_tokens_of_the_returned_text_not_the_cut_stop_string(real_pipe):
    result = real_pipe.generate("How do I stay focused?", stop=" a")
    assert result.text == "The eternal quest for"
    assert result.completion_tokens == len(real_pipe.base.encode(result.text))
    assert result.usage()["completion_tokens"] == result.completion_tokens


def test_logprobs_score_the_kept_draft_as_the_switch_did_and_the_greedy_base_picks_its_top(real_pipe):
    result = real_pipe.generate("Give me three tips for learning Python.", gamma=0.5, logprobs=True, top_logprobs=1)
    assert result.switched and result.base_tokens > 0
    assert "".join(entry.token for entry in result.logprobs) == result.text
    drafted, written = result.logprobs[: result.draft_tokens], result.logprobs[result.draft_tokens :]
    assert {entry.source for entry in drafted} == {"draft"} and {entry.source for entry in written} == {"base"}
    # One pass over the whole reply gives what the switch rule saw chunk by chunk.
    assert [math.exp(entry.logprob) for entry in drafted] == pytest.approx(result.probs[: result.draft_tokens],
                                                                        rel=1e-3, abs=1e-5)
    # The base continues greedily: every token it wrote is its own most likely one.
    assert all(entry.top_logprobs[0].token == entry.token for entry in written)


def test_a_repetition_penalty_changes_only_the_base_part(real_pipe):
    plain = real_pipe.generate("How do I stay focused?", gamma=0.3, max_new_tokens=48)
    penalised = real_pipe.generate("How do I stay focused?", gamma=0.3, max_new_tokens=48,
                                   base_repetition_penalty=1.3)
    assert plain.switched and (penalised.draft_text, penalised.switch_index) == (plain.draft_text, plain.switch_index)
    assert penalised.base_text != plain.base_text
