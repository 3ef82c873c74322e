"""The langchain-tests integration suite on the real packaged pair (SmolLM2-135M + Gemma-3-270M).

`max_tokens` is kept small so the suite runs on a CPU. Tests that so small a pair cannot
pass are marked xfail, each with its reason (XFAILS); the suite skips by itself what its
capability properties rule out (images, audio, PDF, JSON mode, model override, VCR).
"""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_wsd import ChatWSD
from wsd_llm import WSDPipeline

pytestmark = pytest.mark.real

_JOKE = ("the Joke model needs both 'setup' and 'punchline': the pair writes the 'setup' string, the base "
         "takes over and repeats itself until the token budget ends, so 'punchline' never comes and "
         "pydantic validation fails (the TypedDict and JSON-schema variants pass: their check is loose)")
_AUTO_TOOLS = ("with tool_choice left to the model, the 135M draft answers 'What is the weather in San "
               "Francisco?' in text instead of calling get_weather; a forced first call (tool_choice='any', "
               "ToolFirstMiddleware) completes the loop, see test_chat_wsd_real.py")
XFAILS = {
    "test_structured_output[pydantic]": _JOKE,
    "test_structured_output_async[pydantic]": _JOKE,
    "test_structured_output_pydantic_2_v1": _JOKE,
    "test_agent_loop[model0]": _AUTO_TOOLS,
    "test_agent_loop[model1]": _AUTO_TOOLS,
}
_PIPE: dict[str, WSDPipeline] = {}


class TestChatWSDIntegration(ChatModelIntegrationTests):
    @pytest.fixture(autouse=True)
    def _real_pair_and_known_limits(self, request, real_pipe):
        _PIPE["pipe"] = real_pipe  # chat_model_params is a property: it cannot take fixtures
        if reason := XFAILS.get(request.node.name):
            request.applymarker(pytest.mark.xfail(reason=reason, strict=False))

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
