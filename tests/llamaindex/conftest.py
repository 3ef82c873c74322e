"""Fixtures of the LlamaIndex tests: WSDLLM on the tiny random pair and on the real packaged pair."""

from __future__ import annotations

import pytest
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.llms.wsd import WSDLLM, WordLlamaEmbedding

from wsd_llm import WSDConfig, WSDPipeline

# Random models give every token a probability near 1/vocab: at this gamma the base takes over
# early, so replies stream in many pieces from both models.
TINY_GAMMA = 0.0035


@pytest.fixture(scope="module")
def small_pipe(tiny_draft, tiny_base) -> WSDPipeline:
    config = WSDConfig(max_new_tokens=32, max_draft_tokens=32, gamma=TINY_GAMMA)
    return WSDPipeline(tiny_draft, tiny_base, config)


@pytest.fixture(scope="module")
def tiny_llm(small_pipe) -> WSDLLM:
    return WSDLLM(pipeline=small_pipe)


@pytest.fixture(scope="session")
def real_llm(real_pipe) -> WSDLLM:
    return WSDLLM(pipeline=real_pipe)


@pytest.fixture(scope="session")
def embed_model() -> WordLlamaEmbedding:
    return WordLlamaEmbedding()


class EventRecorder(BaseEventHandler):
    """A real instrumentation handler on the root dispatcher, keeping every event it sees."""

    events: list[BaseEvent] = []

    @classmethod
    def class_name(cls) -> str:
        return "EventRecorder"

    def handle(self, event: BaseEvent, **kwargs) -> None:
        self.events.append(event)

    def names(self) -> list[str]:
        return [type(event).__name__ for event in self.events]


@pytest.fixture
def recorder():
    dispatcher = get_dispatcher()
    handler = EventRecorder(events=[])
    dispatcher.add_event_handler(handler)
    yield handler
    dispatcher.event_handlers.remove(handler)
