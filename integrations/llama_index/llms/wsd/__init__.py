"""LlamaIndex integration of wsd-llm: Weak-to-Strong Decoding as a LlamaIndex LLM.

``WSDLLM`` answers in query engines, chat engines, ReAct and function-calling agents; ``WordLlamaEmbedding``
gives offline embeddings for a RAG index.
"""

from llama_index.llms.wsd.base import WSDLLM
from llama_index.llms.wsd.embeddings import WordLlamaEmbedding

__all__ = ["WSDLLM", "WordLlamaEmbedding"]
