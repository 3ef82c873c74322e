"""Faults users met with `wsd-llm serve`, replayed on the packaged pair in a real server process:
clients that leave (or time out and retry) must not keep a worker busy, and a conversation
longer than a model's context is a 400 before any work."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from live_servers import free_port, server_process

LONG = {"model": "wsd", "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]}
SMALL = [{"role": "user", "content": "Name a colour."}]
CANCELLED = re.compile(r"run\s+cancelled\s+after\s+(\d+)\s+reply\s+tokens")
LEFT = re.compile(r"client\s+disconnected")


class Served:
    """A `wsd-llm serve` process and its log."""

    def __init__(self, url: str, log: Path) -> None:
        self.url, self.log = url, log

    def mark(self) -> int:
        return self.log.stat().st_size

    def wait_for(self, pattern: re.Pattern[str], since: int, count: int = 1) -> list[re.Match[str]]:
        """The first ``count`` matches logged after ``since``; fails if they do not come in 3 minutes."""
        deadline = time.monotonic() + 180
        while True:
            found = list(pattern.finditer(self.log.read_bytes()[since:].decode(errors="replace")))
            if len(found) >= count:
                return found[:count]
            if time.monotonic() > deadline:
                pytest.fail(f"the server logged {len(found)} of {count} lines matching {pattern.pattern!r}")
            time.sleep(0.2)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One worker and room for long replies, so a run that is not cancelled holds the queue for minutes."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    port = free_port()
    args = [sys.executable, "-m", "wsd_llm.cli", "serve", "--port", str(port), "--max-tokens", "1024",
            "--workers", "1"]
    with log.open("w+b") as sink, server_process(args, port, ready_path="/health", log=sink,
                                                env={"COLUMNS": "300"}) as url:
        yield Served(url + "/v1", log)


@pytest.fixture(scope="module")
def client(served):
    return openai.OpenAI(base_url=served.url, api_key="unused", max_retries=0, timeout=300)


def test_an_abandoned_request_is_cancelled_and_frees_the_worker(served, client):
    since = served.mark()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(served.url + "/chat/completions", json=LONG, timeout=httpx.Timeout(60, read=1.5))
    # The line is logged once the run's thread has stopped and its worker slot is free again.
    [cancelled] = served.wait_for(CANCELLED, since)
    assert int(cancelled[1]) < LONG["max_tokens"]
    reply = client.chat.completions.create(model="wsd", messages=SMALL, max_tokens=8)
    assert reply.choices[0].message.content and reply.usage.completion_tokens <= 8


def test_openai_client_timeouts_and_retries_leave_no_run_behind(served, client):
    """The openai client retries a timed-out request twice by default: three runs, all stopped."""
    since = served.mark()
    impatient = openai.OpenAI(base_url=served.url, api_key="unused", timeout=1.5, max_retries=2)
    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(**LONG)
    assert len(served.wait_for(LEFT, since, count=3)) == 3  # each attempt: cancelled, or dropped when queued
    reply = client.chat.completions.create(model="wsd", messages=SMALL, max_tokens=8)
    assert reply.choices[0].message.content


def test_a_stream_left_midway_is_cancelled(served):
    since = served.mark()
    url = served.url + "/chat/completions"
    with httpx.stream("POST", url, json={**LONG, "stream": True}, timeout=300) as response:
        assert response.status_code == 200
        next(line for line in response.iter_lines() if '"content":"' in line and '"content":""' not in line)
    [cancelled] = served.wait_for(CANCELLED, since)
    assert 0 < int(cancelled[1]) < LONG["max_tokens"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_conversation_longer_than_the_context_is_a_400_before_any_work(served, client, stream):
    too_long = [{"role": "user", "content": "word " * 40_000}]  # more tokens than either model reads
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="wsd", messages=too_long, max_tokens=8, stream=stream)
    error = caught.value.body
    assert error["param"] == "messages" and error["type"] == "invalid_request_error"
    assert error["code"] == "context_length_exceeded"
    assert "which reads at most" in error["message"] and "shorten the conversation" in error["message"]
