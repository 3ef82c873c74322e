"""WSDLLM on the real packaged pair inside LlamaIndex: a streaming RAG query engine, a chat engine,
and a ReAct agent with a tool. Replies are short (40 tokens): CPU generation is slow."""

from __future__ import annotations

import pytest
from llama_index.core import Document, VectorStoreIndex

pytestmark = pytest.mark.real

DOCUMENTS = [
    Document(text="Quillby is a small harbour town on the north coast. Its lantern festival is held every "
                  "year in March, when the fishing boats return.", metadata={"file_name": "quillby.txt"}),
    Document(text="Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar and oxygen.",
             metadata={"file_name": "plants.txt"}),
    Document(text="The Rust compiler's borrow checker makes sure references never outlive the data they "
                  "point to.", metadata={"file_name": "rust.txt"}),
]
QUESTION = "In which month is the lantern festival of Quillby held?"


@pytest.fixture(scope="module")
def index(embed_model) -> VectorStoreIndex:
    return VectorStoreIndex.from_documents(DOCUMENTS, embed_model=embed_model)


def last_chat_raw(recorder) -> dict:
    ends = [e for e in recorder.events if type(e).__name__ == "LLMChatEndEvent"]
    return ends[-1].response.raw


def test_streaming_query_engine_answers_from_the_retrieved_document(index, real_llm, recorder):
    engine = index.as_query_engine(llm=real_llm, streaming=True, similarity_top_k=1)
    response = engine.query(QUESTION)
    pieces = list(response.response_gen)
    answer = "".join(pieces)
    print(f"query engine answer: {answer!r}")
    assert response.source_nodes[0].node.metadata["file_name"] == "quillby.txt"
    assert len(pieces) > 1 and "March" in answer
    raw = last_chat_raw(recorder)  # the reply's WSD statistics reach LlamaIndex's instrumentation
    assert raw["text"] == answer
    assert raw["draft_model"] == "SmolLM2-135M-Instruct" and raw["base_model"] == "gemma-3-270m"


def test_condense_plus_context_chat_engine_streams_and_remembers(index, real_llm):
    engine = index.as_chat_engine(chat_mode="condense_plus_context", llm=real_llm, similarity_top_k=1)
    response = engine.stream_chat(QUESTION)
    answer = "".join(response.response_gen)
    print(f"chat engine answer: {answer!r}")
    assert answer.strip()
    assert response.source_nodes[0].node.metadata["file_name"] == "quillby.txt"
    response.write_response_to_history_thread.join(timeout=60)  # the engine saves the reply in a thread
    history = engine.chat_history
    assert [m.role.value for m in history] == ["user", "assistant"]
    assert history[-1].content == answer
