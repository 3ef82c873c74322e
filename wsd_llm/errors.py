"""One-line messages for settings a user got wrong, the same in the CLI, the server and the Python API."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

# pydantic's error types, in words that name the rule; a {name} is filled from the error's context.
_RULES = {
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "literal_error": "must be {expected}",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
    "string_type": "must be text",
}


def one_line(error: ValidationError) -> str:
    """The problems of ``error`` as one line: ``gamma must be at most 1, got 2``.

    Each problem names the setting, the rule it broke and the value given; several are joined
    by ``"; "``. There is no pydantic header (``1 validation error for ...``) and no URL.

    Args:
        error: a validation error of any pydantic model (``WSDConfig``, the server's settings...).

    Returns:
        One line of text, without a trailing newline.
    """
    return "; ".join(_problem(detail) for detail in error.errors(include_url=False))


def _problem(detail: Any) -> str:
    name = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in detail["loc"]).lstrip(".")
    kind, context = detail["type"], detail.get("ctx", {})
    if kind == "value_error":  # a validator's own message, which already says what to change
        return str(context.get("error", detail["msg"]))
    if kind == "missing":
        return f"{name} is required"
    if kind == "extra_forbidden":
        return f"{name} is not a known setting"
    rule = _RULES.get(kind)
    if rule is None:  # pydantic's own words: "Input should be a valid ..." -> "must be a valid ..."
        rule = detail["msg"].replace("Input should", "must", 1)
    else:
        shown = {key: value if key == "expected" else _show(value) for key, value in context.items()}
        rule = rule.format(**shown)
    return f"{name} {rule}, got {_show(detail['input'])}"


def _show(value: Any) -> str:
    """A value as the user typed it: ``2`` rather than ``2.0``, strings quoted."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


class OptionError(ValueError):
    """A generation option with a bad value; ``option`` names it (``gamma``, ``max_new_tokens``...)."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option

    @classmethod
    def from_validation(cls, error: ValidationError) -> OptionError:
        """The one-line error for what pydantic found, naming the first option at fault."""
        first = error.errors(include_url=False)[0]
        return cls(one_line(error), option=str(first["loc"][0]) if first["loc"] else "")


class ContextWindowExceeded(ValueError):
    """A conversation longer than the draft's or the base's context window (OpenAI's
    ``context_length_exceeded``)."""
