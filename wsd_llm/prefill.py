"""Start the draft's reply with fixed text, so a small model cannot miss a required format
(a required tool call where no grammar can force it: ``wsd_llm.tools``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from wsd_llm.backends.protocols import DraftModel
from wsd_llm.messages import Message
from wsd_llm.sampling import Sampling


class PrefilledDraft:
    """A draft model whose replies begin with ``prefix``.

    The prefix is appended to the draft's prompt and counted as drafted text, so the base
    model scores it like any draft token and the WSD switch rule is unchanged.
    """

    def __init__(self, draft: DraftModel, prefix: str) -> None:
        self.inner = draft
        self.prefix = prefix
        self.name = draft.name

    @property
    def bos_token(self) -> str | None:
        return self.inner.bos_token

    @property
    def context_window(self) -> int:
        return self.inner.context_window

    def apply_chat_template(self, messages: Sequence[Message]) -> str:
        return self.inner.apply_chat_template(messages) + self.prefix

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def stream_draft(self, prompt: str, sampling: Sampling) -> Iterator[str]:
        """The prefix first (one drafted step, so it survives an immediate end), then the model's text."""
        texts = self.inner.stream_draft(prompt, sampling)
        try:
            yield self.prefix
            for text in texts:
                yield self.prefix + text
        finally:
            texts.close()  # stops the model when the pipeline stops drafting
