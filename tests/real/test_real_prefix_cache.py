"""Prefix reuse on the real packaged pair: a ChatWSD chat gives the same replies with and without it."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_wsd import ChatWSD

from wsd_llm import TransformersModel, WSDPipeline

QUESTIONS = ["Hi! I want to plan a weekend trip to Lyon.", "Should I take the train or fly?",
             "What should I pack for two days in October?"]


def chat_on(real_pipe: WSDPipeline, **load) -> ChatWSD:
    """ChatWSD on the packaged weights, wrapped anew (its own prefix cache, sized by ``load``)."""
    draft, base = (TransformersModel(m.model, m.tokenizer, name=m.name, **load)
                   for m in (real_pipe.draft, real_pipe.base))
    return ChatWSD(pipeline=WSDPipeline(draft, base, real_pipe.config), max_tokens=24)


def test_a_three_turn_chat_gives_the_same_replies_and_prefills_fewer_tokens(real_pipe):
    llms = {"reuse": chat_on(real_pipe), "off": chat_on(real_pipe, prefix_cache_bytes=0)}
    histories = {name: [SystemMessage("You are a friendly travel assistant. Answer briefly.")] for name in llms}
    for turn, question in enumerate(QUESTIONS):
        replies = {}
        for name, llm in llms.items():
            histories[name].append(HumanMessage(question))
            replies[name] = llm.invoke(histories[name])
            histories[name].append(AIMessage(replies[name].content))
        reuse, off = replies["reuse"], replies["off"]
        assert reuse.content == off.content and reuse.content.strip()
        meta, off_meta = reuse.response_metadata, off.response_metadata
        assert (meta["switched"], meta["switch_index"]) == (off_meta["switched"], off_meta["switch_index"])
        assert off_meta["base_tokens_cached"] == off_meta["draft_tokens_cached"] == 0
        # The same ids are asked for either way: what the cache held is read instead of forwarded.
        assert meta["base_tokens_forwarded"] + meta["base_tokens_cached"] == off_meta["base_tokens_forwarded"]
        assert meta["draft_tokens_forwarded"] + meta["draft_tokens_cached"] == off_meta["draft_tokens_forwarded"]
        if turn:  # the earlier turns come from the cache: only the new tail of the prompt is prefilled
            prompt = reuse.usage_metadata["input_tokens"]
            assert prompt - meta["base_tokens_cached"] < prompt // 2
            assert meta["draft_tokens_forwarded"] < off_meta["draft_tokens_forwarded"] // 2
