import pytest

from wsd_llm.text import TextStream, cut_at_stop, finished_text, partial_stop_length, settled_tokens

STOPS = ("\n\n[User]", "[User]", "END")


def test_cut_at_the_earliest_stop():
    assert cut_at_stop("a END b [User] c", STOPS) == ("a ", True)
    assert cut_at_stop("a\n\n[User] END", STOPS) == ("a", True)
    assert cut_at_stop("plain", STOPS) == ("plain", False)


@pytest.mark.parametrize(("text", "held"), [("abc", 0), ("abc\n", 1), ("abc\n\n[Us", 5), ("EN", 2), ("[", 1)])
def test_partial_stop_suffix_is_held(text, held):
    assert partial_stop_length(text, STOPS) == held


def test_stream_holds_back_possible_stops_and_stops_at_one():
    stream = TextStream(STOPS)
    assert stream.update("Hello\n") == [("Hello", "draft")]
    assert stream.update("Hello\n\n[Us") == []
    assert stream.update("Hello\n\nUs") == [("\n\nUs", "draft")]
    stream.start_base("Hello\n\nUs")
    assert stream.update("Hello\n\nUsing [User] more") == [("ing ", "base")]
    assert stream.stopped and stream.text == "Hello\n\nUsing "
    assert stream.update("anything") == []


def test_stream_holds_back_incomplete_characters_until_final():
    stream = TextStream(())
    assert stream.update("ok \ufffd") == [("ok ", "draft")]
    assert stream.update("ok \U0001f389") == [("\U0001f389", "draft")]
    assert stream.update("ok \U0001f389\ufffd", final=True) == [("\ufffd", "draft")]


def test_stream_splits_a_delta_across_the_handover():
    stream = TextStream(("END",))
    assert stream.update("draft E") == [("draft ", "draft")]
    stream.start_base("draft E")
    assert stream.update("draft Ex", final=True) == [("E", "draft"), ("x", "base")]


def chars(text: str) -> list[int]:
    """A tokenizer with one token per character, so counts read as characters."""
    return [ord(c) for c in text]


@pytest.mark.parametrize(
    ("body", "settled"),
    [
        ("Hello wor", 5),  # the last word may still grow: "wor" is held back
        ("a b c", 3),  # a short last word holds back less than the lookbehind
        ("One.\n\nTwo", 5),  # the lookbehind (4 tokens) holds back less than the last word
        ("1.1.1.1.1.1.1.1", 11),  # no whitespace: all but the lookbehind is settled
        ("Tips:\n\n[Us", 5),  # a suffix that may become a stop string is never settled
        ("x END", 1),
    ],
)
def test_settled_tokens_hold_back_the_last_word_or_the_lookbehind_whichever_is_less(body, settled):
    assert settled_tokens(chars(body), body, lambda n: chars(body[:n]), STOPS, lookbehind=4) == settled


def test_a_retokenized_prefix_is_not_settled():
    # The prefix text encodes differently from the start of the whole text: only the shared ids count.
    assert settled_tokens([1, 2, 3, 9, 9, 9, 9], "ab cdefg", lambda n: [1, 5][:n], (), lookbehind=10) == 1


@pytest.mark.parametrize(
    ("decoded", "text", "stopped"),
    [("Paris.\n\n[Assistant", "Paris.", False), ("Paris.\n\n[", "Paris.", False), ("Paris. [User] x", "Paris. ", True),
     ("Paris. EN", "Paris. EN", False)],
)
def test_finished_text_drops_a_turn_marker_cut_short_but_not_a_user_stop(decoded, text, stopped):
    markers = ("\n\n[Assistant]", "\n\n[User]", "[User]")
    assert finished_text(decoded, (*markers, "END"), markers) == (text, stopped)
