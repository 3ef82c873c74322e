"""What users may pass as a model: a backend object, a ``(model, tokenizer)`` pair, or a hub id,
directory or GGUF path (loaded with transformers, imported only then)."""

from __future__ import annotations

import os
from typing import Any, Literal, Union

from wsd_llm.backends.protocols import DraftModel, TargetModel

ModelSpec = Union[DraftModel, TargetModel, str, "os.PathLike[str]", tuple]


def as_model(spec: ModelSpec, role: Literal["draft", "base"], **load_kwargs: Any) -> Any:
    """The backend for ``spec``.

    Args:
        spec: a backend object (anything implementing ``DraftModel`` / ``TargetModel``), a
            ``(model, tokenizer)`` pair of transformers objects, or a hub id / directory / ``.gguf`` path.
        role: which role the model plays, for the protocol check and error messages.
        load_kwargs: passed to ``TransformersModel.from_pretrained`` when ``spec`` is a name.

    Raises:
        TypeError: ``spec`` is none of these.
    """
    if isinstance(spec, (str, os.PathLike)) or (isinstance(spec, tuple) and len(spec) == 2):
        from wsd_llm.backends.transformers.model import TransformersModel

        if isinstance(spec, tuple):
            return TransformersModel(*spec)
        return TransformersModel.from_pretrained(spec, **load_kwargs)
    protocol = DraftModel if role == "draft" else TargetModel
    if not isinstance(spec, protocol):
        raise TypeError(
            f"{role} must be a model backend (e.g. TransformersModel), a (model, tokenizer) pair, "
            f"or a hub id / directory / .gguf path; got {type(spec).__name__}"
        )
    return spec
