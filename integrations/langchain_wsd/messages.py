"""LangChain messages as the turns the WSD core takes (OpenAI's shape: ``{"role", "content"}``,
with ``tool_calls`` on AI turns and ``tool`` turns for results; ``wsd_llm.messages`` writes these
as text for the models)."""

from __future__ import annotations

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

_ROLES = {"system": "system", "user": "user", "human": "user", "assistant": "assistant", "ai": "assistant"}
# Content blocks that carry no text for the model: tool calls are rendered from `tool_calls`.
_SKIPPED_BLOCKS = {"tool_use", "tool_call", "reasoning", "thinking"}


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


def to_wsd_message(message: BaseMessage) -> dict[str, Any]:
    """Map one LangChain message to a core turn."""
    text = content_text(message)
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": text}
    if isinstance(message, HumanMessage):
        return {"role": "user", "content": text}
    if isinstance(message, AIMessage):
        calls = [{"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["args"]}}
                 for call in message.tool_calls]
        return {"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})}
    if isinstance(message, ToolMessage):
        return {"role": "tool", "content": text, "tool_call_id": message.tool_call_id, "name": message.name,
                "status": message.status}
    if isinstance(message, ChatMessage) and message.role in _ROLES:
        return {"role": _ROLES[message.role], "content": text}
    raise ValueError(
        f"ChatWSD cannot represent a {type(message).__name__} (type {message.type!r}); "
        "use system, human, ai or tool messages"
    )


def to_wsd_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """The whole conversation; the core then checks it (it must end with a user or tool turn)."""
    return [to_wsd_message(message) for message in messages]
