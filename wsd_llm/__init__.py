"""wsd-llm: Weak-to-Strong Decoding for the LLM frameworks you already use."""

from wsd_llm.backends.conversion import cache_home
from wsd_llm.backends.protocols import BaseLM, BaseSession, DraftLM
from wsd_llm.backends.transformers import TransformersModel
from wsd_llm.config import WSDConfig
from wsd_llm.messages import Message, normalize_messages
from wsd_llm.pipeline import WSDPipeline
from wsd_llm.policies import GeometricMeanWindow, SwitchPolicy
from wsd_llm.results import StreamEvent, Timings, WSDResult

__all__ = [
    "BaseLM",
    "BaseSession",
    "DraftLM",
    "GeometricMeanWindow",
    "Message",
    "StreamEvent",
    "SwitchPolicy",
    "Timings",
    "TransformersModel",
    "WSDConfig",
    "WSDPipeline",
    "WSDResult",
    "cache_home",
    "normalize_messages",
]
