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
        ([{"role": "tool", "content": "42"}, {"role": "user", "content": "q"}], "unknown role 'tool'"),
        ([{"role": "user", "content": "bad \udcff bytes"}], "not valid Unicode text .*decode raw bytes"),
    ],
)
def test_bad_conversations_get_clear_errors(messages, message):
    with pytest.raises(ValueError, match=message):
        normalize_messages(messages)
