"""A small OpenAI-compatible HTTP client: timeouts, retries with backoff, SSE streaming, clear errors.

It speaks only the two calls WSD needs (``/v1/completions`` and the model list) and keeps
the API key in a ``SecretStr`` so it never shows up in a repr, a log line or an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from wsd_llm.backends.remote.errors import (
    RemoteConnectionError,
    RemoteError,
    RemoteResponseError,
    RemoteStatusError,
)

logger = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class Endpoint(BaseModel):
    """Where an OpenAI-compatible server is, and how to talk to it."""

    model_config = ConfigDict(frozen=True)

    base_url: str = Field(description="Server root or its /v1 root, e.g. http://127.0.0.1:8000/v1.")
    model: str | None = Field(None, description="Model name sent with each request; the server's first model if None.")
    api_key: SecretStr | None = Field(None, description="Sent as a Bearer token; never printed.")
    timeout: float = Field(120.0, gt=0, description="Seconds to wait for a response (between stream chunks).")
    max_retries: int = Field(3, ge=0, description="Extra attempts after a 429/5xx or a connection error.")
    backoff: float = Field(0.5, ge=0, description="First wait between attempts in seconds; doubles each time.")

    @field_validator("base_url")
    @classmethod
    def _v1_root(cls, value: str) -> str:
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {value!r}")
        root = value.rstrip("/")
        return root if root.endswith("/v1") else root + "/v1"

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


def _retryable(error: BaseException) -> bool:
    if isinstance(error, RemoteStatusError):
        return error.status_code in _RETRY_STATUS
    return isinstance(error, RemoteConnectionError)


class OpenAIClient:
    """Sync JSON and SSE calls to one :class:`Endpoint`; thread-safe (httpx pools connections)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        headers = {"Authorization": f"Bearer {endpoint.api_key.get_secret_value()}"} if endpoint.api_key else {}
        self._http = httpx.Client(base_url=endpoint.base_url, headers=headers,
                                  timeout=httpx.Timeout(endpoint.timeout, connect=min(endpoint.timeout, 10.0)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint!r})"

    def close(self) -> None:
        self._http.close()

    def _attempts(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self.endpoint.max_retries + 1),
            wait=wait_exponential(multiplier=self.endpoint.backoff, max=30),
            before_sleep=lambda state: logger.warning(
                "retrying %s after: %s", self.endpoint.base_url, state.outcome.exception()),
            reraise=True,
        )

    def get(self, path: str) -> dict[str, Any]:
        return self._attempts()(self._request, "GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` as JSON; the decoded JSON object of the answer."""
        return self._attempts()(self._request, "POST", path, self._with_model(body))

    def stream(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """POST with ``stream: true``; yield each server-sent event's JSON object until ``[DONE]``.

        Only opening the stream is retried: once tokens have arrived a retry would repeat them.
        Closing the iterator closes the connection, which stops generation on the server.
        """
        body = self._with_model({**body, "stream": True})
        response = self._attempts()(self._open_stream, path, body)
        try:
            for line in self._guard(response.iter_lines):
                if not line.startswith("data:"):
                    continue
                data = line[len("data:"):].strip()
                if data == "[DONE]":
                    return
                event = self._decode(data, path)
                if "error" in event:
                    raise RemoteError(f"{self._where(path)} reported an error mid-stream: {event['error']}")
                yield event
        finally:
            response.close()

    def _with_model(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"model": self.endpoint.model, **body} if self.endpoint.model else body

    def _where(self, path: str) -> str:
        return f"{self.endpoint.base_url}{path}"

    def _guard(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except httpx.TimeoutException as error:
            raise RemoteConnectionError(
                f"{self.endpoint.base_url} did not answer within {self.endpoint.timeout} s "
                "(raise `timeout` for slow servers)") from error
        except httpx.TransportError as error:
            raise RemoteConnectionError(
                f"cannot reach {self.endpoint.base_url}: {error}; is the server running?") from error

    def _check_status(self, response: httpx.Response, path: str) -> None:
        if response.is_success:
            return
        response.read()
        detail = response.text[:500]
        hint = " (check the API key)" if response.status_code in (401, 403) else ""
        raise RemoteStatusError(
            f"{self._where(path)} answered HTTP {response.status_code}{hint}: {detail}", response.status_code)

    def _decode(self, text: str, path: str) -> dict[str, Any]:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise RemoteResponseError(
                f"{self._where(path)} answered with malformed JSON: {text[:200]!r}") from error
        if not isinstance(data, dict):
            raise RemoteResponseError(f"{self._where(path)} answered {type(data).__name__}, expected a JSON object")
        return data

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        response = self._guard(self._http.request, method, path, json=body)
        self._check_status(response, path)
        return self._decode(response.text, path)

    def _open_stream(self, path: str, body: dict[str, Any]) -> httpx.Response:
        request = self._http.build_request("POST", path, json=body)
        response = self._guard(self._http.send, request, stream=True)
        try:
            self._check_status(response, path)
        except RemoteError:
            response.close()
            raise
        return response


def field(data: Any, *path: str | int, where: str) -> Any:
    """``data[path[0]][path[1]]...``, or a :class:`RemoteResponseError` naming the missing field."""
    for key in path:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError) as error:
            dotted = ".".join(str(k) for k in path)
            raise RemoteResponseError(f"{where} answered without `{dotted}`: not an OpenAI completion") from error
    return data
