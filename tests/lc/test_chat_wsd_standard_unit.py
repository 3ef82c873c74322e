"""The langchain-tests unit suite: construction, tool binding, structured output, ls params.

The model is built on the tiny random pair (see tests/tiny_models.py); nothing loads until use.
"""

from __future__ import annotations

from functools import cache

from langchain_tests.unit_tests import ChatModelUnitTests
from tiny_models import tiny_base_tokenizer, tiny_draft_tokenizer, tiny_gemma3, tiny_llama

from langchain_wsd import ChatWSD
from wsd_llm import WSDPipeline


@cache
def tiny_pipeline() -> WSDPipeline:
    return WSDPipeline(tiny_llama(tiny_draft_tokenizer()), tiny_gemma3(tiny_base_tokenizer()))


class TestChatWSDUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatWSD]:
        return ChatWSD

    @property
    def chat_model_params(self) -> dict:
        return {"pipeline": tiny_pipeline()}

    @property
    def has_tool_choice(self) -> bool:
        return True
