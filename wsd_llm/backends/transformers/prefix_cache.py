"""KV of recent token sequences, kept per model so a later call prefills only what is new.

Agent and chat loops resend the same system turn, tool descriptions and history on every call.
A session that ends offers its ids and KV cache to its model's :class:`PrefixCache`; a new session
starts from a private copy of the entry that shares the longest prefix with its ids, cropped to
that prefix. Only the KV of full-attention ``DynamicLayer`` caches is kept: the sessions hold every
position of every layer (sliding-window layers too, masked by the model), so a prefix of a cache is
exactly the cache of that prefix.

transformers 5.24 has no such store for ``DynamicCache`` sessions: the paged cache of its continuous
batching (``generate_batch``, ``allow_block_sharing``) shares prefix blocks only between requests of
one batching manager, turns sharing off for models with sliding-window layers (Gemma-3), and runs its
own generation loop, which cannot score a draft or roll back a cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from wsd_llm.text import common_prefix_length

DEFAULT_PREFIX_CACHE_BYTES = 256 * 2**20


@dataclass(frozen=True)
class _Entry:
    ids: tuple[int, ...]
    layers: tuple[tuple[torch.Tensor, torch.Tensor] | None, ...]  # (keys, values) per layer; None: unwritten
    nbytes: int


class PrefixCache:
    """A thread-safe LRU of ``(token ids, KV cache)`` pairs, bounded by the bytes of their tensors.

    Stored tensors are never written to: an entry is a copy made when it is offered, and a lookup
    returns a new copy, so sessions on other threads never share a tensor.

    Args:
        max_bytes: most bytes of key and value tensors kept (``sum(t.nbytes)``); 0 keeps nothing.

    Raises:
        ValueError: ``max_bytes`` is not a whole number >= 0.
    """

    def __init__(self, max_bytes: int = DEFAULT_PREFIX_CACHE_BYTES) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"prefix_cache_bytes must be a whole number of bytes >= 0 (0 turns prefix reuse "
                             f"off), got {max_bytes!r}")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[int, ...], _Entry] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(entries={len(self)}, nbytes={self.nbytes}, max_bytes={self.max_bytes})"

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes of the key and value tensors held now."""
        with self._lock:
            return sum(entry.nbytes for entry in self._entries.values())

    def lookup(self, ids: Sequence[int], limit: int) -> tuple[list[int], DynamicCache] | None:
        """The KV of the longest stored prefix of ``ids``, at most ``limit`` tokens long.

        Args:
            ids: the token ids a session is about to hold.
            limit: most tokens to take (a caller that needs logits leaves at least one to forward).

        Returns:
            ``(prefix ids, a new DynamicCache holding them)``, the cache private to the caller; None
            when no entry shares a token with ``ids``.
        """
        with self._lock:
            best, length = None, 0
            for entry in self._entries.values():
                shared = min(common_prefix_length(entry.ids, ids), limit)
                if shared > length:
                    best, length = entry, shared
            if best is None:
                return None
            self._entries.move_to_end(best.ids)
        # Stored tensors are never modified, so they are safe to read outside the lock; ``update``
        # concatenates onto an empty tensor, so the new cache owns new tensors.
        with torch.inference_mode():
            cache = DynamicCache(ddp_cache_data=[_first(kv, length) for kv in best.layers])
        return list(best.ids[:length]), cache

    def offer(self, ids: Sequence[int], cache: DynamicCache) -> None:
        """Keep a copy of ``cache``, which holds the KV of ``ids``, evicting the least recently used
        entries past ``max_bytes``. An entry that is a prefix of ``ids`` is replaced by it; ``ids``
        that are a prefix of an entry only refresh that entry.

        Caches this store cannot crop exactly (sliding-window or other layer kinds) and caches
        larger than ``max_bytes`` are not kept.
        """
        key = tuple(ids)
        if not key or not _holds(cache, len(key)):
            return
        with self._lock:
            for stored in self._entries:
                if stored[: len(key)] == key:
                    self._entries.move_to_end(stored)
                    return
        with torch.inference_mode():
            layers = tuple(None if not layer.is_initialized else (layer.keys.clone(), layer.values.clone())
                           for layer in cache.layers)
        entry = _Entry(key, layers, sum(t.nbytes for kv in layers if kv is not None for t in kv))
        if entry.nbytes > self.max_bytes:
            return
        with self._lock:
            for stored in [stored for stored in self._entries if key[: len(stored)] == stored]:
                del self._entries[stored]
            self._entries[key] = entry
            total = sum(stored.nbytes for stored in self._entries.values())
            while total > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                total -= evicted.nbytes

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()


def _first(kv: tuple[torch.Tensor, torch.Tensor] | None, length: int) -> tuple[torch.Tensor | None, ...]:
    """A layer's keys and values at its first ``length`` positions (views); Nones for an unwritten layer."""
    return (None, None) if kv is None else (kv[0][..., :length, :], kv[1][..., :length, :])


def _holds(cache: DynamicCache, length: int) -> bool:
    """Whether every layer keeps every one of ``length`` positions (plain ``DynamicLayer``s, written
    up to the same length), so any prefix can be cut out of it."""
    return bool(cache.layers) and all(
        type(layer) is DynamicLayer and (not layer.is_initialized or layer.keys.shape[-2] == length)
        for layer in cache.layers) and cache.get_seq_length() == length
