"""Shared fixtures: the tiny random model pair (see tiny_models.py) and the real packaged pair."""

from __future__ import annotations

import pytest
from tiny_models import tiny_base_tokenizer, tiny_draft_tokenizer, tiny_gemma3, tiny_llama

from wsd_llm import TransformersModel, WSDConfig, WSDPipeline


@pytest.fixture(scope="session")
def tiny_draft() -> TransformersModel:
    return tiny_llama(tiny_draft_tokenizer())


@pytest.fixture(scope="session")
def tiny_base() -> TransformersModel:
    return tiny_gemma3(tiny_base_tokenizer())


@pytest.fixture(scope="session")
def tiny_pipe(tiny_draft, tiny_base) -> WSDPipeline:
    return WSDPipeline(draft=tiny_draft, base=tiny_base)


@pytest.fixture(scope="session")
def real_pipe() -> WSDPipeline:
    """SmolLM2-135M-Instruct (draft) and Gemma-3-270M (base), loaded once for every test folder.

    The first load on a machine converts both GGUF files (a few minutes).
    """
    return WSDPipeline.from_pretrained(config=WSDConfig(max_new_tokens=40, max_draft_tokens=64))
