"""WSDLLM: Weak-to-Strong Decoding behind LlamaIndex's LLM interface.

How LlamaIndex inputs become a WSD conversation (WSD needs turns, it writes the reply to
the last user turn):

- ``complete(prompt)``: ``completion_to_prompt(prompt)`` unless ``formatted=True``, then
  the string is one user turn.
- ``chat(messages)``: each message becomes a turn: system and developer messages are
  system turns, assistant/chatbot/model messages assistant turns, user, tool and function
  messages user turns (WSD has no tool role; a ReAct agent's observations are user turns
  already). The draft renders them with its chat template, the base with its own format.
- ``chat(messages)`` with a ``messages_to_prompt`` given: the string it makes is one user
  turn, as LlamaIndex's own ``CustomLLM`` does.
- Messages hold text blocks only (joined by newlines, as ``ChatMessage.content`` does); an
  image, audio, document or other block is refused with a ``ValueError`` naming it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Sequence
from typing import Any

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
)
from llama_index.core.bridge.pydantic import BaseModel, Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.prompts import PromptTemplate

from wsd_llm import StreamEvent, WSDConfig, WSDPipeline, WSDResult
from wsd_llm.messages import Message
from wsd_llm.pipeline import LazyPipeline, ModelSpec

# A stream chunk before it becomes a LlamaIndex response: cumulative text, new piece, raw.
Chunk = tuple[str, str, dict[str, Any]]
Tokenizer = Callable[[str], list[Any]]

_ROLES: dict[MessageRole, str] = {
    MessageRole.SYSTEM: "system",
    MessageRole.DEVELOPER: "system",
    MessageRole.USER: "user",
    MessageRole.TOOL: "user",
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
        elif block.block_type != "cache":  # a provider's cache marker carries no content
            raise ValueError(
                f"WSDLLM runs text-only models and cannot read {type(block).__name__} content "
                f"(block_type {block.block_type!r}) in a {MessageRole(message.role).value} message; "
                "send text blocks only"
            )
    return "\n".join(parts)  # as ChatMessage.content joins them


def to_conversation(messages: Sequence[ChatMessage]) -> list[Message]:
    """LlamaIndex chat messages as WSD turns (see the module docstring for the role mapping).

    Raises:
        ValueError: a message with an image, audio, document or other non-text block.
    """
    return [{"role": _ROLES[MessageRole(m.role)], "content": _text(m)} for m in messages]  # type: ignore[misc]


def result_raw(result: WSDResult) -> dict[str, Any]:
    """The reply and its switch statistics as plain JSON, with an OpenAI-style ``usage`` for token counters."""
    raw = {"text": result.text, "draft_text": result.draft_text, "base_text": result.base_text,
           **result.stats(), "usage": result.usage()}
    if result.logprobs is not None:
        raw["logprobs"] = result.openai_logprobs()
    return raw


def _logprobs(raw: dict[str, Any]) -> list[list[LogProb]] | None:
    """LlamaIndex's ``logprobs``: per reply token, the token itself then the base's top alternatives."""
    if "logprobs" not in raw:
        return None
    return [[LogProb(token=entry["token"], logprob=entry["logprob"], bytes=entry["bytes"]),
             *(LogProb(**top) for top in entry["top_logprobs"])] for entry in raw["logprobs"]["content"]]


class _Chunker:
    """Turns WSD stream events into ``(text, delta, raw)`` chunks.

    It stays one piece behind, so the last chunk can carry the run's result in ``raw``; a
    run that wrote nothing still gives one (empty) chunk.
    """

    def __init__(self) -> None:
        self.text = ""
        self.pending: Chunk | None = None

    def push(self, event: StreamEvent) -> Chunk | None:
        """The chunk that is now complete, if any."""
        if event.result is not None:
            text, delta, raw = self.pending or ("", "", {"source": event.source})
            self.pending = None
            return text, delta, {**raw, **result_raw(event.result)}
        if not event.text:
            return None
        ready = self.pending
        self.text += event.text
        self.pending = (self.text, event.text, {"source": event.source})
        return ready


def _completion(chunk: Chunk) -> CompletionResponse:
    text, delta, raw = chunk
    return CompletionResponse(text=text, delta=delta, raw=raw, logprobs=_logprobs(raw))


def _chat(chunk: Chunk) -> ChatResponse:
    text, delta, raw = chunk
    return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=delta, raw=raw,
                        logprobs=_logprobs(raw))


class WSDLLM(CustomLLM):
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
            model_name=pipeline.model_name,
        )

    def _prompt_request(self, prompt: str, formatted: bool, kwargs: dict[str, Any]
                        ) -> tuple[WSDPipeline, list[Message]]:
        if not formatted:
            prompt = self.completion_to_prompt(prompt)
        return self._request([{"role": "user", "content": prompt}], kwargs)

    def _chat_request(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]
                      ) -> tuple[WSDPipeline, list[Message]]:
        conversation = to_conversation(messages)  # refuses non-text blocks whichever way the prompt is made
        # LlamaIndex fills an unset messages_to_prompt with its generic one; only a user's own counts.
        if self.messages_to_prompt is not generic_messages_to_prompt:
            conversation = [{"role": "user", "content": self.messages_to_prompt(messages)}]
        return self._request(conversation, kwargs)

    def _request(self, conversation: list[Message], kwargs: dict[str, Any]
                 ) -> tuple[WSDPipeline, list[Message]]:
        """The pipeline and conversation of one call, checked before any model runs (async
        streams start lazily). Options follow ``WSDConfig.updated``: the pipeline's config, the
        fields, ``generate_kwargs``, then the call's own; stop strings of all of them apply."""
        pipeline = self.pipeline
        configured = WSDPipeline(pipeline.draft, pipeline.base, self._configured(pipeline.config))
        request = configured.prepare(conversation, **kwargs)
        return WSDPipeline(pipeline.draft, pipeline.base, request.config), request.messages

    @staticmethod
    def _chunks(pipeline: WSDPipeline, conversation: list[Message]) -> Iterator[Chunk]:
        chunker = _Chunker()
        for event in pipeline.stream(conversation):
            if (chunk := chunker.push(event)) is not None:
                yield chunk

    @staticmethod
    async def _achunks(pipeline: WSDPipeline, conversation: list[Message]) -> AsyncIterator[Chunk]:
        chunker = _Chunker()
        async for event in pipeline.astream(conversation):
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
        pipeline, conversation = self._prompt_request(prompt, formatted, kwargs)
        result = pipeline.generate(conversation)
        return _completion((result.text, None, result_raw(result)))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        """``complete`` as a stream: ``text`` is the reply so far, ``delta`` the new piece,
        ``raw["source"]`` its writer; the last chunk's ``raw`` holds the statistics. Raises
        like ``complete``, at the call."""
        pipeline, conversation = self._prompt_request(prompt, formatted, kwargs)
        return (_completion(chunk) for chunk in self._chunks(pipeline, conversation))

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Answer the last user message of ``messages``.

        Args:
            messages: the conversation, text blocks only; roles map as the module docstring says.
            **kwargs: ``WSDConfig`` options of this call (``stop`` strings add to the LLM's).

        Returns:
            The assistant's reply, with the run's statistics and ``usage`` in ``raw``.

        Raises:
            ValueError: a non-text block, a conversation that does not end with a user turn,
                a bad option value, or a conversation longer than a model's window.
            TypeError: an unknown option.
        """
        pipeline, conversation = self._chat_request(messages, kwargs)
        result = pipeline.generate(conversation)
        return _chat((result.text, None, result_raw(result)))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """``chat`` as a stream of cumulative chunks (see ``stream_complete``); raises like ``chat``."""
        pipeline, conversation = self._chat_request(messages, kwargs)
        return (_chat(chunk) for chunk in self._chunks(pipeline, conversation))

    # The async methods prepare in a thread too: a first load must not block the event loop.

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """``complete`` in a worker thread; same arguments, result and errors."""
        pipeline, conversation = await asyncio.to_thread(self._prompt_request, prompt, formatted, kwargs)
        result = await pipeline.agenerate(conversation)
        return _completion((result.text, None, result_raw(result)))

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        """``stream_complete`` with the models in a worker thread; same chunks and errors."""
        pipeline, conversation = await asyncio.to_thread(self._prompt_request, prompt, formatted, kwargs)
        return (_completion(chunk) async for chunk in self._achunks(pipeline, conversation))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """``chat`` in a worker thread; same arguments, result and errors."""
        pipeline, conversation = await asyncio.to_thread(self._chat_request, messages, kwargs)
        result = await pipeline.agenerate(conversation)
        return _chat((result.text, None, result_raw(result)))

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        """``stream_chat`` with the models in a worker thread; same chunks and errors."""
        pipeline, conversation = await asyncio.to_thread(self._chat_request, messages, kwargs)
        return (_chat(chunk) async for chunk in self._achunks(pipeline, conversation))

    # Structured output. LlamaIndex's text-completion program puts the schema in the prompt and
    # parses whatever comes back; here the reply is held to the output class's schema by a grammar on
    # both models (wsd_llm.Constraint), which already fixes the keys and types, so the prompt stays as
    # written (small drafters given a schema tend to copy its descriptions as values).

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

    def stream_structured_predict(self, output_cls: type[BaseModel], prompt: PromptTemplate,
                                  llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any
                                  ) -> Generator[BaseModel | list[BaseModel], None, None]:
        """Partial ``output_cls`` objects while the constrained reply streams (LlamaIndex's streaming
        program, with the constraint)."""
        return super().stream_structured_predict(output_cls, prompt, _constrained(output_cls, llm_kwargs),
                                                 **prompt_args)

    async def astream_structured_predict(self, output_cls: type[BaseModel], prompt: PromptTemplate,
                                         llm_kwargs: dict[str, Any] | None = None, **prompt_args: Any
                                         ) -> AsyncGenerator[BaseModel | list[BaseModel], None]:
        """Async :meth:`stream_structured_predict`."""
        kwargs = _constrained(output_cls, llm_kwargs)
        return await super().astream_structured_predict(output_cls, prompt, kwargs, **prompt_args)


def _parsed(output_cls: type[BaseModel], response: ChatResponse) -> BaseModel:
    if response.raw["finish_reason"] != "stop":
        raise ValueError(f"the reply ran out of max_new_tokens before the {output_cls.__name__} object was "
                         f"complete ({response.message.content!r}); raise max_new_tokens")
    return output_cls.model_validate_json(response.message.content)


def _constrained(output_cls: type[BaseModel], llm_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """``llm_kwargs`` with the constraint of ``output_cls`` (a caller's own constraint is kept)."""
    return {"constraint": output_cls, **(llm_kwargs or {})}
