"""The user-facing WSD pipeline: generate, stream, their async twins, and batch."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from wsd_llm.backends.loading import Engine, ModelSpec, as_model, check_engine, pair_load_kwargs
from wsd_llm.backends.protocols import BatchedTarget, ContinuousBatching, DraftModel, TargetModel
from wsd_llm.config import WSDConfig
from wsd_llm.constraints import Constraint, closed_schema
from wsd_llm.decoding import WSDRun
from wsd_llm.errors import OptionError
from wsd_llm.messages import Conversation, Message, normalize_messages
from wsd_llm.prefill import PrefilledDraft
from wsd_llm.results import StreamEvent, WSDResult
from wsd_llm.tools import ToolCallStream, ToolChoice


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
        *,
        engine: Engine = "transformers",
        **load_kwargs: Any,
    ) -> WSDPipeline:
        """Load both models; either left out means the packaged default (see ``wsd_llm.packaged``).

        Args:
            draft, base: model objects, or hub ids / directories / ``.gguf`` files to load.
            config: the pipeline's defaults.
            engine: what runs models given by name: ``"transformers"`` (in this process) or
                ``"vllm"`` (an in-process vLLM engine per model: concurrent requests share its
                forward passes, ``tensor_parallel_size=N`` splits a model over N GPUs).
            load_kwargs: go to the engine's ``from_pretrained`` (``TransformersModel``: ``device_map``,
                ``dtype``...; ``VLLMModel``: ``tensor_parallel_size``, ``max_model_len``...).

        Raises:
            FileNotFoundError: a packaged model is not installed (the message says what to install).
            ValueError: an unknown engine.
            ImportError: ``engine="vllm"`` without vLLM installed.
        """
        from wsd_llm import packaged
        from wsd_llm.hub import check_source

        check_engine(engine)
        for spec in (draft, base):  # both named models are checked before either loads
            if isinstance(spec, (str, os.PathLike)):
                check_source(spec)
        draft_kwargs, base_kwargs = pair_load_kwargs(engine, load_kwargs)

        def load_draft() -> Any:
            return (packaged.load_draft(engine=engine, **draft_kwargs) if draft is None
                    else as_model(draft, "draft", engine, **draft_kwargs))

        def load_base() -> Any:
            return (packaged.load_base(engine=engine, **base_kwargs) if base is None
                    else as_model(base, "base", engine, **base_kwargs))

        if engine == "transformers":
            return cls(load_draft(), load_base(), config)
        # A vLLM engine spends its start-up (a minute or more) in processes of its own: start both at once.
        with ThreadPoolExecutor(2, thread_name_prefix="wsd-load") as pool:
            draft_job, base_job = pool.submit(load_draft), pool.submit(load_base)
            try:
                return cls(draft_job.result(), base_job.result(), config)
            except BaseException:
                for job in (draft_job, base_job):  # the one that started is stopped, not leaked
                    if job.exception() is None:
                        job.result().close()
                raise

    def close(self) -> None:
        """Release what the models hold outside this process's memory: vLLM engines (their processes)
        and remote models (their connections). Local transformers models hold nothing to release."""
        for model in (self.draft, self.base):
            close = getattr(model, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> WSDPipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def model_name(self) -> str:
        """The name faces report for this pair: ``wsd:<draft>+<base>``."""
        return wsd_model_name(self.draft.name, self.base.name)

    def prepare(
        self,
        messages: Conversation,
        *,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        **options: Any,
    ) -> WSDRequest:
        """Check a request before any model runs and make it ready to run.

        Args:
            messages: a prompt string (one user turn) or ``[{"role", "content"}, ...]`` ending with a
                user turn; OpenAI's tool-loop turns (assistant ``tool_calls``, ``tool`` results) too.
            tools: tools the reply may call, in OpenAI's format (``{"type": "function", "function":
                {"name", "description", "parameters"}}``); see ``wsd_llm.tools``.
            tool_choice: ``"auto"`` (the default with tools), ``"none"``, ``"required"``, a tool's
                name, or the dict forms of OpenAI and Anthropic (``wsd_llm.tools.CHOICE_FORMS``).
            response_format: what an answer must match: OpenAI's ``response_format``, a JSON schema,
                a pydantic class or a :class:`~wsd_llm.Constraint` (the ``constraint`` option).
            options: ``WSDConfig`` fields for this call (``max_new_tokens``, ``gamma``, ``stop``...);
                ``stop`` strings add to the configured ones, other options replace them.

        With tools, both models write under the tool grammar where they can (local models with
        llguidance); otherwise the tools are only described and a required call's draft is prefilled.

        Returns:
            The checked :class:`WSDRequest`; run it once with ``events()`` or ``result()``.

        Raises:
            ValueError: a malformed conversation, tool or ``tool_choice``, a bad option value (an
                ``OptionError`` naming it), a constraint that does not compile, or a conversation
                longer than the draft's or the base's context window.
            TypeError: an unknown option.
        """
        conversation = normalize_messages(messages)
        choice = ToolChoice.parse(tools, tool_choice)
        if response_format is not None:
            if options.get("constraint") is not None:
                raise OptionError("give response_format or constraint, not both", option="constraint")
            options["constraint"] = response_format
        config = self.config.updated(**options)
        response, draft = config.constraint, self.draft
        if choice.tools:
            conversation = choice.prompt(conversation)
            if all(_can_constrain(model) for model in (self.draft, self.base)):
                try:
                    config = config.updated(constraint=choice.constraint(response))
                except ValueError as error:
                    raise OptionError(str(error), option="constraint") from None
            elif prefix := choice.prefill():
                draft = PrefilledDraft(self.draft, prefix)
        run = WSDRun(draft, self.base, conversation, config)
        try:
            run.check()
        except OptionError as error:
            if error.option == "constraint" and choice.tools:
                raise _tool_fault(choice, self.draft) or error from None
            raise
        return WSDRequest(run, choice, response)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(draft={self.draft.name!r}, base={self.base.name!r}, config={self.config!r})"

    def stream(self, messages: Conversation, **options: Any) -> Iterator[StreamEvent]:
        """Yield the reply as it is confirmed: accepted draft text, then the base's tokens.

        Args:
            messages, options: as :meth:`prepare` takes them (``tools``, ``tool_choice``,
                ``response_format`` and ``WSDConfig`` fields).

        Returns:
            An iterator of :class:`StreamEvent`: each says which model wrote its text; their
            texts add up to ``generate(...).text`` (a reply that is a tool call comes as
            ``tool_call`` pieces instead); the last one has empty text and the result.
            Closing it early stops the models.

        Raises:
            ValueError, TypeError: as :meth:`prepare`, raised by the first ``next()``
                (``prepare`` raises them at once).
        """
        yield from self.prepare(messages, **options).events()

    def generate(self, messages: Conversation, **options: Any) -> WSDResult:
        """Write the whole reply and return it with its switch statistics (and tool calls).

        Arguments and errors as :meth:`prepare`; returns its last event's :class:`WSDResult`.
        """
        return self.prepare(messages, **options).result()

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
            batch_size: 1 runs the incremental pipeline one conversation at a time. More, on
                models that batch concurrent requests (``ContinuousBatching``: vLLM engines), runs
                up to ``batch_size`` conversations at once, each in the incremental order, and the
                engines share forward passes among them. More, on local transformers models, runs
                groups as padded batches through the draft, the scoring pass and the continuation
                (the reference's one-shot order, ``backends.transformers.one_shot``): more
                throughput on a GPU, at the cost of drafting every reply in full.
            show_progress: a tqdm progress bar over conversations.
            options: ``WSDConfig`` fields for every call; with ``batch_size=1`` or engines that
                batch, also ``tools``, ``tool_choice`` and ``response_format`` (see :meth:`prepare`).

        Returns:
            One :class:`WSDResult` per conversation.

        Raises:
            ValueError: a bad conversation (naming it) or option, or ``batch_size < 1``.
            TypeError: ``batch_size > 1`` with models that cannot run batches, or an unknown option.
        """
        # Check every input first so a bad line fails before hours of generation.
        checked = [normalize_messages(conversation) for conversation in conversations]
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        per_request = {"tools", "tool_choice", "response_format"} & set(options)
        config = self.config.updated(**{k: v for k, v in options.items() if k not in per_request})
        ToolChoice.parse(options.get("tools"), options.get("tool_choice"))
        if batch_size == 1:
            return [self.generate(messages, **options) for messages in tqdm(checked, disable=not show_progress)]
        if isinstance(self.draft, ContinuousBatching) and isinstance(self.base, ContinuousBatching):
            return self._concurrent(checked, batch_size, show_progress, options)
        if per_request or config.logprobs or config.constraint:
            raise ValueError("tools, logprobs and constraints work per request: use batch_size=1 with them")
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

    def _concurrent(self, conversations: list[list[Message]], workers: int, show_progress: bool,
                    options: dict[str, Any]) -> list[WSDResult]:
        """Up to ``workers`` runs at once, each in the incremental order; the engines batch their
        draft chunks, scoring passes and continuations into shared forward passes."""
        requests = [self.prepare(messages, **options) for messages in conversations]  # all checked first
        with ThreadPoolExecutor(workers, thread_name_prefix="wsd-batch") as pool, \
                tqdm(total=len(requests), disable=not show_progress) as progress:
            futures = [pool.submit(request.result) for request in requests]
            for future in futures:
                future.add_done_callback(lambda _: progress.update())
            return [future.result() for future in futures]

    async def agenerate(self, messages: Conversation, **options: Any) -> WSDResult:
        """``generate`` in a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(self.generate, messages, **options)

    async def astream(self, messages: Conversation, **options: Any) -> AsyncIterator[StreamEvent]:
        """``stream`` in a worker thread; leaving the loop early stops the models."""
        async for event in _in_thread(self.stream(messages, **options)):
            yield event

    async def abatch(self, conversations: Sequence[Conversation], **options: Any) -> list[WSDResult]:
        """``batch`` in a worker thread (same arguments and errors)."""
        return await asyncio.to_thread(self.batch, conversations, **options)


def _can_constrain(model: Any) -> bool:
    """Whether ``model`` can write under a grammar (a local backend whose tokenizer llguidance reads)."""
    return getattr(model, "constrainable", False)


def _tool_fault(choice: ToolChoice, model: Any) -> OptionError | None:
    """Which tool made the tool grammar fail to compile: the first whose parameters fail alone."""
    for index, tool in enumerate(choice.tools):
        try:
            model.check_constraint(Constraint.json_schema(closed_schema(tool["function"].get("parameters") or {})))
        except OptionError as fault:
            return OptionError(f"tools[{index}].function.parameters: {fault}", option="tools")
    return None


async def _in_thread(events: Iterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    from wsd_llm._threads import iterate_in_thread

    async for event in iterate_in_thread(lambda: events):
        yield event


@dataclass
class WSDRequest:
    """One checked request (see :meth:`WSDPipeline.prepare`), ready to run once.

    Attributes:
        run: the WSD run of the conversation (with the tool prompt and grammar, when tools apply).
        tools: the request's tools and how the reply must use them.
        response: what an answer must match (the request's own constraint), if anything.
    """

    run: WSDRun
    tools: ToolChoice
    response: Constraint | None = None

    @property
    def messages(self) -> list[Message]:
        """The conversation the models read (tools described, tool turns written as text)."""
        return self.run.messages

    @property
    def config(self) -> WSDConfig:
        return self.run.config

    def events(self) -> Iterator[StreamEvent]:
        """The reply as :meth:`WSDPipeline.stream` gives it."""
        events = self.run.events()
        return self._tool_events(events) if self.tools.tools else events

    def _tool_events(self, events: Iterator[StreamEvent]) -> Iterator[StreamEvent]:
        stream = ToolCallStream(self.tools, self.response)
        with contextlib.closing(events):  # closing the reply early stops the models at once, not at collection
            for event in events:
                yield from stream.feed(event)

    def aevents(self) -> AsyncIterator[StreamEvent]:
        """``events`` in a worker thread; leaving the loop early stops the models."""
        return _in_thread(self.events())

    def result(self) -> WSDResult:
        """Run to the end and return the result."""
        # Closed here, not by the generator's finalizer: an exception there, a Ctrl-C during the
        # run's cleanup included, is printed as "Exception ignored" and lost.
        with contextlib.closing(self.events()) as events:
            for event in events:
                if event.result is not None:
                    return event.result
        raise RuntimeError("the WSD run ended without a result")  # pragma: no cover


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
