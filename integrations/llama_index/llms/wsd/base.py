"""WSDLLM: Weak-to-Strong Decoding behind LlamaIndex's function-calling LLM interface.

How LlamaIndex inputs become a WSD conversation (WSD needs turns, it writes the reply to
the last user turn):

- ``complete(prompt)``: ``completion_to_prompt(prompt)`` unless ``formatted=True``, then
  the string is one user turn.
- ``chat(messages)``: each message becomes a turn: system and developer messages are
  system turns, assistant/chatbot/model messages assistant turns, user messages user turns.
  An assistant message's tool calls (``ToolCallBlock`` blocks, else OpenAI-shaped
  ``additional_kwargs["tool_calls"]``) become the turn's ``tool_calls``, and a tool message
  with ``additional_kwargs["tool_call_id"]`` (a function-calling agent's tool result) a
  ``tool`` turn; the core writes both as text of its tool protocol (``wsd_llm.messages``).
  A tool message without a call id (a ReAct observation) and a function message are user
  turns. The draft renders the turns with its chat template, the base with its own format.
- ``chat(messages)`` with a ``messages_to_prompt`` given: the string it makes is one user
  turn, as LlamaIndex's own ``CustomLLM`` does.
- Messages hold text blocks (joined by newlines, as ``ChatMessage.content`` does) and tool
  calls only; an image, audio, document or other block is refused with a ``ValueError``
  naming it.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from llama_index.core import Settings
from llama_index.core.base.llms.generic_utils import messages_to_prompt as generic_messages_to_prompt
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    LogProb,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import BaseModel, Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json
from llama_index.core.program.utils import get_program_for_llm
from llama_index.core.prompts import PromptTemplate
from llama_index.core.types import PydanticProgramMode

from wsd_llm import StreamEvent, ToolCall, WSDConfig, WSDPipeline, WSDResult
from wsd_llm.pipeline import LazyPipeline, ModelSpec, WSDRequest

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

Tokenizer = Callable[[str], list[Any]]

_ROLES: dict[MessageRole, str] = {
    MessageRole.SYSTEM: "system",
    MessageRole.DEVELOPER: "system",
    MessageRole.USER: "user",
    MessageRole.TOOL: "user",  # a tool message with a tool_call_id is a tool turn (to_conversation)
    MessageRole.FUNCTION: "user",
    MessageRole.ASSISTANT: "assistant",
    MessageRole.CHATBOT: "assistant",
    MessageRole.MODEL: "assistant",
}
# Texts that cost the models many tokens per LlamaIndex token: tiktoken packs three digits in a
# token where SmolLM2 and Gemma spend one each, and non-Latin scripts split apart differently.
_PROBES = (
    "314159265358979323846264338327950288419716939937510582097494459230781640628620899862803482534211706",
    "id,price,qty,date\n10482,-3.0517,77,2024-05-17\n99231,12.5000,3,2025-11-02\n40017,0.0073,1024,2023-01-30",
    "The committee reviewed the quarterly figures and agreed to postpone the release until March.",
    "def area(r: float) -> float:\n    return {'pi': 3.14159, 'r': [r, r ** 2]}['pi'] * r ** 2\n",
    "Die Überprüfung ergab, dass die Straßenbahn täglich 12.500 Fahrgäste befördert.",
    "Быстрая коричневая лиса перепрыгивает через ленивую собаку.",
    "语言模型的发展取决于数据质量、计算能力和可验证性。",
    "東京の天気は晴れです。明日は雨が降るでしょう。",
    "🙂🚀🎉 ✓ → ≤ ≥ ± × ÷ ∞",
    "0x7f3a9c2e 0xdeadbeef 3f8a1c9e-47b2-4c1d-9e6f-2a7b8c9d0e1f",
)
# The fields that are WSDConfig options.
_FIELDS = ("max_new_tokens", "max_draft_tokens", "temperature", "top_p", "seed", "gamma", "window", "stop",
           "logprobs", "top_logprobs")
# Model tokens kept for the markup both models wrap around the messages (SmolLM2's chat template
# adds 30 tokens to a one-message conversation, about 6 for each further turn).
_MARKUP_RESERVE = 64


def _text(message: ChatMessage) -> str:
    """The text of a message; a clear error for blocks the text models cannot read."""
    parts: list[str] = []
    for block in message.blocks:
        if block.block_type == "text":
            parts.append(block.text)
        elif block.block_type not in ("cache", "tool_call"):  # a cache marker carries no content; calls: _calls
            raise ValueError(
                f"WSDLLM runs text-only models and cannot read {type(block).__name__} content "
                f"(block_type {block.block_type!r}) in a {MessageRole(message.role).value} message; "
                "send text blocks only"
            )
    return "\n".join(parts)  # as ChatMessage.content joins them


def _openai_call(call_id: str | None, name: str, arguments: str | dict[str, Any]) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _calls(message: ChatMessage) -> list[Any]:
    """A message's tool calls in OpenAI's shape: its ``ToolCallBlock`` blocks (LlamaIndex 0.14), else
    ``additional_kwargs["tool_calls"]`` (dicts, or OpenAI SDK objects from older integrations)."""
    blocks = [block for block in message.blocks if isinstance(block, ToolCallBlock)]
    if blocks:
        return [_openai_call(block.tool_call_id, block.tool_name, block.tool_kwargs) for block in blocks]
    calls = message.additional_kwargs.get("tool_calls") or []
    return [call.model_dump() if isinstance(call, BaseModel) else call for call in calls]


def _turn(message: ChatMessage) -> dict[str, Any]:
    role, text = MessageRole(message.role), _text(message)
    extra = message.additional_kwargs
    if role == MessageRole.TOOL and extra.get("tool_call_id") is not None:
        return {"role": "tool", "content": text, "tool_call_id": extra["tool_call_id"],
                **({"name": extra["name"]} if extra.get("name") else {})}
    turn: dict[str, Any] = {"role": _ROLES[role], "content": text}
    if calls := _calls(message):
        turn["tool_calls"] = calls  # the core refuses them on any turn but an assistant's
    return turn


def to_conversation(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """LlamaIndex chat messages as the core's OpenAI-shaped turns (see the module docstring for the
    mapping); the core checks them when the request is prepared.

    Raises:
        ValueError: a message with an image, audio, document or other non-text block.
    """
    return [_turn(message) for message in messages]


def result_raw(result: WSDResult) -> dict[str, Any]:
    """The reply and its switch statistics as plain JSON, with an OpenAI-style ``usage`` for token counters
    (and the ``tool_calls`` of a reply that calls a tool)."""
    raw = {"text": result.text, "draft_text": result.draft_text, "base_text": result.base_text,
           **result.stats(), "usage": result.usage()}
    if result.logprobs is not None:
        raw["logprobs"] = result.openai_logprobs()
    if result.tool_calls:
        raw["tool_calls"] = [call.model_dump() for call in result.tool_calls]
    return raw


def _logprobs(raw: dict[str, Any]) -> list[list[LogProb]] | None:
    """LlamaIndex's ``logprobs``: per reply token, the token itself then the base's top alternatives."""
    if "logprobs" not in raw:
        return None
    return [[LogProb(token=entry["token"], logprob=entry["logprob"], bytes=entry["bytes"]),
             *(LogProb(**top) for top in entry["top_logprobs"])] for entry in raw["logprobs"]["content"]]


@dataclass(frozen=True)
class Chunk:
    """A reply (or a stream's reply so far) before it becomes a LlamaIndex response.

    Attributes:
        text: the reply's text so far; empty for a tool call.
        delta: the new text (None for a whole reply).
        call: the tool call so far (its arguments as written up to now), if the reply is one.
        raw: ``{"source": ...}`` of the piece; the run's statistics (``result_raw``) on the last chunk.
    """

    text: str
    delta: str | None
    call: ToolCall | None
    raw: dict[str, Any]

    @classmethod
    def whole(cls, result: WSDResult) -> Chunk:
        call = result.tool_calls[0] if result.tool_calls else None  # the core writes at most one
        return cls("" if call else result.text, None, call, result_raw(result))


class _Chunker:
    """Turns WSD stream events into cumulative chunks: text pieces, and the tool call's pieces (its
    name first, then its arguments as they are written).

    It stays one piece behind, so the last chunk can carry the run's result in ``raw``; a
    run that wrote nothing still gives one (empty) chunk.
    """

    def __init__(self) -> None:
        self.text = ""
        self.call: ToolCall | None = None
        self.pending: Chunk | None = None

    def push(self, event: StreamEvent) -> Chunk | None:
        """The chunk that is now complete, if any."""
        if event.result is not None:
            last = self.pending or Chunk(self.text, "", self.call, {"source": event.source})
            self.pending = None
            whole = Chunk.whole(event.result)
            return replace(whole, text=last.text, delta=last.delta, raw={**last.raw, **whole.raw})
        if (piece := event.tool_call) is not None:
            if self.call is None:  # the first piece names the tool
                self.call = ToolCall(id=piece.id or "", name=piece.name or "", arguments="")
            self.call = self.call.model_copy(update={"arguments": self.call.arguments + piece.arguments})
        elif not event.text:
            return None
        ready = self.pending
        self.text += event.text
        self.pending = Chunk(self.text, event.text, self.call, {"source": event.source})
        return ready


def _completion(chunk: Chunk) -> CompletionResponse:
    return CompletionResponse(text=chunk.text, delta=chunk.delta, raw=chunk.raw, logprobs=_logprobs(chunk.raw))


def _chat(chunk: Chunk) -> ChatResponse:
    """The response as LlamaIndex's own function-calling LLMs give it: a call is a ``ToolCallBlock``
    (arguments as JSON text) and an OpenAI-shaped ``additional_kwargs["tool_calls"]``, content empty."""
    blocks: list[Any] = [TextBlock(text=chunk.text)]
    extra: dict[str, Any] = {}
    if (call := chunk.call) is not None:
        blocks.append(ToolCallBlock(tool_call_id=call.id, tool_name=call.name, tool_kwargs=call.arguments))
        extra["tool_calls"] = [_openai_call(call.id, call.name, call.arguments)]
    message = ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks, additional_kwargs=extra)
    return ChatResponse(message=message, delta=chunk.delta, raw=chunk.raw, logprobs=_logprobs(chunk.raw))


def _tool_kwargs(block: ToolCallBlock, finish_reason: str | None) -> dict[str, Any]:
    """A call's arguments as a dict: the part written so far for a stream chunk before the last
    (``finish_reason`` None); for a complete reply its JSON object, and anything else an error."""
    if isinstance(block.tool_kwargs, dict):
        return block.tool_kwargs
    if finish_reason is None:
        try:
            partial = parse_partial_json(block.tool_kwargs)
        except ValueError:
            return {}
        return partial if isinstance(partial, dict) else {}
    try:
        arguments = json.loads(block.tool_kwargs)
    except ValueError:
        arguments = None
    if isinstance(arguments, dict):
        return arguments
    why = "the budget cut the call: raise max_new_tokens" if finish_reason == "length" else "the model wrote no object"
    raise ValueError(f"the call of tool {block.tool_name!r} has arguments that are not a JSON object "
                     f"({block.tool_kwargs[:200]!r}), so it is not run; {why}")


class WSDLLM(FunctionCallingLLM):
    """A LlamaIndex LLM that answers with Weak-to-Strong Decoding::

        llm = WSDLLM()                                   # the packaged SmolLM2 draft + Gemma-3 base
        llm = WSDLLM(draft="HuggingFaceTB/SmolLM2-135M-Instruct", base="google/gemma-3-270m")
        llm = WSDLLM(pipeline=my_pipeline, max_new_tokens=128)

    The models load on first use (a call, or ``metadata``, which reports their context
    windows), once even when threads race. Generation fields left at ``None`` keep the
    pipeline's own setting (``WSDConfig``); stop strings of the pipeline, the ``stop`` field
    and a call all apply. ``raw`` of a response (the last chunk of a stream) is the run's
    statistics as JSON: where the switch happened, who wrote what, token counts and timings.
    For a ReAct agent set ``stop=["\\nObservation:"]`` so the model stops before inventing
    tool output.

    Tools (``chat_with_tools``, ``FunctionAgent``, ``predict_and_call``): the core describes them
    in a system turn and the reply calls one as JSON, written under a grammar on local models
    (``wsd_llm.tools``), so a call names a given tool with arguments that fit its schema. A call
    comes back as a ``ToolCallBlock`` (and OpenAI-shaped ``additional_kwargs["tool_calls"]``) with
    empty content; streams carry the call as it is written. A reply holds at most one call
    (``allow_parallel_tool_calls`` allows more, none come). ``tool_first=True`` makes a small
    draft call a tool before it answers.

    LlamaIndex packs retrieved text by its own tokenizer (``Settings.tokenizer``, tiktoken by
    default), so ``metadata.context_window`` is given in that tokenizer's tokens: the smaller
    window of the two models, less room for their chat markup, divided by the most model
    tokens that tokenizer's tokens cost on sample texts (3 for tiktoken: it packs three digits
    in a token, the models one). ``Settings.tokenizer = llm.tokenizer`` counts in model tokens
    instead, and the window is used in full.
    """

    max_new_tokens: int | None = Field(None, gt=0, description="Most tokens in the reply (num_output).")
    max_draft_tokens: int | None = Field(None, gt=0, description="Most tokens the draft model writes.")
    temperature: float | None = Field(None, ge=0.0, description="Draft sampling temperature; 0 is greedy.")
    top_p: float | None = Field(None, gt=0.0, le=1.0, description="Draft nucleus-sampling mass.")
    seed: int | None = Field(None, description="Seed of the draft sampler.")
    gamma: float | None = Field(None, gt=0.0, le=1.0, description="Switch threshold on the window mean.")
    window: int | None = Field(None, ge=1, description="Sliding window of the switch rule.")
    stop: list[str] = Field(
        default_factory=list, description="Stop strings, added to the pipeline's; the reply ends before them."
    )
    logprobs: bool | None = Field(None, description="Chat responses carry each reply token's log-probability "
                                  "under the base model (then its top_logprobs alternatives).")
    top_logprobs: int | None = Field(None, ge=0, le=20, description="Alternatives per token, with logprobs.")
    generate_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Other WSDConfig settings (base_format, mode, chunk_size...)."
    )
    tool_first: bool = Field(False, description="In chat_with_tools (and so in agents) with no tool_choice: "
                             "a tool call is required until a tool result follows the last user message, "
                             "then the reply answers in text (tool_choice 'none'). A 135M draft seldom "
                             "decides to call a tool on its own, and may call again instead of answering.")

    _given: WSDPipeline | None = PrivateAttr(None)
    _lazy: LazyPipeline = PrivateAttr()
    _ratio: tuple[Tokenizer, float] | None = PrivateAttr(None)  # (LlamaIndex tokenizer, its cost ratio)

    def __init__(
        self,
        draft: ModelSpec | None = None,
        base: ModelSpec | None = None,
        *,
        pipeline: WSDPipeline | None = None,
        model_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Build the LLM; the models load on first use.

        Args:
            draft: the draft model: hub id, directory, GGUF path or backend object; None: packaged.
            base: the base model, like ``draft``.
            pipeline: a ready pipeline, instead of ``draft``/``base``/``model_kwargs``.
            model_kwargs: passed to the model loader.
            **kwargs: the fields above, and LlamaIndex's (``completion_to_prompt``...).

        Raises:
            ValueError: both ``pipeline`` and models given, or a field that ``WSDConfig`` refuses.
        """
        if pipeline is not None and (draft is not None or base is not None or model_kwargs):
            raise ValueError("give either pipeline= or draft=/base=/model_kwargs=, not both")
        super().__init__(**kwargs)
        self._given = pipeline
        self._lazy = LazyPipeline(draft, base, **(model_kwargs or {}))
        self._configured(WSDConfig())  # a field that does not fit fails now, before any load

    @classmethod
    def class_name(cls) -> str:
        return "wsd_llm"

    @property
    def pipeline(self) -> WSDPipeline:
        """The pipeline, loaded on first use (once, even when threads race for it).

        Raises:
            FileNotFoundError: the packaged pair is not installed (with the pip command to run).
            OSError: a ``draft``/``base`` path or hub id that does not load.
        """
        return self._given if self._given is not None else self._lazy.get()

    @property
    def config(self) -> WSDConfig:
        """The pipeline's settings with this LLM's fields applied (loads the models)."""
        return self._configured(self.pipeline.config)

    def _configured(self, config: WSDConfig) -> WSDConfig:
        """``config`` with the fields, then ``generate_kwargs``, applied by ``WSDConfig.updated``."""
        fields = {name: getattr(self, name) for name in _FIELDS}
        return config.updated(**fields).updated(**self.generate_kwargs)

    @property
    def tokenizer(self) -> Tokenizer:
        """A LlamaIndex tokenizer counting in the tokens of whichever model needs more for a text.

        ``Settings.tokenizer = llm.tokenizer`` makes LlamaIndex pack prompts in model tokens,
        so ``metadata.context_window`` is the models' window less only the markup reserve.
        LlamaIndex only counts the list it returns: it holds one 0 per token. A first call
        loads the models.
        """
        return self._worst_tokens

    def _worst_tokens(self, text: str) -> list[int]:
        pipeline = self.pipeline
        return [0] * max(pipeline.draft.count_tokens(text), len(pipeline.base.encode(text)))

    def _cost_ratio(self, tokenizer: Tokenizer) -> float:
        """Most model tokens one ``tokenizer`` token costs on the probe texts (at least 1)."""
        if self._ratio is None or self._ratio[0] != tokenizer:  # bound methods are equal, not identical
            ratio = max(len(self._worst_tokens(text)) / max(1, len(tokenizer(text))) for text in _PROBES)
            self._ratio = (tokenizer, max(1.0, ratio))
        return self._ratio[1]

    @property
    def metadata(self) -> LLMMetadata:
        """Limits in LlamaIndex's tokens (see the class docstring); reading it loads the models."""
        pipeline = self.pipeline
        # The conversation goes to both models, so it must fit the smaller window.
        window = min(pipeline.draft.context_window, pipeline.base.context_window) - _MARKUP_RESERVE
        return LLMMetadata(
            context_window=int(window / self._cost_ratio(Settings.tokenizer)),
            num_output=self.config.max_new_tokens,
            is_chat_model=True,
            is_function_calling_model=True,
            model_name=pipeline.model_name,
        )

    def _prompt_request(self, prompt: str, formatted: bool, kwargs: dict[str, Any]) -> WSDRequest:
        if {"tools", "tool_choice"} & set(kwargs):
            raise TypeError("complete() takes no tools; call them through chat: chat_with_tools, predict_and_call "
                            "or a FunctionAgent")
        if not formatted:
            prompt = self.completion_to_prompt(prompt)
        return self._request([{"role": "user", "content": prompt}], kwargs)

    def _chat_request(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> WSDRequest:
        conversation = to_conversation(messages)  # refuses non-text blocks whichever way the prompt is made
        # LlamaIndex fills an unset messages_to_prompt with its generic one; only a user's own counts.
        if self.messages_to_prompt is not generic_messages_to_prompt:
            conversation = [{"role": "user", "content": self.messages_to_prompt(messages)}]
        return self._request(conversation, kwargs)

    def _request(self, conversation: list[dict[str, Any]], kwargs: dict[str, Any]) -> WSDRequest:
        """The request of one call (tools, their prompt and grammar included), checked before any model
        runs (async streams start lazily). Options follow ``WSDConfig.updated``: the pipeline's config,
        the fields, ``generate_kwargs``, then the call's own; stop strings of all of them apply."""
        pipeline = self.pipeline
        configured = WSDPipeline(pipeline.draft, pipeline.base, self._configured(pipeline.config))
        return configured.prepare(conversation, **kwargs)

    @staticmethod
    def _chunks(request: WSDRequest) -> Iterator[Chunk]:
        chunker = _Chunker()
        for event in request.events():
            if (chunk := chunker.push(event)) is not None:
                yield chunk

    @staticmethod
    async def _achunks(request: WSDRequest) -> AsyncIterator[Chunk]:
        chunker = _Chunker()
        async for event in request.aevents():
            if (chunk := chunker.push(event)) is not None:
                yield chunk

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Answer ``prompt`` as one user turn.

        Args:
            prompt: the text; ``completion_to_prompt`` is applied first unless ``formatted``.
            formatted: whether ``prompt`` is already formatted.
            **kwargs: ``WSDConfig`` options of this call (``stop`` strings add to the LLM's).

        Returns:
            The reply, with the run's statistics and ``usage`` in ``raw``.

        Raises:
            ValueError: an empty prompt, a bad option value, or a prompt longer than a model's window.
            TypeError: an unknown option.
        """
        return _completion(Chunk.whole(self._prompt_request(prompt, formatted, kwargs).result()))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        """``complete`` as a stream: ``text`` is the reply so far, ``delta`` the new piece,
        ``raw["source"]`` its writer; the last chunk's ``raw`` holds the statistics. Raises
        like ``complete``, at the call."""
        request = self._prompt_request(prompt, formatted, kwargs)
        return (_completion(chunk) for chunk in self._chunks(request))

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Answer the last user message of ``messages``.

        Args:
            messages: the conversation (text blocks, tool calls and tool results); roles map as the
                module docstring says.
            **kwargs: ``WSDConfig`` options of this call (``stop`` strings add to the LLM's), and
                ``tools`` (OpenAI tool dicts), ``tool_choice`` and ``response_format`` as
                ``WSDPipeline.prepare`` takes them (``chat_with_tools`` fills the first two).

        Returns:
            The assistant's reply, with the run's statistics and ``usage`` in ``raw``; a tool call
            is a ``ToolCallBlock`` in ``message.blocks`` (content empty) and ``raw["finish_reason"]``
            is ``"tool_calls"``.

        Raises:
            ValueError: a non-text block, a conversation that does not end with a user or tool turn,
                a malformed tool or ``tool_choice``, a bad option value, or a conversation longer
                than a model's window.
            TypeError: an unknown option.
        """
        return _chat(Chunk.whole(self._chat_request(messages, kwargs).result()))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """``chat`` as a stream of cumulative chunks (see ``stream_complete``); raises like ``chat``.

        A reply that calls a tool streams no text: each chunk's ``ToolCallBlock`` holds the call so far
        (its name from the first chunk on, then its arguments as they are written, partial JSON)."""
        request = self._chat_request(messages, kwargs)
        return (_chat(chunk) for chunk in self._chunks(request))

    # The async methods prepare in a thread too: a first load must not block the event loop.

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """``complete`` in a worker thread; same arguments, result and errors."""
        request = await asyncio.to_thread(self._prompt_request, prompt, formatted, kwargs)
        return _completion(Chunk.whole(await asyncio.to_thread(request.result)))

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        """``stream_complete`` with the models in a worker thread; same chunks and errors."""
        request = await asyncio.to_thread(self._prompt_request, prompt, formatted, kwargs)
        return (_completion(chunk) async for chunk in self._achunks(request))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """``chat`` in a worker thread; same arguments, result and errors."""
        request = await asyncio.to_thread(self._chat_request, messages, kwargs)
        return _chat(Chunk.whole(await asyncio.to_thread(request.result)))

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        """``stream_chat`` with the models in a worker thread; same chunks and errors."""
        request = await asyncio.to_thread(self._chat_request, messages, kwargs)
        return (_chat(chunk) async for chunk in self._achunks(request))

    # Tools: LlamaIndex's function-calling interface, translated to the core's tools and tool_choice.

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The ``chat`` arguments of ``chat_with_tools`` and its stream and async twins.

        Args:
            tools: LlamaIndex tools; each becomes an OpenAI tool dict (``metadata.to_openai_tool``).
            user_msg: a last user message, added after ``chat_history`` (which is not changed).
            chat_history: the conversation so far.
            verbose: unused (the core logs nothing per call).
            allow_parallel_tool_calls: unused: a reply holds at most one call.
            tool_required: whether the reply must call a tool (``tool_choice="required"``).
            tool_choice: ``"auto"``, ``"none"``, ``"required"``, a tool's name (``FunctionAgent``'s
                ``initial_tool_choice``) or OpenAI's dict form; it wins over ``tool_required`` and
                ``tool_first``.
            **kwargs: other ``chat`` options.

        Returns:
            ``{"messages", "tools", "tool_choice", **kwargs}`` for ``chat``.
        """
        messages = list(chat_history or [])
        if user_msg is not None:
            messages.append(ChatMessage(role=MessageRole.USER, content=user_msg) if isinstance(user_msg, str)
                            else user_msg)
        specs = [tool.metadata.to_openai_tool(skip_length_check=True) for tool in tools]
        if tool_choice is None and tool_required:
            tool_choice = "required"
        elif tool_choice is None and self.tool_first and specs:
            tool_choice = "none" if _answered(messages) else "required"
        return {"messages": messages, "tools": specs, "tool_choice": tool_choice, **kwargs}

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        """The tool call of a ``chat_with_tools`` reply (a list of one, or empty).

        Args:
            response: a reply, or a chunk of a streamed one.
            error_on_no_tool_call: raise when the reply is not a call, instead of returning ``[]``.

        Returns:
            ``ToolSelection(tool_id, tool_name, tool_kwargs)`` per call. A complete reply's arguments
            are its JSON object; a stream's chunk before the last gives the arguments written so far.

        Raises:
            ValueError: no call and ``error_on_no_tool_call``; or a complete reply whose arguments are
                not a JSON object (the budget cut the call, or a prompt-only remote model wrote no JSON):
                the tool is never run with arguments the model did not write.
        """
        blocks = [block for block in response.message.blocks if isinstance(block, ToolCallBlock)]
        if not blocks and error_on_no_tool_call:
            raise ValueError(f"the reply calls no tool ({response.message.content!r}); pass tool_required=True "
                             "to force a call, or error_on_no_tool_call=False to accept an answer")
        raw = response.raw if isinstance(response.raw, dict) else {"finish_reason": "stop"}  # not a stream of ours
        return [ToolSelection(tool_id=block.tool_call_id or "", tool_name=block.tool_name,
                              tool_kwargs=_tool_kwargs(block, raw.get("finish_reason"))) for block in blocks]

    # Structured output. LlamaIndex's text-completion program puts the schema in the prompt and
    # parses whatever comes back; here the reply is held to the output class's schema by a grammar on
    # both models (wsd_llm.Constraint), which already fixes the keys and types, so the prompt stays as
    # written (small drafters given a schema tend to copy its descriptions as values). Streams use
    # LlamaIndex's text program with the constraint, not its function-calling program.

    def structured_predict(self, output_cls: type[BaseModel], prompt: PromptTemplate,
                           llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any) -> BaseModel:
        """An ``output_cls`` object from the reply to ``prompt`` (formatted with ``prompt_args``), which is
        constrained to its JSON schema.

        Raises:
            ValueError: the reply ran out of ``max_new_tokens`` before the object was complete.
        """
        response = self.chat(prompt.format_messages(**prompt_args), **_constrained(output_cls, llm_kwargs))
        return _parsed(output_cls, response)

    async def astructured_predict(self, output_cls: type[BaseModel], prompt: PromptTemplate,
                                  llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any) -> BaseModel:
        """Async :meth:`structured_predict`."""
        messages = prompt.format_messages(**prompt_args)
        response = await self.achat(messages, **_constrained(output_cls, llm_kwargs))
        return _parsed(output_cls, response)

    def _structured_stream_call(self, output_cls: type[BaseModel], prompt: PromptTemplate,
                                llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any) -> Any:
        program = get_program_for_llm(output_cls, prompt, self, pydantic_program_mode=PydanticProgramMode.LLM)
        return program.stream_call(llm_kwargs=_constrained(output_cls, llm_kwargs), **prompt_args)

    async def _structured_astream_call(self, output_cls: type[BaseModel], prompt: PromptTemplate,
                                       llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any) -> Any:
        program = get_program_for_llm(output_cls, prompt, self, pydantic_program_mode=PydanticProgramMode.LLM)
        return await program.astream_call(llm_kwargs=_constrained(output_cls, llm_kwargs), **prompt_args)


def _answered(messages: Sequence[ChatMessage]) -> bool:
    """Whether a tool result follows the last user message."""
    for message in reversed(messages):
        if message.role == MessageRole.TOOL:
            return True
        if message.role == MessageRole.USER:
            return False
    return False


def _parsed(output_cls: type[BaseModel], response: ChatResponse) -> BaseModel:
    if response.raw["finish_reason"] != "stop":
        raise ValueError(f"the reply ran out of max_new_tokens before the {output_cls.__name__} object was "
                         f"complete ({response.message.content!r}); raise max_new_tokens")
    return output_cls.model_validate_json(response.message.content)


def _constrained(output_cls: type[BaseModel], llm_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """``llm_kwargs`` with the constraint of ``output_cls`` (a caller's own constraint is kept)."""
    return {"constraint": output_cls, **(llm_kwargs or {})}
