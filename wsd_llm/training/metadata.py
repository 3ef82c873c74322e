"""What a trained drafter directory records about its training (``wsd_drafter.json``), and the
model it started from, which its implicit reward is measured against."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from wsd_llm.errors import one_line

if TYPE_CHECKING:
    from wsd_llm.backends.transformers.model import TransformersModel

METADATA_FILE = "wsd_drafter.json"


class DrafterMetadata(BaseModel):
    """The training record of a drafter.

    Attributes:
        reference: the model it was trained from (an absolute path or a hub id); ``None`` for
            the packaged SmolLM2-135M-Instruct.
        reference_name: that model's display name.
        beta: DPO's beta, which scales the implicit reward.
        data, eval_data: the preference data it was trained and held out on.
        steps: optimizer steps taken.
        lora_rank: the LoRA rank merged into the weights; ``None`` for full fine-tuning.
        settings: the other training settings (learning rate, max length...), for the record.
        evaluation: the held-out preference report at the end of training, if there was a held-out set.
    """

    format: str = "wsd-llm drafter"
    version: int = 1
    reference: str | None
    reference_name: str
    beta: float
    data: str
    eval_data: str | None = None
    steps: int
    lora_rank: int | None
    settings: dict[str, Any] = {}
    evaluation: dict[str, Any] | None = None


def model_reference(spec: str | os.PathLike[str] | None) -> str | None:
    """How to name ``spec`` so the reference loads again later: an absolute path, a hub id, or
    ``None`` for the packaged draft."""
    if spec is None:
        return None
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else str(spec)


def write_metadata(directory: Path, metadata: DrafterMetadata) -> Path:
    path = directory / METADATA_FILE
    path.write_text(metadata.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def read_metadata(directory: str | os.PathLike[str]) -> DrafterMetadata:
    """The training record of a drafter directory.

    Raises:
        ValueError: the directory is not a drafter trained by wsd-llm (no or a malformed record).
    """
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise ValueError(f"{directory} is not a drafter trained by wsd-llm (no {METADATA_FILE}); "
                         "train one with `wsd-llm train-drafter`")
    try:
        return DrafterMetadata.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as error:
        raise ValueError(f"{path} is not a valid drafter record: {one_line(error)}") from None


def load_model(spec: str | os.PathLike[str] | None, **load_kwargs: Any) -> TransformersModel:
    """A hub id, directory or ``.gguf`` (converted once, see ``wsd_llm.packaged``); ``None``: the packaged draft."""
    from wsd_llm import packaged
    from wsd_llm.backends.transformers.model import TransformersModel

    if spec is None:
        return packaged.load_draft(**load_kwargs)
    return TransformersModel.from_pretrained(spec, **load_kwargs)
