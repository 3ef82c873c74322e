"""One rule for per-call options in every face: stop strings given per call are added to the
pipeline's own (``WSDConfig.updated``), in ChatWSD, WSDLLM and ``wsd-llm serve`` alike."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from live_servers import free_port
from llama_index.llms.wsd import WSDLLM
from openai import OpenAI

from langchain_wsd import ChatWSD
from wsd_llm import WSDPipeline
from wsd_llm.server import create_app

QUESTION = "What is the capital of France?"
ABSENT = "zq-not-in-the-reply"


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` on a real socket of 127.0.0.1 in a thread; yields its ``/v1`` URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server thread ended before it started")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def ask_chat_wsd(pipe: WSDPipeline, stops: list[list[str]]) -> list[str]:
    llm = ChatWSD(pipeline=pipe)
    return [llm.invoke(QUESTION, stop=stop).content for stop in stops]


def ask_wsd_llm(pipe: WSDPipeline, stops: list[list[str]]) -> list[str]:
    llm = WSDLLM(pipeline=pipe)
    return [llm.complete(QUESTION, stop=stop).text for stop in stops]


def ask_server(pipe: WSDPipeline, stops: list[list[str]]) -> list[str]:
    with serving(create_app(pipe)) as url:
        client = OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=300)
        question = [{"role": "user", "content": QUESTION}]
        replies = [client.chat.completions.create(model="wsd", messages=question, stop=stop,
                                                  max_tokens=pipe.config.max_new_tokens)
                   for stop in stops]
    return [reply.choices[0].message.content for reply in replies]


@pytest.mark.parametrize("ask", [ask_chat_wsd, ask_wsd_llm, ask_server], ids=["ChatWSD", "WSDLLM", "server"])
def test_per_call_stop_strings_add_to_the_configured_ones(real_pipe, ask: Callable[..., list[str]]):
    full = real_pipe.generate(QUESTION).text
    words = full.split()
    early = words[1]  # a call's stop string, before the configured one
    configured = next(word for word in words[len(words) // 2 :] if full.index(word) > full.index(early))
    assert ABSENT not in full
    pipe = WSDPipeline(real_pipe.draft, real_pipe.base, real_pipe.config.updated(stop=[configured]))

    stopped_early, stopped_at_configured = ask(pipe, [[early], [ABSENT]])
    print(f"{full!r}: call stop {early!r} -> {stopped_early!r}; "
          f"configured {configured!r} -> {stopped_at_configured!r}")
    assert stopped_early == full[: full.index(early)]
    assert stopped_at_configured == full[: full.index(configured)]  # the call's stop did not replace it
