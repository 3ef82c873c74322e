"""The two models of a WSD pair on their own: what WSD is compared against.

*Base only* is the base model answering alone in the format WSD gives it (the reference's plain
``[User]/[Assistant]`` format by default), greedily; *draft only* is the aligned draft answering
alone with its chat template, sampled as WSD drafts. Both take the same budget as a WSD reply
(``max_new_tokens``, in each model's own tokens) and the same stop strings.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from wsd_llm import prompts
from wsd_llm.config import WSDConfig
from wsd_llm.messages import Conversation, normalize_messages
from wsd_llm.results import FinishReason
from wsd_llm.text import cut_at_stop, finished_text

if TYPE_CHECKING:
    from wsd_llm.backends.protocols import DraftModel, TargetModel


class Reply(BaseModel):
    """One model's reply on its own."""

    text: str
    tokens: int = Field(description="Tokens the model wrote, in its own tokenizer's tokens.")
    seconds: float = Field(description="Wall-clock time of the generation, prompt processing included.")
    finish_reason: FinishReason
    model: str


def base_only(base: TargetModel, messages: Conversation, config: WSDConfig | None = None, *,
              ignore_eos: bool = False) -> Reply:
    """The base model's reply, alone, in ``config.base_format`` (plain by default), sampled as WSD's
    base continues (``base_*`` settings: greedy by default).

    Args:
        base: the base model (any ``TargetModel`` backend).
        messages: a prompt string or a conversation ending with a user turn.
        config: ``max_new_tokens`` bounds the reply; ``stop`` adds stop strings to the format's turn markers.
        ignore_eos: write exactly ``max_new_tokens`` tokens, past end-of-sequence and stop strings
            (benchmarks time equal output lengths with it).

    Returns:
        The reply, cut before the first stop string.

    Raises:
        ValueError: a malformed conversation.
    """
    config = config or WSDConfig()
    conversation = normalize_messages(messages)
    markers = prompts.base_stops(config.base_format)
    stops = markers + config.stop
    ids = base.encode(prompts.base_prompt(base, conversation, config.base_format))
    session = base.open_session()
    written: list[int] = []
    stopped = False
    begin = time.perf_counter()
    sampling = dataclasses.replace(config.base_sampling(config.max_new_tokens), ignore_eos=ignore_eos)
    for token in session.generate(ids, sampling):
        written.append(token)
        if not ignore_eos and cut_at_stop(base.decode(written), stops)[1]:
            stopped = True
            break
    seconds = time.perf_counter() - begin
    text, _ = finished_text(base.decode(written), stops, markers)
    finish: FinishReason = "stop" if stopped else session.finish_reason or "stop"
    return Reply(text=text, tokens=len(written), seconds=seconds, finish_reason=finish, model=base.name)


def draft_only(draft: DraftModel, messages: Conversation, config: WSDConfig | None = None) -> Reply:
    """The draft model's reply, alone, with its chat template, sampled as WSD drafts
    (``temperature``, ``top_p``, ``seed``) for at most ``max_new_tokens`` draft tokens.

    Raises:
        ValueError: a malformed conversation.
    """
    config = config or WSDConfig()
    conversation = normalize_messages(messages)
    stops = prompts.INSTRUCT_STOPS + config.stop
    sampling = dataclasses.replace(config.draft_sampling(), max_tokens=config.max_new_tokens)
    text, tokens, stopped = "", 0, False
    begin = time.perf_counter()
    drafts = draft.stream_draft(prompts.draft_prompt(draft, conversation), sampling)
    try:
        for grown in drafts:
            tokens += 1
            text, stopped = cut_at_stop(grown, stops)
            if stopped:
                break
    finally:
        drafts.close()
    seconds = time.perf_counter() - begin
    finish: FinishReason = "length" if not stopped and tokens == sampling.max_tokens else "stop"
    return Reply(text=text.strip(), tokens=tokens, seconds=seconds, finish_reason=finish, model=draft.name)
