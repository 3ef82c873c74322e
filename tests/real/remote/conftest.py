"""Real servers on 127.0.0.1 for the remote tests, started once per session and stopped after."""

from __future__ import annotations

import sys

import pytest
from live_servers import free_port, llama_server, server_process

from wsd_llm import packaged

SERVE_KEY = "sk-wsd-serve-test-7f3a"


@pytest.fixture(scope="session")
def base_server():
    """llama-cpp-python serving the packaged Gemma-3-270M GGUF."""
    with llama_server(packaged.base_gguf()) as url:
        yield url + "/v1"


@pytest.fixture(scope="session")
def draft_server():
    """llama-cpp-python serving the packaged SmolLM2-135M-Instruct GGUF."""
    with llama_server(packaged.draft_gguf()) as url:
        yield url + "/v1"


@pytest.fixture(scope="session")
def serve_key() -> str:
    return SERVE_KEY


@pytest.fixture(scope="session")
def wsd_server():
    """`wsd-llm serve` on the packaged pair, as a real process, with an API key and tight limits."""
    port = free_port()
    args = [sys.executable, "-m", "wsd_llm.cli", "serve", "--port", str(port), "--max-tokens", "24",
            "--max-draft-tokens", "64", "--max-request-bytes", "20000", "--workers", "1"]
    with server_process(args, port, ready_path="/health", env={"WSD_LLM_API_KEY": SERVE_KEY}) as url:
        yield url + "/v1"
