"""Stop strings and streaming text: nothing after a stop string, and nothing retracted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

REPLACEMENT_CHAR = "\ufffd"


def cut_at_stop(text: str, stops: Iterable[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop string; say whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def partial_stop_length(text: str, stops: Iterable[str]) -> int:
    """Length of the longest suffix of ``text`` that could still grow into a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


def trim_incomplete_char(text: str) -> str:
    """Drop trailing replacement characters left by a token that ends mid-way in a UTF-8 char."""
    return text.rstrip(REPLACEMENT_CHAR)


class TextStream:
    """Turns successive decodes of a growing reply into safe, attributed text deltas.

    Text is released only once it can no longer change: a suffix that may become a stop
    string or an incomplete UTF-8 character is held back, and the reply ends at the first
    stop string. Every released character is labelled with the model that wrote it.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(stops)
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
