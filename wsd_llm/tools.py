"""Tool calling for text models: the tools a request offers and how it must use them, the prompt
that describes them, the grammar that keeps a call valid, and the parser that reads calls back.

The protocol: tools are described in a system turn; to call one, the model replies with only the
JSON object ``{"tool": name, "arguments": {...}}``. Where both models can write under a grammar
(local transformers models with llguidance), they do (:meth:`ToolChoice.constraint`): a required
call is one such object naming a tool of the request, its arguments valid under the tool's
parameters schema; ``auto`` is such a call or free text that does not begin with ``{``. Otherwise
(remote models) the prompt alone asks for the call, a required call's draft is prefilled with its
start (:meth:`ToolChoice.prefill`), and the parser reads other envelope spellings too.

A reply is a call when it begins with the object (after blank space or a code fence). OpenAI's
``parallel_tool_calls`` allows several calls; replies here hold at most one.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wsd_llm.constraints import JSON_LAYOUT, Constraint, closed_schema
from wsd_llm.messages import Message
from wsd_llm.results import StreamEvent, ToolCall, ToolCallDelta

logger = logging.getLogger(__name__)

ToolSchema = dict[str, Any]  # OpenAI's tool format: {"type": "function", "function": {"name", ...}}
# tool_choice spellings (OpenAI, Anthropic, LangChain's chat models), as modes. True forces a call;
# False, like None, leaves it to the model (ChatOpenAI: "False or None: no effect").
_MODES = {None: "auto", False: "auto", True: "any", "auto": "auto", "none": "none", "any": "any",
          "required": "any"}
CHOICE_FORMS = ("None, True, False, 'auto', 'none', 'any', 'required', a tool's name, "
                "{'type': 'auto'|'none'|'any'|'required'}, {'type': 'tool', 'name': ...} or "
                "{'type': 'function', 'function': {'name': ...}}")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # OpenAI's rule for function names
# Envelope keys: ours first, then the spellings models trained on other formats tend to write.
_NAME_KEYS = ("tool", "name")
_ARGUMENT_KEYS = ("arguments", "parameters", "args")
_OPENING = re.compile(r"\s*(?:```(?:json)?\s*)?\{")
_ENVELOPE = re.compile(r'\{\s*"(?:tool|name)"\s*:\s*"(?P<name>[^"\\]*)"\s*,\s*"(?:arguments|parameters|args)"\s*:\s*')
_DECODER = json.JSONDecoder()


def _checked_tools(tools: Sequence[Any]) -> tuple[ToolSchema, ...]:
    """``tools`` in OpenAI's format, each checked.

    Raises:
        ValueError: a tool not in OpenAI's format (naming its index), a name OpenAI would refuse,
            parameters that are not a JSON schema object. Two tools may share a name (LangChain binds
            one tool in several forms); calls then follow the first.
    """
    if isinstance(tools, (str, Mapping)) or not isinstance(tools, Sequence):
        raise ValueError(f"tools must be a list of OpenAI tools, got {type(tools).__name__}")
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping) or tool.get("type", "function") != "function":
            raise ValueError(f"tools[{index}] must be {{'type': 'function', 'function': {{'name': ..., "
                             f"'description': ..., 'parameters': {{...}}}}}}, got {str(tool)[:120]}")
        name, description = function.get("name"), function.get("description")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"tools[{index}].function.name must be 1-64 letters, digits, '_', '.' or '-', "
                             f"got {name!r}")
        if description is not None and not isinstance(description, str):
            raise ValueError(f"tools[{index}].function.description must be a string, got {type(description).__name__}")
        parameters = function.get("parameters") or {}
        properties = parameters.get("properties", {}) if isinstance(parameters, Mapping) else None
        if not isinstance(parameters, Mapping) or parameters.get("type", "object") != "object" \
                or not isinstance(properties, Mapping):
            raise ValueError(f"tools[{index}].function.parameters must be a JSON schema of an object "
                             "({'type': 'object', 'properties': {...}})")
        for key, spec in properties.items():
            if not isinstance(spec, (Mapping, bool)):
                raise ValueError(f"tools[{index}].function.parameters.properties.{key} must be a JSON schema "
                                 f"(a dict such as {{'type': 'string'}}), got {spec!r}")
    return tuple(dict(tool) for tool in tools)


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
        raise ValueError(f"tool_choice {dict(choice)!r} is not a form wsd-llm knows; use {CHOICE_FORMS}")
    if isinstance(choice, bool) or choice is None:
        return _MODES[choice], None
    if isinstance(choice, str):
        return (_MODES[choice], None) if choice in _MODES else ("tool", choice)
    raise ValueError(f"tool_choice must be a str, bool, dict or None, got {type(choice).__name__}; "
                     f"use {CHOICE_FORMS}")


def _parameters(tool: ToolSchema) -> dict[str, Any]:
    return dict(tool["function"].get("parameters") or {"type": "object", "properties": {}})


def _signature(tool: ToolSchema) -> str:
    """``add(a: integer, b: integer)``. A JSON example with placeholders (``{"a": <integer>}``) is
    copied as it is by small models (``"<string>France</string>"``); a signature is not."""
    properties = _parameters(tool).get("properties", {})
    arguments = ", ".join(f"{key}: {spec.get('type', 'value') if isinstance(spec, Mapping) else 'value'}"
                          for key, spec in properties.items())
    return f"{tool['function']['name']}({arguments})"


def _describe(tool: ToolSchema) -> str:
    description = (tool["function"].get("description") or "").strip().replace("\n", " ")
    return f"- {_signature(tool)}: {description}"


def _envelope(tool: ToolSchema, defs: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of one call of ``tool``: its name, and arguments valid under its (closed)
    parameters. The parameters' ``$defs`` move into ``defs`` (the root's), renamed per tool, so their
    ``$ref`` pointers still resolve from the call's schema."""
    name = tool["function"]["name"]
    parameters = _parameters(tool)
    own = parameters.pop("$defs", {})

    def moved(node: Any) -> Any:
        if isinstance(node, list):
            return [moved(item) for item in node]
        if not isinstance(node, dict):
            return node
        node = {key: moved(value) for key, value in node.items()}
        if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/$defs/"):
            node["$ref"] = f"#/$defs/{name}.{node['$ref'].removeprefix('#/$defs/')}"
        return node

    defs.update({f"{name}.{key}": closed_schema(moved(value)) for key, value in own.items()})
    return {"type": "object", "properties": {"tool": {"const": name}, "arguments": closed_schema(moved(parameters))},
            "required": ["tool", "arguments"], "additionalProperties": False}


@dataclass(frozen=True)
class ToolChoice:
    """The tools of a request and how the reply must use them.

    Attributes:
        tools: the tools the reply may call (OpenAI format); empty when none may be called.
        required: whether the reply must be a call.
        name: the one tool a required call must use, if the request names one.
    """

    tools: tuple[ToolSchema, ...] = ()
    required: bool = False
    name: str | None = None

    @property
    def bare(self) -> bool:
        """Whether the reply is the arguments object alone: a required call of one known tool needs no
        envelope, and a small model writes the arguments alone far more reliably (in fewer tokens)."""
        return self.required and self.name is not None

    @classmethod
    def parse(cls, tools: Sequence[Any] | None, choice: Any = None) -> ToolChoice:
        """The choice in force for ``tools`` (OpenAI format) and a ``tool_choice`` in any of the
        spellings of ``CHOICE_FORMS``.

        Raises:
            ValueError: a malformed tool, an unknown ``tool_choice`` form, a required call with no
                tools, or a named tool that is not among ``tools``.
        """
        checked = _checked_tools(tools or ())
        names = [tool["function"]["name"] for tool in checked]
        mode, name = _choice_mode(choice)
        if mode == "auto":
            return cls(checked)
        if mode == "none":
            return cls()
        if not names:
            raise ValueError(f"tool_choice {choice!r} requires a tool call, but no tools are given")
        if mode == "any":
            return cls(checked, required=True, name=names[0] if len(names) == 1 else None)
        if name not in names:
            raise ValueError(f"tool_choice {choice!r} names the tool {name!r}, which is not given; "
                             f"tools: {', '.join(names)}")
        return cls(checked, required=True, name=name)

    def tool(self, name: str) -> ToolSchema | None:
        """The tool called ``name``, or None."""
        return next((tool for tool in self.tools if tool["function"]["name"] == name), None)

    def prompt(self, messages: list[Message]) -> list[Message]:
        """The conversation with the tools described in the system turn, and a required call asked
        for in the last user turn."""
        if not self.tools:
            return messages
        lines = ["You can use these tools:", *map(_describe, self.tools),
                 'To use a tool, reply with only its JSON call, {"tool": name, "arguments": {...}}, with real '
                 "values for the arguments."]
        if not self.required:
            lines.append("If no tool is needed, answer normally.")
        system = "\n".join(lines)
        result = list(messages)
        if result[0]["role"] == "system":
            result[0] = {"role": "system", "content": f"{result[0]['content']}\n\n{system}"}
        else:
            result.insert(0, {"role": "system", "content": system})
        if self.required:
            if self.bare:
                ask = f"Use the tool {_signature(self.tool(self.name))}. Reply with only its arguments as a " \
                      "JSON object."
            else:
                ask = f"Use one of the tools ({', '.join(t['function']['name'] for t in self.tools)}). " \
                      "Reply with only its JSON call."
            result[-1] = {"role": "user", "content": f"{result[-1]['content']}\n\n{ask}"}
        return result

    def prefill(self) -> str:
        """How a required call's reply starts when no grammar can force it: the envelope up to the
        tool's name, or the arguments up to their first value (:attr:`bare`)."""
        if not self.required:
            return ""
        if not self.bare:
            return '{"tool": "'
        properties = _parameters(self.tool(self.name)).get("properties", {})
        if not properties:
            return "{}"
        key, spec = next(iter(properties.items()))
        return f'{{"{key}": ' + ('"' if spec.get("type") == "string" else "")

    def constraint(self, response: Constraint | None = None) -> Constraint:
        """What the reply must match: one call of a tool (required; the arguments alone when
        :attr:`bare`), or a call or an answer (auto).

        Args:
            response: the request's own constraint on an answer that is not a call (OpenAI's
                ``response_format``); a JSON one only. Without it an answer is free text that does
                not begin with ``{``.

        Raises:
            ValueError: no tools, or a regex or grammar ``response`` (only JSON combines with tools).
        """
        if not self.tools:
            raise ValueError("a tool constraint needs tools")
        if self.bare:
            return Constraint.json_schema(closed_schema(_parameters(self.tool(self.name))))
        defs: dict[str, Any] = {}
        envelopes = [_envelope(tool, defs) for tool in self.tools]
        call = envelopes[0] if len(envelopes) == 1 else {"anyOf": envelopes}
        call = {**call, "$defs": defs} if defs else call
        if self.required:
            return Constraint.json_schema(call)
        if response is not None and response.schema is None:
            raise ValueError(f"a {response.kind} response_format cannot be combined with tools; use a JSON "
                             "schema, or call without tools")
        layout = {"x-guidance": JSON_LAYOUT}
        answer = f"%json {json.dumps({**response.schema, **layout})}" if response else r"/\s*[^\s{][\s\S]*/"
        return Constraint.grammar(f"start: call | answer\ncall: %json {json.dumps({**call, **layout})}\n"
                                  f"answer: {answer}\n")

    def _mentioned(self, text: str) -> str:
        """For a required call among several tools that names none: the first tool the text mentions."""
        return next((t["function"]["name"] for t in self.tools if t["function"]["name"] in text),
                    self.tools[0]["function"]["name"])

    def read(self, text: str, call_id: str | None = None) -> ToolCall | None:
        """The call in a reply, or None for an answer (never None when a call is required).

        Arguments are kept as the model wrote them (the stream sends the same text); other spellings
        of the envelope (``name``/``parameters``, keys in another order) are read too, and their
        arguments written anew as JSON.
        """
        if not self.tools:
            return None
        call_id = call_id or new_call_id()
        opening = _OPENING.match(text)
        if opening is None and not self.required:
            return None
        start = opening.end() - 1 if opening else 0
        envelope = _ENVELOPE.match(text, start) if opening else None
        if envelope and self.tool(envelope["name"]) and envelope["name"] == (self.name or envelope["name"]):
            return ToolCall(id=call_id, name=envelope["name"], arguments=_written_arguments(text[envelope.end():]))
        if self.bare and opening:
            return ToolCall(id=call_id, name=self.name, arguments=_written_arguments(text[start:]))
        found = _first_object(text[start:])
        if found is None and opening and self.required and _envelope_begun(text[start:]):
            # An envelope cut before its arguments: a call of the tool it names so far, no arguments yet.
            return ToolCall(id=call_id, name=self._mentioned(text), arguments="")
        key = next((k for k in _NAME_KEYS if found and isinstance(found.get(k), str) and self.tool(found[k])), None)
        name = found[key] if key else self.name
        if name is None and self.required:
            name = self._mentioned(text)
        if name is None:
            return None
        arguments = next((found[k] for k in _ARGUMENT_KEYS if k in found), None) if key else found
        if arguments is None and not _parameters(self.tool(name)).get("properties"):
            arguments = {}  # a tool without parameters needs no JSON at all
        if not isinstance(arguments, dict):
            return ToolCall(id=call_id, name=name, arguments=text.strip()) if self.required else None
        return ToolCall(id=call_id, name=name, arguments=json.dumps(arguments, ensure_ascii=False))


def _envelope_begun(text: str) -> bool:
    """Whether ``text`` (from its ``{``) is the start of an envelope, cut before its arguments."""
    return any(envelope.startswith(text) or text.startswith(envelope) for envelope in ('{"tool": ', '{"name": '))


def new_call_id() -> str:
    """A fresh tool call id in OpenAI's ``call_...`` form."""
    return f"call_{uuid.uuid4().hex[:24]}"


def _written_arguments(rest: str) -> str:
    """The arguments object at the start of ``rest`` as written; all of ``rest`` when it is cut off
    (as written too: the streamed pieces add up to it)."""
    try:
        _, end = _DECODER.raw_decode(rest)
    except ValueError:
        return rest
    return rest[:end]


def _first_object(text: str) -> dict[str, Any] | None:
    """The first complete JSON object in ``text``."""
    for match in re.finditer(r"\{", text):
        try:
            value, _ = _DECODER.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


@dataclass
class ToolCallStream:
    """Turns a run's events into those of a reply that may be a call.

    Text is held until the reply cannot be a call any more (it begins with something other than
    ``{`` or a code fence), then streams as it comes. A call streams as :class:`ToolCallDelta`
    pieces: its name once the envelope names a tool, then its arguments as they are written. The
    last event's result gets ``tool_calls`` and ``finish_reason="tool_calls"`` (``"length"`` stays
    when the budget cut the call), or, for an answer under a JSON ``response``, its ``parsed`` value.
    """

    choice: ToolChoice
    response: Constraint | None = None
    call_id: str = field(default_factory=new_call_id)
    _text: str = ""
    _held: list[StreamEvent] = field(default_factory=list)
    _answer: bool = False
    _named: bool = False
    _sent: str = ""

    def feed(self, event: StreamEvent) -> Iterator[StreamEvent]:
        """The events to pass on for ``event`` (none while the reply is undecided)."""
        if event.result is not None:
            yield from self._finish(event)
            return
        if self._answer:
            yield event
            return
        self._text += event.text
        self._held.append(event)
        opening = _OPENING.match(self._text)
        if opening is None and not self.choice.required and not _may_open(self._text):
            self._answer = True
            yield from self._release()
        elif opening is not None:
            yield from self._pieces(opening.end() - 1, event)

    def _pieces(self, start: int, event: StreamEvent) -> Iterator[StreamEvent]:
        if self.choice.bare:
            name, arguments = self.choice.name, start
        elif (envelope := _ENVELOPE.match(self._text, start)) and self.choice.tool(envelope["name"]):
            name, arguments = envelope["name"], envelope.end()
        else:
            return
        if not self._named:
            self._named = True
            yield self._delta(event, name=name)
        rest = self._text[arguments:]
        if not rest.startswith("{") or _closed(rest):
            return  # the arguments' end is not known until the reply ends
        if len(rest) > len(self._sent):
            yield self._delta(event, arguments=rest[len(self._sent):])
            self._sent = rest

    def _finish(self, event: StreamEvent) -> Iterator[StreamEvent]:
        result = event.result
        call = self.choice.read(result.text, self.call_id)
        if call is None:
            yield from self._release()
            if self.response is not None and self.response.schema is not None and result.finish_reason == "stop":
                result = result.model_copy(update={"parsed": json.loads(result.text)})
        else:
            if not self._named:
                yield self._delta(event, name=call.name)
            if call.arguments.startswith(self._sent):
                if rest := call.arguments[len(self._sent):]:
                    yield self._delta(event, arguments=rest)
            else:  # a model that wrote an envelope where the arguments alone were asked (no grammar)
                logger.warning("streamed tool call arguments differ from the final ones")
            finish = "length" if result.finish_reason == "length" else "tool_calls"
            result = result.model_copy(update={"tool_calls": [call], "finish_reason": finish})
        yield StreamEvent(text="", source=event.source, result=result)

    def _release(self) -> Iterator[StreamEvent]:
        held, self._held = self._held, []
        yield from held

    def _delta(self, event: StreamEvent, name: str | None = None, arguments: str = "") -> StreamEvent:
        """A piece of the call: the first names it (with its id), the others add to its arguments."""
        piece = ToolCallDelta(id=self.call_id if name else None, name=name, arguments=arguments)
        return StreamEvent(text="", source=event.source, tool_call=piece)


def _may_open(text: str) -> bool:
    """Whether ``text`` could still become the opening of a call (blank, or a code fence's start)."""
    stripped = text.lstrip()
    return not stripped or "```json".startswith(stripped) or (stripped.startswith("```") and not stripped[3:].strip())


def _closed(rest: str) -> bool:
    try:
        _DECODER.raw_decode(rest)
    except ValueError:
        return False
    return True
