"""The real packaged pair: SmolLM2-135M-Instruct (draft) and Gemma-3-270M (base), on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsd_llm import WSDConfig, WSDPipeline


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.real)


@pytest.fixture(scope="session")
def real_pipe() -> WSDPipeline:
    """Loaded once; the first load on a machine converts both GGUF files (a few minutes)."""
    return WSDPipeline.from_pretrained(config=WSDConfig(max_new_tokens=40, max_draft_tokens=64))
