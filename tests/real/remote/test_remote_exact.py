"""The remote backend against llama-cpp-python servers on the packaged GGUFs, compared with the
local (converted safetensors) models: probabilities, switch index, mixed setups, the probe."""

from __future__ import annotations

import copy
import math

import pytest

from wsd_llm import WSDConfig, WSDPipeline, prompts
from wsd_llm.backends.remote import RemoteBase, RemoteCapabilityError, RemoteDraft
from wsd_llm.messages import normalize_messages

PROMPTS = [
    "How do I stay focused?",
    "What is the capital of France?",
    "Give me one tip to sleep better.",
    "Write a haiku about the sea.",
    "Why is the sky blue?",
    "Name three fruits.",
]
DRAFT_TOKENS = 16
SHORT = {"max_draft_tokens": DRAFT_TOKENS, "max_new_tokens": 32}


@pytest.fixture(scope="module")
def remote_base(base_server, real_pipe):
    return RemoteBase(base_server, real_pipe.base.tokenizer, name="gemma-3-270m@llama.cpp", context_window=2048)


@pytest.fixture(scope="module")
def remote_draft(draft_server, real_pipe):
    return RemoteDraft(draft_server, real_pipe.draft.tokenizer, name="smollm2@llama.cpp", context_window=2048)


def scored_draft(pipe, question):
    """Base ids of prompt + the local greedy draft, and where the draft starts."""
    messages = normalize_messages(question)
    sampling = WSDConfig(max_draft_tokens=DRAFT_TOKENS).draft_sampling()
    *_, draft_text = pipe.draft.stream_draft(prompts.draft_prompt(pipe.draft, messages), sampling)
    base_prompt = prompts.base_prompt(pipe.base, messages, "plain")
    return pipe.base.encode(prompts.with_draft(base_prompt, draft_text)), len(pipe.base.encode(base_prompt))


def test_remote_probabilities_and_switch_match_the_local_base(remote_base, real_pipe, capsys):
    policy = WSDConfig().policy
    worst_abs = worst_rel = 0.0
    agree = 0
    for question in PROMPTS:
        ids, start = scored_draft(real_pipe, question)
        local = real_pipe.base.open_session().score(ids, start)
        remote = remote_base.open_session().score(ids, start)
        assert len(remote) == len(local) == len(ids) - start
        worst_abs = max(worst_abs, *(abs(r - l) for r, l in zip(remote, local)))
        worst_rel = max(worst_rel, *(abs(r - l) / l for r, l in zip(remote, local) if l > 0.05))
        agree += policy.first_switch(local, 0) == policy.first_switch(remote, 0)
    with capsys.disabled():
        print(f"\nremote vs local base: max |dp| {worst_abs:.4f}, max rel (p>0.05) {worst_rel:.4f}, "
              f"switch agreement {agree}/{len(PROMPTS)}")
    # Q4_K_M matmuls in llama.cpp (8-bit activations) vs the de-quantized float32 copy in torch:
    # close, not identical (max |dp| about 0.1 measured here).
    assert worst_abs < 0.15
    assert agree >= len(PROMPTS) - 1


def test_local_draft_with_remote_base_matches_the_local_pair(remote_base, real_pipe):
    mixed = WSDPipeline(real_pipe.draft, remote_base, real_pipe.config)
    question = PROMPTS[0]
    remote, local = mixed.generate(question, **SHORT), real_pipe.generate(question, **SHORT)
    assert (remote.switched, remote.switch_index) == (local.switched, local.switch_index)
    assert remote.draft_text == local.draft_text
    assert remote.base_model == "gemma-3-270m@llama.cpp" and remote.base_tokens > 0
    assert remote.text.startswith(remote.draft_text) and remote.prompt_tokens == local.prompt_tokens


def test_remote_draft_with_local_base(remote_draft, real_pipe):
    mixed = WSDPipeline(remote_draft, real_pipe.base, real_pipe.config)
    question = PROMPTS[2]
    result = mixed.generate(question, **SHORT)
    assert result.draft_model == "smollm2@llama.cpp" and 0 < result.draft_tokens_generated <= DRAFT_TOKENS
    assert result.draft_text and result.text.startswith(result.draft_text)
    # The local base scored exactly the served draft's text. (Its wording may differ from the local
    # draft's: llama.cpp's quantized kernels and prompt-cache reuse flip greedy near-ties.)
    assert len(result.probs) == len(result.tokens) >= result.draft_tokens
    assert "".join(result.tokens[: result.draft_tokens]).strip() == result.draft_text.strip()


def test_both_remote_stream_adds_up(remote_draft, remote_base):
    pipe = WSDPipeline(remote_draft, remote_base, WSDConfig(**SHORT))
    events = list(pipe.stream(PROMPTS[1]))
    result = events[-1].result
    assert result is not None and "".join(e.text for e in events) == result.text
    assert {e.source for e in events[:-1]} <= {"draft", "base"} and result.text


def test_model_list_and_close_on_a_real_server(draft_server, real_pipe):
    with RemoteDraft(draft_server, real_pipe.draft.tokenizer, context_window=2048) as draft:
        assert all(card["id"] for card in draft.client.models())
    assert draft.client.sdk.is_closed()
    # llama-cpp-python's model list states no context size, and SmolLM2's tokenizer none either.
    with pytest.raises(ValueError, match="pass context_window="):
        RemoteDraft(draft_server, real_pipe.draft.tokenizer)


def test_probe_refuses_misaligned_logprobs_without_bos(draft_server, real_pipe):
    """llama-cpp-python's echoed logprobs are shifted when the prompt has no BOS (its #1983)."""
    tokenizer = copy.deepcopy(real_pipe.draft.tokenizer)
    tokenizer.bos_token = None
    with pytest.raises(RemoteCapabilityError, match="misaligned"):
        RemoteBase(draft_server, tokenizer, context_window=2048)


def test_probe_refuses_a_server_without_prompt_logprobs(real_pipe):
    from live_servers import llama_server

    from wsd_llm import packaged

    with llama_server(packaged.draft_gguf(), "--logits_all", "false") as url:
        with pytest.raises(RemoteCapabilityError, match="logits_all"):
            RemoteBase(url + "/v1", real_pipe.draft.tokenizer, context_window=2048)


def test_remote_logprobs_match_the_local_base(remote_base, real_pipe):
    ids, start = scored_draft(real_pipe, PROMPTS[0])
    local = real_pipe.base.open_session().logprobs(ids, start, top=3)
    remote = remote_base.open_session().logprobs(ids, start, top=3)
    assert len(remote) == len(local) == len(ids) - start
    assert [math.exp(r) for r, _ in remote] == pytest.approx([math.exp(l) for l, _ in local], abs=0.15)
    assert all(len(top) == 3 and [v for _, v in top] == sorted((v for _, v in top), reverse=True)
               for _, top in remote)
    # The most likely token agrees wherever the local base is sure of it.
    sure = [(r, l) for (_, r), (_, l) in zip(remote, local) if math.exp(l[0][1]) > 0.5]
    assert sure and all(r[0][0] == l[0][0] for r, l in sure)
