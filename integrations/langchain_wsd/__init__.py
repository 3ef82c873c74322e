"""LangChain integration of wsd-llm: ``ChatWSD``, a chat model running Weak-to-Strong Decoding."""

from langchain_wsd.chat_models import ChatWSD

__all__ = ["ChatWSD"]
