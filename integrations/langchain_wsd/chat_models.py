"""ChatWSD: Weak-to-Strong Decoding as a LangChain chat model."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.chat_models import agenerate_from_stream, generate_from_stream
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from langchain_wsd.messages import to_wsd_messages
from langchain_wsd.prefill import PrefilledDraft
from langchain_wsd.tools import ToolChoice, parse_tool_call, with_tool_prompt
from wsd_llm import Message, StreamEvent, WSDConfig, WSDPipeline, WSDResult
from wsd_llm.packaged import BASE_NAME, DRAFT_NAME
from wsd_llm.pipeline import wsd_model_name


def _spec_name(spec: Any, default: str) -> str:
    """A readable name for a model given as a hub id, path or backend object."""
    if spec is None:
        return default
    return str(getattr(spec, "name", spec))


class _Reply:
    """Turns the pipeline's stream events into message chunks.

    Text chunks carry ``response_metadata={"wsd_sources": [source]}``: lists concatenate when
    chunks are added, so the merged message lists the writer of each chunk in order, where a
    string would be glued into nonsense. Usage and the run's statistics ride on the last chunk
    only. With tools bound the reply is held until it is complete, because only the whole
    text tells a tool call from an answer.
    """

    def __init__(self, choice: ToolChoice, model_name: str) -> None:
        self.choice = choice
        self.model_name = model_name
        self.held: list[AIMessageChunk] = []

    def feed(self, event: StreamEvent) -> list[AIMessageChunk]:
        if event.result is not None:
            return self._finish(event.result)
        if not event.text:
            return []
        chunk = AIMessageChunk(content=event.text, response_metadata={"wsd_sources": [event.source]})
        if self.choice.tools:
            self.held.append(chunk)
            return []
        return [chunk]

    def _finish(self, result: WSDResult) -> list[AIMessageChunk]:
        call = parse_tool_call(result.text, self.choice)
        calls = [tool_call_chunk(name=call.name, args=call.arguments, id=f"call_{uuid.uuid4().hex}", index=0)] \
            if call else []
        last = AIMessageChunk(
            content="",
            tool_call_chunks=calls,
            chunk_position="last",
            usage_metadata={
                "input_tokens": result.prompt_tokens,
                "output_tokens": result.completion_tokens,
                "total_tokens": result.usage()["total_tokens"],
            },
            response_metadata={
                **result.stats(),
                "model_name": self.model_name,
                "finish_reason": "tool_calls" if call else result.finish_reason,
            },
        )
        return [last] if call else [*self.held, last]


class ChatWSD(BaseChatModel):
    """Weak-to-Strong Decoding chat model: a small aligned draft starts, a base model finishes.

    >>> llm = ChatWSD()  # the packaged SmolLM2-135M-Instruct draft + Gemma-3-270M base  # doctest: +SKIP
    >>> llm = ChatWSD(draft="HuggingFaceTB/SmolLM2-135M-Instruct", base="google/gemma-3-270m")  # doctest: +SKIP

    Models load on first use, so building the chat model (and binding it into chains) is
    cheap. Any :class:`~wsd_llm.WSDConfig` option can be set in ``wsd_options`` or per call.
    """

    model_config = ConfigDict(populate_by_name=True)

    draft: Any = Field(None, description="Draft model: hub id, path, backend or (model, tokenizer); None: packaged.")
    base: Any = Field(None, description="Base model, like `draft`; None: the packaged base.")
    pipeline: WSDPipeline | None = Field(None, exclude=True, description="A ready pipeline, instead of draft/base.")
    model_name: str = Field("", alias="model", description="Reported name; by default 'wsd:<draft>+<base>'.")
    max_tokens: int | None = Field(None, gt=0, description="Most tokens of the reply (WSD max_new_tokens).")
    temperature: float | None = Field(None, ge=0.0, description="Draft sampling temperature; 0 is greedy.")
    stop: list[str] | None = Field(None, description="Stop strings: the reply is cut before the first one.")
    wsd_options: dict[str, Any] = Field(default_factory=dict, description="Other WSDConfig options, e.g. gamma.")
    load_kwargs: dict[str, Any] = Field(default_factory=dict, description="Passed to the model loader.")

    _loaded: WSDPipeline | None = PrivateAttr(None)
    _load_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @model_validator(mode="after")
    def _check(self) -> ChatWSD:
        if self.pipeline is not None and (self.draft is not None or self.base is not None):
            raise ValueError("give ChatWSD either `pipeline` or `draft`/`base`, not both")
        WSDConfig().updated(**self.wsd_options)  # fail now on unknown or invalid options
        if not self.model_name:
            source = self.pipeline
            draft = _spec_name(source.draft if source else self.draft, DRAFT_NAME)
            base = _spec_name(source.base if source else self.base, BASE_NAME)
            self.model_name = wsd_model_name(draft, base)
        return self

    @property
    def wsd_pipeline(self) -> WSDPipeline:
        """The pipeline, loaded on first use (once, even when threads race for it)."""
        if self.pipeline is not None:
            return self.pipeline
        with self._load_lock:
            if self._loaded is None:
                self._loaded = WSDPipeline.from_pretrained(self.draft, self.base, **self.load_kwargs)
            return self._loaded

    @property
    def _llm_type(self) -> str:
        return "wsd"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stop": self.stop,
            **self.wsd_options,
        }

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools for the prompt-based protocol (see ``langchain_wsd.tools``).

        ``tool_choice``: None/"auto" (the model decides), "none", "any"/"required" (a call is
        forced), or a tool's name.
        """
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        ToolChoice.parse(formatted, tool_choice)  # a bad choice fails here, not at the first call
        return super().bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def _pipeline_for(self, choice: ToolChoice, pipeline: WSDPipeline) -> WSDPipeline:
        """The pipeline for one call: a required tool call gets a draft prefilled with its start."""
        prefix = choice.prefill()
        if not prefix:
            return pipeline
        return WSDPipeline(PrefilledDraft(pipeline.draft, prefix), pipeline.base, pipeline.config)

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
                 ) -> tuple[list[Message], dict[str, Any], ToolChoice]:
        """The core's conversation and options for one call, and the tool choice in force."""
        kwargs = dict(kwargs)
        choice = ToolChoice.parse(kwargs.pop("tools", None) or [], kwargs.pop("tool_choice", None))
        max_tokens = kwargs.pop("max_tokens", self.max_tokens)
        stop = stop if stop is not None else self.stop
        standard = {
            "max_new_tokens": max_tokens,
            "temperature": kwargs.pop("temperature", self.temperature),
            "stop": tuple(stop) if stop else None,
        }
        options = {**self.wsd_options, **{k: v for k, v in standard.items() if v is not None}, **kwargs}
        return with_tool_prompt(to_wsd_messages(messages), choice), options, choice

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        conversation, options, choice = self._request(messages, stop, kwargs)
        reply = _Reply(choice, self.model_name)
        pipeline = self._pipeline_for(choice, self.wsd_pipeline)
        for event in pipeline.stream(conversation, **options):
            for message in reply.feed(event):
                chunk = ChatGenerationChunk(message=message)
                if run_manager:
                    run_manager.on_llm_new_token(message.text, chunk=chunk)
                yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        conversation, options, choice = self._request(messages, stop, kwargs)
        reply = _Reply(choice, self.model_name)
        loaded = await asyncio.to_thread(lambda: self.wsd_pipeline)  # a first load must not block the loop
        pipeline = self._pipeline_for(choice, loaded)
        async for event in pipeline.astream(conversation, **options):
            for message in reply.feed(event):
                chunk = ChatGenerationChunk(message=message)
                if run_manager:
                    await run_manager.on_llm_new_token(message.text, chunk=chunk)
                yield chunk

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # The same chunks as a stream, merged; no token callbacks for a non-streaming call.
        return generate_from_stream(self._stream(messages, stop, None, **kwargs))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await agenerate_from_stream(self._astream(messages, stop, None, **kwargs))
