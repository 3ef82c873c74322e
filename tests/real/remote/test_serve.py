"""`wsd-llm serve` as a real process, driven by the official openai client."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx
import openai
import pydantic
import pytest
from live_servers import free_port

MESSAGES = [{"role": "user", "content": "Give me one tip to sleep better."}]
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city's name."}},
                   "required": ["city"]}}}


@pytest.fixture(scope="module")
def client(wsd_server, serve_key):
    return openai.OpenAI(base_url=wsd_server, api_key=serve_key, max_retries=0, timeout=300)


def test_reply_matches_the_library_and_reports_usage_and_switch(client, real_pipe):
    reply = client.chat.completions.create(model="wsd", messages=MESSAGES, max_tokens=20)
    expected = real_pipe.generate(MESSAGES, max_new_tokens=20)
    assert reply.choices[0].message.content == expected.text
    assert reply.choices[0].finish_reason == expected.finish_reason
    assert reply.usage.prompt_tokens == expected.prompt_tokens
    assert reply.usage.completion_tokens == expected.draft_tokens + expected.base_tokens
    wsd = reply.model_extra["wsd"]
    assert (wsd["switched"], wsd["switch_index"]) == (expected.switched, expected.switch_index)
    assert wsd["draft_model"] == expected.draft_model


def test_streaming_chunks_add_up_to_the_reply(client):
    whole = client.chat.completions.create(model="wsd", messages=MESSAGES, max_tokens=20)
    chunks = list(client.chat.completions.create(model="wsd", messages=MESSAGES, max_tokens=20, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishing) == 1 and finishing[0].model_extra["wsd"]["switch_index"] == whole.model_extra["wsd"]["switch_index"]
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    assert len({c.id for c in chunks}) == 1


def test_models_and_health(client, wsd_server):
    assert [m.id for m in client.models.list()] == ["wsd"]
    assert httpx.get(wsd_server.removesuffix("/v1") + "/health").json() == {"status": "ok"}


def test_auth_is_required(wsd_server, serve_key):
    wrong = openai.OpenAI(base_url=wsd_server, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="Bearer") as caught:
        wrong.chat.completions.create(model="wsd", messages=MESSAGES, max_tokens=4)
    assert serve_key not in str(caught.value.body)
    assert httpx.get(wsd_server + "/models").status_code == 401


@pytest.mark.parametrize(("request_fields", "status", "message"), [
    ({"max_tokens": 500}, 400, "at most 24"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, 400, "user"),
    ({"messages": []}, 400, "messages"),
    ({"temperature": -1}, 400, "temperature"),
    ({"n": 2}, 400, "n=1"),
    ({"messages": [{"role": "user", "content": "x" * 30000}]}, 413, "at most 20000"),
    ({"tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "function": {"name": "get_time"}}}, 400,
     "names the tool 'get_time', which is not given"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}},
     400, "does not compile"),
    ({"model": "gpt-4o"}, 404, "does not exist"),
])
def test_bad_requests_get_openai_errors(client, request_fields, status, message):
    fields = {"model": "wsd", "messages": MESSAGES, "max_tokens": 4, **request_fields}
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**fields)
    assert caught.value.status_code == status
    assert message in caught.value.body["message"]
    assert caught.value.status_code == 413 or caught.value.body["param"] is not None


def test_langchain_chat_openai_with_its_defaults(wsd_server, serve_key):
    langchain_openai = pytest.importorskip("langchain_openai")

    llm = langchain_openai.ChatOpenAI(base_url=wsd_server, api_key=serve_key, model="wsd", max_tokens=12,
                                      max_retries=0, timeout=300)
    reply = llm.invoke(MESSAGES[0]["content"])
    assert reply.content and reply.usage_metadata["output_tokens"] <= 12
    chunks = list(llm.stream(MESSAGES[0]["content"]))  # no stream_options: no usage, as OpenAI does
    assert "".join(c.content for c in chunks) == reply.content
    assert all(c.usage_metadata is None for c in chunks)
    counted = llm.model_copy(update={"stream_usage": True})
    streamed = list(counted.stream(MESSAGES[0]["content"]))
    whole = streamed[0]
    for chunk in streamed[1:]:
        whole += chunk
    assert whole.usage_metadata == reply.usage_metadata


def test_llamaindex_openai_like_with_its_defaults(wsd_server, serve_key):
    openai_like = pytest.importorskip("llama_index.llms.openai_like")
    from llama_index.core.llms import ChatMessage

    llm = openai_like.OpenAILike(api_base=wsd_server, api_key=serve_key, model="wsd", is_chat_model=True,
                                 max_tokens=12, max_retries=0, timeout=300)
    asked = [ChatMessage(role="user", content=MESSAGES[0]["content"])]
    reply = llm.chat(asked)  # LlamaIndex sends temperature 0.1: the draft samples
    assert reply.message.content and reply.raw.usage.completion_tokens <= 12
    streamed = list(llm.stream_chat(asked))
    assert streamed[-1].message.content == "".join(c.delta for c in streamed) and streamed[-1].message.content


async def test_concurrent_requests_all_finish(wsd_server, serve_key):
    client = openai.AsyncOpenAI(base_url=wsd_server, api_key=serve_key, max_retries=0, timeout=300)
    asks = [f"Name a colour, number {i}." for i in range(3)]
    replies = await asyncio.gather(*(
        client.chat.completions.create(model="wsd", messages=[{"role": "user", "content": a}], max_tokens=8)
        for a in asks))
    assert all(r.choices[0].message.content and r.usage.prompt_tokens > 0 for r in replies)


def test_serve_with_an_unreachable_remote_base_says_so():
    url = f"http://127.0.0.1:{free_port()}/v1"
    done = subprocess.run([sys.executable, "-m", "wsd_llm.cli", "serve", "--base-url", url, "--remote-context", "2048"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "WSD_LLM_REMOTE_API_KEY": "sk-remote-hidden"})
    assert done.returncode == 1
    assert "base server:" in done.stderr and "cannot reach" in done.stderr
    assert "sk-remote-hidden" not in done.stderr + done.stdout


# ---------------------------------------------------------------- tools (a forced call: a 135M draft calls reliably)


def test_openai_client_runs_a_tool_loop(client):
    named = {"type": "function", "function": {"name": "get_weather"}}
    reply = client.chat.completions.create(model="wsd", messages=ASK_WEATHER, tools=[WEATHER_TOOL], tool_choice=named,
                                           max_tokens=24)
    message = reply.choices[0].message
    (call,) = message.tool_calls
    assert reply.choices[0].finish_reason == "tool_calls" and message.content is None
    assert call.type == "function" and call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)
    history = [*ASK_WEATHER, message, {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 24 °C"}]
    answer = client.chat.completions.create(model="wsd", messages=history, tools=[WEATHER_TOOL], tool_choice="none",
                                            max_tokens=24)
    text = answer.choices[0].message.content
    assert answer.choices[0].message.tool_calls is None and answer.choices[0].finish_reason in ("stop", "length")
    assert "sunny" in text.lower() or "24" in text  # the model read the tool's result


class GetWeather(pydantic.BaseModel):
    """Get the current weather in a city."""

    city: str = pydantic.Field(description="The city's name.")


def test_openai_client_streams_a_tool_call_its_helper_parses(client):
    tool = openai.pydantic_function_tool(GetWeather, name="get_weather")  # strict, as the SDK's helpers want
    with client.chat.completions.stream(model="wsd", messages=ASK_WEATHER, tools=[tool], tool_choice="required",
                                        max_tokens=24) as stream:
        chunks = [event.chunk for event in stream if event.type == "chunk"]
        final = stream.get_final_completion()
    pieces = [piece for chunk in chunks if chunk.choices for piece in chunk.choices[0].delta.tool_calls or ()]
    assert (pieces[0].type, pieces[0].function.name) == ("function", "get_weather") and pieces[0].id
    arguments = json.loads("".join(piece.function.arguments or "" for piece in pieces))
    (call,) = final.choices[0].message.tool_calls
    assert final.choices[0].finish_reason == "tool_calls" and call.id == pieces[0].id
    assert call.function.parsed_arguments == GetWeather.model_validate(arguments)


class Weather(pydantic.BaseModel):
    city: str
    sunny: bool


def test_json_schema_reply_validates(client):
    completion = client.chat.completions.parse(model="wsd", messages=ASK_WEATHER, response_format=Weather,
                                               max_tokens=24)
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "stop"
    assert message.parsed == Weather.model_validate_json(message.content)


def test_langchain_chat_openai_binds_tools_and_answers_from_the_result(wsd_server, serve_key):
    langchain_openai = pytest.importorskip("langchain_openai")
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        return f"Sunny, 24 °C in {city}"

    llm = langchain_openai.ChatOpenAI(base_url=wsd_server, api_key=serve_key, model="wsd", max_tokens=24,
                                      max_retries=0, timeout=300)
    asked = HumanMessage(ASK_WEATHER[0]["content"])
    called = llm.bind_tools([get_weather], tool_choice="get_weather").invoke([asked])
    (call,) = called.tool_calls
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str)
    assert called.response_metadata["finish_reason"] == "tool_calls"
    answer = llm.invoke([asked, called, get_weather.invoke(call)])  # the tool's ToolMessage
    assert isinstance(answer.content, str) and answer.content and not answer.tool_calls
