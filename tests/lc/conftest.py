"""LangChain tests: unit tests on the tiny random pair, `real` tests on the packaged pair."""

from __future__ import annotations

import pytest

from langchain_wsd import ChatWSD
from wsd_llm import WSDConfig, WSDPipeline


@pytest.fixture(scope="session")
def real_wsd_pipe() -> WSDPipeline:
    """The packaged pair, loaded once for every real LangChain test."""
    return WSDPipeline.from_pretrained(config=WSDConfig(max_new_tokens=40, max_draft_tokens=64))


@pytest.fixture
def real_llm(real_wsd_pipe) -> ChatWSD:
    return ChatWSD(pipeline=real_wsd_pipe, max_tokens=16)
