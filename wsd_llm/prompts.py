"""Prompt formats of the draft and the base model, exactly as the reference builds them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from wsd_llm.messages import Message

# Stops of an instruct model's turn, and of a base model writing in the plain format.
INSTRUCT_STOPS: tuple[str, ...] = ("<end_of_turn>", "<|eot_id|>", "<|im_end|>")
PLAIN_STOPS: tuple[str, ...] = (
    "\n\n[User]",
    "\n\n[System]",
    "\n\n[Assistant]",
    "\n[User]",
    "\n[System]",
    "\n[Assistant]",
    "[User]",
    "[System]",
    "[Assistant]",
)
PLAIN_HEADERS = {"system": "\n\n[System]\n", "user": "\n\n[User]\n", "assistant": "\n\n[Assistant]\n"}

BaseFormat = Literal["plain", "chat_template"]


class Templated(Protocol):
    """What prompt building needs from a model: its BOS text and its chat template."""

    @property
    def bos_token(self) -> str | None: ...

    def apply_chat_template(self, messages: Sequence[Message]) -> str: ...


def with_bos(prompt: str, bos_token: str | None) -> str:
    """Prepend the BOS text unless the prompt already starts with it (the reference rule)."""
    if bos_token and not prompt.startswith(bos_token):
        return bos_token + prompt
    return prompt


def plain_prompt(messages: Sequence[Message]) -> str:
    """The reference's plain base-model format, ending with an open ``[Assistant]`` turn."""
    body = "".join(PLAIN_HEADERS[m["role"]] + m["content"].strip() for m in messages)
    return body + PLAIN_HEADERS["assistant"]


def draft_prompt(model: Templated, messages: Sequence[Message]) -> str:
    """The draft's prompt: its chat template with a generation prompt, BOS ensured."""
    return with_bos(model.apply_chat_template(messages), model.bos_token)


def base_prompt(model: Templated, messages: Sequence[Message], fmt: BaseFormat) -> str:
    """The base's prompt before the draft text is appended."""
    text = plain_prompt(messages) if fmt == "plain" else model.apply_chat_template(messages)
    return with_bos(text, model.bos_token)


def base_stops(fmt: BaseFormat) -> tuple[str, ...]:
    return PLAIN_STOPS if fmt == "plain" else INSTRUCT_STOPS


def with_draft(prompt: str, draft_text: str) -> str:
    """The string the base scores: prompt + stripped draft, right-stripped as a whole."""
    return (prompt + draft_text.strip()).rstrip()
