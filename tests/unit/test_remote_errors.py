"""Error paths of the remote backend against a scripted server on 127.0.0.1."""

from __future__ import annotations

import logging

import pytest
from live_servers import ScriptedServer, free_port
from tiny_models import tiny_base_tokenizer

from wsd_llm.backends.remote import (
    Endpoint,
    OpenAIClient,
    RemoteBase,
    RemoteCapabilityError,
    RemoteConnectionError,
    RemoteError,
    RemoteResponseError,
    RemoteStatusError,
)

KEY = "sk-test-SECRET-4242"
COMPLETION = {"choices": [{"text": "ok", "index": 0, "finish_reason": "length", "logprobs": None}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 1}}


@pytest.fixture
def scripted():
    with ScriptedServer() as server:
        yield server


def client(url: str, **settings) -> OpenAIClient:
    return OpenAIClient(Endpoint(base_url=url, api_key=KEY, backoff=0.01, **settings))


def test_429_then_success_is_retried(scripted, caplog):
    scripted.replies = [(429, {"error": {"message": "slow down"}}), (503, "busy"), (200, COMPLETION)]
    with caplog.at_level(logging.WARNING):
        answer = client(scripted.url).post("/completions", {"prompt": "hi"})
    assert answer["choices"][0]["text"] == "ok"
    assert len(scripted.requests) == 3
    assert "HTTP 429" in caplog.text and KEY not in caplog.text
    assert scripted.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"


def test_persistent_5xx_gives_up_with_status_error(scripted):
    scripted.replies = [(500, "boom")] * 3
    with pytest.raises(RemoteStatusError, match="HTTP 500") as caught:
        client(scripted.url, max_retries=2).post("/completions", {"prompt": "hi"})
    assert caught.value.status_code == 500 and len(scripted.requests) == 3


def test_client_errors_are_not_retried_and_hide_the_key(scripted):
    scripted.replies = [(401, {"error": f"bad key {KEY[:3]}..."})]
    with pytest.raises(RemoteStatusError, match="check the API key") as caught:
        client(scripted.url).post("/completions", {"prompt": "hi"})
    assert len(scripted.requests) == 1 and KEY not in str(caught.value)


def test_malformed_json_is_a_response_error(scripted):
    scripted.replies = [(200, "{not json")]
    with pytest.raises(RemoteResponseError, match="malformed JSON"):
        client(scripted.url).post("/completions", {"prompt": "hi"})


def test_timeout_is_a_connection_error(scripted):
    scripted.replies = [("sleep", 3)]
    with pytest.raises(RemoteConnectionError, match="did not answer within 0.5 s"):
        client(scripted.url, timeout=0.5, max_retries=0).post("/completions", {"prompt": "hi"})


def test_nothing_listening_is_a_connection_error():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(RemoteConnectionError, match="cannot reach"):
        client(url, max_retries=1).post("/completions", {"prompt": "hi"})


def test_base_without_prompt_logprobs_fails_the_probe(scripted):
    scripted.replies = [(200, COMPLETION)]  # like Ollama or TGI: no echoed logprobs
    with pytest.raises(RemoteCapabilityError, match="no prompt log-probabilities"):
        RemoteBase(scripted.url, tiny_base_tokenizer(), context_window=512)


def test_base_with_wrong_completion_shape_names_the_field(scripted):
    scripted.replies = [(200, {"object": "list"})] * 2
    with pytest.raises(RemoteError):
        RemoteBase(scripted.url, tiny_base_tokenizer(), context_window=512)


def test_api_key_never_shows(scripted):
    endpoint = Endpoint(base_url=scripted.url, api_key=KEY)
    base = RemoteBase(endpoint, tiny_base_tokenizer(), context_window=512, probe=False)
    for text in (repr(endpoint), str(endpoint), repr(base.client), repr(base), endpoint.model_dump_json()):
        assert KEY not in text


def test_bad_url_is_refused_with_an_example():
    with pytest.raises(ValueError, match="http://127.0.0.1:8000/v1"):
        Endpoint(base_url="127.0.0.1:8000")
    assert Endpoint(base_url="http://h:1/").base_url == "http://h:1/v1"
