"""A base model behind an OpenAI-compatible server (llama-cpp-python, vLLM).

The switch is decided in the base's token space, so the base's tokenizer is loaded locally
(tokenizer only). Scoring sends the text of the ids to ``/v1/completions`` with ``echo`` and
``logprobs`` and aligns the returned prompt tokens with the local ones by ``text_offset``,
never by index: servers differ in whether they count a leading BOS.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any

from wsd_llm.backends.remote.client import field
from wsd_llm.backends.remote.errors import RemoteCapabilityError, RemoteResponseError, RemoteStatusError
from wsd_llm.backends.remote.model import RemoteModel
from wsd_llm.results import FinishReason
from wsd_llm.sampling import Sampling
from wsd_llm.text import settled_tokens

logger = logging.getLogger(__name__)

_PROBE_TEXT = "The capital of France is Paris. The capital of Italy is"
_PROBE_TOLERANCE = 0.05
_NEEDS = ("WSD's base must score the draft. Use llama-cpp-python's server (--logits_all true) or vLLM; "
          "llama.cpp's llama-server, TGI and Ollama cannot do this")


class RemoteSession:
    """One request on a remote base. The server keeps (or not) its own prefix cache, so each
    score call sends the whole text; ``forwarded_tokens`` counts the tokens sent."""

    def __init__(self, lm: RemoteBase) -> None:
        self.lm = lm
        self.forwarded_tokens = 0
        self.finish_reason: FinishReason | None = None

    def score(self, ids: Sequence[int], start: int) -> list[float]:
        if start < 1:
            raise ValueError("the first scored token needs at least one token before it")
        if len(ids) <= start:
            return []
        self.forwarded_tokens += len(ids)
        return self.lm.prompt_probs(ids, start)

    def logprobs(self, ids: Sequence[int], start: int, top: int) -> list[tuple[float, list[tuple[str, float]]]]:
        if start < 1:
            raise ValueError("the first scored token needs at least one token before it")
        if len(ids) <= start:
            return []
        self.forwarded_tokens += len(ids)
        return self.lm.prompt_logprobs(ids, start, top)

    def generate(self, ids: Sequence[int], sampling: Sampling) -> Iterator[int]:
        """Stream the server's continuation of ``ids``, re-encoded to ids with the local tokenizer.

        Servers stream text, not ids; text is turned into ids only as far as later text cannot
        re-tokenize it (``text.settled_tokens``), and the rest at the end.
        """
        self.finish_reason = None
        text, sent = "", 0
        for event in self.lm.stream_completion(self.lm.server_text(ids), sampling):
            choice = field(event, "choices", 0, where=self.lm.where)
            text += choice.get("text") or ""
            if choice.get("finish_reason"):
                self.finish_reason = "length" if choice["finish_reason"] == "length" else "stop"
            encoded = self.lm.encode(text)
            settled = settled_tokens(encoded, text, lambda n: self.lm.encode(text[:n]))
            yield from encoded[sent:settled]
            sent = max(sent, settled)
        yield from self.lm.encode(text)[sent:]
        self.finish_reason = self.finish_reason or "stop"


class RemoteBase(RemoteModel):
    """The base model of a WSD pipeline, served by an OpenAI-compatible server.

    The constructor probes the server once and fails with :class:`RemoteCapabilityError` if
    it cannot return correct prompt log-probabilities.
    """

    def open_session(self) -> RemoteSession:
        return RemoteSession(self)

    def server_text(self, ids: Sequence[int]) -> str:
        """The prompt string that makes the server see ``ids`` (special tokens kept as text)."""
        with self.lock:
            return self.server_prompt(self.tokenizer.decode(list(ids), skip_special_tokens=False))

    def _offsets(self, ids: Sequence[int], start: int, with_special: bool) -> list[int]:
        """Character offset of each id from ``start`` on (and of the end). Servers differ in whether
        ``text_offset`` counts special tokens' text: llama-cpp-python does not, vLLM does."""
        with self.lock:
            return [len(self.tokenizer.decode(list(ids[:j]), skip_special_tokens=not with_special))
                    for j in range(start, len(ids) + 1)]

    def _echo(self, text: str, top: int = 1) -> dict[str, Any]:
        return self.completion(text, echo=True, logprobs=top, max_tokens=1)

    def _echoed(self, ids: Sequence[int], start: int, top: int = 1) -> tuple[dict[str, Any], list[int]]:
        """One echo request for ``ids``: the answer's ``logprobs`` and, for each of ``ids[start:]``,
        the index of its entry there."""
        logprobs = field(self._echo(self.server_text(ids), top), "choices", 0, "logprobs", where=self.where)
        offsets = field(logprobs, "text_offset", where=self.where)
        values = field(logprobs, "token_logprobs", where=self.where)
        if not isinstance(offsets, list) or not isinstance(values, list) or len(offsets) != len(values):
            raise RemoteResponseError(f"{self.where} answered logprobs.text_offset and token_logprobs "
                                      "of different lengths")
        # A token is identified by the span it covers; the last echoed entry is the generated token.
        spans = {(offsets[i], offsets[i + 1]): i for i in range(len(offsets) - 1)}
        local = self._offsets(ids, start, with_special=False)
        if any(span not in spans for span in zip(local, local[1:])):
            local = self._offsets(ids, start, with_special=True)
        entries = []
        for j, span in enumerate(zip(local, local[1:])):
            if span not in spans:
                raise RemoteResponseError(
                    f"{self.where} returned no log-probability for the token at characters {span[0]}-{span[1]} "
                    f"({self.decode(ids[start + j: start + j + 1])!r}): the server tokenizes the text "
                    "differently from the local tokenizer; pass the tokenizer of the model the server runs")
            entries.append(spans[span])
        return logprobs, entries

    def prompt_probs(self, ids: Sequence[int], start: int) -> list[float]:
        """``P(ids[j] | ids[:j])`` for ``start <= j < len(ids)``, from one echo request."""
        logprobs, entries = self._echoed(ids, start)
        return [_exp(logprobs["token_logprobs"][i]) for i in entries]

    def prompt_logprobs(self, ids: Sequence[int], start: int, top: int
                        ) -> list[tuple[float, list[tuple[str, float]]]]:
        """``log P(ids[j] | ids[:j])`` for ``start <= j < len(ids)`` with the server's ``top`` most likely
        tokens at each position (its echoed ``top_logprobs``), from one echo request."""
        logprobs, entries = self._echoed(ids, start, max(top, 1))
        tops = logprobs.get("top_logprobs") or [None] * len(logprobs["token_logprobs"])
        result = []
        for i in entries:
            alternatives = sorted((tops[i] or {}).items(), key=lambda item: -item[1])[:top]
            result.append((_logprob(logprobs["token_logprobs"][i]), alternatives))
        return result

    def probe(self) -> None:
        """Check that the server returns prompt log-probabilities, and that they are aligned.

        The echoed log-probability of a token must equal the one the server reports when it
        generates that same token (llama-cpp-python shifts echoed values by one position when
        the prompt has no BOS, abetlen/llama-cpp-python#1983).
        """
        bos = self.bos_token or ""
        text = bos + _PROBE_TEXT
        try:
            answer = self._echo(text)
        except RemoteStatusError as error:
            raise RemoteCapabilityError(f"{self.where} refused to return prompt log-probabilities ({error}); "
                                        f"{_NEEDS}") from error
        self.detect_added_bos(answer, text)
        logprobs = (answer.get("choices") or [{}])[0].get("logprobs") or {}
        values = logprobs.get("token_logprobs")
        if not values or not logprobs.get("text_offset") or all(v is None for v in values):
            raise RemoteCapabilityError(
                f"{self.where} returned no prompt log-probabilities (choices[0].logprobs.token_logprobs and "
                f"text_offset with echo=true); {_NEEDS}")
        ids = self.encode(text)
        generated = self.completion(self.server_text(ids), max_tokens=1, logprobs=1)
        token_text = field(generated, "choices", 0, "text", where=self.where)
        expected = field(generated, "choices", 0, "logprobs", "token_logprobs", 0, where=self.where)
        extended = self.encode(text + token_text)
        if len(extended) != len(ids) + 1 or extended[: len(ids)] != ids:
            logger.info("%s: the probe's generated token %r merges with the prompt; alignment not checked",
                        self.where, token_text)
            return
        try:
            echoed = self.prompt_probs(extended, len(extended) - 1)[0]
        except RemoteResponseError as error:
            echoed = math.nan
            logger.debug("probe: %s", error)
        if not abs(echoed - _exp(expected)) <= _PROBE_TOLERANCE:
            raise RemoteCapabilityError(
                f"{self.where} returns misaligned prompt log-probabilities (echoed {'none' if math.isnan(echoed) else f'{echoed:.3f}'} vs generated "
                f"{_exp(expected):.3f} for the same token). llama-cpp-python does this when the prompt has no "
                "BOS token (abetlen/llama-cpp-python#1983); serve a model with a BOS token, or use vLLM")
        logger.info("%s scores prompts (server adds BOS: %s)", self.where, self.server_adds_bos)


def _logprob(value: float | None) -> float:
    if value is None:
        raise RemoteResponseError("the server returned a null log-probability for a scored token")
    return float(value)


def _exp(logprob: float | None) -> float:
    return math.exp(_logprob(logprob))
