"""ChatWSD mechanics on the tiny random pair, and its message and tool-call conversions."""

from __future__ import annotations


import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.base import BaseMessage
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field
from tiny_models import tiny_base_tokenizer, tiny_gemma3

from langchain_wsd import ChatWSD
from langchain_wsd.messages import to_wsd_messages
from wsd_llm import ToolChoice, WSDConfig, WSDPipeline, normalize_messages, prompts


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def now() -> str:
    """The current time."""
    return "noon"


TOOLS = [convert_to_openai_tool(add), convert_to_openai_tool(now)]


@pytest.fixture
def llm(tiny_pipe) -> ChatWSD:
    return ChatWSD(pipeline=tiny_pipe, max_tokens=8)


def test_history_with_tool_turns_maps_to_core_turns(tiny_draft):
    history = [
        SystemMessage("Be brief."),
        HumanMessage("What is 1 + 2?"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"}]),
        ToolMessage("3", name="add", tool_call_id="c1"),
        AIMessage([{"type": "text", "text": "It is 3."}]),
        ToolMessage("boom", name="add", tool_call_id="c1", status="error"),
    ]
    turns = normalize_messages([*to_wsd_messages(history), {"role": "user", "content": "And?"}])[:-1]
    assert turns == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 1 + 2?"},
        {"role": "assistant", "content": '{"tool": "add", "arguments": {"a": 1, "b": 2}}'},
        {"role": "user", "content": "Tool result (add): 3\n\nNow answer my question using this result."},
        {"role": "assistant", "content": "It is 3."},
        {"role": "user", "content": "Tool error (add): boom\n\nNow answer my question using this result."},
    ]
    # Both prompt formats render every turn.
    assert "Tool result (add): 3" in prompts.draft_prompt(tiny_draft, turns)
    assert "[User]\nTool result (add): 3" in prompts.plain_prompt(turns)


def test_images_and_unknown_messages_get_clear_errors(llm):
    image = HumanMessage([{"type": "text", "text": "What is this?"},
                          {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}])
    with pytest.raises(ValueError, match="text-only models.*'image_url'"):
        llm.invoke([image])

    class Odd(BaseMessage):
        type: str = "odd"

    with pytest.raises(ValueError, match="cannot represent a Odd"):
        to_wsd_messages([Odd("x")])
    with pytest.raises(ValueError, match="last message must come from the user"):
        llm.invoke([HumanMessage("hi"), AIMessage("hello")])


def test_stream_chunks_name_their_writer_and_report_once(llm):
    chunks = list(llm.stream("Hello"))
    assert chunks[-1].chunk_position == "last"
    assert [c.usage_metadata is not None for c in chunks].count(True) == 1
    assert [c.response_metadata.get("model_name") for c in chunks].count(llm.model_name) == 1
    full = sum(chunks[1:], chunks[0])
    assert full.response_metadata["wsd_sources"] == [c.response_metadata["wsd_sources"][0] for c in chunks[:-1]]
    assert llm.invoke("Hello").content == full.content


def test_max_tokens_and_temperature_reach_the_pipeline(llm, tiny_pipe):
    reply = llm.invoke("Hello", max_tokens=3)
    assert reply.usage_metadata["output_tokens"] <= 3
    assert reply.response_metadata["finish_reason"] == "length"
    # Unset standard fields leave wsd_options alone.
    capped = ChatWSD(pipeline=tiny_pipe, wsd_options={"max_new_tokens": 2}).invoke("Hello")
    assert capped.usage_metadata["output_tokens"] <= 2
    with pytest.raises(ValueError, match="temperature"):
        llm.invoke("Hello", temperature=-1)
    with pytest.raises(TypeError, match="unknown generation option"):
        llm.invoke("Hello", bogus=1)


def test_tool_choice_checks_and_prefills():
    with pytest.raises(ValueError, match="names the tool 'subtract', which is not given; tools: add, now"):
        ToolChoice.parse(TOOLS, "subtract")
    with pytest.raises(ValueError, match="no tools are given"):
        ToolChoice.parse([], "any")
    assert ToolChoice.parse(TOOLS, "add").prefill() == '{"a": '
    assert ToolChoice.parse(TOOLS, {"type": "function", "function": {"name": "now"}}).prefill() == "{}"
    assert ToolChoice.parse(TOOLS, "required").prefill() == '{"tool": "'
    assert ToolChoice.parse(TOOLS, None).prefill() == ""


AUTO, NONE, ANY = ToolChoice(tuple(TOOLS)), ToolChoice(()), ToolChoice(tuple(TOOLS), required=True)
NOW = ToolChoice(tuple(TOOLS), required=True, name="now")


@pytest.mark.parametrize(("choice", "expected"), [
    (None, AUTO), ("auto", AUTO), ({"type": "auto"}, AUTO), (False, AUTO),  # ChatOpenAI: False has no effect
    ("none", NONE), ({"type": "none"}, NONE),
    ("any", ANY), ("required", ANY), (True, ANY), ({"type": "any"}, ANY), ({"type": "required"}, ANY),
    ("now", NOW), ({"type": "function", "function": {"name": "now"}}, NOW),
    ({"type": "function", "name": "now"}, NOW),  # OpenAI Responses
    ({"type": "tool", "name": "now"}, NOW),  # Anthropic
    ({"type": "tool", "name": "now", "disable_parallel_tool_use": True}, NOW),
])
def test_every_langchain_spelling_of_tool_choice_is_honoured(choice, expected):
    assert ToolChoice.parse(TOOLS, choice) == expected


@pytest.mark.parametrize(("choice", "error"), [
    ({"type": "allowed_tools", "tools": []}, "not a form wsd-llm knows"),
    ({"type": "tool"}, "not a form wsd-llm knows"),
    ({"function": {"name": "now"}}, "not a form wsd-llm knows"),
    ({"type": "function", "function": {"name": "subtract"}}, "'subtract', which is not given"),
    ({"type": "tool", "name": "subtract"}, "'subtract', which is not given"),
    (3, "must be a str, bool, dict or None, got int"),
])
def test_tool_choice_forms_it_cannot_honour_are_refused(choice, error):
    with pytest.raises(ValueError, match=error):
        ToolChoice.parse(TOOLS, choice)


def test_an_empty_conversation_gets_the_same_error_with_tools_bound(llm):
    with pytest.raises(ValueError) as plain:
        llm.invoke([])
    for choice in (None, "any"):
        with pytest.raises(ValueError) as with_tools:
            llm.bind_tools([add], tool_choice=choice).invoke([])
        assert str(with_tools.value) == str(plain.value)


def test_bind_tools_rejects_a_choice_it_cannot_honour(llm):
    with pytest.raises(ValueError, match="not given"):
        llm.bind_tools([add], tool_choice="now")
    with pytest.raises(ValueError, match="not a form wsd-llm knows"):
        llm.bind_tools([add], tool_choice={"type": "bogus"})


def test_construction_is_lazy_and_checks_options(tiny_pipe):
    llm = ChatWSD(draft="no/such-model", base="no/such-base", wsd_options={"gamma": 0.5})
    assert llm.model_name == "wsd:no/such-model+no/such-base"
    with pytest.raises(ValueError, match="gamma"):
        ChatWSD(wsd_options={"gamma": 2})
    with pytest.raises(ValueError, match="either `pipeline` or `draft`/`base`"):
        ChatWSD(pipeline=tiny_pipe, draft="x")


def test_logprobs_come_in_chat_openai_shape_when_asked(llm):
    reply = llm.bind(logprobs=True, top_logprobs=2).invoke("Hello")
    content = reply.response_metadata["logprobs"]["content"]
    assert "".join(entry["token"] for entry in content) == reply.content
    assert len(content) == reply.usage_metadata["output_tokens"]
    assert all(len(entry["top_logprobs"]) == 2 and entry["logprob"] <= 0 for entry in content)
    chunks = list(llm.stream("Hello", logprobs=True))
    assert chunks[-1].response_metadata["logprobs"]["content"] == [{**entry, "top_logprobs": []}
                                                                   for entry in content]
    assert "logprobs" not in llm.invoke("Hello").response_metadata


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: int = Field(ge=0, le=99)
    y: int = Field(ge=0, le=99)


@pytest.fixture(scope="module")
def json_llm(tiny_draft) -> ChatWSD:
    """A pair whose base tokenizer llguidance reads (Gemma's decoder)."""
    base = tiny_gemma3(tiny_base_tokenizer(gemma_decoder=True))
    return ChatWSD(pipeline=WSDPipeline(tiny_draft, base, WSDConfig(gamma=0.0035)), max_tokens=60)


def test_structured_output_parses_whatever_the_seed(json_llm):
    for seed in range(3):
        point = json_llm.with_structured_output(Point, temperature=1.0, base_temperature=1.0, seed=seed)
        assert isinstance(point.invoke("Where?"), Point)
    as_dict = json_llm.with_structured_output(Point.model_json_schema()).invoke("Where?")
    assert set(as_dict) == {"x", "y"}
    assert isinstance(json_llm.with_structured_output(Point, method="json_mode").invoke("Where?"), dict)


def test_structured_output_reports_a_budget_too_small_with_include_raw(json_llm):
    out = json_llm.with_structured_output(Point, include_raw=True, max_tokens=2).invoke("Where?")
    assert out["parsed"] is None and "ran out of max_tokens" in str(out["parsing_error"])
    assert out["raw"].response_metadata["finish_reason"] == "length"
    for schema, method in ((Point.model_json_schema(), "json_schema"), (Point, "json_mode")):
        # LangChain's own JSON parser would complete the cut-off object; it is an error instead.
        with pytest.raises(OutputParserException, match="ran out of max_tokens"):
            json_llm.with_structured_output(schema, method=method, max_tokens=2).invoke("Where?")
    with pytest.raises(ValueError, match="method must be"):
        json_llm.with_structured_output(Point, method="xml")


@pytest.fixture(scope="module")
def tool_llm() -> ChatWSD:
    """The tiny pair with contexts long enough for tool descriptions, on tokenizers llguidance reads."""
    from tiny_models import tiny_draft_tokenizer, tiny_llama

    base = tiny_gemma3(tiny_base_tokenizer(gemma_decoder=True), context=2048)
    pipe = WSDPipeline(tiny_llama(tiny_draft_tokenizer(), context=2048), base, WSDConfig(max_new_tokens=60))
    return ChatWSD(pipeline=pipe, temperature=1.0, wsd_options={"seed": 0, "base_temperature": 1.0})


def test_a_forced_call_streams_as_tool_call_chunks(tool_llm):
    chunks = list(tool_llm.bind_tools([add, now], tool_choice="add").stream("What is 2 + 3?"))
    pieces = [chunk.tool_call_chunks[0] for chunk in chunks if chunk.tool_call_chunks]
    assert len(pieces) > 2 and pieces[0]["name"] == "add" and pieces[0]["id"].startswith("call_")
    assert all(piece["name"] is None and piece["id"] is None for piece in pieces[1:])
    assert not any(chunk.content for chunk in chunks)
    full = sum(chunks[1:], chunks[0])
    assert full.tool_calls[0]["name"] == "add" and set(full.tool_calls[0]["args"]) == {"a", "b"}
    assert full.response_metadata["finish_reason"] == "tool_calls"
    (invoked,) = tool_llm.bind_tools([add, now], tool_choice="add").invoke("What is 2 + 3?").tool_calls
    assert {**invoked, "id": None} == {**full.tool_calls[0], "id": None}  # each call gets its own id


def test_with_tools_bound_a_text_answer_streams_as_text(tool_llm):
    llm = tool_llm.bind_tools([add, now])
    for seed in range(6):  # the random pair answers in text for some seeds, calls for others
        chunks = list(llm.stream("Hi", seed=seed))
        if chunks[0].content:
            break
    else:
        pytest.fail("no seed gave a text answer")
    text = [chunk for chunk in chunks if chunk.content]
    assert len(text) > 1 and not any(chunk.tool_call_chunks for chunk in chunks)
    full = sum(chunks[1:], chunks[0])
    assert not full.tool_calls and full.response_metadata["finish_reason"] in ("stop", "length")


def test_a_call_cut_by_the_budget_is_an_invalid_tool_call(tool_llm):
    """As ChatOpenAI reads a whole reply: LangChain's chunk merge would complete the cut arguments."""
    reply = tool_llm.bind_tools([add, now], tool_choice="add").invoke("What is 2 + 3?", max_tokens=3)
    assert reply.response_metadata["finish_reason"] == "length" and not reply.tool_calls
    (invalid,) = reply.invalid_tool_calls
    assert invalid["name"] == "add" and "raise max_tokens" in invalid["error"]
    with pytest.raises(OutputParserException, match="ran out of max_tokens"):
        tool_llm.with_structured_output(Point, method="function_calling").invoke("Where?", max_tokens=3)


def test_strict_and_parallel_tool_calls_are_accepted_as_chat_openai_takes_them(tool_llm):
    llm = tool_llm.bind_tools([add], tool_choice="add", strict=True, parallel_tool_calls=False)
    assert llm.invoke("What is 2 + 3?").tool_calls[0]["name"] == "add"
    assert isinstance(tool_llm.with_structured_output(Point, strict=True).invoke("Where?"), Point)
    assert isinstance(tool_llm.with_structured_output(Point, method="function_calling").invoke("Where?"), Point)
