"""WSDLLM on the real packaged pair inside LlamaIndex: a streaming RAG query engine, a chat engine,
a ReAct agent and function-calling agents with a tool. Replies are short (40 tokens): CPU generation
is slow."""

from __future__ import annotations

import logging
import random

import llama_index.core
import pytest
from llama_index.core import Document, VectorStoreIndex, get_response_synthesizer
from llama_index.core.agent.react import ReActChatFormatter
from llama_index.core.agent.workflow import (
    AgentInput,
    AgentOutput,
    AgentStream,
    AgentWorkflow,
    FunctionAgent,
    ReActAgent,
    ToolCallResult,
)
from llama_index.core.base.llms.types import ToolCallBlock
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.prompts import PromptTemplate
from llama_index.core.schema import NodeWithScore, TextNode
from llama_index.core.tools import FunctionTool
from llama_index.llms.wsd import WSDLLM
from people import PEOPLE, Person

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


def test_with_no_models_given_it_loads_the_packaged_pair(real_pipe):
    llm = WSDLLM(max_new_tokens=24)
    metadata = llm.metadata
    assert metadata.model_name == real_pipe.model_name
    assert metadata.num_output == 24 and metadata.is_chat_model


def numeric_csv(rows: int, seed: int) -> list[str]:
    """Rows of six 5-digit numbers: 1.9 SmolLM2/Gemma tokens per tiktoken token."""
    rng = random.Random(seed)
    return [",".join(str(rng.randint(10_000, 99_999)) for _ in range(6)) for _ in range(rows)]


def test_compact_synthesis_packs_numeric_text_that_fits_both_models(real_pipe, recorder, caplog, monkeypatch):
    """LlamaIndex packs retrieved text by its own tokenizer (tiktoken) against
    metadata.context_window; numbers cost the two models twice as many tokens. Each packed
    prompt must still fit, so that every retrieved row reaches the model and nothing raises
    (LlamaIndex's refine step would log the error and answer from the remaining chunks)."""
    monkeypatch.setattr(llama_index.core, "global_tokenizer", None)  # the default: tiktoken
    for model in (real_pipe.draft, real_pipe.base):  # a 4096-token window keeps each call quick on a CPU
        monkeypatch.setattr(model.tokenizer, "model_max_length", 4096)
    rows = numeric_csv(140, seed=7)  # 2.4k tiktoken tokens, 4.5k model tokens
    nodes = [NodeWithScore(node=TextNode(text="\n".join(rows[i : i + 20])), score=1.0) for i in range(0, 140, 20)]
    llm = WSDLLM(pipeline=real_pipe, max_new_tokens=8, max_draft_tokens=8)
    synthesizer = get_response_synthesizer(llm=llm, response_mode="compact")
    with caplog.at_level(logging.WARNING):
        response = synthesizer.synthesize("Which row has the largest first number?", nodes)
    prompts = ["\n".join(m.content for m in e.messages) for e in recorder.events
               if type(e).__name__ == "LLMChatStartEvent"]
    print(f"{len(prompts)} calls, answer {response.response!r}")
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(prompts) > 1  # the rows needed more than one window
    assert [row for row in rows if not any(row in prompt for prompt in prompts)] == []


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
    history = engine.chat_history
    assert [m.role.value for m in history] == ["user", "assistant"]
    assert history[-1].content == answer


REACT_HEADER = """You answer questions by calling tools. Tools:
{tool_desc}

Reply with exactly three lines, like this example:
Thought: I need to multiply 2 by 3.
Action: multiply
Action Input: {{"a": 2, "b": 3}}
"""


def multiply(a: int, b: int) -> int:
    """Multiply two integers and return the product."""
    return a * b


async def test_react_agent_calls_the_tool_and_answers(real_pipe):
    """The 135M draft ignores LlamaIndex's long default ReAct prompt (it answers in prose), so the
    agent gets a short header with an example, and the question asks for the three lines. The draft
    then begins "Thought: I need to multiply", the base finishes the action, and the stop string
    ends the reply before the model writes an observation of its own."""
    llm = WSDLLM(pipeline=real_pipe, stop=["\nObservation:"])
    agent = ReActAgent(tools=[FunctionTool.from_defaults(multiply)], llm=llm, streaming=False,
                       formatter=ReActChatFormatter.from_defaults(system_header=REACT_HEADER))
    handler = agent.run("Multiply 12 by 3. Answer with the three lines Thought, Action and Action Input.",
                        max_iterations=3)
    events = [event async for event in handler.stream_events()]
    response = await handler
    outputs = [e for e in events if isinstance(e, AgentOutput)]
    for output in outputs:
        print(f"agent step: {output.response.content!r} (finish: {output.raw['finish_reason']})")
    print(f"agent response: {response.response.content!r}")

    calls = [e for e in events if isinstance(e, ToolCallResult)]
    assert calls, "the agent never called the tool"
    assert (calls[0].tool_name, calls[0].tool_kwargs, calls[0].tool_output.raw_output) == (
        "multiply", {"a": 12, "b": 3}, 36)
    # The first reply ended at the stop string: the core cut it there, not at the length limit.
    assert outputs[0].raw["finish_reason"] == "stop" and "Observation" not in outputs[0].response.content
    assert "36" in response.response.content


async def run_agent(agent, question: str, **options) -> tuple[list, str]:
    handler = agent.run(question, max_iterations=4, **options)
    events = [event async for event in handler.stream_events()]
    response = await handler
    for event in events:
        if isinstance(event, AgentOutput):
            print(f"agent step: {event.response.content!r} {event.tool_calls} ({event.raw['finish_reason']})")
    print(f"agent response: {str(response)!r}")
    return events, str(response)


def tool_runs(events) -> list[tuple]:
    return [(e.tool_name, e.tool_kwargs, e.tool_output.raw_output) for e in events if isinstance(e, ToolCallResult)]


async def test_function_agent_calls_the_tool_then_answers_from_its_result(real_pipe):
    """A FunctionAgent's loop: the reply calls the tool (a ToolCallBlock), the agent runs it and sends
    the result back as a tool message, the next reply answers in text. The 135M draft seldom calls a
    tool on its own, so tool_first requires the call until the tool has answered."""
    llm = WSDLLM(pipeline=real_pipe, tool_first=True)
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(multiply)], llm=llm, streaming=False)
    events, answer = await run_agent(agent, "What is 12 times 3?")
    outputs = [e for e in events if isinstance(e, AgentOutput)]
    assert tool_runs(events) == [("multiply", {"a": 12, "b": 3}, 36)]
    assert outputs[0].response.content == "" and outputs[0].raw["finish_reason"] == "tool_calls"
    assert outputs[-1].raw["finish_reason"] == "stop"
    assert not any(isinstance(block, ToolCallBlock) for block in outputs[-1].response.blocks)
    assert "36" in answer


async def test_streaming_function_agent_with_its_own_initial_tool_choice(real_pipe):
    """FunctionAgent's own initial_tool_choice forces the first call (no tool_first); the streamed
    call reaches AgentStream events as it is written."""
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(multiply)], llm=WSDLLM(pipeline=real_pipe),
                          streaming=True, initial_tool_choice="multiply")
    events, answer = await run_agent(agent, "What is 12 times 3?")
    streamed = [e.tool_calls[0] for e in events if isinstance(e, AgentStream) and e.tool_calls]
    assert len(streamed) > 1 and {call.tool_name for call in streamed} == {"multiply"}
    assert streamed[-1].tool_kwargs == {"a": 12, "b": 3}
    assert tool_runs(events) == [("multiply", {"a": 12, "b": 3}, 36)]
    assert "36" in answer


async def test_agent_workflow_keeps_the_tool_loop_in_memory_across_questions(real_pipe):
    """Two questions with one memory: the second conversation holds the first's call and tool result,
    and tool_first asks for a new call for the new question. (The memory is passed to each run: the
    workflow's Context does not keep a ChatMemoryBuffer between runs, whatever the LLM.)"""
    llm = WSDLLM(pipeline=real_pipe, tool_first=True)
    agent = FunctionAgent(name="calculator", description="Multiplies numbers.", streaming=False,
                          tools=[FunctionTool.from_defaults(multiply)], llm=llm)
    workflow = AgentWorkflow(agents=[agent], root_agent="calculator")
    memory = ChatMemoryBuffer.from_defaults(llm=llm)
    first, first_answer = await run_agent(workflow, "What is 12 times 3?", memory=memory)
    second, second_answer = await run_agent(workflow, "And what is 7 times 6?", memory=memory)
    assert tool_runs(first) == [("multiply", {"a": 12, "b": 3}, 36)] and "36" in first_answer
    assert tool_runs(second) == [("multiply", {"a": 7, "b": 6}, 42)] and "42" in second_answer
    seen = next(e for e in second if isinstance(e, AgentInput)).input  # what the second question's LLM call read
    assert any(isinstance(block, ToolCallBlock) and block.tool_name == "multiply" for m in seen for block in m.blocks)
    assert any(m.role == "tool" and m.content == "36" for m in seen)


def test_structured_predict_returns_a_valid_object_for_every_prompt(real_pipe):
    llm = WSDLLM(pipeline=real_pipe, max_new_tokens=48)
    prompt = PromptTemplate("Who is mentioned here, and how old are they? {text}")
    found = []
    for text, name, age in PEOPLE:
        person = llm.structured_predict(Person, prompt, text=text)
        assert isinstance(person, Person)
        found.append((person.name, person.age) == (name, age))
    assert sum(found) >= 4  # the format is guaranteed, the facts are the 135M drafter's reading
    structured = llm.as_structured_llm(Person).complete(PEOPLE[0][0])
    assert isinstance(structured.raw, Person)
