"""`wsd-llm serve`'s protocol on the tiny random pair: the openai client through FastAPI's
TestClient, and a real uvicorn socket where the transport matters (chunked bodies)."""

from __future__ import annotations

import json
import threading
import time
import tracemalloc

import httpx
import openai
import pydantic
import pytest
import uvicorn
from fastapi.testclient import TestClient
from live_servers import free_port
from tiny_models import tiny_base_tokenizer, tiny_draft_tokenizer, tiny_gemma3, tiny_llama

from wsd_llm import WSDConfig, WSDPipeline
from wsd_llm.server import ServerSettings, create_app

MESSAGES = [{"role": "user", "content": "Hello!"}]
KEY = "sk-protocol-test-91c2"


@pytest.fixture(scope="module")
def http(tiny_pipe) -> TestClient:
    return TestClient(create_app(tiny_pipe, ServerSettings(max_tokens=16, max_request_bytes=20_000)))


@pytest.fixture(scope="module")
def client(http) -> openai.OpenAI:
    return openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=http, max_retries=0)


def post(http: TestClient, **fields) -> httpx.Response:
    body = {"model": "wsd", "messages": MESSAGES, "max_tokens": 8, **fields}
    return http.post("/v1/chat/completions", json=body)


def error_of(response: httpx.Response) -> dict:
    assert set(response.json()) == {"error"}
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "\n" not in error["message"] and "pydantic" not in error["message"]
    return error


def test_reply_is_the_pipeline_reply_with_usage_and_switch(client, tiny_pipe):
    reply = client.chat.completions.create(model="wsd", messages=MESSAGES, max_tokens=12)
    expected = tiny_pipe.generate(MESSAGES, max_new_tokens=12)
    assert reply.choices[0].message.content == expected.text
    assert (reply.choices[0].finish_reason, reply.model, reply.object) == (expected.finish_reason, "wsd",
                                                                           "chat.completion")
    assert reply.usage.model_dump(exclude_none=True) == expected.usage()
    # The token counts that depend on what earlier calls left in the prefix cache differ between two calls.
    varying = {"timings", "base_tokens_forwarded", "base_tokens_cached", "draft_tokens_forwarded",
               "draft_tokens_cached"}
    assert set(reply.model_extra["wsd"]) == set(expected.stats())
    assert {key: value for key, value in reply.model_extra["wsd"].items() if key not in varying} == \
        {key: value for key, value in expected.stats().items() if key not in varying}


def test_stream_sends_usage_only_when_asked_in_an_extra_last_chunk(client):
    whole = client.chat.completions.create(model="wsd", messages=MESSAGES, max_tokens=12)
    plain = list(client.chat.completions.create(model="wsd", messages=MESSAGES, max_tokens=12, stream=True))
    asked = list(client.chat.completions.create(model="wsd", messages=MESSAGES, max_tokens=12, stream=True,
                                                stream_options={"include_usage": True}))
    for chunks in (plain, asked):
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == whole.choices[0].message.content
        finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
        assert len(finishing) == 1 and finishing[0].model_extra["wsd"]["switch_index"] == \
            whole.model_extra["wsd"]["switch_index"]
    assert all(c.usage is None for c in plain)
    assert all(c.usage is None for c in asked[:-1])
    assert asked[-1].choices == [] and asked[-1].usage == whole.usage


@pytest.mark.parametrize(("fields", "param"), [
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"function_call": "auto"}, "function_call"),
    ({"response_format": {"type": "json_schema"}}, "response_format"),
    ({"response_format": {"type": "yaml"}}, "response_format.type"),
    ({"top_logprobs": 3}, "top_logprobs"),  # without logprobs: true
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"n": 2}, "n"),
    ({"logit_bias": {"42": 5}}, "logit_bias"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"reasoning_effort": "high"}, "reasoning_effort"),
    ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
    ({"best_of": 3}, "best_of"),
    ({"stream_options": {"include_usage": True, "chunk_size": 4}}, "stream_options.chunk_size"),
])
def test_fields_not_honoured_are_refused_by_name(http, fields, param):
    response = post(http, **fields)
    error = error_of(response)
    assert response.status_code == 400
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert error["message"].startswith(f"{param}: ")


def test_penalties_and_base_sampling_reach_the_base_continuation(client, tiny_pipe):
    base = {"base_repetition_penalty": 1.5, "base_frequency_penalty": 1.0, "base_presence_penalty": 0.5,
            "base_top_k": 5, "base_temperature": 0.7, "base_top_p": 0.9, "seed": 3}
    expected = tiny_pipe.generate(MESSAGES, max_new_tokens=12, **base)
    reply = client.chat.completions.create(
        model="wsd", messages=MESSAGES, max_tokens=12, frequency_penalty=1.0, presence_penalty=0.5, seed=3,
        extra_body={"repetition_penalty": 1.5, "top_k": 5, "base_temperature": 0.7, "base_top_p": 0.9})
    assert reply.choices[0].message.content == expected.text


def test_logprobs_cover_the_reply_under_the_base_in_both_shapes(client, tiny_pipe):
    expected = tiny_pipe.generate(MESSAGES, max_new_tokens=12, logprobs=True, top_logprobs=2)
    reply = client.chat.completions.create(model="wsd", messages=MESSAGES, max_tokens=12, logprobs=True,
                                           top_logprobs=2)
    content = reply.choices[0].logprobs.content
    assert "".join(entry.token for entry in content) == reply.choices[0].message.content == expected.text
    assert [entry.logprob for entry in content] == pytest.approx([t.logprob for t in expected.logprobs], abs=1e-4)
    assert all(len(entry.top_logprobs) == 2 and entry.top_logprobs[0].logprob >= entry.logprob - 1e-4
               for entry in content)
    chunks = list(client.chat.completions.create(model="wsd", messages=MESSAGES, max_tokens=12, logprobs=True,
                                                 stream=True))
    streamed = [entry for chunk in chunks if chunk.choices and chunk.choices[0].logprobs
                for entry in chunk.choices[0].logprobs.content]
    assert [entry.token for entry in streamed] == [entry.token for entry in content]
    assert reply.usage.completion_tokens == len(content)
    plain = client.chat.completions.create(model="wsd", messages=MESSAGES, max_tokens=12)
    assert plain.choices[0].logprobs is None


@pytest.mark.parametrize(("fields", "param"), [
    ({"presence_penalty": 2.5}, "presence_penalty"),
    ({"frequency_penalty": -3}, "frequency_penalty"),
    ({"repetition_penalty": 0}, "repetition_penalty"),
    ({"top_k": -1}, "top_k"),
    ({"base_top_p": 0}, "base_top_p"),
])
def test_sampling_values_out_of_range_name_their_field(http, fields, param):
    response = post(http, **fields)
    assert response.status_code == 400 and error_of(response)["param"] == param


def test_fields_clients_send_by_default_are_accepted(http):
    fields = {"user": "u-1", "metadata": {"team": "a"}, "store": False, "parallel_tool_calls": True,
              "presence_penalty": 0, "frequency_penalty": 0.0, "logprobs": False, "top_logprobs": 0, "n": 1,
              "tools": [], "tool_choice": "none", "response_format": {"type": "text"}, "service_tier": "auto",
              "stream_options": {"include_usage": False}, "safety_identifier": "s", "prompt_cache_key": "k",
              "messages": [{"role": "developer", "content": "Be brief.", "name": "ops"},
                           {"role": "user", "content": [{"type": "text", "text": "Hel"},
                                                        {"type": "text", "text": "lo!"}]}]}
    assert post(http, **fields).status_code == 200


def test_unknown_model_is_a_404_model_not_found(http, tiny_pipe):
    response = post(http, model="gpt-4o")
    error = error_of(response)
    assert response.status_code == 404
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert error["type"] == "invalid_request_error"
    assert "'wsd'" in error["message"]
    assert post(http, model=tiny_pipe.model_name).status_code == 200  # the name the other faces report


@pytest.mark.parametrize(("fields", "param", "says"), [
    ({"messages": [{"role": "user", "content": 3}]}, "messages.0.content", "must be a string or a list"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages.0.content", "part 0 is 'image_url'; only text parts"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role", "'user'"),
    ({"messages": [{"content": "hi"}]}, "messages.0.role", "field required"),
    ({"messages": []}, "messages", "at least 1"),
    ({"temperature": -1}, "temperature", "greater than or equal to 0"),
    ({"stop": ["ok", 3]}, "stop.1", "valid string"),
    ({"gamma": 5}, "gamma", "must be at most 1, got 5"),  # checked by WSDConfig, through pipe.check
    ({"window": 0}, "window", "must be at least 1, got 0"),
    ({"stop": ""}, "stop", "non-empty"),
    ({"seed": 2**70}, "seed", "less than"),
    ({"max_tokens": 500}, "max_tokens", "at most 16"),
    ({"max_completion_tokens": 17}, "max_completion_tokens", "at most 16"),
    ({"max_draft_tokens": 10**6}, "max_draft_tokens", "at most 512"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, "messages", "must come from the user"),
])
def test_bad_values_get_one_line_with_the_param(http, fields, param, says):
    response = post(http, **fields)
    error = error_of(response)
    assert response.status_code == 400 and error["param"] == param
    assert error["message"].startswith(f"{param}: ") and says in error["message"]
    assert "errors.pydantic.dev" not in error["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_conversation_longer_than_the_context_is_a_400_before_any_work(http, tiny_pipe, stream):
    too_long = [{"role": "user", "content": "a " * tiny_pipe.draft.context_window}]
    response = post(http, messages=too_long, stream=stream)
    error = error_of(response)
    assert response.status_code == 400 and error["param"] == "messages"
    assert "shorten the conversation" in error["message"]


@pytest.mark.parametrize(("body", "param", "says"), [
    (b'{"messages": [{"role": "user", "content": "\\ud800 hi"}]}', "messages.0.content", "not valid Unicode"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "user": "\\udfff"}', "user", "not valid Unicode"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', None, "NaN is not a JSON"),
    (b'{"messages": [', None, "not valid JSON"),
    (b'"hi"', None, "must be a JSON object"),
    (b'{"messages": [{"role": "user", "content": "\xff"}]}', None, "not UTF-8"),
    (b"[" * 15_000, None, "nested too deeply"),
])
def test_undecodable_bodies_get_a_clear_400(http, body, param, says):
    response = http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    error = error_of(response)
    assert response.status_code == 400 and error["param"] == param and says in error["message"]


def test_unknown_routes_and_methods_answer_in_openai_shape(http):
    for response, status in ((http.get("/v1/embeddings"), 404), (http.post("/v1/completions", json={}), 404),
                             (http.get("/v1/chat/completions"), 405)):
        assert response.status_code == status
        assert "/v1/chat/completions" in error_of(response)["message"]


def test_declared_oversize_body_is_refused_unread(http):
    response = post(http, messages=[{"role": "user", "content": "x" * 30_000}])
    assert response.status_code == 413 and "at most 20000" in error_of(response)["message"]


def test_docs_are_open_without_a_key_and_off_with_one(http, tiny_pipe):
    assert http.get("/docs").status_code == 200 and http.get("/openapi.json").status_code == 200
    keyed = TestClient(create_app(tiny_pipe, ServerSettings(api_key=KEY)))
    for path in ("/docs", "/redoc", "/openapi.json"):
        response = keyed.get(path, headers={"authorization": f"Bearer {KEY}"})
        assert response.status_code == 404 and KEY not in response.text
    assert keyed.get("/v1/models").status_code == 401
    listed = keyed.get("/v1/models", headers={"authorization": f"Bearer {KEY}"}).json()
    assert [card["id"] for card in listed["data"]] == ["wsd"]


@pytest.fixture(scope="module")
def socket_url(tiny_pipe):
    """The app on a real uvicorn socket, where request bodies arrive in parts."""
    app = create_app(tiny_pipe, ServerSettings(max_request_bytes=1_000_000))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_a_chunked_body_is_refused_at_the_limit_not_read_whole(socket_url):
    def hundred_megabytes():
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"x" * 1_000_000
        yield b'"}]}'

    tracemalloc.start()  # traces the server thread too: what it holds of the body at most
    try:
        response = httpx.post(socket_url + "/v1/chat/completions", content=hundred_megabytes(), timeout=120)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413 and "more than 1000000 bytes" in error_of(response)["message"]
    assert peak < 10_000_000


def test_a_small_chunked_body_is_served(socket_url):
    body = json.dumps({"messages": MESSAGES, "max_tokens": 4}).encode()
    in_parts = iter([body[:10], body[10:]])
    response = httpx.post(socket_url + "/v1/chat/completions", content=in_parts, timeout=60)
    assert response.status_code == 200 and response.json()["usage"]["completion_tokens"] <= 4


class Person(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    name: str = pydantic.Field(max_length=8)
    age: int = pydantic.Field(ge=0, le=120)


@pytest.fixture(scope="module")
def json_client(tiny_draft) -> openai.OpenAI:
    """A pair whose base tokenizer llguidance reads (Gemma's decoder), with room for a whole object."""
    pipe = WSDPipeline(tiny_draft, tiny_gemma3(tiny_base_tokenizer(gemma_decoder=True)), WSDConfig(gamma=0.0035))
    http = TestClient(create_app(pipe, ServerSettings(max_tokens=200)))
    return openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=http, max_retries=0)


def test_json_schema_replies_parse_with_the_sdk_helper_streamed_or_not(json_client):
    for seed in range(3):
        completion = json_client.chat.completions.parse(model="wsd", messages=MESSAGES, response_format=Person,
                                                        temperature=1.0, seed=seed, max_tokens=200)
        message = completion.choices[0].message
        assert completion.choices[0].finish_reason == "stop"
        assert message.parsed == Person.model_validate_json(message.content)
    schema = {"type": "json_schema", "json_schema": {"name": "person", "schema": Person.model_json_schema(),
                                                      "strict": True}}
    chunks = json_client.chat.completions.create(model="wsd", messages=MESSAGES, response_format=schema,
                                                 max_tokens=200, stream=True)
    Person.model_validate_json("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))


def test_json_object_replies_are_objects(json_client):
    reply = json_client.chat.completions.create(model="wsd", messages=MESSAGES, max_tokens=200,
                                                response_format={"type": "json_object"})
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(reply.choices[0].message.content), dict)
    else:  # a random model may write keys until the budget ends; the text is still an object's start
        assert reply.choices[0].message.content.startswith("{")


def test_a_schema_that_does_not_compile_is_a_400_on_response_format(json_client):
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties":
                                                                          {"a": {"type": "nonsense"}}}}}
    with pytest.raises(openai.BadRequestError) as caught:
        json_client.chat.completions.create(model="wsd", messages=MESSAGES, response_format=bad)
    assert caught.value.body["param"] == "response_format"
    assert "does not compile" in caught.value.body["message"]


# ---------------------------------------------------------------- tools

WEATHER = {"type": "function", "function": {"name": "weather", "description": "The weather in a city.",
                                            "parameters": {"type": "object", "properties": {
                                                "city": {"type": "string", "enum": ["Paris", "Rome"]}},
                                                "required": ["city"]}}}
NOW = {"type": "function", "function": {"name": "now", "description": "The time.", "parameters": {
    "type": "object", "properties": {}}}}
TOOLS = [WEATHER, NOW]
NAMED = {"type": "function", "function": {"name": "weather"}}
SAMPLED = {"temperature": 1.0, "seed": 1}
HISTORY = [{"role": "user", "content": "Weather in Paris?"},
           {"role": "assistant", "content": None, "tool_calls": [
               {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]},
           {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "Sunny"}]}]


@pytest.fixture(scope="module")
def tools_pipe() -> WSDPipeline:
    """A pair both of whose tokenizers llguidance reads, so calls are written under the tool grammar; long
    contexts, as the tool descriptions are hundreds of tokens of these tiny tokenizers."""
    base = tiny_gemma3(tiny_base_tokenizer(gemma_decoder=True), context=2048)
    return WSDPipeline(tiny_llama(tiny_draft_tokenizer(), context=2048), base,
                       WSDConfig(max_new_tokens=60, max_draft_tokens=60))


@pytest.fixture(scope="module")
def tools_http(tools_pipe) -> TestClient:
    return TestClient(create_app(tools_pipe, ServerSettings(max_tokens=60)))


@pytest.fixture(scope="module")
def tools_client(tools_http) -> openai.OpenAI:
    return openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=tools_http, max_retries=0)


@pytest.mark.parametrize("choice", ["required", NAMED])
def test_a_call_is_openais_tool_calls_message(tools_client, tools_http, tools_pipe, choice):
    expected = tools_pipe.generate(MESSAGES, tools=TOOLS, tool_choice=choice, max_new_tokens=60, **SAMPLED)
    reply = tools_client.chat.completions.create(model="wsd", messages=MESSAGES, tools=TOOLS, tool_choice=choice,
                                                 parallel_tool_calls=False, max_tokens=60, **SAMPLED)
    message = reply.choices[0].message
    (call,) = message.tool_calls
    assert isinstance(call, openai.types.chat.ChatCompletionMessageFunctionToolCall) and call.type == "function"
    assert (call.function.name, call.function.arguments) == (expected.tool_calls[0].name,
                                                             expected.tool_calls[0].arguments)
    assert call.id.startswith("call_") and message.content is None
    assert reply.choices[0].finish_reason == "tool_calls" == expected.finish_reason
    if choice == NAMED:
        assert call.function.name == "weather" and json.loads(call.function.arguments)["city"] in ("Paris", "Rome")
    raw = post(tools_http, tools=TOOLS, tool_choice=choice, max_tokens=60, **SAMPLED).json()["choices"][0]["message"]
    assert set(raw) == {"role", "content", "tool_calls"} and raw["content"] is None


def test_a_text_reply_with_tools_has_no_tool_calls_field(tools_http, tools_pipe):
    expected = tools_pipe.generate(MESSAGES, tools=TOOLS, max_new_tokens=8, seed=0)
    assert expected.tool_calls is None  # the tiny model answers in text, under the grammar's answer rule
    raw = post(tools_http, tools=TOOLS, tool_choice="auto", seed=0).json()["choices"][0]
    assert raw["message"] == {"role": "assistant", "content": expected.text}
    assert raw["finish_reason"] == expected.finish_reason


def test_streamed_call_pieces_add_up_to_the_call(tools_client):
    fields = {"model": "wsd", "messages": MESSAGES, "tools": TOOLS, "tool_choice": NAMED, "max_tokens": 60, **SAMPLED}
    whole = tools_client.chat.completions.create(**fields).choices[0].message.tool_calls[0]
    chunks = list(tools_client.chat.completions.create(**fields, stream=True))
    pieces = [piece for chunk in chunks if chunk.choices for piece in chunk.choices[0].delta.tool_calls or ()]
    first, rest = pieces[0], pieces[1:]
    assert (first.index, first.type, first.function.name) == (0, "function", "weather") and first.id.startswith("call_")
    assert all(p.index == 0 and p.id is None and p.type is None and p.function.name is None for p in rest)
    assert "".join(p.function.arguments for p in pieces) == whole.function.arguments
    assert not "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    with tools_client.chat.completions.stream(**fields) as stream:  # the SDK's own accumulator
        (call,) = stream.get_final_completion().choices[0].message.tool_calls
    assert (call.function.name, call.function.arguments) == ("weather", whole.function.arguments)


def test_tools_with_a_json_response_format_reply_with_a_call_or_an_object(tools_client):
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"],
              "additionalProperties": False}
    response_format = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    for seed in range(3):
        reply = tools_client.chat.completions.create(model="wsd", messages=MESSAGES, tools=[WEATHER], max_tokens=60,
                                                     response_format=response_format, temperature=1.0, seed=seed)
        choice = reply.choices[0]
        if choice.message.tool_calls:
            assert choice.message.tool_calls[0].function.name == "weather" and choice.message.content is None
        elif choice.finish_reason == "stop":
            assert set(json.loads(choice.message.content)) == {"answer"}
        else:  # a random model may write digits until the budget ends
            assert choice.finish_reason == "length" and choice.message.content.startswith("{")


@pytest.mark.parametrize("tools", [None, TOOLS])
def test_a_tool_loop_history_is_answered(http, tiny_pipe, tools):
    fields = {"tools": tools, "tool_choice": "none"} if tools else {}
    response = post(http, messages=HISTORY, max_tokens=12, **fields)
    assert response.status_code == 200
    as_text = [HISTORY[0], HISTORY[1], {**HISTORY[2], "content": "Sunny"}]
    assert response.json()["choices"][0]["message"]["content"] == tiny_pipe.generate(as_text, max_new_tokens=12).text


TOOL_RESULT = {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"}


@pytest.mark.parametrize(("messages", "param", "says"), [
    ([*HISTORY[:2], {"role": "tool", "content": "Sunny"}], "messages.2.tool_call_id", "field required"),
    ([*HISTORY[:2], {**TOOL_RESULT, "tool_call_id": "call_9"}], "messages.2.tool_call_id",
     "no earlier assistant message made a call with id 'call_9'"),
    ([HISTORY[0], TOOL_RESULT], "messages.1.tool_call_id", "no earlier assistant message"),
    ([{**HISTORY[0], "tool_calls": HISTORY[1]["tool_calls"]}], "messages.0.tool_calls", "only assistant messages"),
    ([{**HISTORY[0], "tool_call_id": "call_1"}], "messages.0.tool_call_id", "only tool messages"),
    ([HISTORY[0], {"role": "assistant", "content": None}, HISTORY[0]], "messages.1.content", "field required"),
    ([HISTORY[0], {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]},
      HISTORY[0]], "messages.1.tool_calls.0.function.name", "field required"),
    ([*HISTORY[:2], {"role": "function", "name": "weather", "content": "Sunny"}], "messages.2.role",
     "legacy function role"),
    ([HISTORY[0], {"role": "assistant", "content": None, "function_call": {"name": "weather", "arguments": "{}"}},
      HISTORY[0]], "messages.1.function_call", "legacy function_call"),
    (HISTORY[:2], "messages", "the last message must come from the user"),
])
def test_bad_tool_loop_messages_name_the_field(http, messages, param, says):
    response = post(http, messages=messages)
    error = error_of(response)
    assert response.status_code == 400 and error["param"] == param
    assert error["message"].startswith(f"{param}: ") and says in error["message"]


BAD_PARAMETERS = {"type": "function", "function": {"name": "f", "parameters": {
    "type": "object", "properties": {"a": {"type": "nonsense"}}}}}


@pytest.mark.parametrize(("fields", "param", "says"), [
    ({"tools": [{"name": "weather"}]}, "tools", "tools[0] must be {'type': 'function'"),
    ({"tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools", "letters, digits"),
    ({"tools": "weather"}, "tools", "valid list"),
    ({"tools": [BAD_PARAMETERS]}, "tools", "tools[0].function.parameters: the json_schema constraint does not compile"),
    ({"tools": [WEATHER, BAD_PARAMETERS], "tool_choice": "required"}, "tools", "tools[1].function.parameters"),
    ({"tool_choice": "required"}, "tool_choice", "requires a tool call, but no tools are given"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "rain"}}}, "tool_choice",
     "names the tool 'rain', which is not given; tools: weather, now"),
    ({"tools": TOOLS, "tool_choice": {"type": "allowed_tools"}}, "tool_choice", "is not a form wsd-llm knows"),
    ({"tools": TOOLS, "tool_choice": 3}, "tool_choice", "must be a str, bool, dict or None"),
    ({"tools": TOOLS, "response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "nonsense"}}}}, "response_format", "does not compile"),
])
def test_bad_tools_and_tool_choice_are_400s_naming_the_field(tools_http, fields, param, says):
    response = post(tools_http, **fields)
    error = error_of(response)
    assert response.status_code == 400 and error["param"] == param
    assert error["message"].startswith(f"{param}: ") and says in error["message"]
