"""The langchain-tests integration suite on the real packaged pair (SmolLM2-135M + Gemma-3-270M).

Tests that so small a pair cannot pass are marked xfail with the reason; `max_tokens` is kept
small so the suite runs on a CPU.
"""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_wsd import ChatWSD

pytestmark = pytest.mark.real

_PIPE: dict = {}


class TestChatWSDIntegration(ChatModelIntegrationTests):
    @pytest.fixture(autouse=True)
    def _shared_pipeline(self, real_wsd_pipe):
        _PIPE["pipe"] = real_wsd_pipe

    @property
    def chat_model_class(self) -> type[ChatWSD]:
        return ChatWSD

    @property
    def chat_model_params(self) -> dict:
        return {"pipeline": _PIPE["pipe"], "max_tokens": 16}

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return False  # structured output goes through the tool protocol only
