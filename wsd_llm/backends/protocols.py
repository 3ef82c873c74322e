"""What the pipeline needs from the draft model and from the base model.

The pipeline hands text between the two (their vocabularies may differ) and decides the
switch in the base's token space. Local transformers models implement both roles; remote
endpoints can implement either.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal, Protocol, runtime_checkable

from wsd_llm.messages import Message


@runtime_checkable
class DraftLM(Protocol):
    """The small aligned model that writes the beginning of the reply."""

    name: str

    @property
    def bos_token(self) -> str | None: ...

    @property
    def context_window(self) -> int: ...

    def apply_chat_template(self, messages: Sequence[Message]) -> str: ...

    def count_tokens(self, text: str) -> int: ...

    def stream_draft(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        top_p: float,
        seed: int | None,
        stop_tokens: Sequence[str],
    ) -> Iterator[str]:
        """Write a reply to ``prompt``; after each token yield the whole text so far.

        Ends at an end-of-sequence token, at a token whose text is in ``stop_tokens``, or after
        ``max_tokens``. Closing the iterator stops the model at once.
        """
        ...


@runtime_checkable
class BaseSession(Protocol):
    """One request's state on the base model (its KV cache, for a local model)."""

    forwarded_tokens: int
    finish_reason: Literal["stop", "length"] | None

    def score(self, ids: Sequence[int], start: int) -> list[float]:
        """``P(ids[j] | ids[:j])`` for ``start <= j < len(ids)``, reusing earlier work on a shared prefix."""
        ...

    def continue_greedy(self, ids: Sequence[int], max_new_tokens: int) -> Iterator[int]:
        """Greedy continuation of ``ids``, yielded token by token.

        Ends at end-of-sequence or after ``max_new_tokens``, and sets ``finish_reason``.
        """
        ...


@runtime_checkable
class BaseLM(Protocol):
    """The large base model that checks the draft and writes the rest."""

    name: str

    @property
    def bos_token(self) -> str | None: ...

    @property
    def context_window(self) -> int: ...

    def apply_chat_template(self, messages: Sequence[Message]) -> str: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def open_session(self) -> BaseSession: ...
