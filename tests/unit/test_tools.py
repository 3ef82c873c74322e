"""Tool calling in the core (``wsd_llm.tools``): choices, the grammar on the tiny random pair (every
sampled call is valid, whatever the seed or where the switch falls), the streamed pieces, the
prompt-only fallback, and the parser."""

from __future__ import annotations

import json

import pytest
from tiny_models import tiny_base_tokenizer, tiny_draft_tokenizer, tiny_gemma3, tiny_llama

from wsd_llm import Constraint, StreamEvent, ToolChoice, WSDConfig, WSDPipeline, WSDResult
from wsd_llm.errors import OptionError
from wsd_llm.prefill import PrefilledDraft
from wsd_llm.tools import ToolCallStream

GAMMAS = [0.0034, 0.0036, 1.0]  # the tiny pair switches early, late, or never at these
SEEDS = range(3)
SAMPLED = {"temperature": 1.0, "base_temperature": 1.0}
ADD = {"type": "function", "function": {"name": "add", "description": "Add two integers.", "parameters": {
    "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}
NOW = {"type": "function", "function": {"name": "now", "description": "The time.", "parameters": {
    "type": "object", "properties": {}}}}
CITY = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {
    "city": {"type": "string", "enum": ["Paris", "Rome"]}}, "required": ["city"]}}}
TOOLS = [ADD, NOW, CITY]


@pytest.fixture(scope="module")
def pipe() -> WSDPipeline:
    # Long contexts: the tool descriptions alone are some 400 tokens of these tiny tokenizers.
    base = tiny_gemma3(tiny_base_tokenizer(gemma_decoder=True), context=2048)
    return WSDPipeline(tiny_llama(tiny_draft_tokenizer(), context=2048), base, WSDConfig(max_new_tokens=120, max_draft_tokens=60))


def sampled(pipe: WSDPipeline, **options) -> list[WSDResult]:
    results = [pipe.generate("Hello!", gamma=gamma, seed=seed, **SAMPLED, **options)
               for gamma in GAMMAS for seed in SEEDS]
    assert any(r.switched for r in results) and any(not r.switched for r in results)
    return results


def valid(result: WSDResult, tools=TOOLS) -> bool:
    """A complete call of a given tool whose arguments are exactly its parameters' schema."""
    (call,) = result.tool_calls
    tool = next(t for t in tools if t["function"]["name"] == call.name)
    arguments = json.loads(call.arguments)
    properties = tool["function"]["parameters"]["properties"]
    return (result.finish_reason == "tool_calls" and set(arguments) == set(properties)
            and all(isinstance(arguments[k], int) for k in arguments if properties[k].get("type") == "integer")
            and all(arguments[k] in properties[k]["enum"] for k in arguments if "enum" in properties[k]))


@pytest.mark.parametrize("choice", ["required", "weather", {"type": "function", "function": {"name": "add"}}])
def test_every_sampled_required_call_is_valid(pipe, choice):
    results = sampled(pipe, tools=TOOLS, tool_choice=choice)
    assert all(valid(r) for r in results)
    if choice != "required":
        named = choice if isinstance(choice, str) else "add"
        assert {r.tool_calls[0].name for r in results} == {named}
    # A call of one known tool is its arguments alone; otherwise the envelope names the tool.
    assert all(json.loads(r.text) == (json.loads(r.tool_calls[0].arguments) if choice != "required" else
               {"tool": r.tool_calls[0].name, "arguments": json.loads(r.tool_calls[0].arguments)}) for r in results)


def test_every_sampled_auto_reply_is_a_valid_call_or_text(pipe):
    results = sampled(pipe, tools=TOOLS)
    calls = [r for r in results if r.tool_calls]
    assert all(valid(r) for r in calls if r.finish_reason != "length")
    assert all(not r.text.lstrip().startswith("{") and r.finish_reason != "tool_calls"
               for r in results if not r.tool_calls)


def test_auto_with_a_json_response_format_is_a_call_or_an_object(pipe):
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"],
              "additionalProperties": False}
    results = sampled(pipe, tools=[ADD], response_format={"type": "json_schema", "json_schema": {"schema": schema}})
    complete = [r for r in results if r.finish_reason != "length"]  # a random model may write digits for ever
    assert len(complete) > len(results) // 2
    for result in complete:
        if result.tool_calls:
            assert valid(result, [ADD])
        else:
            assert result.parsed == json.loads(result.text) and set(result.parsed) == {"answer"}


@pytest.mark.parametrize("choice", ["required", "add"])
def test_streamed_pieces_add_up_to_the_call(pipe, choice):
    events = list(pipe.stream("Hello!", tools=TOOLS, tool_choice=choice, seed=1, **SAMPLED))
    result = events[-1].result
    pieces = [event.tool_call for event in events if event.tool_call is not None]
    (call,) = result.tool_calls
    assert pieces[0].id == call.id and pieces[0].name == call.name
    assert all(piece.name is None and piece.id is None for piece in pieces[1:])
    assert "".join(piece.arguments for piece in pieces) == call.arguments
    assert not any(event.text for event in events)  # a call is never sent as text


def test_tool_choice_none_and_no_tools_leave_the_reply_alone(pipe):
    plain = pipe.generate("Hello!", seed=0, **SAMPLED)
    assert pipe.generate("Hello!", tools=TOOLS, tool_choice="none", seed=0, **SAMPLED).text == plain.text
    assert plain.tool_calls is None


def test_prepare_describes_the_tools_and_asks_for_the_call(pipe):
    request = pipe.prepare("What is 2+3?", tools=TOOLS, tool_choice="add")
    system, user = request.messages
    assert "- add(a: integer, b: integer): Add two integers.\n- now(): The time." in system["content"]
    assert user["content"].endswith("Use the tool add(a: integer, b: integer). Reply with only its arguments as "
                                    "a JSON object.")
    assert request.config.constraint.kind == "json_schema"
    assert pipe.prepare("Hi", tools=TOOLS).config.constraint.kind == "grammar"


@pytest.mark.parametrize(("options", "says"), [
    ({"tools": [{"name": "add"}]}, r"tools\[0\] must be \{'type': 'function'"),
    ({"tools": [{"type": "function", "function": {"name": "a b"}}]}, "letters, digits"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]},
     "parameters must be a JSON schema of an object"),
    ({"tools": TOOLS, "tool_choice": "subtract"}, "names the tool 'subtract', which is not given; tools: add, now"),
    ({"tool_choice": "required"}, "requires a tool call, but no tools are given"),
    ({"tools": TOOLS, "tool_choice": {"type": "allowed_tools"}}, "is not a form wsd-llm knows"),
    ({"tools": TOOLS, "tool_choice": 3}, "tool_choice must be a str, bool, dict or None"),
    ({"tools": TOOLS, "response_format": {"type": "json_object"}, "constraint": {"type": "json_object"}},
     "response_format or constraint, not both"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": "x"}}}]},
     r"tools\[0\].function.parameters must be a JSON schema of an object"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"properties": {"x": "integer"}}}}]},
     r"properties.x must be a JSON schema \(a dict such as"),
    ({"tools": [{"type": "function", "function": {"name": "f", "description": 5}}]}, "description must be a string"),
    ({"tools": [ADD, {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": {"type": "integr"}}}}}]},
     r"^tools\[1\].function.parameters: the json_schema constraint does not compile: .*integr"),
])
def test_bad_tool_requests_are_one_line(pipe, options, says):
    with pytest.raises(ValueError, match=says) as error:
        pipe.prepare("Hi", **options)
    assert "\n" not in str(error.value)


def test_a_regex_answer_format_cannot_combine_with_tools(pipe):
    with pytest.raises(OptionError, match="a regex response_format cannot be combined with tools"):
        pipe.prepare("Hi", tools=TOOLS, constraint=Constraint.regex(r"\d+"))


class _PromptOnly:
    """The tiny models without ``check_constraint``: how a remote pair looks to the tool layer."""

    def __init__(self, model) -> None:
        self._model = model

    def __getattr__(self, name):
        if name in ("constrainable", "check_constraint"):
            raise AttributeError(name)
        return getattr(self._model, name)


def test_without_a_grammar_a_required_call_is_prefilled_and_read_leniently(pipe):
    prompt_only = WSDPipeline(_PromptOnly(pipe.draft), _PromptOnly(pipe.base), pipe.config)
    request = prompt_only.prepare("What is 2+3?", tools=TOOLS, tool_choice="add")
    assert request.config.constraint is None and isinstance(request.run.draft, PrefilledDraft)
    assert request.run.draft.prefix == '{"a": '
    result = request.result()
    assert result.text.startswith('{"a": ') and result.tool_calls[0].name == "add"
    request = prompt_only.prepare("What is 2+3?", tools=TOOLS, tool_choice="required")
    assert request.run.draft.prefix == '{"tool": "'


CHOICES = {"auto": ToolChoice.parse(TOOLS), "add": ToolChoice.parse(TOOLS, "add"),
           "any": ToolChoice.parse(TOOLS, "any"), "now": ToolChoice.parse(TOOLS, "now")}


@pytest.mark.parametrize(("text", "choice", "name", "arguments"), [
    ('{"tool": "add", "arguments": {"a": 1, "b": 2}}', "auto", "add", '{"a": 1, "b": 2}'),
    ('  ```json\n{"tool": "add", "arguments": {"a":1}}\n```', "auto", "add", '{"a":1}'),  # kept as written
    ('{"name": "add", "parameters": {"a": 1}}', "auto", "add", '{"a": 1}'),
    ('{"arguments": {"a": 1}, "tool": "add"}', "auto", "add", '{"a": 1}'),
    ('{"tool": "add", "arguments": {"a": 1, "b', "auto", "add", '{"a": 1, "b'),  # cut off: invalid JSON
    ('{"tool": "unknown", "arguments": {}}', "auto", None, None),
    ("Just text.", "auto", None, None),
    ('Sure: {"tool": "add", "arguments": {}}', "auto", None, None),  # a call begins the reply
    ('{"a": 1, "b": 2}', "add", "add", '{"a": 1, "b": 2}'),
    ("no idea", "add", "add", "no idea"),  # an invalid call, not a silent answer
    ("whatever", "now", "now", "{}"),
    ("I would use now", "any", "now", "{}"),  # a required call among several: the tool it mentions
    ('{"tool": "add', "any", "add", ""),  # the budget cut the envelope: no arguments written yet
    ('{"tool": "add", "arguments": {"a": ', "any", "add", '{"a": '),  # cut arguments, exactly as written
])
def test_reading_calls(text, choice, name, arguments):
    call = CHOICES[choice].read(text)
    assert (call.name, call.arguments) == (name, arguments) if name else call is None


def test_a_reply_that_begins_as_text_streams_at_once():
    stream = ToolCallStream(CHOICES["auto"])
    out = [*stream.feed(StreamEvent(text=" ", source="draft")), *stream.feed(StreamEvent(text="Hi", source="draft"))]
    assert [e.text for e in out] == [" ", "Hi"]
    assert [e.text for e in stream.feed(StreamEvent(text=" there", source="base"))] == [" there"]


def test_tools_with_nested_models_keep_their_refs(pipe):
    """Nested pydantic arguments come as $defs + $ref (openai.pydantic_function_tool, LangChain tools):
    the call's schema keeps them resolvable, for one tool among several too."""
    from pydantic import BaseModel, Field

    class City(BaseModel):  # short strings: a random model would write long ones until the budget ends
        name: str = Field(max_length=6)
        country: str = Field(max_length=6)

    class Trip(BaseModel):
        origin: City
        destination: City

    trip = {"type": "function", "function": {"name": "plan", "parameters": Trip.model_json_schema()}}
    assert "$defs" in trip["function"]["parameters"]
    for tools, choice in (([trip, ADD], "required"), ([trip, ADD], None), ([trip], "plan")):
        request = pipe.prepare("Plan a trip", tools=tools, tool_choice=choice)
        assert request.config.constraint is not None
    results = [pipe.generate("Plan a trip", tools=[trip, ADD], tool_choice="required", seed=seed, **SAMPLED,
                             max_new_tokens=200) for seed in range(10)]
    plans = [r.tool_calls[0] for r in results if r.finish_reason == "tool_calls" and r.tool_calls[0].name == "plan"]
    assert plans and all(Trip.model_validate_json(call.arguments) for call in plans)


def test_a_boolean_parameter_schema_is_described(pipe):
    """``true`` is a valid JSON schema (anything goes): described as a value, not a crash."""
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": True}}}}
    assert "- f(x: value):" in pipe.prepare("Hi", tools=[tool]).messages[0]["content"]


def test_a_call_cut_by_the_budget_streams_what_it_returns(pipe):
    events = list(pipe.stream("Hello!", tools=TOOLS, tool_choice="add", max_new_tokens=4, seed=0, **SAMPLED))
    result = events[-1].result
    assert result.finish_reason == "length"
    assert "".join(e.tool_call.arguments for e in events if e.tool_call) == result.tool_calls[0].arguments


def test_closing_a_stream_with_tools_closes_the_run_at_once(pipe):
    request = pipe.prepare("Hello!", tools=TOOLS, tool_choice="required", seed=0, **SAMPLED)
    run_events = request.run.events
    opened = []

    def tracked():
        opened.append(run_events())
        return opened[-1]

    request.run.events = tracked
    events = request.events()
    next(events)
    events.close()
    assert opened[0].gi_frame is None  # the run's generator finished: its models stopped
