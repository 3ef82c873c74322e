"""What the pipeline needs from the draft model and from the base model.

The pipeline hands text between the two (their vocabularies may differ) and decides the
switch in the base's token space. The paper calls the large model the *base* (users pass
``base=``); the reference code calls it the *target*, the word speculative decoding uses
for the model that checks a draft, and these protocols use that word: ``TargetModel``,
``TargetSession``. Local transformers models play both roles; remote endpoints either.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from wsd_llm.messages import Message
from wsd_llm.results import FinishReason
from wsd_llm.sampling import Sampling

if TYPE_CHECKING:
    from wsd_llm.config import WSDConfig
    from wsd_llm.results import WSDResult


@runtime_checkable
class DraftModel(Protocol):
    """The small aligned model that writes the beginning of the reply."""

    name: str

    @property
    def bos_token(self) -> str | None: ...

    @property
    def context_window(self) -> int:
        """Most tokens the model attends to."""
        ...

    def apply_chat_template(self, messages: Sequence[Message]) -> str:
        """The model's chat template over ``messages``, with the generation prompt, as text."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def stream_draft(self, prompt: str, sampling: Sampling) -> Iterator[str]:
        """Write a reply to ``prompt``; after each token yield the whole text so far.

        Ends at an end-of-sequence token, at a token whose text is in ``sampling.stop_tokens``,
        or after ``sampling.max_tokens``. Closing the iterator stops the model at once.
        """
        ...


@runtime_checkable
class TargetSession(Protocol):
    """One request's state on the base model (its KV cache, for a local model).

    A session may also have ``close()``, which the run calls when it is done with the session (a
    local model keeps its KV for later calls that share a prefix).
    """

    forwarded_tokens: int
    finish_reason: FinishReason | None

    def score(self, ids: Sequence[int], start: int) -> list[float]:
        """``P(ids[j] | ids[:j])`` for ``start <= j < len(ids)``, reusing earlier work on a shared prefix.

        Raises:
            ValueError: ``start < 1`` (the first token has nothing before it).
        """
        ...

    def generate(self, ids: Sequence[int], sampling: Sampling) -> Iterator[int]:
        """Continue ``ids``, yielding the new token ids one by one.

        Ends at end-of-sequence or after ``sampling.max_tokens``, and sets ``finish_reason``.
        """
        ...

    def logprobs(self, ids: Sequence[int], start: int, top: int) -> list[tuple[float, list[tuple[str, float]]]]:
        """``log P(ids[j] | ids[:j])`` for ``start <= j < len(ids)``, each with the ``top`` most likely
        tokens at that position as ``(text, logprob)``, most likely first.

        Raises:
            ValueError: ``start < 1``.
        """
        ...


@runtime_checkable
class TargetModel(Protocol):
    """The large base model that checks the draft and writes the rest."""

    name: str

    @property
    def bos_token(self) -> str | None: ...

    @property
    def context_window(self) -> int: ...

    def apply_chat_template(self, messages: Sequence[Message]) -> str: ...

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, without special tokens added."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``, special tokens skipped."""
        ...

    def open_session(self) -> TargetSession: ...


@runtime_checkable
class BatchedTarget(Protocol):
    """A base model that can run many conversations at once (the one-shot order of the reference)."""

    def generate_batch(self, draft: DraftModel, conversations: Sequence[Sequence[Message]],
                       config: WSDConfig) -> list[WSDResult]:
        """One result per conversation, in order.

        Raises:
            TypeError: ``draft`` cannot join this model's batches (another backend).
        """
        ...


@runtime_checkable
class ContinuousBatching(Protocol):
    """A model whose engine batches the requests in flight (vLLM's continuous batching): concurrent
    runs, each in its own thread, share forward passes, so a pipeline runs a batch as threads and a
    server needs no lock around it."""

    batches_concurrent_requests: Literal[True]
