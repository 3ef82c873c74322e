"""Drafts without whitespace are checked as they are written (digits, CJK, identifiers, URLs),
and incremental mode still switches exactly where faithful mode does."""

from __future__ import annotations

from collections.abc import Iterator

import math

import pytest

from wsd_llm import Sampling, WSDPipeline
from wsd_llm.text import LOOKBEHIND_TOKENS

CHUNK = 16
TERSE_TIPS = [{"role": "system", "content": "You are terse."},
              {"role": "user", "content": "Give me three tips for learning Python."}]


class ScriptedDraft:
    """The real draft model's prompt and tokenizer, replaying a fixed reply token by token.

    The text a draft writes is the only thing this varies; the base model that scores it, the
    tokenizers and the pipeline are the real ones.
    """

    def __init__(self, draft, reply: str) -> None:
        self.inner, self.reply, self.name = draft, reply, "scripted"

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def stream_draft(self, prompt: str, sampling: Sampling) -> Iterator[str]:
        ids = self.inner.encode(self.reply)[: sampling.max_tokens]
        for end in range(1, len(ids) + 1):
            yield self.inner.decode(ids[:end])


REPLIES = {
    "digits": "1. " + "1." * 150,
    "cjk": "学习编程的三个建议：每天练习写代码，阅读优秀的开源项目，并且向有经验的程序员请教问题。" * 4,
    "identifier": "use_the_function_named_" + "_".join(["compute_the_running_total_of_values"] * 12),
    "url": "https://docs.python.org/3/tutorial/" + "/".join(["introduction.html#using-python-as-a-calculator"] * 8),
}


@pytest.mark.parametrize("kind", sorted(REPLIES))
def test_whitespace_free_drafts_stop_within_a_chunk_of_the_switch(real_pipe, kind):
    pipe = WSDPipeline(ScriptedDraft(real_pipe.draft, REPLIES[kind]), real_pipe.base, real_pipe.config)
    options = {"gamma": 0.5, "max_draft_tokens": 512, "max_new_tokens": 300, "chunk_size": CHUNK}
    incremental = pipe.generate("Give me three tips for learning Python.", **options)
    faithful = pipe.generate("Give me three tips for learning Python.", mode="faithful", **options)

    assert (incremental.switch_index, incremental.switched) == (faithful.switch_index, faithful.switched)
    assert incremental.draft_text == faithful.draft_text
    assert incremental.switched, f"the base never took over from the {kind} draft; pick a longer one"
    # Past the switch the draft writes at most the chunk under way and the lookbehind (in base
    # tokens: about 3 draft tokens each for Chinese, whose characters SmolLM2 spells in bytes).
    draft, base = real_pipe.draft, real_pipe.base
    per_base_token = len(draft.encode(REPLIES[kind])) / len(base.encode(REPLIES[kind]))
    kept = len(draft.encode(incremental.draft_text))
    assert incremental.draft_tokens_generated - kept <= CHUNK + math.ceil(LOOKBEHIND_TOKENS * per_base_token)


def test_the_terse_tips_draft_is_checked_while_it_is_written(real_pipe):
    """The reported case: SmolLM2 writes `1. **1.1.1.1…` with no whitespace, which used to be
    drafted to max_draft_tokens (512) before any token was scored."""
    options = {"gamma": 0.5, "max_draft_tokens": 512, "max_new_tokens": 40, "chunk_size": CHUNK}
    events = list(real_pipe.stream(TERSE_TIPS, **options))
    result = events[-1].result
    faithful = real_pipe.generate(TERSE_TIPS, mode="faithful", **options)

    assert (result.switch_index, result.switched) == (faithful.switch_index, faithful.switched)
    assert result.draft_tokens_generated - result.draft_tokens <= CHUNK + LOOKBEHIND_TOKENS
    assert result.draft_tokens_generated < faithful.draft_tokens_generated
    assert "".join(e.text for e in events) == result.text
