"""Text and token-list helpers: stop strings, streaming text, and which tokens of a growing
text are settled. Nothing here knows a model; callers pass ``encode``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

REPLACEMENT_CHAR = "\ufffd"
# Base tokens at the end of a growing text that are never treated as settled, whatever the
# script: re-tokenization only reaches a few tokens back once more text arrives (transformers'
# different-tokenizer assisted generation keeps a similar lookbehind).
LOOKBEHIND_TOKENS = 4
_LAST_WORD = re.compile(r"\s+\S*\Z")


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two id lists."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def cut_at_stop(text: str, stops: Iterable[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop string; say whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def finished_text(decoded: str, stops: Iterable[str], markers: Iterable[str]) -> tuple[str, bool]:
    """The reply once generation has ended: cut before the first stop string; if there is none,
    without a trailing beginning of a turn marker (the budget cut the marker short).

    Returns:
        The text, and whether a stop string was found.
    """
    text, stopped = cut_at_stop(decoded, stops)
    if not stopped:
        text = text[: len(text) - partial_stop_length(text, markers)]
    return text, stopped


def partial_stop_length(text: str, stops: Iterable[str]) -> int:
    """Length of the longest suffix of ``text`` that could still grow into a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


def settled_tokens(ids: Sequence[int], text: str, encode_prefix: Callable[[int], list[int]],
                   stops: Sequence[str] = (), lookbehind: int = LOOKBEHIND_TOKENS) -> int:
    """How many of ``ids``, the tokens of a growing ``text``, more text can no longer change.

    A token is settled once it lies before the last word *or* more than ``lookbehind`` tokens
    from the end, whichever holds back less: the last word of spaced text may still grow
    and merge, while text without spaces (digits, CJK, code, URLs) is settled all but its
    last few tokens. Nothing from a suffix that may still become one of ``stops`` is settled.

    Args:
        ids: the tokens of the text as it is now (after any fixed prompt ``encode_prefix`` adds).
        text: the growing text.
        encode_prefix: ``n -> ids`` of the same string with ``text`` cut to its first ``n``
            characters (the caller adds any fixed prompt around it).
        stops: stop strings whose beginnings are held back.
        lookbehind: tokens at the end that are never settled (>= 1).

    Returns:
        A count ``n <= len(ids)``: ``ids[:n]`` are settled.
    """
    last_word = _LAST_WORD.search(text)
    settled = max(common_prefix_length(encode_prefix(last_word.start() if last_word else 0), ids),
                  len(ids) - lookbehind)
    held = partial_stop_length(text, stops)
    if held:
        settled = min(settled, common_prefix_length(encode_prefix(len(text) - held), ids))
    return max(settled, 0)


def trim_incomplete_char(text: str) -> str:
    """Drop trailing replacement characters left by a token that ends mid-way in a UTF-8 char."""
    return text.rstrip(REPLACEMENT_CHAR)


class TextStream:
    """Turns successive decodes of a growing reply into safe, attributed text deltas.

    Text is released only once it can no longer change: a suffix that may become a stop
    string or an incomplete UTF-8 character is held back, and the reply ends at the first
    stop string. Every released character is labelled with the model that wrote it.
    """

    def __init__(self, stops: Sequence[str], markers: Sequence[str] = ()) -> None:
        """``stops`` end the reply; of ``markers`` (the base format's turn markers, also in
        ``stops``) not even a beginning may end it: a budget that cuts a marker short must not
        leave ``"\n\n[Assistant"`` in the reply."""
        self.stops = tuple(stops)
        self.markers = tuple(markers)
        self.text = ""
        self.stopped = False
        self._boundary: int | None = None

    def start_base(self, draft_text: str) -> None:
        """Mark where the draft's text ends and the base's begins."""
        self._boundary = len(draft_text)

    def update(self, decoded: str, *, final: bool = False) -> list[tuple[str, str]]:
        """Take the full decode so far; return the new ``(text, source)`` pieces to emit."""
        if self.stopped:
            return []
        if final:
            cut, self.stopped = finished_text(decoded, self.stops, self.markers)
        else:
            cut, self.stopped = cut_at_stop(decoded, self.stops)
        if not (self.stopped or final):
            cut = trim_incomplete_char(cut)
            cut = cut[: len(cut) - partial_stop_length(cut, self.stops)]
        if not cut.startswith(self.text) or len(cut) <= len(self.text):
            return []
        start, self.text = len(self.text), cut
        return self._attribute(start, len(cut))

    def _attribute(self, start: int, end: int) -> list[tuple[str, str]]:
        boundary = end if self._boundary is None else self._boundary
        pieces = []
        if start < boundary:
            pieces.append((self.text[start : min(end, boundary)], "draft"))
        if end > boundary:
            pieces.append((self.text[max(start, boundary) : end], "base"))
        return pieces
