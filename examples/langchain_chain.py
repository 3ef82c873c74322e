"""An LCEL chain on the packaged WSD pair: streamed, awaited and batched.

    python examples/langchain_chain.py

Streamed pieces are tagged with the model that wrote them (draft or base).
"""

from __future__ import annotations

import asyncio
import time

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_wsd import ChatWSD

prompt = ChatPromptTemplate.from_messages(
    [("system", "You are a helpful assistant. Answer in two sentences."), ("human", "{question}")]
)
llm = ChatWSD(max_tokens=48, wsd_options={"gamma": 0.5})


def main() -> None:
    started = time.perf_counter()
    print("stream, each piece tagged with its writer:")
    for chunk in (prompt | llm).stream({"question": "Give me three tips for learning Python."}):
        for source in chunk.response_metadata.get("wsd_sources", []):
            print(f"[{source}] {chunk.text!r}")
        if chunk.usage_metadata:
            print("usage:", chunk.usage_metadata, "switched:", chunk.response_metadata["switched"])

    chain = prompt | llm | StrOutputParser()
    print("\nainvoke:", asyncio.run(chain.ainvoke({"question": "Why is the sky blue?"})))
    for answer in chain.batch([{"question": "Name a fruit."}, {"question": "Name a planet."}]):
        print("batch:", answer)
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
