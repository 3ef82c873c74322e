"""The remote backend's transport (the openai SDK) against a scripted server on 127.0.0.1:
retries, the mapping of every failure onto RemoteError, streaming, closing, and the API key."""

from __future__ import annotations

import itertools
import logging

import pytest
from live_servers import ScriptedServer, free_port
from pydantic import ValidationError
from tiny_models import tiny_base_tokenizer, tiny_draft_tokenizer

from wsd_llm import Sampling, WSDPipeline
from wsd_llm.backends.remote import (
    Endpoint,
    OpenAIClient,
    RemoteBase,
    RemoteCapabilityError,
    RemoteConnectionError,
    RemoteDraft,
    RemoteError,
    RemoteResponseError,
    RemoteStatusError,
)
from wsd_llm.errors import OptionError

KEY = "sk-test-SECRET-4242"
COMPLETION = {"choices": [{"text": "ok", "index": 0, "finish_reason": "length", "logprobs": None}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
# The SDK waits what the server asks for; without it a retry waits 0.5 s or more.
SOON = {"retry-after-ms": "1"}


def chunk(text: str) -> dict:
    return {"choices": [{"text": text, "index": 0, "finish_reason": None, "logprobs": None}]}


@pytest.fixture
def scripted():
    with ScriptedServer() as server:
        yield server


def client(url: str, **settings) -> OpenAIClient:
    return OpenAIClient(Endpoint(base_url=url, api_key=KEY, **settings))


def test_429_then_success_is_retried(scripted, caplog):
    scripted.replies = [(429, {"error": {"message": "slow down"}}, SOON), (503, "busy", SOON), (200, COMPLETION)]
    with caplog.at_level(logging.DEBUG), client(scripted.url) as remote:
        answer = remote.complete("hi", max_tokens=1)
    assert answer["choices"][0]["text"] == "ok" and answer["usage"]["prompt_tokens"] == 3
    assert len(scripted.requests) == 3
    assert caplog.text and KEY not in caplog.text
    assert scripted.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"


def test_persistent_5xx_gives_up_with_status_error(scripted):
    scripted.replies = [(500, "boom", SOON)] * 3
    with pytest.raises(RemoteStatusError, match="HTTP 500: boom") as caught:
        client(scripted.url, max_retries=2).complete("hi")
    assert caught.value.status_code == 500 and len(scripted.requests) == 3


def test_persistent_429_is_a_status_error(scripted):
    scripted.replies = [(429, {"error": {"message": "slow down"}}, SOON)] * 2
    with pytest.raises(RemoteStatusError, match="HTTP 429.*slow down") as caught:
        client(scripted.url, max_retries=1).complete("hi")
    assert caught.value.status_code == 429 and len(scripted.requests) == 2


def test_client_errors_are_not_retried_and_hide_an_echoed_key(scripted):
    scripted.replies = [(401, {"error": f"bad key {KEY}"})]
    with pytest.raises(RemoteStatusError, match="check the API key") as caught:
        client(scripted.url).complete("hi")
    assert len(scripted.requests) == 1
    assert KEY not in str(caught.value) and "bad key ***" in str(caught.value)


def test_malformed_json_is_a_response_error(scripted):
    scripted.replies = [(200, "{not json")]
    with pytest.raises(RemoteResponseError, match="malformed JSON"):
        client(scripted.url).complete("hi")


def test_json_that_is_not_an_object_is_a_response_error(scripted):
    scripted.replies = [(200, [1, 2])]
    with pytest.raises(RemoteResponseError, match="not a JSON object"):
        client(scripted.url).complete("hi")


def test_timeout_is_a_connection_error(scripted):
    scripted.replies = [("sleep", 3)]
    with pytest.raises(RemoteConnectionError, match="did not answer within 0.5 s"):
        client(scripted.url, timeout=0.5, max_retries=0).complete("hi")


def test_nothing_listening_is_a_connection_error():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(RemoteConnectionError, match="cannot reach .*is the server running"):
        client(url, max_retries=1).complete("hi")


def test_draft_stream_sends_neutral_sampling_and_yields_text(scripted):
    scripted.replies = [(503, "busy", SOON), ("stream", [chunk("Hel"), chunk("lo"), chunk(" there")])]
    draft = RemoteDraft(scripted.url, tiny_draft_tokenizer(), context_window=512, probe=False)
    assert list(draft.stream_draft("Say hi", Sampling(max_tokens=4, seed=7))) == ["Hel", "Hello", "Hello there"]
    assert len(scripted.requests) == 2  # opening the stream is retried
    sent = scripted.requests[-1]["json"]
    assert "model" not in sent and sent["stream"] is True
    assert {k: sent[k] for k in ("prompt", "max_tokens", "temperature", "top_p", "seed", "stop")} == {
        "prompt": "Say hi", "max_tokens": 4, "temperature": 0.0, "top_p": 1.0, "seed": 7, "stop": None}
    assert {k: sent[k] for k in ("repeat_penalty", "top_k", "min_p")} == {"repeat_penalty": 1.0, "top_k": 0,
                                                                          "min_p": 0.0}


def test_base_sampling_is_sent_in_vllm_and_llama_cpp_names(scripted):
    scripted.replies = [("stream", [chunk("Hel"), chunk("lo")])]
    draft = RemoteDraft(scripted.url, tiny_draft_tokenizer(), context_window=512, probe=False)
    sampling = Sampling(max_tokens=4, temperature=0.5, top_k=20, repetition_penalty=1.3, frequency_penalty=0.4,
                        presence_penalty=-0.2)
    list(draft.stream_draft("Say hi", sampling))
    sent = scripted.requests[-1]["json"]
    assert {k: sent[k] for k in ("temperature", "top_k", "repetition_penalty", "repeat_penalty",
                                 "frequency_penalty", "presence_penalty")} == {
        "temperature": 0.5, "top_k": 20, "repetition_penalty": 1.3, "repeat_penalty": 1.3,
        "frequency_penalty": 0.4, "presence_penalty": -0.2}


def test_closing_a_stream_disconnects_from_the_server(scripted):
    scripted.replies = [("stream", itertools.repeat(chunk("a")))]
    with client(scripted.url) as remote:
        events = remote.stream("go", max_tokens=10**6)
        assert [e["choices"][0]["text"] for e in itertools.islice(events, 3)] == ["a"] * 3
        events.close()
        assert scripted.disconnected.wait(timeout=30), "the server kept streaming to a closed iterator"


def test_a_stream_cut_after_tokens_is_not_retried(scripted):
    scripted.replies = [("stream", [chunk("a"), chunk("b"), "drop"])]
    received = []
    with pytest.raises(RemoteConnectionError, match="cannot reach"):
        received.extend(e["choices"][0]["text"] for e in client(scripted.url, max_retries=3).stream("go"))
    assert received == ["a", "b"] and len(scripted.requests) == 1


def test_an_error_event_mid_stream_is_a_remote_error(scripted):
    scripted.replies = [("stream", [chunk("a"), {"error": {"message": "out of memory"}}])]
    with pytest.raises(RemoteError, match="reported an error: out of memory"):
        list(client(scripted.url).stream("go"))


def test_context_manager_closes_the_model(scripted):
    scripted.replies = [(200, COMPLETION)]
    with RemoteBase(scripted.url, tiny_base_tokenizer(), context_window=512, probe=False) as base:
        assert base.completion("hi", max_tokens=1)["choices"][0]["text"] == "ok"
    assert base.client.sdk.is_closed()
    with pytest.raises(RemoteError, match="closed"):
        base.completion("hi")
    assert len(scripted.requests) == 1


def test_base_without_prompt_logprobs_fails_the_probe(scripted):
    scripted.replies = [(200, COMPLETION)]  # like Ollama or TGI: no echoed logprobs
    with pytest.raises(RemoteCapabilityError, match="no prompt log-probabilities"):
        RemoteBase(scripted.url, tiny_base_tokenizer(), context_window=512)


def test_base_with_wrong_completion_shape_names_the_field(scripted):
    scripted.replies = [(200, {"object": "list"})] * 2
    with pytest.raises(RemoteError):
        RemoteBase(scripted.url, tiny_base_tokenizer(), context_window=512)


def test_api_key_never_shows(scripted, caplog):
    scripted.replies = [(500, "boom")]
    endpoint = Endpoint(base_url=scripted.url, api_key=KEY, max_retries=0)
    base = RemoteBase(endpoint, tiny_base_tokenizer(), context_window=512, probe=False)
    with caplog.at_level(logging.DEBUG), pytest.raises(RemoteStatusError) as caught:
        base.completion("hi")
    texts = (repr(endpoint), str(endpoint), repr(base.client), repr(base), endpoint.model_dump_json(),
             str(caught.value), repr(caught.value), caplog.text)
    assert all(KEY not in text for text in texts)


def test_an_openai_key_in_the_environment_is_not_sent(scripted, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-users-own-openai-key")
    scripted.replies = [(200, COMPLETION)]
    OpenAIClient(Endpoint(base_url=scripted.url)).complete("hi")
    assert "sk-users-own-openai-key" not in str(scripted.requests[0]["headers"])


def test_bad_url_and_unknown_settings_are_refused():
    with pytest.raises(ValueError, match="http://127.0.0.1:8000/v1"):
        Endpoint(base_url="127.0.0.1:8000")
    with pytest.raises(ValidationError, match="backoff"):
        Endpoint(base_url="http://h:1", backoff=0.5)
    assert Endpoint(base_url="http://h:1/").base_url == "http://h:1/v1"


def test_a_constraint_with_a_remote_model_is_refused_before_any_request(scripted, tiny_base):
    draft = RemoteDraft(scripted.url, tiny_draft_tokenizer(), context_window=512, probe=False, name="served")
    pipe = WSDPipeline(draft, tiny_base)
    with pytest.raises(OptionError, match="the draft model served cannot write under a constraint"):
        pipe.generate("Hi", constraint={"type": "json_object"})
    assert scripted.requests == []
