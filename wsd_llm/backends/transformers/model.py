"""Local models through transformers: CPU or GPU, hub id, directory or GGUF file."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DynamicCache,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from wsd_llm.backends.tokenizer import TokenizerMixin
from wsd_llm.backends.transformers.conversion import converted_dir
from wsd_llm.backends.transformers.prefix_cache import DEFAULT_PREFIX_CACHE_BYTES, PrefixCache
from wsd_llm.backends.transformers.sampler import Sampler
from wsd_llm.errors import OptionError
from wsd_llm.hub import check_source
from wsd_llm.results import FinishReason
from wsd_llm.sampling import Sampling
from wsd_llm.text import common_prefix_length, trim_incomplete_char

if TYPE_CHECKING:
    from wsd_llm.backends.protocols import DraftModel
    from wsd_llm.config import WSDConfig
    from wsd_llm.constraints import Constraint
    from wsd_llm.messages import Message
    from wsd_llm.results import WSDResult


def token_probs(logits: torch.Tensor, targets: Sequence[int]) -> list[float]:
    """Softmax probability of each target under its row of logits.

    Args:
        logits: ``(rows, vocab)`` scores, any float dtype (computed in float32).
        targets: ``rows`` token ids, one per row.

    Returns:
        ``rows`` probabilities in [0, 1].
    """
    logits = logits.float()
    index = torch.tensor(targets, device=logits.device).unsqueeze(-1)
    log_probs = logits.gather(-1, index).squeeze(-1) - logits.logsumexp(-1)
    return log_probs.exp().tolist()


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers' progress bars off for the block, as they were afterwards."""
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


class TransformersSession:
    """One request's KV cache on a local model, kept in step with the ids it has seen.

    Every call says which ids the cache should hold; the longest cached prefix they share is
    kept, the rest cropped, and only the new tail is forwarded. The first call starts from the
    model's prefix cache (``TransformersModel.prefix_cache``) when it holds a prefix of the ids;
    :meth:`close` offers the session's KV to it for later calls.

    Attributes:
        forwarded_tokens: tokens run through the model.
        cached_tokens: tokens read from the prefix cache instead (OpenAI's ``cached_tokens``).
    """

    def __init__(self, lm: TransformersModel) -> None:
        self.lm = lm
        self.cache = DynamicCache()
        self.ids: list[int] = []
        self.forwarded_tokens = 0
        self.cached_tokens = 0
        self.finish_reason: FinishReason | None = None
        self._started = False

    def _advance(self, ids: Sequence[int], reuse: int, rows: int) -> torch.Tensor:
        """Make the cache hold ``ids`` (reusing at most ``reuse`` cached ids); logits of the last ``rows``."""
        if not self._started:
            self._started = True
            hit = self.lm.prefix_cache.lookup(ids, reuse) if self.lm.prefix_cache is not None else None
            if hit is not None:
                self.ids, self.cache = hit
                self.cached_tokens = len(self.ids)
        keep = min(common_prefix_length(self.ids, ids), reuse)
        if keep < len(self.ids):
            self.cache.crop(keep - len(self.ids))
            del self.ids[keep:]
        new = list(ids[keep:])
        logits = self.lm.forward(new, self.cache, rows)
        self.ids.extend(new)
        self.forwarded_tokens += len(new)
        return logits

    def _scoring_logits(self, ids: Sequence[int], start: int) -> torch.Tensor | None:
        """Logits predicting ``ids[start:]`` (``(len(ids) - start, vocab)``); None when there are none."""
        if start < 1:
            raise ValueError("the first scored token needs at least one token before it")
        count = len(ids) - start
        if count <= 0:
            return None
        # Token j is scored by the logits at j - 1, so the last id never needs a forward pass.
        return self._advance(ids[:-1], reuse=start - 1, rows=count)

    def score(self, ids: Sequence[int], start: int) -> list[float]:
        logits = self._scoring_logits(ids, start)
        return [] if logits is None else token_probs(logits, ids[start:])

    def logprobs(self, ids: Sequence[int], start: int, top: int) -> list[tuple[float, list[tuple[str, float]]]]:
        logits = self._scoring_logits(ids, start)
        if logits is None:
            return []
        log_probs = logits.float().log_softmax(-1)
        chosen = log_probs.gather(-1, torch.tensor(ids[start:], device=log_probs.device).unsqueeze(-1))
        values, indices = log_probs.topk(top, dim=-1)
        alternatives = [[(self.lm.decode([token]), value) for token, value in zip(row_ids, row_values)]
                        for row_ids, row_values in zip(indices.tolist(), values.tolist())]
        return list(zip(chosen.squeeze(-1).tolist(), alternatives))

    def generate(self, ids: Sequence[int], sampling: Sampling) -> Iterator[int]:
        """Yield up to ``sampling.max_tokens`` tokens after ``ids``; each is forwarded only when the
        next is wanted, so closing the iterator early wastes no forward pass."""
        sampler = Sampler(sampling, ids, device=self.lm.device, tokenizer=self.lm.tokenizer)
        stop_ids = self.lm.single_token_ids(sampling.stop_tokens)
        if not sampling.ignore_eos:
            stop_ids |= self.lm.eos_token_ids
        self.finish_reason = "length"
        ids = list(ids)
        logits = self._advance(ids, reuse=len(ids) - 1, rows=1)[-1]
        for count in range(sampling.max_tokens):
            token = sampler(logits, ids)
            if token in stop_ids:
                self.finish_reason = "stop"
                return
            yield token
            ids.append(token)
            if count + 1 == sampling.max_tokens or len(ids) >= self.lm.context_window:
                return
            logits = self._advance(ids, reuse=len(ids) - 1, rows=1)[-1]

    def close(self) -> None:
        """End the session: its ids and KV go to the model's prefix cache (a copy), for later calls."""
        if self.lm.prefix_cache is not None and self.ids:
            self.lm.prefix_cache.offer(self.ids, self.cache)
        self.ids, self.cache = [], DynamicCache()


class DraftStream(Iterator[str]):
    """The draft's reply as ``TransformersModel.stream_draft`` writes it: the whole text so far after
    each token. ``forwarded_tokens`` and ``cached_tokens`` count what its session ran and reused.
    Closing it (or running it to the end) stops the model and closes the session."""

    def __init__(self, lm: TransformersModel, prompt: str, sampling: Sampling) -> None:
        self.session = lm.open_session()
        self._texts = self._write(lm, prompt, sampling)

    def _write(self, lm: TransformersModel, prompt: str, sampling: Sampling) -> Iterator[str]:
        written: list[int] = []
        try:
            for token in self.session.generate(lm.encode(prompt), sampling):
                written.append(token)
                yield trim_incomplete_char(lm.decode(written))
        finally:
            self.session.close()

    def __next__(self) -> str:
        return next(self._texts)

    def close(self) -> None:
        """Stop the draft; its session's KV goes to the prefix cache."""
        self._texts.close()

    @property
    def forwarded_tokens(self) -> int:
        return self.session.forwarded_tokens

    @property
    def cached_tokens(self) -> int:
        return self.session.cached_tokens


class TransformersModel(TokenizerMixin):
    """A local causal LM, usable as the draft or as the base of a WSD pipeline.

    Several threads may share one instance: each request gets its own KV cache, and forward
    passes and tokenizer calls are serialised by a lock.

    Args:
        model: a causal LM, put in eval mode.
        tokenizer: its tokenizer.
        name: the name reported in results; by default the model's ``name_or_path``.
        prefix_cache_bytes: most bytes of KV kept for recent calls (:class:`PrefixCache`, 256 MiB by
            default), so a call that resends a conversation prefills only its new tail; 0 turns
            prefix reuse off.

    Raises:
        TypeError: ``tokenizer`` is not a transformers tokenizer.
        ValueError: ``prefix_cache_bytes`` is negative or not a whole number.
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *,
                 name: str | None = None, prefix_cache_bytes: int = DEFAULT_PREFIX_CACHE_BYTES) -> None:
        if not isinstance(tokenizer, PreTrainedTokenizerBase):
            raise TypeError(
                f"expected a transformers tokenizer, got {type(tokenizer).__name__}; "
                "pass (model, AutoTokenizer.from_pretrained(...))"
            )
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name or str(getattr(model.config, "name_or_path", "") or type(model).__name__)
        self.lock = threading.RLock()
        store = PrefixCache(prefix_cache_bytes)
        self.prefix_cache: PrefixCache | None = store if store.max_bytes else None

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str],
        *,
        gguf_file: str | None = None,
        device_map: str | dict[str, Any] | None = None,
        dtype: str | torch.dtype | None = None,
        trust_remote_code: bool = False,
        name: str | None = None,
        prefix_cache_bytes: int = DEFAULT_PREFIX_CACHE_BYTES,
        **model_kwargs: Any,
    ) -> TransformersModel:
        """Load a hub id, a local directory, or a GGUF file (``path/x.gguf`` or ``gguf_file=``).

        Args:
            name_or_path: hub id, directory, or ``.gguf`` file (then ``gguf_file`` is its name).
            gguf_file: a GGUF file inside ``name_or_path`` (a directory or a hub repository).
                A GGUF is converted to safetensors once and cached (see ``wsd_llm.cache_home()``).
            device_map: as transformers takes it (``"auto"`` needs accelerate).
            dtype: as transformers takes it (``"auto"``, ``torch.bfloat16``...); float32 by default.
            trust_remote_code: run model code shipped with the checkpoint.
            name: the name reported in results; by default the id, path or GGUF file name.
            prefix_cache_bytes: most bytes of KV kept for recent calls (see the class); 0 turns
                prefix reuse off.
            model_kwargs: passed to ``AutoModelForCausalLM.from_pretrained``.

        Returns:
            The model, on ``device_map``'s devices (the CPU by default), in eval mode.

        Raises:
            FileNotFoundError: no such directory or file, and not a hub id either.
            wsd_llm.hub.HubUnreachableError: a hub id that is not cached while the hub cannot be reached.
            OSError: transformers' own loading errors (a hub id that does not exist...).
            ValueError: ``prefix_cache_bytes`` is negative or not a whole number.
        """
        PrefixCache(prefix_cache_bytes)  # a bad size fails before a model loads
        check_source(name_or_path)  # a missing path or an unreachable hub fails now, in one line
        source = Path(name_or_path)
        if gguf_file is None and source.suffix == ".gguf":
            source, gguf_file = source.parent, source.name
        if gguf_file is not None:
            local = source / gguf_file
            if not local.is_file():
                from huggingface_hub import hf_hub_download

                local = Path(hf_hub_download(str(name_or_path), gguf_file))
            display = name or local.name
            source = converted_dir(local)
        else:
            display = name or str(name_or_path)
            source = name_or_path  # type: ignore[assignment]
        kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, **model_kwargs}
        if device_map is not None:
            kwargs["device_map"] = device_map
        if dtype is not None:
            kwargs["dtype"] = dtype
        with _no_progress_bars():  # a converted copy loads in seconds: a bar per model is noise
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        return cls(model, tokenizer, name=display, prefix_cache_bytes=prefix_cache_bytes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, device={self.device})"

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def context_window(self) -> int:
        """Most tokens the model attends to; tokenizers without a limit report a huge sentinel."""
        limits = [getattr(self.model.config, "max_position_embeddings", None),
                  self.tokenizer.model_max_length]
        known = [n for n in limits if isinstance(n, int) and 0 < n < 10**9]
        if not known:
            raise ValueError(f"{self.name} states no context window (max_position_embeddings)")
        return min(known)

    @property
    def eos_token_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update(configured if isinstance(configured, list) else [configured])
        return {i for i in ids if i is not None}

    def forward(self, ids: Sequence[int], cache: DynamicCache, rows: int) -> torch.Tensor:
        """Run ``ids`` (``len(ids)`` new tokens) through the model after what ``cache`` holds.

        Returns:
            The logits of the last ``rows`` positions, shape ``(rows, vocab)``.
        """
        input_ids = torch.tensor([list(ids)], device=self.device)
        with self.lock, torch.inference_mode():
            out = self.model(input_ids=input_ids, cache=cache, use_cache=True, logits_to_keep=rows)
        return out.logits[0, -rows:]

    @property
    def constrainable(self) -> bool:
        """Whether this model can write under a constraint: llguidance is installed and reads its tokenizer."""
        from wsd_llm.backends.transformers.grammar import reads_tokenizer

        return reads_tokenizer(self.tokenizer)

    def check_constraint(self, constraint: Constraint) -> None:
        """Compile ``constraint`` for this model's tokenizer (llguidance), so a bad one fails before any
        model runs.

        Raises:
            wsd_llm.errors.OptionError: the constraint does not compile (naming llguidance's error).
            ImportError: llguidance is not installed (the ``constraints`` extra).
        """
        from wsd_llm.backends.transformers.grammar import GrammarMask

        try:
            GrammarMask(self.tokenizer, constraint)
        except ValueError as error:
            raise OptionError(str(error), option="constraint") from None

    def open_session(self) -> TransformersSession:
        return TransformersSession(self)

    def stream_draft(self, prompt: str, sampling: Sampling) -> DraftStream:
        """The draft's reply to ``prompt``, the whole text so far after each token (see ``DraftModel``)."""
        return DraftStream(self, prompt, sampling)

    def generate_batch(self, draft: DraftModel, conversations: Sequence[Sequence[Message]],
                       config: WSDConfig) -> list[WSDResult]:
        """Run ``conversations`` as left-padded batches in the reference's one-shot order (see
        ``wsd_llm.backends.transformers.one_shot``); ``draft`` must be a ``TransformersModel`` too.

        Raises:
            TypeError: ``draft`` is another kind of backend.
        """
        from wsd_llm.backends.transformers.one_shot import generate_one_shot

        if not isinstance(draft, TransformersModel):
            raise TypeError(f"batches of more than one conversation need a local TransformersModel draft, "
                            f"got {type(draft).__name__}; use batch_size=1")
        return generate_one_shot(draft, self, conversations, config)
