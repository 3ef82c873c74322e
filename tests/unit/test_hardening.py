"""Edge cases a production user meets: odd drafts, context limits, concurrency, untrusted code."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest
import torch
from tiny_models import tiny_draft_tokenizer

from wsd_llm import TransformersModel, WSDPipeline
from wsd_llm.backends.transformers.one_shot import reference_generate


class ConstantHead(torch.nn.Module):
    """An output layer that always prefers one token: a draft model with a fixed habit."""

    def __init__(self, vocab_size: int, token: int) -> None:
        super().__init__()
        self.vocab_size, self.token = vocab_size, token

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(*hidden.shape[:-1], self.vocab_size, dtype=hidden.dtype, device=hidden.device)
        logits[..., self.token] = 10.0
        return logits


def habit_draft(tiny_draft: TransformersModel, text: str) -> TransformersModel:
    model = copy.deepcopy(tiny_draft.model)
    [token] = tiny_draft.encode(text) if text != "EOS" else [tiny_draft.tokenizer.eos_token_id]
    model.lm_head = ConstantHead(model.config.vocab_size, token)
    return TransformersModel(model, tiny_draft.tokenizer, name=f"always-{text!r}")


@pytest.mark.parametrize("habit", ["EOS", " ", "\n"])
@pytest.mark.parametrize("mode", ["incremental", "faithful"])
def test_empty_and_whitespace_drafts_hand_the_whole_reply_to_the_base(tiny_draft, tiny_base, habit, mode):
    pipe = WSDPipeline(habit_draft(tiny_draft, habit), tiny_base)
    options = {"max_new_tokens": 20, "max_draft_tokens": 12, "mode": mode}
    events = list(pipe.stream("Hello!", **options))
    result = events[-1].result
    expected = reference_generate(pipe.draft, pipe.base, "Hello!", pipe.config.updated(**options))
    assert (result.draft_tokens, result.switch_index, result.switched) == (0, -1, False)
    assert result.draft_text == "" and result.text == result.base_text == expected.text
    assert "".join(e.text for e in events) == result.text
    assert result.draft_tokens_generated == (0 if habit == "EOS" else 12)


def test_a_prompt_at_the_context_limit_still_answers(tiny_pipe):
    window = tiny_pipe.draft.context_window
    words = next(n for n in range(window) if tiny_pipe.draft.count_tokens(
        tiny_pipe.draft.apply_chat_template([{"role": "user", "content": "a " * n}])) >= window - 1)
    prompt = "a " * words
    assert tiny_pipe.draft.count_tokens(tiny_pipe.draft.apply_chat_template(
        [{"role": "user", "content": prompt}])) == window - 1
    result = tiny_pipe.generate(prompt, max_new_tokens=8)
    assert result.draft_tokens_generated <= 1
    with pytest.raises(ValueError, match="shorten the conversation"):
        tiny_pipe.generate(prompt + "a a a")


async def test_two_asyncio_tasks_get_their_own_answers(tiny_pipe):
    prompts = ["Hello!", "Give me tips."]
    expected = [tiny_pipe.generate(p, gamma=0.0035).text for p in prompts]

    async def collect(prompt: str) -> str:
        return "".join([event.text async for event in tiny_pipe.astream(prompt, gamma=0.0035)])

    assert await asyncio.gather(*(collect(p) for p in prompts)) == expected
    assert [r.text for r in await asyncio.gather(*(tiny_pipe.agenerate(p, gamma=0.0035) for p in prompts))] == expected


def test_remote_code_is_refused_unless_asked_for(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "modeling_custom.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (tmp_path / "configuration_custom.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "wsd-custom",
        "auto_map": {"AutoConfig": "configuration_custom.CustomConfig",
                     "AutoModelForCausalLM": "modeling_custom.CustomModel"},
    }))
    tiny_draft_tokenizer().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="trust_remote_code"):
        TransformersModel.from_pretrained(tmp_path)
    assert not marker.exists()
