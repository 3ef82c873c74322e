import pytest
from pydantic import ValidationError

from wsd_llm.config import WSDConfig
from wsd_llm.errors import one_line


@pytest.mark.parametrize(("settings", "line"), [
    ({"gamma": 2}, "gamma must be at most 1, got 2"),
    ({"gamma": 0.0}, "gamma must be greater than 0, got 0"),
    ({"window": 0, "temperature": -0.5}, "window must be at least 1, got 0; temperature must be at least 0, got -0.5"),
    ({"mode": "fast"}, "mode must be 'incremental' or 'faithful', got 'fast'"),
    ({"seed": 1.5}, "seed must be a whole number, got 1.5"),
    ({"stop": [""]}, "stop strings must be non-empty; remove the empty string from `stop`"),
    ({"stop": ["ok", 3]}, "stop[1] must be text, got 3"),
    ({"gama": 0.5}, "gama is not a known setting"),
])
def test_a_validation_error_is_one_line_naming_setting_rule_and_value(settings, line):
    with pytest.raises(ValidationError) as caught:
        WSDConfig(**settings)
    assert one_line(caught.value) == line
