import pytest

from wsd_llm import normalize_messages


def test_a_string_is_one_user_turn():
    assert normalize_messages("hi") == [{"role": "user", "content": "hi"}]


def test_history_is_kept_in_order():
    convo = [{"role": "system", "content": "s"}, {"role": "user", "content": "a"},
             {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    assert normalize_messages(convo) == convo


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([], "non-empty list"),
        (None, "non-empty list"),
        ([{"role": "robot", "content": "x"}], "unknown role 'robot'"),
        ([{"content": "x"}], "'role' and 'content'"),
        ([{"role": "user", "content": ["x"]}], "content must be a string"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "last message must come from the user"),
        ([{"role": "user", "content": "   "}], "last user message is empty"),
        ([{"role": "user", "content": "q", "tool_calls": [{"id": "c"}]}], "only assistant turns call tools"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]},
          {"role": "tool", "tool_call_id": "c", "content": "4"}], "message 1 has a tool call without function.name"),
        ([{"role": "assistant", "content": None}, {"role": "user", "content": "q"}], "message 0 content must be"),
        ([{"role": "user", "content": "bad \udcff bytes"}], "not valid Unicode text .*decode raw bytes"),
    ],
)
def test_bad_conversations_get_clear_errors(messages, message):
    with pytest.raises(ValueError, match=message):
        normalize_messages(messages)


def test_a_tool_loop_history_becomes_protocol_text_turns():
    """OpenAI's tool loop: the call as the protocol's JSON, the result as a user turn naming the tool."""
    history = [
        {"role": "user", "content": "What is 2+3?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "5"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "c2", "type": "function", "function": {"name": "add", "arguments": {"a": 1}}}]},
        {"role": "tool", "tool_call_id": "c2", "content": "boom", "status": "error"},
    ]
    assert normalize_messages(history)[1:] == [
        {"role": "assistant", "content": '{"tool": "add", "arguments": {"a": 2, "b": 3}}'},
        {"role": "user", "content": "Tool result (add): 5\n\nNow answer my question using this result."},
        {"role": "assistant", "content": 'Let me check.\n{"tool": "add", "arguments": {"a": 1}}'},
        {"role": "user", "content": "Tool error (add): boom\n\nNow answer my question using this result."},
    ]


def test_tool_loop_turns_follow_openai_rules():
    call = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}
    # An assistant turn that only calls may leave content out, as OpenAI allows.
    turns = normalize_messages([{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [call]},
                                {"role": "tool", "tool_call_id": "c1", "content": "4"}])
    assert turns[1] == {"role": "assistant", "content": '{"tool": "add", "arguments": {}}'}
    with pytest.raises(ValueError, match="message 1 is the result of call 'c9', which no earlier assistant turn made"):
        normalize_messages([{"role": "user", "content": "q"}, {"role": "tool", "tool_call_id": "c9", "content": "4"}])
