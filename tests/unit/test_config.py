import pytest
from pydantic import ValidationError

from wsd_llm import GeometricMeanWindow, WSDConfig


def test_defaults_are_the_reference_settings():
    config = WSDConfig()
    assert (config.gamma, config.window, config.max_draft_tokens) == (0.8, 6, 512)
    assert (config.temperature, config.top_p, config.base_format) == (0.0, 1.0, "plain")
    assert config.policy == GeometricMeanWindow(0.8, 6)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("gamma", 0.0, "greater than 0"),
        ("gamma", 1.5, "less than or equal to 1"),
        ("window", 0, "greater than or equal to 1"),
        ("max_new_tokens", 0, "greater than 0"),
        ("max_draft_tokens", -3, "greater than 0"),
        ("chunk_size", 0, "greater than 0"),
        ("temperature", -1, "greater than or equal to 0"),
        ("top_p", 0, "greater than 0"),
        ("base_format", "chatml", "'plain' or 'chat_template'"),
        ("mode", "fast", "'incremental' or 'faithful'"),
    ],
)
def test_bad_values_name_the_field_and_the_bound(field, value, message):
    with pytest.raises(ValidationError) as error:
        WSDConfig(**{field: value})
    assert field in str(error.value) and message in str(error.value)


def test_unknown_field_is_refused():
    with pytest.raises(ValidationError, match="gama"):
        WSDConfig(gama=0.5)


def test_empty_stop_string_is_refused():
    with pytest.raises(ValidationError, match="non-empty"):
        WSDConfig(stop=["x", ""])


def test_single_stop_string_becomes_a_tuple():
    assert WSDConfig(stop="END").stop == ("END",)


def test_updated_validates_and_ignores_none():
    config = WSDConfig()
    assert config.updated(max_new_tokens=None) is config
    assert config.updated(max_new_tokens=7).max_new_tokens == 7
    with pytest.raises(ValueError, match="^max_new_tokens must be greater than 0, got 0$"):
        config.updated(max_new_tokens=0)
    with pytest.raises(TypeError, match="unknown generation option.*max_tokens"):
        config.updated(max_tokens=3)


def test_custom_policy_replaces_the_window_rule():
    class FirstToken:
        def first_switch(self, probs, start=0):
            return 0 if probs and start == 0 else None

    config = WSDConfig(switch_policy=FirstToken())
    assert config.policy.first_switch([0.1]) == 0


def test_object_without_first_switch_is_not_a_policy():
    with pytest.raises(ValidationError, match="first_switch"):
        WSDConfig(switch_policy=object())


def test_a_bad_per_call_option_is_one_line():
    with pytest.raises(ValueError) as error:
        WSDConfig().updated(gamma=2)
    assert str(error.value) == "gamma must be at most 1, got 2"
