import pytest

from wsd_llm.decoding import settled_length
from wsd_llm.text import TextStream, cut_at_stop, partial_stop_length

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


@pytest.mark.parametrize(
    ("body", "settled"),
    [("Hello", 0), ("Hello wor", 5), ("One.\n\nTwo", 4), ("a b c", 3), ("Tips:\n\n[Us", 5), ("x END", 1)],
)
def test_settled_text_excludes_the_last_word_and_partial_stops(body, settled):
    assert settled_length(body, STOPS) == settled
