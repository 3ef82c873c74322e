"""A draft model behind an OpenAI-compatible server.

The draft's own chat template is applied locally (its tokenizer is loaded, tokenizer only),
and the text goes to ``/v1/completions``: the prompt is then exactly the one a local draft
would see, and the server's chat formatting cannot differ from the reference's.
"""

from __future__ import annotations

from collections.abc import Iterator

from wsd_llm.backends.remote.client import field
from wsd_llm.backends.remote.model import RemoteModel
from wsd_llm.sampling import Sampling
from wsd_llm.text import trim_incomplete_char


class RemoteDraft(RemoteModel):
    """The draft model of a WSD pipeline, served by an OpenAI-compatible server (streamed)."""

    def probe(self) -> None:
        """One-token completion: checks the server answers, and learns whether it adds a BOS."""
        text = (self.bos_token or "") + "Hello"
        self.detect_added_bos(self.completion(text, max_tokens=1), text)

    def stream_draft(self, prompt: str, sampling: Sampling) -> Iterator[str]:
        """The draft's reply streamed from ``/v1/completions``, the whole text so far after each piece."""
        text = ""
        for event in self.stream_completion(self.server_prompt(prompt), sampling):
            piece = field(event, "choices", 0, where=self.where).get("text") or ""
            if piece:
                text += piece
                yield trim_incomplete_char(text)
