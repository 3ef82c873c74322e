"""The text side of a model: chat template, encode, decode. Shared by local and remote backends,
since a remote base still decides the switch in its own token space."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from wsd_llm.backends.transformers.conversion import converted_path
from wsd_llm.hub import check_source
from wsd_llm.messages import Message

TokenizerSpec = PreTrainedTokenizerBase | str | os.PathLike[str]


def load_tokenizer(spec: TokenizerSpec, *, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """A tokenizer object as is, or a tokenizer-only load of a hub id, a directory or a ``.gguf`` file."""
    if isinstance(spec, PreTrainedTokenizerBase):
        return spec
    check_source(spec)
    path = Path(spec)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"no GGUF file at {path}")
        converted = converted_path(path)  # reading a large vocabulary out of a GGUF takes a while
        if (converted / "tokenizer_config.json").is_file():
            return AutoTokenizer.from_pretrained(converted, trust_remote_code=trust_remote_code)
        return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, trust_remote_code=trust_remote_code)
    return AutoTokenizer.from_pretrained(str(spec), trust_remote_code=trust_remote_code)


class TokenizerMixin:
    """Text methods of a backend that holds ``tokenizer``, ``name`` and a ``lock`` (tokenizers are not thread-safe)."""

    tokenizer: PreTrainedTokenizerBase
    name: str
    lock: threading.RLock

    @property
    def bos_token(self) -> str | None:
        return self.tokenizer.bos_token

    def apply_chat_template(self, messages: Sequence[Message]) -> str:
        if not self.tokenizer.chat_template:
            raise ValueError(
                f"{self.name} has no chat template: use an instruct model as the draft, "
                "and base_format='plain' for a base model"
            )
        with self.lock:
            return self.tokenizer.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=True
            )

    def encode(self, text: str) -> list[int]:
        with self.lock:
            return self.tokenizer.encode(text, add_special_tokens=False)

    def decode(self, ids: Sequence[int]) -> str:
        with self.lock:
            return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def single_token_ids(self, texts: Sequence[str]) -> set[int]:
        """Ids of the texts that are one token each (special end-of-turn markers)."""
        ids = set()
        for text in texts:
            encoded = self.encode(text)
            if len(encoded) == 1:
                ids.add(encoded[0])
        return ids
