"""Draft and base models behind OpenAI-compatible servers (llama-cpp-python, vLLM).

Needs the ``remote`` extra (the official ``openai`` SDK): ``pip install 'wsd-llm[remote]'``.
"""

from wsd_llm.backends.remote.base import RemoteBase, RemoteSession
from wsd_llm.backends.remote.client import Endpoint, OpenAIClient
from wsd_llm.backends.remote.draft import RemoteDraft
from wsd_llm.backends.remote.errors import (
    RemoteCapabilityError,
    RemoteConnectionError,
    RemoteError,
    RemoteResponseError,
    RemoteStatusError,
)

__all__ = [
    "Endpoint",
    "OpenAIClient",
    "RemoteBase",
    "RemoteCapabilityError",
    "RemoteConnectionError",
    "RemoteDraft",
    "RemoteError",
    "RemoteResponseError",
    "RemoteSession",
    "RemoteStatusError",
]
