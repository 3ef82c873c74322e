"""The two calls WSD makes to an OpenAI-compatible server, over the official ``openai`` SDK.

The SDK does the transport: connection pooling, timeouts, authentication, server-sent
events, and retries (408/409/429/5xx and connection errors, exponential backoff with jitter
that honours ``Retry-After``; the SDK logs each retry on the ``openai`` logger). This module
adds what WSD needs on top: answers as plain dicts checked field by field, the SDK's
exceptions mapped onto :class:`RemoteError` in one place, and an API key kept in a
``SecretStr`` so it never shows in a repr, a log line or an error.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import openai
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from typing_extensions import Self

from wsd_llm.backends.remote.errors import (
    RemoteConnectionError,
    RemoteError,
    RemoteResponseError,
    RemoteStatusError,
)

# The SDK refuses to start without a key and would otherwise read OPENAI_API_KEY from the
# environment, sending a user's OpenAI key to this server.
_NO_KEY = "no-key"

# openai 2.x lets its transport's (httpx's) error escape when a connection drops mid-stream;
# 3.x wraps it in APIConnectionError. Both mean the same here.
try:
    import httpx

    _TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.TransportError,)
except ImportError:  # openai 3.x runs on its own transport package
    _TRANSPORT_ERRORS = ()


class Endpoint(BaseModel):
    """Where an OpenAI-compatible server is, and how to talk to it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = Field(description="Server root or its /v1 root, e.g. http://127.0.0.1:8000/v1.")
    model: str | None = Field(None, description="Model name sent with each request; the server's first model if None.")
    api_key: SecretStr | None = Field(None, description="Sent as a Bearer token; never printed.")
    timeout: float = Field(120.0, gt=0, description="Seconds to wait for a response (between stream chunks).")
    max_retries: int = Field(
        3, ge=0, description="Extra attempts after a 408/409/429/5xx, a timeout or a connection error, with the "
                             "openai SDK's exponential backoff (0.5 s doubling to 8 s, or the server's Retry-After).")

    @field_validator("base_url")
    @classmethod
    def _v1_root(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {value!r}")
        root = value.rstrip("/")
        return root if root.endswith("/v1") else root + "/v1"

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


class OpenAIClient:
    """``/v1/completions`` and ``/v1/models`` of one :class:`Endpoint` through ``openai.OpenAI``.

    Thread-safe (the SDK pools connections). Close it, or use it as a context manager, to
    release its connections. The SDK client itself is ``sdk``, for calls WSD does not make.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        key = endpoint.api_key.get_secret_value() if endpoint.api_key else _NO_KEY
        self.sdk = openai.OpenAI(api_key=key, base_url=endpoint.base_url, max_retries=endpoint.max_retries,
                                 timeout=openai.Timeout(endpoint.timeout, connect=min(endpoint.timeout, 10.0)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint!r})"

    def close(self) -> None:
        """Close the connection pool; later calls raise :class:`RemoteError`."""
        self.sdk.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def complete(self, prompt: str, **params: Any) -> dict[str, Any]:
        """One ``/v1/completions`` answer as a dict.

        Args:
            prompt: The prompt text, sent as is.
            **params: Arguments of ``openai.OpenAI().completions.create`` (``max_tokens``, ``echo``,
                ``logprobs``, ``extra_body`` for fields the OpenAI API lacks, ...); ``model`` is the endpoint's.

        Raises:
            RemoteError: The server could not be reached, refused, or answered something that is not JSON.
        """
        with self._translated("/completions"):
            answer = self.sdk.completions.create(model=self._model, prompt=prompt, **params)
        return self._as_dict(answer, "/completions")

    def stream(self, prompt: str, **params: Any) -> Iterator[dict[str, Any]]:
        """``/v1/completions`` with ``stream=True``: each chunk as a dict, as it arrives.

        Only opening the stream is retried: once tokens have arrived a retry would repeat them.
        Closing the iterator closes the HTTP response, which stops generation on the server.

        Raises:
            RemoteError: As :meth:`complete`, also mid-stream (a dropped connection, an error event).
        """
        with self._translated("/completions"):
            chunks = self.sdk.completions.create(model=self._model, prompt=prompt, stream=True, **params)
        try:
            with self._translated("/completions"):
                for chunk in chunks:
                    yield self._as_dict(chunk, "/completions")
        finally:
            chunks.close()

    def models(self) -> list[dict[str, Any]]:
        """The server's ``/v1/models`` cards as dicts (vLLM adds ``max_model_len``)."""
        with self._translated("/models"):
            page = self.sdk.models.list()
        cards = field(self._as_dict(page, "/models"), "data", where=f"{self.endpoint.base_url}/models")
        if not isinstance(cards, list) or not all(isinstance(card, dict) for card in cards):
            raise RemoteResponseError(f"{self.endpoint.base_url}/models answered `data` that is not a list of objects")
        return cards

    @property
    def _model(self) -> str:
        # Without a model name the field is left out and the server uses the model it serves.
        return self.endpoint.model or openai.NOT_GIVEN  # type: ignore[return-value]

    def _as_dict(self, answer: object, path: str) -> dict[str, Any]:
        # The SDK builds its models without validation, so fields it does not know (vLLM's
        # prompt_logprobs, max_model_len) survive, and missing ones are left to `field`.
        if isinstance(answer, openai.BaseModel):
            return answer.to_dict()
        raise RemoteResponseError(
            f"{self.endpoint.base_url}{path} answered {str(answer)[:200]!r}, not a JSON object")

    @contextlib.contextmanager
    def _translated(self, path: str) -> Iterator[None]:
        """Raise the SDK's errors as :class:`RemoteError`s, with the API key masked."""
        if self.sdk.is_closed():
            raise RemoteError(f"the client of {self.endpoint.base_url} is closed; create a new model to reconnect")
        try:
            yield
        except (openai.OpenAIError, json.JSONDecodeError, *_TRANSPORT_ERRORS) as error:
            mapped = _remote_error(error, self.endpoint, path)
            if self.endpoint.api_key:  # a server may echo the key back in its error text
                mapped.args = (str(mapped).replace(self.endpoint.api_key.get_secret_value(), "***"),)
            raise mapped from error


def _remote_error(error: Exception, endpoint: Endpoint, path: str) -> RemoteError:
    """The :class:`RemoteError` that says what an SDK exception means for WSD (the one mapping)."""
    where = f"{endpoint.base_url}{path}"
    if isinstance(error, openai.APITimeoutError):
        return RemoteConnectionError(
            f"{where} did not answer within {endpoint.timeout} s (raise `timeout` for slow servers)")
    if isinstance(error, (openai.APIConnectionError, *_TRANSPORT_ERRORS)):
        return RemoteConnectionError(
            f"cannot reach {endpoint.base_url}: {error.__cause__ or error}; is the server running?")
    if isinstance(error, openai.APIStatusError):
        hint = " (check the API key)" if error.status_code in (401, 403) else ""
        return RemoteStatusError(f"{where} answered HTTP {error.status_code}{hint}: {error.response.text[:500]}",
                                 error.status_code)
    if isinstance(error, json.JSONDecodeError):
        return RemoteResponseError(f"{where} answered with malformed JSON: {error.doc[:200]!r}")
    if isinstance(error, openai.APIError):  # an error event mid-stream, or an answer the SDK cannot read
        return RemoteError(f"{where} reported an error: {error.message}")
    return RemoteError(f"{where}: {error}")


def field(data: Any, *path: str | int, where: str) -> Any:
    """``data[path[0]][path[1]]...``, or a :class:`RemoteResponseError` naming the missing field."""
    for key in path:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError) as error:
            dotted = ".".join(str(k) for k in path)
            raise RemoteResponseError(f"{where} answered without `{dotted}`: not an OpenAI completion") from error
    return data
