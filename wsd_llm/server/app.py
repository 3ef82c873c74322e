"""The FastAPI app of ``wsd-llm serve``: routes, limits, the run queue, and clients that leave."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException

from wsd_llm.errors import ContextWindowExceeded, OptionError
from wsd_llm.pipeline import WSDPipeline, WSDRequest
from wsd_llm.results import StreamEvent, WSDResult
from wsd_llm.server.protocol import (
    APIError,
    ChatCompletion,
    ChatRequest,
    Delta,
    ErrorResponse,
    ModelCard,
    ModelList,
    Reply,
)

logger = logging.getLogger("wsd_llm.server")

ROUTES = "POST /v1/chat/completions, GET /v1/models and GET /health"


class ServerSettings(BaseModel):
    """Limits and access of a WSD server."""

    model_config = ConfigDict(frozen=True)

    model_name: str = Field("wsd", description="The model id clients send and see in /v1/models.")
    api_key: SecretStr | None = Field(None, description="Requests need `Authorization: Bearer <key>`.")
    max_tokens: int = Field(1024, gt=0, description="Largest max_tokens a request may ask for; a "
                            "request without one gets the pipeline's max_new_tokens, capped at this.")
    max_request_bytes: int = Field(1_000_000, gt=0, description="Largest request body accepted.")
    workers: int = Field(1, gt=0, description="WSD runs at once; the rest wait in arrival order.")


class _Progress:
    """How far a run got, for the log line of a client that left."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.running = self.finished = False
        self.text: list[str] = []

    def log_cancelled(self, pipe: WSDPipeline) -> None:
        if self.finished:
            return
        if not self.running:
            logger.info("client disconnected while queued; its run never started")
            return
        tokens = pipe.base.count_tokens("".join(self.text))
        logger.info("client disconnected; run cancelled after %d reply tokens (%.1f s)",
                    tokens, time.monotonic() - self.started)


# WSDConfig options by the request field that sets them, where the names differ.
_REQUEST_FIELD = {"max_new_tokens": "max_tokens", "constraint": "response_format", "base_top_k": "top_k",
                  "base_repetition_penalty": "repetition_penalty", "base_frequency_penalty": "frequency_penalty",
                  "base_presence_penalty": "presence_penalty"}


async def _disconnected(request: Request) -> None:
    """Return when the client goes away. The body is read already, so the next ASGI message is
    the disconnect (or, on some servers, an empty body part: keep listening)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, read chunk by chunk and refused (413) as soon as it passes ``limit`` bytes,
    whether or not it declared a content-length."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(f"{declared} bytes", limit)
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise _too_large(f"more than {limit} bytes", limit)
    return bytes(body)


def _too_large(size: str, limit: int) -> APIError:
    return APIError(413, f"the request body is {size}; this server accepts at most {limit}: "
                         "shorten the conversation", code="request_too_large")


def create_app(pipe: WSDPipeline, settings: ServerSettings | None = None) -> FastAPI:
    """The FastAPI app serving ``pipe`` (see :mod:`wsd_llm.server` for what it honours).

    Args:
        pipe: The WSD pipeline; its config gives the defaults, and its ``max_draft_tokens``
            is the most a request may ask for.
        settings: Limits and access; defaults to :class:`ServerSettings()`.

    Returns:
        The app; serve it with uvicorn. With an API key set, ``/docs``, ``/redoc`` and
        ``/openapi.json`` are off.
    """
    settings = settings or ServerSettings()
    open_docs = settings.api_key is None  # docs cannot send a Bearer key: with a key they are off
    app = FastAPI(title="wsd-llm", description="Weak-to-Strong Decoding, OpenAI-compatible",
                  docs_url="/docs" if open_docs else None, redoc_url="/redoc" if open_docs else None,
                  openapi_url="/openapi.json" if open_docs else None)
    gate = asyncio.Semaphore(settings.workers)  # waiters are woken in arrival order
    model_names = {settings.model_name, pipe.model_name}

    @app.exception_handler(APIError)
    async def _api_error(_: Request, error: APIError) -> JSONResponse:
        # After a 413 uvicorn discards the rest of the body as it arrives. Closing the connection
        # instead would reset it under a client still sending, which then sees no 413 (and retries).
        return JSONResponse(error.body.model_dump(), status_code=error.status)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
        where = f"{request.method} {request.url.path}"
        messages = {404: f"no route {where}; this server serves {ROUTES}",
                    405: f"method not allowed: {where}; this server serves {ROUTES}"}
        body = APIError(error.status_code, messages.get(error.status_code, str(error.detail))).body
        return JSONResponse(body.model_dump(), status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def _server_error(_: Request, error: Exception) -> JSONResponse:
        logger.exception("WSD run failed")
        body = APIError(500, f"the WSD run failed: {error}", kind="server_error").body
        return JSONResponse(body.model_dump(), status_code=500)

    async def authorize(request: Request) -> None:
        if settings.api_key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = settings.api_key.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise APIError(401, "missing or wrong API key: send `Authorization: Bearer <key>`",
                           kind="authentication_error", code="invalid_api_key")

    errors: dict[int | str, dict[str, Any]] = {status: {"model": ErrorResponse}
                                               for status in (400, 401, 404, 413)}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models", dependencies=[Depends(authorize)], responses=errors)
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(id=settings.model_name, draft=pipe.draft.name, base=pipe.base.name)])

    @app.post("/v1/chat/completions", dependencies=[Depends(authorize)], response_model=ChatCompletion,
              responses=errors)
    async def chat(request: Request) -> Response | ChatCompletion:
        body = ChatRequest.from_json(await _read_body(request, settings.max_request_bytes))
        if body.model is not None and body.model not in model_names:
            raise APIError(404, f"model {body.model[:80]!r} does not exist; this server serves "
                                f"{settings.model_name!r}", param="model", code="model_not_found")
        body.refuse_unsupported()
        options = body.options(max_tokens=settings.max_tokens, max_draft_tokens=pipe.config.max_draft_tokens,
                               default_tokens=min(pipe.config.max_new_tokens, settings.max_tokens))
        prepared = await asyncio.to_thread(_prepare, body, options)
        reply = Reply(settings.model_name)
        if body.stream:
            return EventSourceResponse(_stream(reply, prepared, body.include_usage), ping=15, sep="\n")
        result = await _complete(request, prepared)
        if result is None:  # nobody is listening any more
            return Response(status_code=499)
        return reply.completion(result)

    def _prepare(body: ChatRequest, options: dict[str, Any]) -> WSDRequest:
        """The checked run of a request; a 400 for a bad conversation, tool or option, or a conversation
        longer than a model's context, before any model runs (tokenizing takes a while: off the loop)."""
        body.tool_choice_in_force()
        try:
            return pipe.prepare(body.conversation(), tools=body.tools, tool_choice=body.tool_choice, **options)
        except OptionError as error:
            param = _REQUEST_FIELD.get(error.option, error.option)
            what = str(error)
            if what.startswith(f"{error.option} "):  # "gamma must be ..." -> "must be ..."
                what = what.removeprefix(error.option).lstrip()
            raise APIError(400, f"{param}: {what}", param=param) from error
        except ContextWindowExceeded as error:
            raise APIError(400, f"messages: {error}", param="messages", code="context_length_exceeded") from error
        except (ValueError, TypeError) as error:
            raise APIError(400, f"messages: {error}", param="messages") from error

    async def _run(prepared: WSDRequest, progress: _Progress) -> AsyncIterator[StreamEvent]:
        """The run's events once a worker slot is free; closing it stops the models within one chunk."""
        async with gate, aclosing(prepared.aevents()) as events:
            progress.running = True
            async for event in events:
                progress.text.append(event.tool_call.arguments if event.tool_call else event.text)
                progress.finished = event.result is not None
                yield event

    async def _complete(request: Request, prepared: WSDRequest) -> WSDResult | None:
        """The run's result, or None when the client leaves first: the run is then stopped."""
        progress = _Progress()

        async def result() -> WSDResult:
            async with aclosing(_run(prepared, progress)) as events:
                async for event in events:
                    if event.result is not None:
                        return event.result
            raise RuntimeError("the WSD run ended without a result")

        work, gone = asyncio.create_task(result()), asyncio.create_task(_disconnected(request))
        try:
            await asyncio.wait((work, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not work.done():
                work.cancel()
                await asyncio.wait((work,))  # until the worker thread has stopped the models
                progress.log_cancelled(pipe)
        return work.result() if not work.cancelled() else None

    async def _stream(reply: Reply, prepared: WSDRequest, include_usage: bool) -> AsyncIterator[str]:
        yield reply.chunk(Delta(role="assistant", content="")).sse()
        progress = _Progress()
        try:
            async with aclosing(_run(prepared, progress)) as events:
                async for event in events:
                    if event.result is None:
                        yield reply.piece(event).sse()
                        continue
                    yield reply.finish(event.result).sse()
                    if include_usage:
                        yield reply.usage(event.result).sse()
        except (asyncio.CancelledError, GeneratorExit):  # sse-starlette saw the client leave
            progress.log_cancelled(pipe)
            raise
        except Exception as error:  # the status line is gone: report in-band, as OpenAI does
            logger.exception("WSD run failed mid-stream")
            yield APIError(500, f"the WSD run failed: {error}", kind="server_error").body.model_dump_json()
        yield "[DONE]"

    return app
