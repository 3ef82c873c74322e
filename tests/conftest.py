"""Shared fixtures: the tiny random model pair (see tiny_models.py)."""

from __future__ import annotations

import pytest
from tiny_models import tiny_base_tokenizer, tiny_draft_tokenizer, tiny_gemma3, tiny_llama

from wsd_llm import TransformersModel, WSDPipeline


@pytest.fixture(scope="session")
def tiny_draft() -> TransformersModel:
    return tiny_llama(tiny_draft_tokenizer())


@pytest.fixture(scope="session")
def tiny_base() -> TransformersModel:
    return tiny_gemma3(tiny_base_tokenizer())


@pytest.fixture(scope="session")
def tiny_pipe(tiny_draft, tiny_base) -> WSDPipeline:
    return WSDPipeline(draft=tiny_draft, base=tiny_base)
