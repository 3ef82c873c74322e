"""Constrained decoding on the tiny random pair (a byte-level draft, a Gemma-like base): whatever
the seed, the temperature or where the switch falls, a complete reply matches its constraint."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import BaseModel, ConfigDict, Field
from tiny_models import tiny_base_tokenizer, tiny_draft_tokenizer, tiny_gemma3, tiny_llama

from wsd_llm import WSDConfig, WSDPipeline
from wsd_llm.constraints import Constraint
from wsd_llm.errors import OptionError

# Random models: these gammas switch early, late, or never (the whole draft is kept).
GAMMAS = [0.0034, 0.0036, 1.0]
SEEDS = range(3)
SAMPLED = {"temperature": 1.0, "base_temperature": 1.0}


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")  # additionalProperties: false, as OpenAI's strict mode asks

    name: str = Field(max_length=8)
    age: int = Field(ge=0, le=120)
    member: bool


@pytest.fixture(scope="module")
def pipe() -> WSDPipeline:
    base = tiny_gemma3(tiny_base_tokenizer(gemma_decoder=True))
    return WSDPipeline(tiny_llama(tiny_draft_tokenizer()), base, WSDConfig(max_new_tokens=120, max_draft_tokens=60))


def replies(pipe: WSDPipeline, constraint) -> list:
    """Replies over seeds and switch positions; all complete (the constraints here are bounded)."""
    results = [pipe.generate("Hello!", constraint=constraint, gamma=gamma, seed=seed, **SAMPLED)
               for gamma in GAMMAS for seed in SEEDS]
    assert any(r.switched for r in results) and any(not r.switched for r in results)
    assert all(r.finish_reason == "stop" for r in results)
    return results


def test_every_sampled_reply_validates_against_a_pydantic_schema(pipe):
    results = replies(pipe, Person)
    assert all(Person.model_validate_json(r.text) == Person.model_validate(r.parsed) for r in results)
    assert len({r.text for r in results}) > 1


def test_every_complete_sampled_reply_is_one_json_object(pipe):
    # Any object at all: a random model may write keys until the budget ends, so only most complete.
    results = [pipe.generate("Hello!", constraint={"type": "json_object"}, gamma=gamma, seed=seed, **SAMPLED)
               for gamma in GAMMAS for seed in SEEDS]
    complete = [r for r in results if r.finish_reason == "stop"]
    assert len(complete) > len(results) // 2
    assert all(isinstance(json.loads(r.text), dict) and r.parsed == json.loads(r.text) for r in complete)


def test_every_sampled_reply_matches_a_regex(pipe):
    pattern = r"(yes|no), [0-9]{1,3} times"
    results = replies(pipe, Constraint.regex(pattern))
    assert all(re.fullmatch(pattern, r.text) for r in results)
    assert all(r.parsed is None for r in results)


def test_every_sampled_reply_is_in_a_grammar(pipe):
    grammar = 'start: item ("; " item)*\nitem: WORD "=" NUMBER\nWORD: /[a-z]{1,5}/\nNUMBER: /[0-9]{1,2}/\n'
    results = replies(pipe, Constraint.grammar(grammar))
    assert all(re.fullmatch(r"[a-z]{1,5}=[0-9]{1,2}(; [a-z]{1,5}=[0-9]{1,2})*", r.text) for r in results)


def test_a_budget_too_small_to_close_the_reply_ends_with_length(pipe):
    result = pipe.generate("Hello!", constraint=Person, max_new_tokens=3)
    assert result.finish_reason == "length" and result.parsed is None
    assert result.text.startswith("{")


def test_unconstrained_replies_are_unchanged(pipe):
    assert pipe.generate("Hello!", gamma=0.0035).text == pipe.generate("Hello!", gamma=0.0035, constraint=None).text


@pytest.mark.parametrize(("response_format", "kind"), [
    ({"type": "json_object"}, "json_object"),
    ({"type": "json_schema", "json_schema": {"name": "p", "schema": Person.model_json_schema(), "strict": True}},
     "json_schema"),
])
def test_openai_response_formats_become_constraints(response_format, kind):
    assert WSDConfig(constraint=response_format).constraint.kind == kind
    assert Constraint.from_response_format({"type": "text"}) is None


@pytest.mark.parametrize(("value", "says"), [
    ({"type": "json_schema", "json_schema": {"name": "p"}}, "needs json_schema.schema"),
    ("[a-z]+", "constraint must be"),  # a bare string is ambiguous: Constraint.regex or .grammar says which
    (42, "constraint must be"),
])
def test_bad_constraints_are_one_line(value, says):
    with pytest.raises(OptionError, match=says) as caught:
        WSDConfig().updated(constraint=value)
    assert "\n" not in str(caught.value)


def test_a_schema_llguidance_cannot_compile_names_its_error(pipe):
    with pytest.raises(ValueError, match="json_schema constraint does not compile"):
        pipe.generate("Hello!", constraint={"type": "object", "properties": {"a": {"type": "nonsense"}}})


def test_constraints_are_refused_in_padded_batches(pipe):
    with pytest.raises(ValueError, match="use batch_size=1"):
        pipe.batch(["Hello!", "Hi"], batch_size=2, constraint=Person)
