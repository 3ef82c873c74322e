"""The base's continuation sampling (temperature, top-k/top-p, penalties) on the tiny random pair,
checked against transformers' own ``generate`` where it has the same setting."""

from __future__ import annotations

import pytest
import torch

from wsd_llm import WSDConfig, WSDPipeline
from wsd_llm.backends.transformers.padded import generate_rows
from wsd_llm.backends.transformers.sampler import OutputPenaltyLogitsProcessor, Sampler
from wsd_llm.errors import OptionError
from wsd_llm.sampling import Sampling

SWITCHING = WSDConfig(max_new_tokens=40, max_draft_tokens=40, gamma=0.0035)  # switches early on the tiny pair


@pytest.fixture(scope="module")
def pipe(tiny_draft, tiny_base) -> WSDPipeline:
    return WSDPipeline(tiny_draft, tiny_base, SWITCHING)


def test_output_penalties_subtract_per_written_token_and_spare_the_prompt():
    penalty = OutputPenaltyLogitsProcessor(frequency=0.5, presence=0.25, prompt_length=2)
    ids = torch.tensor([[1, 2, 3, 3, 1]])  # prompt 1 2; written 3 3 1
    scores = penalty(ids, torch.zeros(1, 5))
    assert scores.tolist() == [[0.0, -0.75, 0.0, -1.25, 0.0]]


def test_a_repetition_penalty_changes_a_greedy_pick():
    logits = torch.tensor([0.0, 2.0, 1.9])
    assert Sampler(Sampling(max_tokens=1), [0])(logits, [0]) == 1
    assert Sampler(Sampling(max_tokens=1, repetition_penalty=1.2), [1])(logits, [1]) == 2


@pytest.mark.parametrize("penalty", [1.0, 1.3, 0.8])
def test_the_session_continues_like_transformers_generate(tiny_base, penalty):
    ids = tiny_base.encode("Hello! How are you today?")
    sampling = Sampling(max_tokens=20, repetition_penalty=penalty, ignore_eos=True)
    written = list(tiny_base.open_session().generate(ids, sampling))
    with torch.inference_mode():
        expected = tiny_base.model.generate(torch.tensor([ids]), max_new_tokens=20, do_sample=False,
                                            repetition_penalty=penalty, min_new_tokens=20)
    assert written == expected[0, len(ids):].tolist()


def test_padded_rows_continue_like_the_session(tiny_base):
    sampling = Sampling(max_tokens=16, repetition_penalty=1.4, frequency_penalty=0.5, presence_penalty=0.5,
                        ignore_eos=True)
    prompts = [tiny_base.encode(text) for text in ("Hello! How are you today?", "Give me tips.")]
    rows = generate_rows(tiny_base, prompts, sampling)
    # One row alone: no pad token for the repetition penalty to see.
    assert rows[0] == list(tiny_base.open_session().generate(prompts[0], sampling))
    assert len(rows[1]) == 16


def test_base_options_reach_the_continuation_only(pipe):
    greedy = pipe.generate("Hello!")
    penalised = pipe.generate("Hello!", base_repetition_penalty=2.0, base_frequency_penalty=1.5)
    assert greedy.switched and penalised.switched
    assert (penalised.switch_index, penalised.draft_text) == (greedy.switch_index, greedy.draft_text)
    assert penalised.base_text != greedy.base_text


def test_seeded_base_sampling_repeats_and_seeds_differ(pipe):
    options = {"base_temperature": 1.0, "base_top_k": 50, "base_top_p": 0.95}
    first = pipe.generate("Hello!", seed=7, **options)
    assert first.text == pipe.generate("Hello!", seed=7, **options).text
    others = {pipe.generate("Hello!", seed=seed, **options).base_text for seed in range(8, 12)}
    assert len(others | {first.base_text}) > 1


def test_the_default_base_is_greedy_without_penalties():
    sampling = WSDConfig().base_sampling(10)
    assert sampling.greedy and not sampling.penalised and sampling.top_k == 0


@pytest.mark.parametrize(("option", "value", "says"), [
    ("base_repetition_penalty", 0, "base_repetition_penalty must be greater than 0"),
    ("base_frequency_penalty", 3, "base_frequency_penalty must be at most 2"),
    ("base_top_k", -1, "base_top_k must be at least 0"),
    ("seed", 2**64, "seed must be less than"),
])
def test_bad_base_options_are_one_line(option, value, says):
    with pytest.raises(OptionError, match=says) as caught:
        WSDConfig().updated(**{option: value})
    assert "\n" not in str(caught.value)
