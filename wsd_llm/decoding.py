"""One WSD request: draft, check against the base, hand over, continue.

The draft is written in chunks. After each chunk its text is re-tokenized for the base,
and only the base tokens that can no longer change (all but the last few, see
``text.settled_tokens``) are scored, reusing the base KV cache. The window rule runs over the new
probabilities; when it fires, drafting stops and the base continues from its cache cropped
to the accepted prefix, so prompt and prefix are prefilled once. In faithful mode the chunk
is the whole draft, which is the reference's draft-then-check order.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from wsd_llm import prompts
from wsd_llm.backends.protocols import DraftModel, TargetModel, TargetSession
from wsd_llm.config import WSDConfig
from wsd_llm.errors import ContextWindowExceeded, OptionError
from wsd_llm.messages import Message
from wsd_llm.results import (
    FinishReason,
    StreamEvent,
    Timings,
    TokenLogprob,
    TopLogprob,
    WSDResult,
    build_result,
)
from wsd_llm.text import TextStream, common_prefix_length, cut_at_stop, settled_tokens


@dataclass
class _Clock:
    started: float = field(default_factory=time.perf_counter)
    timings: Timings = field(default_factory=Timings)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        begin = time.perf_counter()
        try:
            yield
        finally:
            setattr(self.timings, name, getattr(self.timings, name) + time.perf_counter() - begin)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


@dataclass
class _Handover:
    """The outcome of the check phase."""

    scored: list[int]
    prompt_length: int
    probs: list[float]
    switched: bool
    switch_index: int
    drafted: int

    @property
    def accepted(self) -> list[int]:
        """Prompt + the first k + 1 draft tokens (the reference slices the same way, empty drafts too)."""
        return self.scored[: self.prompt_length + self.switch_index + 1]

    @property
    def draft_ids(self) -> list[int]:
        return self.accepted[self.prompt_length :]


class WSDRun:
    """Runs one conversation through the draft and base models, yielding text as it is confirmed."""

    def __init__(self, draft: DraftModel, base: TargetModel, messages: list[Message], config: WSDConfig):
        self.draft, self.base, self.messages, self.config = draft, base, messages, config
        self.clock = _Clock()  # restarted when the run starts: a prepared run may wait its turn
        self.draft_stops = prompts.INSTRUCT_STOPS
        self.markers = prompts.base_stops(config.base_format)
        self.reply_stops = self.markers + config.stop
        self._prompts: tuple[str, str, int] | None = None  # draft prompt, base prompt, its length in tokens

    def events(self) -> Iterator[StreamEvent]:
        """The reply as :class:`StreamEvent` pieces; the last event carries the result."""
        self.clock = _Clock()
        if self._prompts is None:
            self.check()
        session = self.base.open_session()
        try:
            yield from self._reply(session)
        finally:
            close = getattr(session, "close", None)  # a local base keeps the KV for later calls
            if close is not None:
                close()

    def _reply(self, session: TargetSession) -> Iterator[StreamEvent]:
        config = self.config
        draft_prompt, base_prompt, prompt_length = self._prompts
        stream = TextStream(self.reply_stops, self.markers)
        drafts = self.draft.stream_draft(draft_prompt, config.draft_sampling())
        try:
            handover = yield from self._draft_and_check(drafts, session, stream, base_prompt, prompt_length)
        finally:
            drafts.close()
        draft_ids = handover.draft_ids
        draft_text = self.base.decode(draft_ids)
        yield from self._emit(stream.update(draft_text))
        stream.start_base(draft_text)
        continuation: list[int] = []
        budget = config.max_new_tokens - len(draft_ids)
        finish_reason: FinishReason = "stop" if stream.stopped or budget > 0 else "length"
        if not stream.stopped and budget > 0:
            with self.clock.phase("continue_s"):
                for token in session.generate(handover.accepted, config.base_sampling(budget, len(draft_ids))):
                    continuation.append(token)
                    yield from self._emit(stream.update(self.base.decode(draft_ids + continuation)))
                    if stream.stopped:
                        break
            if not stream.stopped:
                finish_reason = session.finish_reason or "stop"
        yield from self._emit(stream.update(self.base.decode(draft_ids + continuation), final=True))
        result = self._result(stream.text, handover, continuation, session, finish_reason)
        result.draft_tokens_forwarded = getattr(drafts, "forwarded_tokens", None)
        result.draft_tokens_cached = getattr(drafts, "cached_tokens", None)
        result.timings.total_s = self.clock.elapsed()
        yield StreamEvent(text="", source="base" if continuation else "draft", result=result)

    def _result(self, text: str, handover: _Handover, continuation: list[int], session: TargetSession,
                finish_reason: FinishReason) -> WSDResult:
        result = build_result(
            self.base.decode,
            text=text,
            kept=handover.draft_ids,
            continuation=continuation,
            scored=handover.scored[handover.prompt_length :],
            probs=handover.probs,
            switched=handover.switched,
            switch_index=handover.switch_index,
            prompt_tokens=handover.prompt_length,
            drafted=handover.drafted,
            forwarded=session.forwarded_tokens,
            cached=getattr(session, "cached_tokens", 0),
            finish_reason=finish_reason,
            draft_model=self.draft.name,
            base_model=self.base.name,
            timings=self.clock.timings,
        )
        if self.config.logprobs:
            result.logprobs = self._logprobs(session, handover, continuation, result)
        constraint = self.config.constraint
        if constraint is not None and constraint.schema is not None and finish_reason == "stop":
            with contextlib.suppress(ValueError):  # only a stop string of the caller's can cut it short
                result.parsed = json.loads(text)
        return result

    def _logprobs(self, session: TargetSession, handover: _Handover, continuation: list[int],
                  result: WSDResult) -> list[TokenLogprob]:
        """The reply's tokens scored by the base in one pass (its cache holds most of them already)."""
        if not hasattr(session, "logprobs"):
            raise TypeError(f"the base {self.base.name} cannot report logprobs: its session has no "
                            "logprobs(ids, start, top) method; call without logprobs")
        reply = handover.draft_ids[: result.draft_tokens] + continuation[: result.base_tokens]
        prompt = handover.scored[: handover.prompt_length]
        with self.clock.phase("check_s"):
            scored = session.logprobs(prompt + reply, len(prompt), self.config.top_logprobs)
        return [
            TokenLogprob(token=self.base.decode([token]), logprob=logprob,
                         source="draft" if index < result.draft_tokens else "base",
                         top_logprobs=[TopLogprob(token=text, logprob=value) for text, value in top])
            for index, (token, (logprob, top)) in enumerate(zip(reply, scored))
        ]

    def _draft_and_check(
        self,
        drafts: Iterator[str],
        session: TargetSession,
        stream: TextStream,
        base_prompt: str,
        prompt_length: int,
    ) -> Generator[StreamEvent, None, _Handover]:
        config, policy = self.config, self.config.policy
        chunk = config.chunk_size if config.mode == "incremental" else config.max_draft_tokens
        limit = prompt_length + config.max_new_tokens
        text, finished, drafted = "", False, 0
        scored: list[int] = []
        probs: list[float] = []
        while True:
            with self.clock.phase("draft_s"):
                for _ in range(chunk):
                    grown = next(drafts, None)
                    if grown is None:
                        finished = True
                        break
                    drafted += 1
                    text, hit = cut_at_stop(grown, self.draft_stops)
                    if hit or drafted == config.max_draft_tokens:
                        finished = True
                        break
            with self.clock.phase("check_s"):
                ready = self.base.encode(prompts.with_draft(base_prompt, text))
                if not finished:
                    ready = ready[: self._stable_tokens(base_prompt, text, ready)]
                ready = ready[:limit]
                valid = max(common_prefix_length(scored, ready) - prompt_length, 0)
                del probs[valid:]
                probs += session.score(ready, prompt_length + valid)
                scored = ready
                switch = policy.first_switch(probs, valid)
            if switch is not None:
                return _Handover(scored, prompt_length, probs, True, switch, drafted)
            if finished or len(scored) >= limit:
                return _Handover(scored, prompt_length, probs, False, len(probs) - 1, drafted)
            yield from self._emit(stream.update(self.base.decode(scored[prompt_length:])))
            if stream.stopped:  # the accepted draft already holds a stop string: the reply is done
                return _Handover(scored, prompt_length, probs, False, len(probs) - 1, drafted)

    def _stable_tokens(self, base_prompt: str, text: str, ids: list[int]) -> int:
        body = text.strip()
        return settled_tokens(ids, body, lambda n: self.base.encode(prompts.with_draft(base_prompt, body[:n])),
                              self.draft_stops + self.reply_stops)

    def _emit(self, pieces: list[tuple[str, str]]) -> Iterator[StreamEvent]:
        for text, source in pieces:
            if self.clock.timings.first_text_s is None:
                self.clock.timings.first_text_s = self.clock.elapsed()
            yield StreamEvent(text=text, source=source)

    def check(self) -> None:
        """Build both prompts (once: the run reuses them) and check that they fit both context
        windows and that both models can write under the constraint.

        Raises:
            wsd_llm.errors.ContextWindowExceeded: a prompt longer than a model's context window.
            wsd_llm.errors.OptionError: a constraint a model cannot write under.
        """
        base_prompt = prompts.base_prompt(self.base, self.messages, self.config.base_format)
        draft_prompt = prompts.draft_prompt(self.draft, self.messages)
        prompt_length = len(self.base.encode(base_prompt))
        self._check_fits(draft_prompt, prompt_length)
        self._check_constraint()
        self._prompts = (draft_prompt, base_prompt, prompt_length)

    def _check_constraint(self) -> None:
        """Both models must be able to decode under the config's constraint (``check_constraint``)."""
        if self.config.constraint is None:
            return
        for role, model in (("draft", self.draft), ("base", self.base)):
            check = getattr(model, "check_constraint", None)
            if check is None:
                raise OptionError(f"the {role} model {model.name} cannot write under a constraint (only local "
                                  "transformers models can yet); drop the constraint or use local models",
                                  option="constraint")
            check(self.config.constraint)

    def _check_fits(self, draft_prompt: str, base_prompt_tokens: int) -> None:
        draft_tokens = self.draft.count_tokens(draft_prompt)
        for role, used, model in (
            ("draft", draft_tokens, self.draft),
            ("base", base_prompt_tokens, self.base),
        ):
            if used >= model.context_window:
                raise ContextWindowExceeded(
                    f"the conversation is {used} tokens for the {role} model {model.name}, "
                    f"which reads at most {model.context_window}; shorten the conversation"
                )
