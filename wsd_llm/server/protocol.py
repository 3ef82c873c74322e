"""OpenAI's chat-completions protocol as ``wsd-llm serve`` speaks it: typed requests, replies and errors.

A request is parsed into the fields OpenAI defines (anything else is an unknown field, refused),
then :meth:`ChatRequest.refuse_unsupported` refuses by name every field the server does not
honour yet unless it holds its "off" value, which is what clients send by default. Nothing is
dropped silently.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wsd_llm.results import FinishReason, StreamEvent, ToolCall, ToolCallDelta, WSDResult
from wsd_llm.tools import ToolChoice

# ---------------------------------------------------------------- errors


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class APIError(Exception):
    """An error answered in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``.

    Args:
        status: HTTP status.
        message: One line: what was wrong and how to fix it.
        kind: OpenAI's error ``type``.
        param: The request field at fault, dotted (``messages.1.content``).
        code: OpenAI's machine-readable ``code`` (``model_not_found``...).
    """

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorResponse(error=ErrorDetail(message=message, type=kind, param=param, code=code))

    @classmethod
    def invalid(cls, error: ValidationError, rename: Mapping[str, str] | None = None) -> APIError:
        """A 400 for the first problem pydantic found, as ``"<param>: <what is wrong>"``.

        ``rename`` maps a top-level field name to the request field it came from.
        """
        first = error.errors(include_url=False)[0]
        loc = [str(part) for part in first["loc"]]
        if not loc:
            return cls(400, "the request body must be a JSON object")
        if rename and loc[0] in rename:
            loc[0] = rename[loc[0]]
        param = ".".join(loc)
        return cls(400, f"{param}: {_explain(first)}", param=param)


def _explain(error: Any) -> str:
    if error["type"] == "value_error":  # our own validators: their message, without pydantic's prefix
        return str(error["ctx"]["error"])
    if error["type"] == "extra_forbidden":
        return "unknown field; leave it out (the README lists the fields this server takes)"
    if error["type"] == "missing":
        return "field required"
    return str(error["msg"])


# ---------------------------------------------------------------- requests

_LEGACY = "the legacy functions/function_call fields are not supported; send tools and tool_choice instead"
_OUTPUT = "only text output is supported"


def _off(*values: Any) -> Callable[[Any], bool]:
    return lambda value: value is None or value in values


# Fields the server does not honour yet, with the values that mean "off" (what clients send when
# the feature is not used) and why any other value is refused.
UNSUPPORTED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "functions": (_off([]), _LEGACY),
    "function_call": (_off("none"), _LEGACY),
    "n": (_off(1), "only n=1 is supported: one reply per request"),
    "logit_bias": (_off({}), "logit_bias is not supported; leave it out"),
    "modalities": (_off(["text"]), _OUTPUT),
    "audio": (_off(), _OUTPUT),
    "prediction": (_off(), "predicted outputs are not supported; leave it out"),
    "web_search_options": (_off(), "web search is not supported; leave it out"),
    "reasoning_effort": (_off(), "reasoning_effort is not supported: WSD models do not reason; leave it out"),
    "verbosity": (_off(), "verbosity is not supported; leave it out"),
}


class JSONSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema", description="The JSON schema the reply must satisfy.")
    strict: bool | None = Field(None, description="Accepted: the reply always follows the schema here.")


class ResponseFormat(BaseModel):
    """OpenAI's ``response_format``: JSON replies are constrained by a grammar on both models."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_when_needed(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type json_schema needs json_schema: {name, schema}")
        return self

    def constraint(self) -> dict[str, Any] | None:
        """The ``WSDConfig.constraint`` of this format (None for text)."""
        if self.type == "text":
            return None
        return self.model_dump(by_alias=True, exclude_none=True)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool | None = Field(None, description="Send usage in an extra last chunk (choices: []).")
    include_obfuscation: bool | None = Field(None, description="Accepted; there is nothing to pad here.")


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The tool's name.")
    arguments: str = Field(description="The arguments as JSON text.")


class MessageToolCall(BaseModel):
    """OpenAI's ``tool_calls[i]`` of an assistant message: in a request's history, and in a reply."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The call's id, which the tool message with its result refers to.")
    type: Literal["function"] = "function"
    function: FunctionCall

    @classmethod
    def of(cls, call: ToolCall) -> MessageToolCall:
        return cls(id=call.id, function=FunctionCall(name=call.name, arguments=call.arguments))


class ChatMessage(BaseModel):
    """One message of the conversation; multi-part content is joined into one text."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | None = None
    name: str | None = Field(None, description="A tool message's tool name; accepted, not used, elsewhere.")
    tool_calls: list[MessageToolCall] | None = None
    tool_call_id: str | None = None
    function_call: Any = None
    refusal: str | None = None
    audio: Any = None
    annotations: list[Any] | None = Field(None, description="Accepted (an earlier reply's), not used.")

    @field_validator("content", mode="before")
    @classmethod
    def _text(cls, content: Any) -> Any:
        if content is None or isinstance(content, str):
            return content
        if not isinstance(content, list):
            # pydantic turns a ValueError (not a TypeError) into a validation error
            raise ValueError("must be a string or a list of {'type': 'text', 'text': ...}")  # noqa: TRY004
        texts = []
        for index, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind != "text" or not isinstance(part.get("text"), str):
                raise ValueError(f"part {index} is {_short(kind if kind else part)}; only text parts "
                                 "({'type': 'text', 'text': ...}) are supported")
            texts.append(part["text"])
        return "".join(texts)

    def refuse_unsupported(self, index: int, call_ids: set[str]) -> None:
        """Raise a 400 naming what is wrong with this message, the ``index``-th, in a conversation
        whose earlier assistant messages made the calls ``call_ids``."""
        where = f"messages.{index}"

        def refuse(field: str, why: str) -> APIError:
            return APIError(400, f"{where}.{field}: {why}", param=f"{where}.{field}")

        if self.role == "function":
            raise refuse("role", "the legacy function role is not supported; send a tool's result as "
                                 "{'role': 'tool', 'tool_call_id': ..., 'content': ...}")
        if self.function_call is not None:
            raise refuse("function_call", "the legacy function_call is not supported; send tool_calls")
        if self.tool_calls and self.role != "assistant":
            raise refuse("tool_calls", f"only assistant messages carry tool_calls, not {self.role} messages")
        if self.role == "tool":
            if self.tool_call_id is None:
                raise refuse("tool_call_id", "field required: the id of the call whose result this is")
            if self.tool_call_id not in call_ids:
                raise refuse("tool_call_id", f"no earlier assistant message made a call with id "
                                             f"{_short(self.tool_call_id)}; send that message (with its "
                                             "tool_calls) before the tool results")
        elif self.tool_call_id is not None:
            raise refuse("tool_call_id", "only tool messages carry tool_call_id")
        if self.audio is not None:
            raise refuse("audio", _OUTPUT)
        if self.refusal is not None:
            raise refuse("refusal", "send the refusal's text as content")
        if self.content is None and not self.tool_calls:
            raise refuse("content", "field required")

    def as_message(self) -> dict[str, Any]:
        """The message in OpenAI's shape, which the core reads (tool-loop turns included)."""
        message: dict[str, Any] = {"role": "system" if self.role == "developer" else self.role,
                                   "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [call.model_dump() for call in self.tool_calls]
        if self.role == "tool":
            message.update(tool_call_id=self.tool_call_id, name=self.name)
        return message


class ChatRequest(BaseModel):
    """An OpenAI chat-completions request, plus WSD's own switch settings."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    # Honoured.
    max_tokens: int | None = Field(None, gt=0)
    max_completion_tokens: int | None = Field(None, gt=0)
    temperature: float | None = Field(None, ge=0, description="The draft's sampling temperature.")
    top_p: float | None = Field(None, gt=0, le=1, description="The draft's nucleus mass.")
    seed: int | None = Field(None, ge=-(2**63), lt=2**63, description="The draft and base samplers' seed.")
    frequency_penalty: float | None = Field(None, ge=-2, le=2, description="The base's continuation only.")
    presence_penalty: float | None = Field(None, ge=-2, le=2, description="The base's continuation only.")
    stop: list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    logprobs: bool | None = Field(None, description="Each reply token's log-probability under the base model.")
    top_logprobs: int | None = Field(None, ge=0, le=20, description="The base's most likely tokens per position.")
    # WSD's own settings.
    gamma: float | None = None
    window: int | None = None
    max_draft_tokens: int | None = Field(None, gt=0)
    # The base's continuation (vLLM's extra sampling fields; temperature and top_p are the draft's).
    repetition_penalty: float | None = Field(None, gt=0, description="The base's CTRL repetition penalty.")
    top_k: int | None = Field(None, ge=0, description="The base samples from its top_k tokens; 0 keeps all.")
    base_temperature: float | None = Field(None, ge=0, description="The base's sampling temperature.")
    base_top_p: float | None = Field(None, gt=0, le=1, description="The base's nucleus mass.")
    # Accepted and not used: they change nothing about the reply.
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    # Tools (see ``wsd_llm.tools``).
    tools: list[dict[str, Any]] | None = Field(None, description="OpenAI function tools the reply may call.")
    tool_choice: Any = Field(None, description='"auto" (the default with tools), "none", "required", or '
                             '{"type": "function", "function": {"name": ...}}.')
    parallel_tool_calls: bool | None = Field(None, description="Accepted: a reply holds at most one call, "
                                             "which OpenAI allows either way.")
    # Refused unless "off" (see UNSUPPORTED).
    functions: Any = None
    function_call: Any = None
    response_format: ResponseFormat | None = None
    n: int | None = None
    logit_bias: Any = None
    modalities: Any = None
    audio: Any = None
    prediction: Any = None
    web_search_options: Any = None
    reasoning_effort: Any = None
    verbosity: Any = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_list(cls, stop: Any) -> Any:
        return [stop] if isinstance(stop, str) else stop

    @classmethod
    def from_json(cls, raw: bytes) -> ChatRequest:
        """Parse a request body.

        Raises:
            APIError: 400 for a body that is not UTF-8 JSON, holds text that is not valid
                Unicode (a lone surrogate such as ``\\ud800``), or does not fit the schema.
        """
        try:
            data = json.loads(raw, parse_constant=_not_json)
        except UnicodeDecodeError as error:
            raise APIError(400, "the request body is not UTF-8 text; send JSON encoded as UTF-8") from error
        except RecursionError as error:
            raise APIError(400, "the request body is not valid JSON: nested too deeply") from error
        except ValueError as error:
            raise APIError(400, f"the request body is not valid JSON: {error}") from error
        if (where := _lone_surrogate(data)) is not None:
            raise APIError(400, f"{where or 'a key'}: the text is not valid Unicode (it holds a lone "
                                "surrogate escape such as \\ud800); send UTF-8 text", param=where or None)
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise APIError.invalid(error) from error

    def refuse_unsupported(self) -> None:
        """Raise a 400 naming the first field set to something this server does not honour yet."""
        for field, (is_off, why) in UNSUPPORTED.items():
            if not is_off(getattr(self, field)):
                raise APIError(400, f"{field}: {why}", param=field)
        call_ids: set[str] = set()
        for index, message in enumerate(self.messages):
            message.refuse_unsupported(index, call_ids)
            call_ids.update(call.id for call in message.tool_calls or ())

    def tool_choice_in_force(self) -> ToolChoice:
        """The tools the reply may call and whether it must, as the core reads them.

        Raises:
            APIError: 400 naming ``tools`` (a malformed tool, two with one name) or ``tool_choice``
                (an unknown form, a call required with no tools, a tool that is not given).
        """
        try:
            ToolChoice.parse(self.tools)
        except ValueError as error:
            raise APIError(400, f"tools: {error}", param="tools") from error
        try:
            return ToolChoice.parse(self.tools, self.tool_choice)
        except ValueError as error:
            raise APIError(400, f"tool_choice: {error}", param="tool_choice") from error

    def conversation(self) -> list[dict[str, Any]]:
        """The messages in OpenAI's shape, for ``WSDPipeline.prepare``."""
        return [message.as_message() for message in self.messages]

    def options(self, *, max_tokens: int, default_tokens: int, max_draft_tokens: int) -> dict[str, Any]:
        """The WSD options of this request, within the server's limits.

        Args:
            max_tokens: The most tokens a reply may have here.
            default_tokens: The reply's budget when the request names none.
            max_draft_tokens: The most tokens the draft may write here (also the default).

        Raises:
            APIError: 400 for a request over a limit.
        """
        wanted = self.max_completion_tokens or self.max_tokens or default_tokens
        field = "max_completion_tokens" if self.max_completion_tokens else "max_tokens"
        limits = ((field, wanted, max_tokens), ("max_draft_tokens", self.max_draft_tokens, max_draft_tokens))
        for name, value, limit in limits:
            if value is not None and value > limit:
                raise APIError(400, f"{name}: {value} is more than this server allows; "
                                    f"ask for at most {limit}", param=name)
        return {"max_new_tokens": wanted, "temperature": self.temperature, "top_p": self.top_p,
                "seed": self.seed, "stop": self.stop, "gamma": self.gamma, "window": self.window,
                "max_draft_tokens": self.max_draft_tokens, "base_temperature": self.base_temperature,
                "base_top_p": self.base_top_p, "base_top_k": self.top_k,
                "base_repetition_penalty": self.repetition_penalty,
                "base_frequency_penalty": self.frequency_penalty, "base_presence_penalty": self.presence_penalty,
                "logprobs": self.logprobs, "top_logprobs": self.top_logprobs,
                "constraint": self.response_format.constraint() if self.response_format else None}

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not a JSON number")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _lone_surrogate(data: Any) -> str | None:
    """The dotted path of the first string (or key: its parent's path) holding a lone surrogate."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return path
        elif isinstance(value, dict):
            for key in value:
                if _lone_surrogate(key) is not None:
                    return path
            stack.extend((f"{path}.{key}" if path else key, item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((f"{path}.{index}" if path else str(index), item)
                         for index, item in reversed(list(enumerate(value))))
    return None


# ---------------------------------------------------------------- replies


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class TopLogprobEntry(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class LogprobEntry(TopLogprobEntry):
    top_logprobs: list[TopLogprobEntry]


class ChoiceLogprobs(BaseModel):
    """OpenAI's ``choices[].logprobs``: one entry per reply token, under the base model."""

    content: list[LogprobEntry]
    refusal: None = None

    @classmethod
    def of(cls, result: WSDResult) -> ChoiceLogprobs | None:
        logprobs = result.openai_logprobs()
        return None if logprobs is None else cls.model_validate(logprobs)


class AssistantMessage(BaseModel):
    """The reply: its text, or (``content`` null) the tool call it is."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[MessageToolCall] | None = Field(None, exclude_if=lambda calls: calls is None)  # as OpenAI

    @classmethod
    def of(cls, result: WSDResult) -> AssistantMessage:
        if result.tool_calls:
            return cls(content=None, tool_calls=[MessageToolCall.of(call) for call in result.tool_calls])
        return cls(content=result.text)


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason


class ChatCompletion(BaseModel):
    """A whole reply, with WSD's switch statistics in ``wsd`` (``WSDResult.stats()``)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    wsd: dict[str, Any]


class FunctionDelta(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCallChunk(BaseModel):
    """A streamed piece of a call (OpenAI's ``delta.tool_calls[i]``): the first has the id, type and
    name; the ``function.arguments`` of all add up to the call's arguments."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionDelta

    @classmethod
    def of(cls, piece: ToolCallDelta) -> ToolCallChunk:
        first = piece.name is not None
        return cls(index=piece.index, id=piece.id, type="function" if first else None,
                   function=FunctionDelta(name=piece.name, arguments=piece.arguments))


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallChunk] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed reply."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    wsd: dict[str, Any] | None = None

    def sse(self) -> str:
        return self.model_dump_json(exclude_none=True)


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "wsd-llm"
    draft: str
    base: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Reply:
    """Builds the typed pieces of one chat completion, which share an id, a time and a model name."""

    def __init__(self, model: str) -> None:
        self.id, self.created, self.model = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), model

    def completion(self, result: WSDResult) -> ChatCompletion:
        choice = Choice(message=AssistantMessage.of(result), finish_reason=result.finish_reason,
                        logprobs=ChoiceLogprobs.of(result))
        return ChatCompletion(id=self.id, created=self.created, model=self.model, choices=[choice],
                              usage=Usage(**result.usage()), wsd=result.stats())

    def chunk(self, delta: Delta, finish: FinishReason | None = None, logprobs: ChoiceLogprobs | None = None,
              **fields: Any) -> ChatCompletionChunk:
        choice = ChunkChoice(delta=delta, finish_reason=finish, logprobs=logprobs)
        return ChatCompletionChunk(id=self.id, created=self.created, model=self.model, choices=[choice], **fields)

    def piece(self, event: StreamEvent) -> ChatCompletionChunk:
        """The chunk of a piece of the reply: text, or a piece of the call the reply is."""
        if event.tool_call is not None:
            return self.chunk(Delta(tool_calls=[ToolCallChunk.of(event.tool_call)]))
        return self.chunk(Delta(content=event.text))

    def finish(self, result: WSDResult) -> ChatCompletionChunk:
        """The chunk that ends the choice: its finish reason, the switch statistics, no usage, and the
        reply's logprobs when asked (they are computed once the reply is whole)."""
        return self.chunk(Delta(), result.finish_reason, ChoiceLogprobs.of(result), wsd=result.stats())

    def usage(self, result: WSDResult) -> ChatCompletionChunk:
        """OpenAI's extra last chunk for ``stream_options.include_usage``: no choices, the usage."""
        return ChatCompletionChunk(id=self.id, created=self.created, model=self.model, choices=[],
                                   usage=Usage(**result.usage()))
