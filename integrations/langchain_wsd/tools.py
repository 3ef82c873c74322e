"""A prompt-based tool protocol for text models, and its tolerant parser.

Bound tools are described in a system turn; to call one, the model replies with a JSON
object ``{"tool": name, "arguments": {...}}``. The first JSON object of the reply is taken
(fenced blocks and text around it are fine; a reply cut by the token limit is completed).
When a call is required (``tool_choice`` any/required/a name) the last user turn also asks
for the call and the draft's reply is prefilled with its start (``ToolChoice.prefill``); for
a single tool the model only writes its arguments: tiny models manage that far more often
than the whole envelope, and the call then always names a bound tool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.utils.json import parse_partial_json

from wsd_llm import Message

ToolSchema = dict[str, Any]  # OpenAI tool format: {"type": "function", "function": {...}}
# tool_choice spellings of LangChain's chat models (OpenAI, Anthropic, Mistral...), as (mode, tool name).
# True forces a call; False, like None, leaves it to the model (ChatOpenAI: "False or None: no effect").
_MODES = {None: "auto", False: "auto", True: "any", "auto": "auto", "none": "none", "any": "any",
          "required": "any"}
# Envelope keys: ours first, then the spellings models trained on other formats tend to write.
_NAME_KEYS = ("tool", "name")
_ARGUMENT_KEYS = ("arguments", "parameters", "args")
_CHOICE_FORMS = ("None, True, False, 'auto', 'none', 'any', 'required', a bound tool's name, "
                 "{'type': 'auto'|'none'|'any'|'required'}, {'type': 'tool', 'name': ...} or "
                 "{'type': 'function', 'function': {'name': ...}}")


def _choice_mode(choice: Any) -> tuple[str, str | None]:
    """``(mode, name)`` of a tool_choice: mode "auto", "none", "any" or "tool" (name set)."""
    if isinstance(choice, Mapping):
        kind = choice.get("type")
        if kind in ("function", "tool"):  # OpenAI chat / Responses, Anthropic
            function = choice.get("function")
            name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
            if isinstance(name, str) and name:
                return "tool", name
        elif isinstance(kind, str) and kind in _MODES:
            return _MODES[kind], None
        raise ValueError(f"tool_choice {dict(choice)!r} is not a form ChatWSD knows; use {_CHOICE_FORMS}")
    if isinstance(choice, bool) or choice is None:
        return _MODES[choice], None
    if isinstance(choice, str):
        return _MODES.get(choice, "tool"), None if choice in _MODES else choice
    raise ValueError(f"tool_choice must be a str, bool, dict or None, got {type(choice).__name__}; "
                     f"use {_CHOICE_FORMS}")


@dataclass(frozen=True)
class ToolChoice:
    """What the caller asked for: no tools, the model's choice, or a required call."""

    tools: tuple[ToolSchema, ...]
    required: bool = False
    name: str | None = None  # the one tool a required call must use

    @classmethod
    def parse(cls, tools: Sequence[ToolSchema], choice: Any) -> ToolChoice:
        """The choice in force for ``tools`` (OpenAI format) and a ``tool_choice`` in any of
        LangChain's spellings (see ``_CHOICE_FORMS``).

        Raises:
            ValueError: an unknown form, a required call with no tools bound, or a tool that
                is not bound.
        """
        names = [tool["function"]["name"] for tool in tools]
        mode, name = _choice_mode(choice)
        if mode == "auto":
            return cls(tuple(tools))
        if mode == "none":
            return cls(())
        if not names:
            raise ValueError(f"tool_choice {choice!r} requires a tool call, but no tools are bound")
        if mode == "any":
            return cls(tuple(tools), required=True, name=names[0] if len(names) == 1 else None)
        if name not in names:
            raise ValueError(f"tool_choice {choice!r} names the tool {name!r}, which is not bound; "
                             f"bound tools: {', '.join(names)}")
        return cls(tuple(tools), required=True, name=name)

    def prefill(self) -> str:
        """How a required call's reply starts: the envelope, or the first argument of the one tool."""
        if not self.required:
            return ""
        if self.name is None:
            return '{"tool": "'
        properties = self.schema(self.name)["function"].get("parameters", {}).get("properties", {})
        if not properties:
            return "{}"
        key, spec = next(iter(properties.items()))
        return f'{{"{key}": ' + ('"' if spec.get("type") == "string" else "")

    def schema(self, name: str) -> ToolSchema | None:
        return next((tool for tool in self.tools if tool["function"]["name"] == name), None)


def _arguments_hint(tool: ToolSchema) -> str:
    """``{"a": <integer>, "b": <integer>}``: the shape of the arguments, easy to copy."""
    properties = tool["function"].get("parameters", {}).get("properties", {})
    fields = ", ".join(f'"{key}": <{spec.get("type", "value")}>' for key, spec in properties.items())
    return "{" + fields + "}"


def _call_example(tool: ToolSchema) -> str:
    return f'{{"tool": "{tool["function"]["name"]}", "arguments": {_arguments_hint(tool)}}}'


def _describe(tool: ToolSchema) -> str:
    description = tool["function"].get("description", "").strip().replace("\n", " ")
    return f"- {tool['function']['name']}: {description} Call: {_call_example(tool)}"


def with_tool_prompt(messages: list[Message], choice: ToolChoice) -> list[Message]:
    """The conversation with the tools described, and a required call asked for."""
    if not choice.tools:
        return messages
    lines = ["You can use these tools:", *map(_describe, choice.tools),
             "To use a tool, reply with only its JSON call, with real values for the arguments."]
    if not choice.required:
        lines.append("If no tool is needed, answer normally.")
    system = "\n".join(lines)
    result = list(messages)
    if result[0]["role"] == "system":
        result[0] = {"role": "system", "content": f"{result[0]['content']}\n\n{system}"}
    else:
        result.insert(0, {"role": "system", "content": system})
    if choice.required:
        if choice.name:
            ask = (f'Use the tool "{choice.name}". Reply with only its arguments as a JSON object: '
                   f"{_arguments_hint(choice.schema(choice.name))}")
        else:
            names = ", ".join(tool["function"]["name"] for tool in choice.tools)
            ask = f"Use one of the tools ({names}). Reply with only its JSON call."
        result[-1] = {"role": "user", "content": f"{result[-1]['content']}\n\n{ask}"}
    return result


def first_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text``; one cut off at the end is completed."""
    decoder = json.JSONDecoder()
    starts = [match.start() for match in re.finditer(r"\{", text)]
    for start in starts:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    if starts:
        try:
            value = parse_partial_json(text[starts[0]:])
        except json.JSONDecodeError:
            return None
        if isinstance(value, dict):
            return value
    return None


@dataclass(frozen=True)
class ParsedCall:
    name: str
    arguments: str  # JSON text; invalid JSON makes an invalid tool call downstream


def parse_tool_call(text: str, choice: ToolChoice) -> ParsedCall | None:
    """The call in a reply, or None for a plain answer (never None when a call is required)."""
    if not choice.tools:
        return None
    found = first_json_object(text)
    key = next((k for k in _NAME_KEYS if found is not None and isinstance(found.get(k), str)
                and choice.schema(found[k]) is not None), None)
    envelope = key is not None
    name = found[key] if envelope else choice.name
    if name is None and choice.required:  # any/required among several tools: the one it mentions
        name = next((tool["function"]["name"] for tool in choice.tools if tool["function"]["name"] in text),
                    choice.tools[0]["function"]["name"])
    if name is None or choice.schema(name) is None:
        return None
    arguments = next((found[k] for k in _ARGUMENT_KEYS if k in found), {}) if envelope else found
    if arguments is None and not choice.schema(name)["function"].get("parameters", {}).get("properties"):
        arguments = {}  # a tool without parameters needs no JSON at all
    if not isinstance(arguments, dict):
        return ParsedCall(name, text.strip()) if choice.required else None
    return ParsedCall(name, json.dumps(arguments, ensure_ascii=False))
