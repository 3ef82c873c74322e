"""Real HTTP servers on 127.0.0.1 for the remote tests: subprocesses (llama-cpp-python's
server, ``wsd-llm serve``) and a scripted in-process app for the error paths."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, BinaryIO

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server_process(args: list[str], port: int, *, ready_path: str = "/v1/models", timeout: float = 300,
                   env: dict[str, str] | None = None, log: BinaryIO | None = None) -> Iterator[str]:
    """Run ``args`` until it answers ``ready_path`` on ``port``; yield its URL; stop it afterwards.

    Its output goes to ``log`` (a binary file opened for reading and writing), else to a temporary file.
    """
    own_log = log is None
    log = tempfile.TemporaryFile() if log is None else log
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{args[:4]} exited with {process.returncode}:\n{log.read().decode()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + ready_path, timeout=2).status_code < 500:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{args[:4]} did not start within {timeout} s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if own_log:
            log.close()


def llama_server(model: os.PathLike[str] | str, *extra: str) -> contextlib.AbstractContextManager[str]:
    """llama-cpp-python's OpenAI server on ``model`` (a GGUF), prompt logprobs on.

    One thread: on a busy two-core machine llama.cpp's spinning worker threads are ten times
    slower than a single one.
    """
    port = free_port()
    args = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
            "--port", str(port), "--logits_all", "true", "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1", *extra]
    return server_process(args, port)


class ScriptedServer:
    """An OpenAI-shaped server on a real socket that answers from a script, for error paths.

    ``replies`` is a list of (status, body) or (status, body, headers) consumed one per request;
    a body that is not a str is sent as JSON; ``("sleep", seconds)`` waits that long first;
    ``("stream", chunks)`` sends each chunk as a server-sent event (an endless iterable is fine),
    a chunk ``"drop"`` cuts the connection, and ``disconnected`` is set if the client leaves early.
    """

    def __init__(self) -> None:
        self.replies: list[tuple[Any, ...]] = []
        self.requests: list[dict[str, Any]] = []
        self.disconnected = threading.Event()
        app = FastAPI()

        @app.post("/v1/completions")
        async def completions(request: Request) -> Response:
            self.requests.append({"headers": dict(request.headers), "json": await request.json()})
            status, body, *headers = self.replies.pop(0) if self.replies else (500, "script exhausted")
            if status == "sleep":
                await asyncio.sleep(body)
                status, body = 200, {}
            if status == "stream":
                return StreamingResponse(self._events(body), media_type="text/event-stream")
            text = body if isinstance(body, str) else json.dumps(body)
            return Response(text, status_code=status, media_type="application/json", headers=next(iter(headers), None))

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def _events(self, chunks: Iterable[Any]) -> AsyncIterator[str]:
        try:
            for chunk in chunks:
                if chunk == "drop":
                    raise ConnectionAbortedError("scripted: connection cut mid-stream")
                yield f"data: {json.dumps(chunk)}\n\n"
                await asyncio.sleep(0.01)
            yield "data: [DONE]\n\n"
        except (GeneratorExit, asyncio.CancelledError):  # the client went away
            self.disconnected.set()
            raise

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
