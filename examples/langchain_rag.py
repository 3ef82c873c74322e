"""Retrieval-augmented answers about this project, on the packaged WSD pair.

    pip install wordllama && python examples/langchain_rag.py "How do I run the tests?"

The README's sections are embedded offline with WordLlama (its weights ship in the wheel)
into LangChain's in-memory vector store; the two closest sections become the context.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import wordllama
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_wsd import ChatWSD

README = Path(__file__).resolve().parent.parent / "README.md"


class WordLlamaEmbeddings(Embeddings):
    """WordLlama's packaged static embeddings: fast, small, no download."""

    def __init__(self) -> None:
        self.model = wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.model.embed(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def readme_sections() -> list[Document]:
    parts = re.split(r"^## ", README.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]
    return [Document(page_content=part.strip(), metadata={"section": part.splitlines()[0]}) for part in parts]


def format_context(documents: list[Document]) -> str:
    return "\n\n".join(document.page_content[:1200] for document in documents)


def main(question: str) -> None:
    started = time.perf_counter()
    store = InMemoryVectorStore.from_documents(readme_sections(), WordLlamaEmbeddings())
    retriever = store.as_retriever(search_kwargs={"k": 2})
    print("retrieved:", [document.metadata["section"] for document in retriever.invoke(question)])
    prompt = ChatPromptTemplate.from_messages([
        ("system", "Answer the question using only this documentation:\n\n{context}"),
        ("human", "{question}"),
    ])
    chain = (
        {"context": retriever | format_context, "question": RunnablePassthrough()}
        | prompt
        | ChatWSD(max_tokens=60)
        | StrOutputParser()
    )
    for piece in chain.stream(question):
        print(piece, end="", flush=True)
    print(f"\n({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "How do I run the tests?")
