"""``wsd-llm serve``: WSD behind an OpenAI-compatible HTTP API.

Any OpenAI client (the ``openai`` package, LangChain's ``ChatOpenAI``, LlamaIndex's
``OpenAILike``) can talk to it. Requests wait in a FIFO queue for one of ``workers`` slots;
the WSD work itself runs in worker threads so the event loop keeps serving. Replies carry
``usage`` and a ``wsd`` field with the switch statistics. Needs the ``server`` extra.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from sse_starlette.sse import EventSourceResponse

from wsd_llm.messages import normalize_messages
from wsd_llm.pipeline import WSDPipeline

logger = logging.getLogger(__name__)


class ServerSettings(BaseModel):
    """Limits and access of a WSD server."""

    model_config = ConfigDict(frozen=True)

    model_name: str = Field("wsd", description="The model id clients send and see in /v1/models.")
    api_key: SecretStr | None = Field(None, description="If set, requests need `Authorization: Bearer <key>`.")
    max_tokens: int = Field(1024, gt=0, description="Largest max_tokens a request may ask for; a request "
                            "without one gets the pipeline's max_new_tokens, capped at this.")
    max_request_bytes: int = Field(1_000_000, gt=0, description="Largest request body accepted.")
    workers: int = Field(1, gt=0, description="WSD runs at once; the rest wait in arrival order.")


class APIError(Exception):
    """An error answered in the OpenAI error format."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status)


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[dict[str, Any]]

    def as_message(self) -> dict[str, str]:
        """WSD's message dict; text parts of a multi-part content are joined, other parts refused."""
        content = self.content
        if isinstance(content, list):
            if any(part.get("type") != "text" for part in content):
                raise APIError(400, "only text content parts are supported", param="messages")
            content = "".join(str(part.get("text", "")) for part in content)
        return {"role": "system" if self.role == "developer" else self.role, "content": content}


class ChatRequest(BaseModel):
    """The fields of an OpenAI chat request that WSD honours, plus its own switch settings."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, gt=0)
    max_completion_tokens: int | None = Field(None, gt=0)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int = 1
    gamma: float | None = None
    window: int | None = None
    max_draft_tokens: int | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only n=1 is supported")
        return value

    def options(self, settings: ServerSettings, default_tokens: int) -> dict[str, Any]:
        wanted = self.max_completion_tokens or self.max_tokens or min(default_tokens, settings.max_tokens)
        if wanted > settings.max_tokens:
            raise APIError(400, f"max_tokens is {wanted}, but this server allows at most {settings.max_tokens}",
                           param="max_tokens")
        return {"max_new_tokens": wanted, "temperature": self.temperature, "top_p": self.top_p,
                "seed": self.seed, "stop": self.stop, "gamma": self.gamma, "window": self.window,
                "max_draft_tokens": self.max_draft_tokens}


class _Reply:
    """Ids and envelopes of one chat completion."""

    def __init__(self, model: str) -> None:
        self.id, self.created, self.model = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), model

    def envelope(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model, **fields}

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **fields: Any) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return json.dumps(self.envelope("chat.completion.chunk", choices=[choice], **fields))


def create_app(pipe: WSDPipeline, settings: ServerSettings | None = None) -> FastAPI:
    """The FastAPI app serving ``pipe``."""
    settings = settings or ServerSettings()
    app = FastAPI(title="wsd-llm", description="Weak-to-Strong Decoding, OpenAI-compatible")
    gate = asyncio.Semaphore(settings.workers)  # waiters are woken in arrival order

    @app.exception_handler(APIError)
    async def _api_error(_: Request, error: APIError) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return APIError(400, f"invalid request: {where}: {first.get('msg', 'bad value')}", param=where or None).response()

    @app.middleware("http")
    async def _limit_size(request: Request, call_next: Any) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_request_bytes:
            return APIError(413, f"request body is {declared} bytes; this server accepts at most "
                                 f"{settings.max_request_bytes}", code="request_too_large").response()
        return await call_next(request)

    async def authorize(request: Request) -> None:
        if settings.api_key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = settings.api_key.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise APIError(401, "missing or wrong API key: send `Authorization: Bearer <key>`",
                           kind="authentication_error", code="invalid_api_key")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    async def models() -> dict[str, Any]:
        card = {"id": settings.model_name, "object": "model", "created": 0, "owned_by": "wsd-llm",
                "draft": pipe.draft.name, "base": pipe.base.name}
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions", dependencies=[Depends(authorize)])
    async def chat(request: Request) -> Any:
        raw = await request.body()
        if len(raw) > settings.max_request_bytes:
            raise APIError(413, f"request body is {len(raw)} bytes; this server accepts at most "
                                f"{settings.max_request_bytes}", code="request_too_large")
        try:
            body = ChatRequest.model_validate_json(raw)
        except ValidationError as error:
            raise RequestValidationError(error.errors()) from error
        messages = [m.as_message() for m in body.messages]
        options = body.options(settings, pipe.config.max_new_tokens)
        try:  # fail before queueing, with the pipeline's own message
            pipe.config.updated(**options)
            normalize_messages(messages)
        except (ValueError, TypeError) as error:
            raise APIError(400, str(error)) from error
        reply = _Reply(settings.model_name)
        if body.stream:
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            return EventSourceResponse(_stream(reply, messages, options, include_usage),
                                       ping=15, sep="\n")
        async with gate:
            result = await pipe.agenerate(messages, **options)
        message = {"role": "assistant", "content": result.text}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": result.finish_reason}
        return reply.envelope("chat.completion", choices=[choice], usage=result.usage(), wsd=result.stats())

    async def _stream(reply: _Reply, messages: list[dict[str, str]], options: dict[str, Any],
                      include_usage: bool) -> AsyncIterator[str]:
        yield reply.chunk({"role": "assistant", "content": ""})
        async with gate:
            try:
                async for event in pipe.astream(messages, **options):
                    if event.result is None:
                        yield reply.chunk({"content": event.text})
                        continue
                    result = event.result
                    yield reply.chunk({}, result.finish_reason, wsd=result.stats(),
                                      usage=None if include_usage else result.usage())
                    if include_usage:
                        yield json.dumps(reply.envelope("chat.completion.chunk", choices=[], usage=result.usage()))
            except Exception as error:  # the status line is gone: report in-band, like OpenAI does
                logger.exception("WSD run failed mid-stream")
                yield json.dumps({"error": {"message": f"generation failed: {error}", "type": "server_error",
                                            "param": None, "code": None}})
        yield "[DONE]"

    return app
