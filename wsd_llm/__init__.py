"""wsd-llm: Weak-to-Strong Decoding for the LLM frameworks you already use.

Names are imported on first use (PEP 562, as transformers' ``_LazyModule`` does), so importing
the package, ``wsd_llm.config`` or the CLI's ``--help`` does not load torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wsd_llm._lazy import lazy_getattr

if TYPE_CHECKING:
    from wsd_llm.backends.protocols import DraftModel, TargetModel, TargetSession
    from wsd_llm.backends.transformers.conversion import cache_home
    from wsd_llm.backends.transformers.model import TransformersModel
    from wsd_llm.config import WSDConfig
    from wsd_llm.constraints import Constraint
    from wsd_llm.messages import Message, normalize_messages
    from wsd_llm.pipeline import WSDPipeline, WSDRequest
    from wsd_llm.policies import GeometricMeanWindow, SwitchPolicy
    from wsd_llm.results import StreamEvent, Timings, TokenLogprob, ToolCall, ToolCallDelta, WSDResult
    from wsd_llm.sampling import Sampling
    from wsd_llm.tools import ToolChoice

_EXPORTS = {
    "Constraint": "wsd_llm.constraints",
    "DraftModel": "wsd_llm.backends.protocols",
    "TargetModel": "wsd_llm.backends.protocols",
    "TargetSession": "wsd_llm.backends.protocols",
    "GeometricMeanWindow": "wsd_llm.policies",
    "Message": "wsd_llm.messages",
    "Sampling": "wsd_llm.sampling",
    "StreamEvent": "wsd_llm.results",
    "SwitchPolicy": "wsd_llm.policies",
    "Timings": "wsd_llm.results",
    "TokenLogprob": "wsd_llm.results",
    "ToolCall": "wsd_llm.results",
    "ToolCallDelta": "wsd_llm.results",
    "ToolChoice": "wsd_llm.tools",
    "TransformersModel": "wsd_llm.backends.transformers.model",
    "WSDConfig": "wsd_llm.config",
    "WSDPipeline": "wsd_llm.pipeline",
    "WSDRequest": "wsd_llm.pipeline",
    "WSDResult": "wsd_llm.results",
    "cache_home": "wsd_llm.backends.transformers.conversion",
    "normalize_messages": "wsd_llm.messages",
}
__all__ = [
    "Constraint",
    "DraftModel",
    "GeometricMeanWindow",
    "Message",
    "Sampling",
    "StreamEvent",
    "SwitchPolicy",
    "TargetModel",
    "TargetSession",
    "Timings",
    "TokenLogprob",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "TransformersModel",
    "WSDConfig",
    "WSDPipeline",
    "WSDRequest",
    "WSDResult",
    "cache_home",
    "normalize_messages",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
