"""The user-facing WSD pipeline: generate, stream, their async twins, and batch."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from tqdm.auto import tqdm

from wsd_llm.backends.loading import ModelSpec, as_model
from wsd_llm.backends.protocols import BatchedTarget, DraftModel, TargetModel
from wsd_llm.config import WSDConfig
from wsd_llm.decoding import WSDRun
from wsd_llm.messages import Conversation, Message, normalize_messages
from wsd_llm.results import StreamEvent, WSDResult


def wsd_model_name(draft: str, base: str) -> str:
    """The one spelling of a WSD pair's name in every face: ``wsd:<draft>+<base>``."""
    return f"wsd:{draft}+{base}"


class WSDPipeline:
    """Weak-to-Strong Decoding: a small aligned draft model begins the reply, a base model finishes it.

    >>> pipe = WSDPipeline.from_pretrained()          # the packaged SmolLM2 draft + Gemma-3 base
    >>> pipe.generate("How do I stay focused?").text  # doctest: +SKIP

    Generation options (``max_new_tokens``, ``temperature``, ``stop``, ``gamma``...) can be
    overridden per call; they are validated like :class:`WSDConfig`.
    """

    def __init__(self, draft: ModelSpec, base: ModelSpec, config: WSDConfig | None = None) -> None:
        """Args:
            draft: the aligned draft model: a backend (``TransformersModel``, ``RemoteDraft``...),
                a ``(model, tokenizer)`` pair, or a hub id / directory / ``.gguf`` path.
            base: the base model, in the same forms (``RemoteBase`` for a served one).
            config: the default settings of every call; ``WSDConfig()`` reproduces the reference.

        Raises:
            TypeError: a model given as something else.
        """
        self.draft: DraftModel = as_model(draft, "draft")
        self.base: TargetModel = as_model(base, "base")
        self.config = config or WSDConfig()

    @classmethod
    def from_pretrained(
        cls,
        draft: ModelSpec | None = None,
        base: ModelSpec | None = None,
        config: WSDConfig | None = None,
        **load_kwargs: Any,
    ) -> WSDPipeline:
        """Load both models; either left out means the packaged default (see ``wsd_llm.packaged``).

        ``load_kwargs`` (``device_map``, ``dtype``...) go to ``TransformersModel.from_pretrained``.

        Raises:
            FileNotFoundError: a packaged model is not installed (the message says what to install).
        """
        from wsd_llm import packaged
        from wsd_llm.hub import check_source

        for spec in (draft, base):  # both named models are checked before either loads
            if isinstance(spec, (str, os.PathLike)):
                check_source(spec)
        draft_model = packaged.load_draft(**load_kwargs) if draft is None else as_model(draft, "draft", **load_kwargs)
        base_model = packaged.load_base(**load_kwargs) if base is None else as_model(base, "base", **load_kwargs)
        return cls(draft_model, base_model, config)

    @property
    def model_name(self) -> str:
        """The name faces report for this pair: ``wsd:<draft>+<base>``."""
        return wsd_model_name(self.draft.name, self.base.name)

    def check(self, messages: Conversation, **options: Any) -> tuple[list[Message], WSDConfig]:
        """Validate a request before any model runs: the conversation, the options, and that the
        conversation fits both models' context windows.

        Returns:
            The normalized conversation and the config of the call.

        Raises:
            ValueError: a malformed conversation, a bad option value, or a conversation longer
                than the draft's or the base's context window.
            TypeError: an unknown option.
        """
        conversation = normalize_messages(messages)
        config = self.config.updated(**options)
        WSDRun(self.draft, self.base, conversation, config).check_fits()
        return conversation, config

    def __repr__(self) -> str:
        return f"{type(self).__name__}(draft={self.draft.name!r}, base={self.base.name!r}, config={self.config!r})"

    def stream(self, messages: Conversation, **options: Any) -> Iterator[StreamEvent]:
        """Yield the reply as it is confirmed: accepted draft text, then the base's tokens.

        Args:
            messages: a prompt string (one user turn) or ``[{"role", "content"}, ...]`` ending
                with a user turn.
            options: ``WSDConfig`` fields for this call (``max_new_tokens``, ``gamma``, ``stop``...);
                ``stop`` strings add to the configured ones, other options replace them.

        Returns:
            An iterator of :class:`StreamEvent`: each says which model wrote its text; their
            texts add up to ``generate(...).text``; the last one has empty text and the result.
            Closing it early stops the models.

        Raises:
            ValueError: a malformed conversation, a bad option, or a conversation longer than a
                model's context window (raised by the first ``next()``; ``check`` raises it at once).
            TypeError: an unknown option.
        """
        run = WSDRun(self.draft, self.base, normalize_messages(messages), self.config.updated(**options))
        return run.events()

    def generate(self, messages: Conversation, **options: Any) -> WSDResult:
        """Write the whole reply and return it with its switch statistics.

        Arguments and errors as :meth:`stream`; returns its last event's :class:`WSDResult`.
        """
        for event in self.stream(messages, **options):
            if event.result is not None:
                return event.result
        raise RuntimeError("the WSD run ended without a result")  # pragma: no cover

    def batch(
        self,
        conversations: Sequence[Conversation],
        *,
        batch_size: int = 1,
        show_progress: bool = False,
        **options: Any,
    ) -> list[WSDResult]:
        """A reply for each conversation, in order.

        Args:
            conversations: prompts or conversations, as for :meth:`stream`; all are checked
                before any runs.
            batch_size: 1 runs the incremental pipeline one conversation at a time; more runs
                groups as padded batches through the draft, the scoring pass and the continuation
                (the reference's one-shot order, ``backends.transformers.one_shot``): more
                throughput on a GPU, at the cost of drafting every reply in full. It needs a base
                that runs batches (``BatchedTarget``: a local ``TransformersModel``, with a local draft).
            show_progress: a tqdm progress bar over conversations.
            options: ``WSDConfig`` fields for every call.

        Returns:
            One :class:`WSDResult` per conversation.

        Raises:
            ValueError: a bad conversation (naming it) or option, or ``batch_size < 1``.
            TypeError: ``batch_size > 1`` with models that cannot run batches, or an unknown option.
        """
        # Check every input first so a bad line fails before hours of generation.
        checked = [normalize_messages(conversation) for conversation in conversations]
        config = self.config.updated(**options)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if batch_size == 1:
            return [self.generate(messages, **options) for messages in tqdm(checked, disable=not show_progress)]
        if config.logprobs or config.constraint:
            raise ValueError("logprobs and constraints work per request: use batch_size=1 with them")
        if not isinstance(self.base, BatchedTarget):
            raise TypeError(f"batch_size > 1 needs a base model that runs batches (a local TransformersModel), "
                            f"not {type(self.base).__name__}; use batch_size=1")
        results: list[WSDResult] = []
        with tqdm(total=len(checked), disable=not show_progress) as progress:
            for start in range(0, len(checked), batch_size):
                group = checked[start : start + batch_size]
                results += self.base.generate_batch(self.draft, group, config)
                progress.update(len(group))
        return results

    async def agenerate(self, messages: Conversation, **options: Any) -> WSDResult:
        """``generate`` in a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(self.generate, messages, **options)

    async def astream(self, messages: Conversation, **options: Any) -> AsyncIterator[StreamEvent]:
        """``stream`` in a worker thread; leaving the loop early stops the models."""
        from wsd_llm._threads import iterate_in_thread

        iterator = self.stream(messages, **options)
        async for event in iterate_in_thread(lambda: iterator):
            yield event

    async def abatch(self, conversations: Sequence[Conversation], **options: Any) -> list[WSDResult]:
        """``batch`` in a worker thread (same arguments and errors)."""
        return await asyncio.to_thread(self.batch, conversations, **options)


class LazyPipeline:
    """A :class:`WSDPipeline` loaded on first use, once even when threads race for it: faces
    (``ChatWSD``, ``WSDLLM``) are cheap to build and bind into chains, and load when first called.

    Args:
        draft, base, load_kwargs: as :meth:`WSDPipeline.from_pretrained` takes them.
    """

    def __init__(self, draft: ModelSpec | None = None, base: ModelSpec | None = None, **load_kwargs: Any) -> None:
        self._specs = (draft, base, load_kwargs)
        self._loaded: WSDPipeline | None = None
        self._lock = threading.Lock()

    def get(self) -> WSDPipeline:
        """The pipeline, loading it now if no call has yet.

        Raises:
            FileNotFoundError: the packaged pair is not installed (with the pip command to run).
            OSError: a ``draft``/``base`` path or hub id that does not load.
        """
        with self._lock:
            if self._loaded is None:
                draft, base, load_kwargs = self._specs
                self._loaded = WSDPipeline.from_pretrained(draft, base, **load_kwargs)
            return self._loaded
