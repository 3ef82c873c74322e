"""LangChain tests: unit tests on the tiny random pair, `real` tests on the packaged pair."""

from __future__ import annotations

import pytest

from langchain_wsd import ChatWSD


@pytest.fixture
def real_llm(real_pipe) -> ChatWSD:
    return ChatWSD(pipeline=real_pipe, max_tokens=16)
