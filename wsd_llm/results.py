"""What a WSD run returns: the reply, where the switch happened, and what it cost."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

Source = Literal["draft", "base"]
# Why a reply ended, in OpenAI's words: "stop" (end of turn or a stop string), "length" (the budget),
# "tool_calls" (the reply is a complete tool call).
FinishReason = Literal["stop", "length", "tool_calls"]

# What faces report about a run besides its text and usage (server ``wsd`` field, LangChain
# ``response_metadata``, LlamaIndex ``raw``, ``wsd-llm run`` lines).
_STATS = ("switched", "switch_index", "draft_tokens", "base_tokens", "draft_tokens_generated",
          "base_tokens_forwarded", "base_tokens_cached", "draft_tokens_forwarded", "draft_tokens_cached",
          "finish_reason", "draft_model", "base_model")


class Timings(BaseModel):
    """Wall-clock seconds per phase of one run."""

    draft_s: float = 0.0
    check_s: float = 0.0
    continue_s: float = 0.0
    first_text_s: float | None = Field(None, description="Until the first text was emitted.")
    total_s: float = 0.0


class TopLogprob(BaseModel):
    """A token the base model could have written at a position, with its log-probability."""

    token: str
    logprob: float = Field(description="Natural log of the base model's probability.")


class TokenLogprob(BaseModel):
    """One token of the reply with its log-probability under the base model.

    The accepted draft's tokens are scored by the base like the continuation's, so a reply's
    logprobs show how much the base agreed with what it kept (OpenAI's ``logprobs.content``).
    """

    token: str = Field(description="The token's text (base tokenizer).")
    logprob: float = Field(description="Natural log of the base model's probability of the token, before "
                                       "any temperature or penalty.")
    source: Source = Field(description="Which model wrote the token.")
    top_logprobs: list[TopLogprob] = Field(default_factory=list, description="The base's most likely tokens "
                                           "at this position, most likely first (``top_logprobs`` of them).")


class ToolCall(BaseModel):
    """A tool call read from a reply (OpenAI's ``tool_calls[i]``, without the ``type``)."""

    id: str = Field(description="The call's id (``call_...``), which the tool's result message refers to.")
    name: str = Field(description="The tool's name: always one of the tools of the request.")
    arguments: str = Field(description="The arguments as JSON text, as the model wrote them; not valid JSON "
                           "when the budget cut the call (finish_reason 'length').")


class ToolCallDelta(BaseModel):
    """A piece of a tool call while it is written (OpenAI's streamed ``delta.tool_calls[i]``): the first
    piece carries ``id`` and ``name``; the ``arguments`` pieces add up to :attr:`ToolCall.arguments`."""

    index: int = 0
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class WSDResult(BaseModel):
    """The reply and the switch statistics of one WSD run.

    Token counts are in base-model tokens except the ``draft_tokens_*`` counts, which are the draft
    model's own tokens (``draft_tokens_generated`` includes those discarded after the switch).
    """

    text: str
    draft_text: str = Field(description="The part of the reply written by the draft model.")
    base_text: str = Field(description="The part of the reply written by the base model.")
    switched: bool = Field(description="Whether the switch rule fired (else the whole draft was kept).")
    switch_index: int = Field(description="Index k of the last kept draft token; -1 for an empty draft.")
    draft_tokens: int = Field(description="Draft tokens in the reply, in base tokens: k + 1, fewer when a "
                              "stop string cut the reply inside the draft.")
    base_tokens: int = Field(description="Tokens the base model wrote after the handover that are in the reply.")
    prompt_tokens: int = Field(description="Tokens of the base model's prompt (the conversation).")
    draft_tokens_generated: int
    base_tokens_forwarded: int = Field(description="Tokens the base model ran a forward pass on.")
    base_tokens_cached: int = Field(0, description="Prompt tokens the base read from its prefix cache "
                                    "instead of running them (OpenAI's ``cached_tokens``): the prompt's prefill "
                                    "was ``prompt_tokens - base_tokens_cached`` tokens.")
    draft_tokens_forwarded: int | None = Field(None, description="Tokens the draft model ran a forward pass "
                                               "on (its prompt's prefill and what it wrote); None when the "
                                               "draft does not say (a remote draft).")
    draft_tokens_cached: int | None = Field(None, description="Prompt tokens the draft read from its prefix "
                                            "cache instead of running them; None when the draft does not "
                                            "say.")
    probs: list[float] = Field(description="Base probabilities of the scored draft tokens.")
    tokens: list[str] = Field(description="Text of each scored draft token (base tokenizer), aligned with probs.")
    finish_reason: FinishReason
    draft_model: str
    base_model: str
    timings: Timings
    logprobs: list[TokenLogprob] | None = Field(
        None, description="Each reply token under the base model, when asked for (``logprobs=True``).")
    parsed: Any = Field(None, description="The reply's JSON value under a JSON constraint (schema or object); "
                        "None without one, or when the budget ran out first (finish_reason 'length').")
    tool_calls: list[ToolCall] | None = Field(
        None, description="The tool calls of the reply, when the request had tools and the reply is a call "
        "(its ``text`` is then the call as written); None otherwise.")

    @property
    def completion_tokens(self) -> int:
        """Tokens of the reply (kept draft + base), in base tokens."""
        return self.draft_tokens + self.base_tokens

    def usage(self) -> dict[str, int]:
        """Token counts in the OpenAI ``usage`` shape, which most token counters read."""
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}

    def openai_logprobs(self) -> dict[str, Any] | None:
        """``logprobs`` in OpenAI's chat shape (``{"content": [{"token", "logprob", "bytes",
        "top_logprobs"}]}``, what ``ChatOpenAI`` puts in ``response_metadata``), or None when not asked."""
        if self.logprobs is None:
            return None

        def entry(token: str, logprob: float) -> dict[str, Any]:
            return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

        return {"content": [{**entry(item.token, item.logprob),
                             "top_logprobs": [entry(top.token, top.logprob) for top in item.top_logprobs]}
                            for item in self.logprobs]}

    def stats(self) -> dict[str, Any]:
        """The switch statistics every face reports, as plain JSON.

        Keys: ``switched``, ``switch_index``, ``draft_tokens``, ``base_tokens``,
        ``draft_tokens_generated``, ``base_tokens_forwarded``, ``base_tokens_cached``,
        ``draft_tokens_forwarded``, ``draft_tokens_cached``, ``finish_reason``, ``draft_model``,
        ``base_model``, ``draft_chars``/``base_chars`` (characters of the reply each model wrote)
        and ``timings`` (seconds per phase). Token counts are as in the fields.
        """
        return {**self.model_dump(mode="json", include=set(_STATS)), "draft_chars": len(self.draft_text),
                "base_chars": len(self.base_text), "timings": self.timings.model_dump(mode="json")}


class StreamEvent(BaseModel):
    """A piece of the reply, tagged with the model that wrote it.

    With tools, a reply that is a call comes as ``tool_call`` pieces (``text`` empty) instead of text.
    The last event of a stream has empty ``text`` and carries the full ``result``.
    """

    text: str
    source: Source
    tool_call: ToolCallDelta | None = None
    result: WSDResult | None = None


def build_result(
    decode: Callable[[Sequence[int]], str],
    *,
    text: str,
    kept: Sequence[int],
    continuation: Sequence[int],
    scored: Sequence[int],
    probs: list[float],
    switched: bool,
    switch_index: int,
    prompt_tokens: int,
    drafted: int,
    forwarded: int,
    cached: int = 0,
    finish_reason: FinishReason,
    draft_model: str,
    base_model: str,
    timings: Timings,
) -> WSDResult:
    """The one way a run becomes a :class:`WSDResult` (incremental, faithful and one-shot runs).

    Args:
        decode: the base tokenizer's ``ids -> text``.
        text: the reply as returned (cut before any stop string).
        kept: the accepted draft in base ids (``k + 1`` tokens).
        continuation: the base's tokens after the handover, possibly past a stop string.
        scored: the draft's base ids that were scored, aligned with ``probs``.
        forwarded, cached: the base's tokens run through the model, and its prompt tokens read from
            its prefix cache instead.

    Token counts are those of ``text``: tokens that only wrote a cut-off stop string are
    not counted (OpenAI's ``completion_tokens`` counts the returned text).
    """
    kept_text = decode(kept)
    draft_part = text[: len(kept_text)]
    return WSDResult(
        text=text,
        draft_text=draft_part,
        base_text=text[len(draft_part):],
        switched=switched,
        switch_index=switch_index,
        draft_tokens=_covering(decode, [], kept, len(draft_part)),
        base_tokens=_covering(decode, kept, continuation, len(text)) if len(text) > len(draft_part) else 0,
        prompt_tokens=prompt_tokens,
        draft_tokens_generated=drafted,
        base_tokens_forwarded=forwarded,
        base_tokens_cached=cached,
        probs=probs,
        tokens=[decode([token]) for token in scored],
        finish_reason=finish_reason,
        draft_model=draft_model,
        base_model=base_model,
        timings=timings,
    )


def _covering(decode: Callable[[Sequence[int]], str], head: Sequence[int], tail: Sequence[int], chars: int) -> int:
    """Fewest tokens of ``tail`` that, after ``head``, decode to at least ``chars`` characters."""
    count = len(tail)
    while count > 0 and len(decode([*head, *tail[: count - 1]])) >= chars:
        count -= 1
    return count
