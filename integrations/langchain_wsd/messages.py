"""LangChain messages as the ``{"role", "content"}`` turns the WSD core takes.

The core knows three roles, so the rest are written as text turns:

* an AI message's tool calls become the JSON objects of the tool protocol
  (``{"tool": name, "arguments": {...}}``, one per line) after its text;
* a tool result becomes a user turn ``Tool result (name): content`` (``Tool error`` when its
  status is ``"error"``) followed by ``Now answer my question using this result.``: without
  that line a small model tends to repeat its last tool call instead of answering.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from wsd_llm import Message

_ROLES = {"system": "system", "user": "user", "human": "user", "assistant": "assistant", "ai": "assistant"}
# Content blocks that carry no text for the model: tool calls are rendered from `tool_calls`.
_SKIPPED_BLOCKS = {"tool_use", "tool_call", "reasoning", "thinking"}
_ANSWER_FROM_RESULT = "Now answer my question using this result."


def tool_call_text(name: str, arguments: dict[str, Any]) -> str:
    """One call in the tool protocol, exactly as the model is asked to write it."""
    return json.dumps({"tool": name, "arguments": arguments}, ensure_ascii=False)


def content_text(message: BaseMessage) -> str:
    """The text of a message; a clear error for content the text models cannot read."""
    if isinstance(message.content, str):
        return message.content
    parts: list[str] = []
    for block in message.content:
        if isinstance(block, str):
            parts.append(block)
        elif block.get("type") == "text":
            parts.append(block.get("text", ""))
        elif block.get("type") not in _SKIPPED_BLOCKS:
            raise ValueError(
                f"ChatWSD runs text-only models and cannot read a {block.get('type')!r} content block "
                f"in a {message.type} message; send text blocks (or a plain string) only"
            )
    return "".join(parts)


def to_wsd_message(message: BaseMessage) -> Message:
    """Map one LangChain message to a core turn (see the module docstring for the rules)."""
    text = content_text(message)
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": text}
    if isinstance(message, HumanMessage):
        return {"role": "user", "content": text}
    if isinstance(message, AIMessage):
        calls = [tool_call_text(call["name"], call["args"]) for call in message.tool_calls]
        return {"role": "assistant", "content": "\n".join(part for part in [text, *calls] if part)}
    if isinstance(message, ToolMessage):
        label = "Tool error" if message.status == "error" else "Tool result"
        name = f" ({message.name})" if message.name else ""
        return {"role": "user", "content": f"{label}{name}: {text}\n\n{_ANSWER_FROM_RESULT}"}
    if isinstance(message, ChatMessage) and message.role in _ROLES:
        return {"role": _ROLES[message.role], "content": text}  # type: ignore[typeddict-item]
    raise ValueError(
        f"ChatWSD cannot represent a {type(message).__name__} (type {message.type!r}); "
        "use system, human, ai or tool messages"
    )


def to_wsd_messages(messages: Sequence[BaseMessage]) -> list[Message]:
    """The whole conversation; the core then checks that it ends with a user (or tool) turn."""
    return [to_wsd_message(message) for message in messages]
