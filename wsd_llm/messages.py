"""Conversation input: validated once, so every backend can trust its shape.

The models read three roles. Tool-loop turns in OpenAI's shape are written as text turns of the
tool protocol (``wsd_llm.tools``):

* an assistant turn's ``tool_calls`` become the JSON calls the model is asked to write
  (``{"tool": name, "arguments": {...}}``, one per line) after its text;
* a ``tool`` turn (a tool's result) becomes a user turn ``Tool result (name): content``
  (``Tool error`` when its ``status`` is ``"error"``) followed by ``Now answer my question using
  this result.``: without that line a small model tends to repeat its last call instead of answering.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

Role = Literal["system", "user", "assistant"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant")
_ANSWER_FROM_RESULT = "Now answer my question using this result."


class Message(TypedDict):
    role: Role
    content: str


Conversation = Sequence[Mapping[str, Any]] | str


def tool_call_text(name: str, arguments: Mapping[str, Any] | str) -> str:
    """One call in the tool protocol, exactly as the model is asked to write it.

    ``arguments`` is a dict or its JSON text (OpenAI's ``function.arguments``); text that is not a
    JSON object is kept as written.
    """
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            pass
    return json.dumps({"tool": name, "arguments": arguments}, ensure_ascii=False)


def _calls_text(index: int, calls: Any, names: dict[str, str]) -> list[str]:
    """The protocol text of an assistant turn's ``tool_calls``; records each call's id -> name."""
    if not isinstance(calls, Sequence) or isinstance(calls, str):
        raise ValueError(f"message {index} tool_calls must be a list of {{'id', 'function': {{'name', "
                         "'arguments'}}} dicts")
    texts = []
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise ValueError(f"message {index} has a tool call without function.name: {call!r}; write "
                             "calls as {'id': ..., 'type': 'function', 'function': {'name': ..., 'arguments': ...}}")
        names[str(call.get("id"))] = function["name"]
        texts.append(tool_call_text(function["name"], function.get("arguments") or {}))
    return texts


def _text(index: int, message: Mapping[str, Any], content: Any) -> str:
    if content is None and (message.get("role") == "assistant" and message.get("tool_calls")):
        return ""  # OpenAI's assistant turn that only calls tools
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
    return content


def normalize_messages(messages: Conversation) -> list[Message]:
    """Check a conversation and return it as a list of ``{"role", "content"}`` dicts.

    A bare string is one user turn. Tool-loop turns (an assistant turn with ``tool_calls``, then
    ``{"role": "tool", "tool_call_id", "content"}`` turns, optionally with ``name`` and
    ``status``) are written as text turns (see the module docstring). The conversation must end
    with a user (or tool) turn: WSD drafts a new assistant reply, it does not continue one.

    Raises:
        ValueError: a malformed turn (naming its index and what is wrong), or a conversation that
            does not end with a non-empty user or tool turn.
    """
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, Sequence) or not messages:
        raise ValueError(
            "messages must be a non-empty list of {'role': ..., 'content': ...} dicts "
            "(or a single prompt string)"
        )
    result: list[Message] = []
    names: dict[str, str] = {}  # tool_call_id -> tool name, for the results that refer to them
    for index, message in enumerate(messages):
        calls_only = isinstance(message, Mapping) and message.get("role") == "assistant" and message.get("tool_calls")
        if not isinstance(message, Mapping) or "role" not in message or ("content" not in message and not calls_only):
            raise ValueError(
                f"message {index} must be a mapping with 'role' and 'content' keys, got {message!r}"
            )
        role, content = message["role"], _text(index, message, message.get("content"))
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id is not None and str(call_id) not in names:
                raise ValueError(f"message {index} is the result of call {call_id!r}, which no earlier assistant "
                                 "turn made; send that turn (with its tool_calls) before the results")
            label = "Tool error" if message.get("status") == "error" else "Tool result"
            name = message.get("name") or names.get(str(call_id))
            label += f" ({name})" if name else ""
            result.append({"role": "user", "content": f"{label}: {content}\n\n{_ANSWER_FROM_RESULT}"})
            continue
        if role not in ROLES:
            raise ValueError(
                f"message {index} has unknown role {role!r}; use one of {', '.join(ROLES)} or tool"
            )
        if message.get("tool_calls"):
            if role != "assistant":
                raise ValueError(f"message {index} has tool_calls but role {role!r}; only assistant turns call tools")
            content = "\n".join(part for part in [content, *_calls_text(index, message["tool_calls"], names)] if part)
        result.append({"role": role, "content": content})
    if result[-1]["role"] != "user":
        raise ValueError(
            f"the last message must come from the user, not {result[-1]['role']!r}: "
            "WSD drafts a new assistant reply to the last user turn"
        )
    if not result[-1]["content"].strip():
        raise ValueError("the last user message is empty; give the model something to answer")
    return result
