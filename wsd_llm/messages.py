"""Conversation input: validated once, so every backend can trust its shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, TypedDict

Role = Literal["system", "user", "assistant"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant")


class Message(TypedDict):
    role: Role
    content: str


Conversation = Sequence[Mapping[str, str]] | str


def normalize_messages(messages: Conversation) -> list[Message]:
    """Check a conversation and return it as a list of ``{"role", "content"}`` dicts.

    A bare string is one user turn. The conversation must end with a user turn: WSD writes
    the assistant's reply, it does not continue one.
    """
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, Sequence) or not messages:
        raise ValueError(
            "messages must be a non-empty list of {'role': ..., 'content': ...} dicts "
            "(or a single prompt string)"
        )
    result: list[Message] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise ValueError(
                f"message {index} must be a mapping with 'role' and 'content' keys, got {message!r}"
            )
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise ValueError(
                f"message {index} has unknown role {role!r}; use one of {', '.join(ROLES)}"
            )
        if not isinstance(content, str):
            raise ValueError(
                f"message {index} content must be a string, got {type(content).__name__}; "
                "flatten multi-part content to text first"
            )
        try:
            content.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(
                f"message {index} has characters that are not valid Unicode text ({error.reason} at "
                f"position {error.start}); decode raw bytes with errors='replace' first"
            ) from error
        result.append({"role": role, "content": content})
    if result[-1]["role"] != "user":
        raise ValueError(
            f"the last message must come from the user, not {result[-1]['role']!r}: "
            "WSD drafts a new assistant reply to the last user turn"
        )
    if not result[-1]["content"].strip():
        raise ValueError("the last user message is empty; give the model something to answer")
    return result
