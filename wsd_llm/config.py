"""Configuration of a WSD run, validated up front so bad settings fail before any model runs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from wsd_llm.constraints import Constraint
from wsd_llm.errors import OptionError
from wsd_llm.policies import GeometricMeanWindow, SwitchPolicy
from wsd_llm.prompts import INSTRUCT_STOPS, BaseFormat
from wsd_llm.sampling import Sampling


class WSDConfig(BaseModel):
    """Settings of Weak-to-Strong Decoding.

    Defaults reproduce the published reference (gamma 0.8, window 6, greedy draft of up to
    512 tokens, the plain ``[User]/[Assistant]`` base format, a greedy base continuation without
    penalties). ``temperature``/``top_p`` are the draft's; the ``base_*`` settings are the base's
    continuation after the switch (the switch rule itself always scores the draft as written).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    gamma: float = Field(0.8, gt=0.0, le=1.0, description="Switch threshold on the window mean.")
    window: int = Field(6, ge=1, description="Sliding-window size of the switch rule.")
    max_draft_tokens: int = Field(512, gt=0, description="Most tokens the draft model may write.")
    max_new_tokens: int = Field(
        512, gt=0, description="Most base tokens in the whole reply (accepted draft + continuation)."
    )
    temperature: float = Field(0.0, ge=0.0, description="Draft sampling temperature; 0 is greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Draft nucleus-sampling mass.")
    seed: int | None = Field(
        None, ge=-(2**63), lt=2**63, description="Seed of the draft and base samplers, for repeatable samples."
    )
    base_temperature: float = Field(
        0.0, ge=0.0, description="Temperature of the base's continuation; 0 is greedy (the reference)."
    )
    base_top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus mass of the base's continuation.")
    base_top_k: int = Field(0, ge=0, description="Most likely tokens the base samples from; 0 keeps all.")
    base_repetition_penalty: float = Field(
        1.0, gt=0.0, description="Base: CTRL repetition penalty over the context (above 1 repeats less); 1 is off."
    )
    base_frequency_penalty: float = Field(
        0.0, ge=-2.0, le=2.0, description="Base: OpenAI frequency penalty on the tokens it wrote; 0 is off."
    )
    base_presence_penalty: float = Field(
        0.0, ge=-2.0, le=2.0, description="Base: OpenAI presence penalty on the tokens it wrote; 0 is off."
    )
    stop: tuple[str, ...] = Field((), description="Extra stop strings; the reply is cut before them.")
    base_format: BaseFormat = Field(
        "plain",
        description="'plain' is the reference [User]/[Assistant] format for a base model; "
        "'chat_template' uses the base tokenizer's template, for an instruct target.",
    )
    logprobs: bool = Field(
        False, description="Report each reply token's log-probability under the base model (one extra "
        "scoring pass over the reply at the end)."
    )
    top_logprobs: int = Field(
        0, ge=0, le=20, description="With logprobs, also the base's most likely tokens at each position."
    )
    constraint: Constraint | None = Field(
        None, description="What the whole reply must match (wsd_llm.constraints.Constraint: a JSON schema, "
        "any JSON object, a regex or a grammar); needs local models."
    )
    mode: Literal["incremental", "faithful"] = Field(
        "incremental",
        description="'incremental' drafts in chunks and stops drafting when the switch fires; "
        "'faithful' drafts everything first and scores it in one pass, like the reference.",
    )
    chunk_size: int = Field(16, gt=0, description="Draft tokens per incremental check.")
    switch_policy: SwitchPolicy | None = Field(
        None, description="Custom switch rule; by default a geometric-mean window of gamma/window."
    )

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_tuple(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        if value is None:
            return ()
        return value

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not s for s in value):
            raise ValueError("stop strings must be non-empty; remove the empty string from `stop`")
        return value

    @field_validator("top_logprobs")
    @classmethod
    def _top_logprobs_need_logprobs(cls, value: int, info: ValidationInfo) -> int:
        if value and not info.data.get("logprobs"):
            raise ValueError("top_logprobs needs logprobs; set logprobs too, or leave top_logprobs at 0")
        return value

    @field_validator("constraint", mode="before")
    @classmethod
    def _as_constraint(cls, value: Any) -> Any:
        """Accept an OpenAI ``response_format``, a JSON schema dict or a pydantic model class too."""
        if value is None or isinstance(value, Constraint):
            return value
        if isinstance(value, dict) and value.get("type") in ("text", "json_object", "json_schema") \
                and set(value) <= {"type", "json_schema"}:
            return Constraint.from_response_format(value)
        if isinstance(value, (dict, type)):
            return Constraint.json_schema(value)
        raise ValueError("constraint must be a wsd_llm.Constraint, an OpenAI response_format, a JSON schema "
                         f"(dict) or a pydantic model class, got {type(value).__name__}")

    @field_validator("switch_policy", mode="before")
    @classmethod
    def _policy_is_a_policy(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, SwitchPolicy):
            raise ValueError(
                "switch_policy must implement first_switch(probs, start) -> int | None "
                f"(got {type(value).__name__})"
            )
        return value

    @property
    def policy(self) -> SwitchPolicy:
        """The switch rule in force: the custom one, or the reference sliding window."""
        return self.switch_policy or GeometricMeanWindow(gamma=self.gamma, window=self.window)

    def draft_sampling(self) -> Sampling:
        """How the draft writes: ``max_draft_tokens``, ``temperature``, ``top_p``, ``seed``, and the
        end-of-turn markers of instruct models as stop tokens (the reference's ``inference/draft.py``)."""
        return Sampling(max_tokens=self.max_draft_tokens, temperature=self.temperature, top_p=self.top_p,
                        seed=self.seed, stop_tokens=INSTRUCT_STOPS, constraint=self.constraint)

    def base_sampling(self, max_tokens: int, accepted: int = 0) -> Sampling:
        """How the base continues after the switch: the ``base_*`` settings and ``seed``; by default
        greedily and without penalties (the reference's ``inference/target.py``). ``accepted`` is the
        number of draft tokens (base tokens) the reply already holds, which the constraint has to read."""
        return Sampling(max_tokens=max_tokens, temperature=self.base_temperature, top_p=self.base_top_p,
                        top_k=self.base_top_k, repetition_penalty=self.base_repetition_penalty,
                        frequency_penalty=self.base_frequency_penalty,
                        presence_penalty=self.base_presence_penalty, seed=self.seed,
                        constraint=self.constraint, constraint_prefix=accepted)

    def updated(self, **overrides: Any) -> WSDConfig:
        """A validated copy with per-call overrides applied (None values are ignored).

        Every option given replaces the configured one, except ``stop``: stop strings given
        per call are *added* to the configured ones, so a pipeline built with a stop string
        (a ReAct agent's ``"\nObservation:"``, say) keeps it whatever a call adds. Every face
        (``ChatWSD``, ``WSDLLM``, ``wsd-llm serve``) passes its options through here.

        Raises:
            TypeError: an option that is not a ``WSDConfig`` field.
            wsd_llm.errors.OptionError: a value out of range, in one line (``gamma must be at most 1,
                got 2``); a ``ValueError`` whose ``option`` names the setting.
        """
        changes = {key: value for key, value in overrides.items() if value is not None}
        if not changes:
            return self
        if "stop" in changes:
            added = (changes["stop"],) if isinstance(changes["stop"], str) else tuple(changes["stop"])
            changes["stop"] = tuple(dict.fromkeys(self.stop + added))
        unknown = set(changes) - set(type(self).model_fields)
        if unknown:
            raise TypeError(
                f"unknown generation option(s): {', '.join(sorted(unknown))}; "
                f"valid options are {', '.join(type(self).model_fields)}"
            )
        try:
            return type(self).model_validate({**dict(self), **changes})
        except ValidationError as error:
            raise OptionError.from_validation(error) from None
