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
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

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
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

from wsd_llm import StreamEvent, WSDConfig, WSDPipeline, WSDResult, normalize_messages
from wsd_llm.messages import Message
from wsd_llm.pipeline import ModelSpec

# A checked conversation and the WSDConfig overrides of one call.
Request = tuple[list[Message], dict[str, Any]]
# A stream chunk before it becomes a LlamaIndex response: cumulative text, new piece, raw.
Chunk = tuple[str, str, dict[str, Any]]

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


def to_conversation(messages: Sequence[ChatMessage]) -> list[Message]:
    """LlamaIndex chat messages as WSD turns (see the module docstring for the role mapping)."""
    return normalize_messages(
        [{"role": _ROLES[MessageRole(m.role)], "content": m.content or ""} for m in messages]
    )


def result_raw(result: WSDResult) -> dict[str, Any]:
    """The reply and its switch statistics as plain JSON, with an OpenAI-style ``usage`` for token counters."""
    return {"text": result.text, "draft_text": result.draft_text, "base_text": result.base_text,
            **result.stats(), "usage": result.usage()}


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
    return CompletionResponse(text=text, delta=delta, raw=raw)


def _chat(chunk: Chunk) -> ChatResponse:
    text, delta, raw = chunk
    return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=delta, raw=raw)


class WSDLLM(CustomLLM):
    """A LlamaIndex LLM that answers with Weak-to-Strong Decoding::

        llm = WSDLLM()                                   # the packaged SmolLM2 draft + Gemma-3 base
        llm = WSDLLM(draft="HuggingFaceTB/SmolLM2-135M-Instruct", base="google/gemma-3-270m")
        llm = WSDLLM(pipeline=my_pipeline, max_new_tokens=128)

    Generation fields left at ``None`` keep the pipeline's own setting (``WSDConfig``).
    ``raw`` of a response (the last chunk of a stream) is the run's ``WSDResult`` as JSON:
    where the switch happened, who wrote what, token counts and timings. For a ReAct agent
    set ``stop=["\\nObservation:"]`` so the model stops before inventing tool output.
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
    generate_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Other WSDConfig settings (base_format, mode, chunk_size...)."
    )

    _pipeline: WSDPipeline = PrivateAttr()

    def __init__(
        self,
        draft: ModelSpec | None = None,
        base: ModelSpec | None = None,
        *,
        pipeline: WSDPipeline | None = None,
        model_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Models as hub ids, directories, GGUF paths or backend objects (``model_kwargs`` go to
        their loader), or a ready ``pipeline``; with neither, the packaged pair is loaded."""
        if pipeline is not None and (draft is not None or base is not None or model_kwargs):
            raise ValueError("give either pipeline= or draft=/base=/model_kwargs=, not both")
        super().__init__(**kwargs)
        self._pipeline = pipeline or WSDPipeline.from_pretrained(draft, base, **(model_kwargs or {}))
        self._pipeline.config.updated(**self._options({}))  # a field that does not fit fails now

    @classmethod
    def class_name(cls) -> str:
        return "wsd_llm"

    @property
    def pipeline(self) -> WSDPipeline:
        return self._pipeline

    @property
    def config(self) -> WSDConfig:
        """The pipeline's settings with this LLM's fields applied."""
        return self._pipeline.config.updated(**self._options({}))

    @property
    def metadata(self) -> LLMMetadata:
        draft, base = self._pipeline.draft, self._pipeline.base
        return LLMMetadata(
            # The conversation goes to both models, so it must fit the smaller window.
            context_window=min(draft.context_window, base.context_window),
            num_output=self.config.max_new_tokens,
            is_chat_model=True,
            model_name=self._pipeline.model_name,
        )

    def _options(self, call_kwargs: dict[str, Any]) -> dict[str, Any]:
        """WSDConfig overrides for one call: the fields, then ``generate_kwargs``, then the call's own."""
        fields = ("max_new_tokens", "max_draft_tokens", "temperature", "top_p", "seed", "gamma", "window")
        options = {name: getattr(self, name) for name in fields}
        options.update(self.generate_kwargs)
        extra_stop = call_kwargs.pop("stop", None) or ()
        options.update(call_kwargs)
        if isinstance(extra_stop, str):
            extra_stop = [extra_stop]
        options["stop"] = tuple(dict.fromkeys([*self._pipeline.config.stop, *self.stop, *extra_stop]))
        return options

    def _prompt_request(self, prompt: str, formatted: bool, kwargs: dict[str, Any]) -> Request:
        if not formatted:
            prompt = self.completion_to_prompt(prompt)
        return self._request([{"role": "user", "content": prompt}], kwargs)

    def _chat_request(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> Request:
        # LlamaIndex fills an unset messages_to_prompt with its generic one; only a user's own counts.
        if self.messages_to_prompt is not generic_messages_to_prompt:
            return self._request([{"role": "user", "content": self.messages_to_prompt(messages)}], kwargs)
        return self._request(to_conversation(messages), kwargs)

    def _request(self, conversation: list[Message], kwargs: dict[str, Any]) -> Request:
        """Check the conversation and the options before any model runs (async streams start lazily)."""
        options = self._options(dict(kwargs))
        self._pipeline.config.updated(**options)
        return normalize_messages(conversation), options

    def _chunks(self, conversation: list[Message], options: dict[str, Any]) -> Iterator[Chunk]:
        chunker = _Chunker()
        for event in self._pipeline.stream(conversation, **options):
            if (chunk := chunker.push(event)) is not None:
                yield chunk

    async def _achunks(self, conversation: list[Message], options: dict[str, Any]) -> AsyncIterator[Chunk]:
        chunker = _Chunker()
        async for event in self._pipeline.astream(conversation, **options):
            if (chunk := chunker.push(event)) is not None:
                yield chunk

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        conversation, options = self._prompt_request(prompt, formatted, kwargs)
        result = self._pipeline.generate(conversation, **options)
        return CompletionResponse(text=result.text, raw=result_raw(result))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        conversation, options = self._prompt_request(prompt, formatted, kwargs)
        return (_completion(chunk) for chunk in self._chunks(conversation, options))

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        conversation, options = self._chat_request(messages, kwargs)
        result = self._pipeline.generate(conversation, **options)
        return _chat((result.text, None, result_raw(result)))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        conversation, options = self._chat_request(messages, kwargs)
        return (_chat(chunk) for chunk in self._chunks(conversation, options))

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        conversation, options = self._prompt_request(prompt, formatted, kwargs)
        result = await self._pipeline.agenerate(conversation, **options)
        return CompletionResponse(text=result.text, raw=result_raw(result))

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        conversation, options = self._prompt_request(prompt, formatted, kwargs)
        return (_completion(chunk) async for chunk in self._achunks(conversation, options))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        conversation, options = self._chat_request(messages, kwargs)
        result = await self._pipeline.agenerate(conversation, **options)
        return _chat((result.text, None, result_raw(result)))

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        conversation, options = self._chat_request(messages, kwargs)
        return (_chat(chunk) async for chunk in self._achunks(conversation, options))
