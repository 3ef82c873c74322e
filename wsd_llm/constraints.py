"""What a reply must match (a JSON schema, any JSON object, a regular expression or a Lark grammar),
stated once for both models.

Draft and base have different vocabularies, so each backend compiles the constraint for its own
tokenizer: the draft writes under it from the start; the base's matcher is advanced over the
accepted draft (in base tokens) at the handover and masks its continuation. The switch rule is
unchanged: it scores the constrained draft. The core only describes the constraint; compiling it
is the backend's work (``wsd_llm.backends.transformers.grammar`` uses llguidance).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

ConstraintKind = Literal["json_schema", "json_object", "regex", "grammar"]
# JSON as json.dumps writes it (what instruct models write too), in llguidance's terms; without
# flexible whitespace a small model cannot wander off into endless blank lines between tokens.
JSON_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


@dataclass(frozen=True)
class Constraint:
    """A constraint on the whole reply.

    Attributes:
        kind: ``json_schema`` (``value`` is the schema as JSON text), ``json_object`` (any JSON
            object; ``value`` is empty), ``regex`` (the whole reply matches ``value``) or
            ``grammar`` (a Lark grammar, llguidance's dialect, whose ``start`` rule is the reply).
        value: the schema, pattern or grammar text.
    """

    kind: ConstraintKind
    value: str = ""

    @classmethod
    def json_schema(cls, schema: dict[str, Any] | type | str) -> Constraint:
        """A reply that is JSON valid under ``schema``: a dict, its JSON text, or a pydantic model class.

        A pydantic model's objects are closed (``additionalProperties: false`` where it says nothing),
        as the openai SDK does for ``response_format=Model``: the reply holds the model's fields only.

        Raises:
            ValueError: ``schema`` is not a JSON object, JSON text of one, or a pydantic model class.
        """
        if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
            schema = closed_schema(schema.model_json_schema())
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except ValueError as error:
                raise ValueError(f"the JSON schema is not valid JSON: {error}") from None
        if not isinstance(schema, dict):
            raise ValueError(f"a JSON schema must be a JSON object (a dict), got {type(schema).__name__}")
        return cls("json_schema", json.dumps(schema))  # key order kept: replies follow the schema's order

    @classmethod
    def json_object(cls) -> Constraint:
        """A reply that is one JSON object (OpenAI's ``response_format: {"type": "json_object"}``)."""
        return cls("json_object")

    @classmethod
    def regex(cls, pattern: str) -> Constraint:
        """A reply that matches ``pattern`` as a whole."""
        return cls("regex", pattern)

    @classmethod
    def grammar(cls, lark: str) -> Constraint:
        """A reply in the language of a Lark grammar (llguidance's dialect; ``start`` is the reply)."""
        return cls("grammar", lark)

    @classmethod
    def from_response_format(cls, response_format: dict[str, Any] | None) -> Constraint | None:
        """The constraint of an OpenAI ``response_format``; None for ``{"type": "text"}`` or None.

        Raises:
            ValueError: an unknown ``type``, or ``json_schema`` without a ``schema``.
        """
        kind = (response_format or {}).get("type", "text")
        if kind == "text":
            return None
        if kind == "json_object":
            return cls.json_object()
        if kind == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema")  # type: ignore[union-attr]
            if schema is None:
                raise ValueError("response_format json_schema needs json_schema.schema (the JSON schema)")
            return cls.json_schema(schema)
        raise ValueError(f"response_format type must be text, json_object or json_schema, got {kind!r}")

    @property
    def schema(self) -> dict[str, Any] | None:
        """The JSON schema a reply must satisfy (``{"type": "object"}`` for ``json_object``); None otherwise."""
        if self.kind == "json_schema":
            return json.loads(self.value)
        return {"type": "object"} if self.kind == "json_object" else None


def closed_schema(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` on every object that has properties and no
    rule of its own for other keys."""
    if isinstance(schema, list):
        return [closed_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: closed_schema(value) for key, value in schema.items()}
    if "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed
