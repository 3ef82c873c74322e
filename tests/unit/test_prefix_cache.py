"""Prefix reuse across calls on the tiny pair: the same replies as without it, fewer tokens forwarded.

Each test builds its own models (a model's prefix cache lives as long as the model), and compares
against a second wrapper of the same weights with reuse off.
"""

from __future__ import annotations

import threading

import pytest
import torch
from tiny_models import tiny_base_tokenizer, tiny_draft_tokenizer, tiny_gemma3, tiny_llama
from transformers import DynamicCache

from wsd_llm import TransformersModel, WSDConfig, WSDPipeline
from wsd_llm.backends.transformers.prefix_cache import PrefixCache

# Gammas near the random models' token probabilities (about 1/vocab) switch at varied places.
CONFIG = WSDConfig(max_new_tokens=24, max_draft_tokens=24, gamma=0.0035)
SYSTEM = {"role": "system", "content": "You are a helpful assistant. Answer in short sentences."}
FOLLOW_UPS = ["Hello!", "How are you today?", "Give me tips.", "Tell me more."]


def pair(prefix_cache_bytes: int | None = None) -> tuple[WSDPipeline, WSDPipeline]:
    """The tiny pair with prefix reuse (the default size, or ``prefix_cache_bytes``), and the same
    weights with reuse off."""
    draft, base = tiny_llama(tiny_draft_tokenizer()), tiny_gemma3(tiny_base_tokenizer())
    sized = {} if prefix_cache_bytes is None else {"prefix_cache_bytes": prefix_cache_bytes}
    reuse = [TransformersModel(m.model, m.tokenizer, name=m.name, **sized) for m in (draft, base)]
    off = [TransformersModel(m.model, m.tokenizer, name=m.name, prefix_cache_bytes=0) for m in (draft, base)]
    return WSDPipeline(*reuse, CONFIG), WSDPipeline(*off, CONFIG)


def chat(pipe: WSDPipeline, first: str = "Hello!", **options) -> list:
    """A chat whose every turn resends the whole conversation, with the replies so far."""
    messages, results = [SYSTEM], []
    for user in [first, *FOLLOW_UPS[1:]]:
        messages.append({"role": "user", "content": user})
        results.append(pipe.generate(messages, **options))
        messages.append({"role": "assistant", "content": results[-1].text})
    return results


def test_a_chat_gives_the_same_replies_and_forwards_only_the_new_tail():
    reuse, off = pair()
    with_reuse, without = chat(reuse), chat(off)
    for turn, (got, expected) in enumerate(zip(with_reuse, without)):
        assert (got.text, got.switch_index, got.switched) == \
            (expected.text, expected.switch_index, expected.switched)
        assert got.probs == pytest.approx(expected.probs, rel=1e-4)
        # The run asks for the same ids either way; what the cache held is not forwarded again.
        assert got.base_tokens_forwarded + got.base_tokens_cached == expected.base_tokens_forwarded
        assert got.draft_tokens_forwarded + got.draft_tokens_cached == expected.draft_tokens_forwarded
        assert expected.base_tokens_cached == expected.draft_tokens_cached == 0
        if turn:  # the previous turn's conversation, and most of its reply, is read back
            assert got.base_tokens_cached > with_reuse[turn - 1].prompt_tokens
            assert got.draft_tokens_cached > 0
    assert reuse.base.prefix_cache.nbytes <= reuse.base.prefix_cache.max_bytes


def test_a_ctrl_c_during_the_runs_cleanup_reaches_the_caller(monkeypatch):
    # The cleanup (the KV offered to the prefix cache) ran in the generator's finalizer, where a
    # Ctrl-C is printed as "Exception ignored" and lost: a dataset run went on to its end.
    reuse, _ = pair()

    def interrupted(ids, cache):
        raise KeyboardInterrupt

    monkeypatch.setattr(reuse.base.prefix_cache, "offer", interrupted)
    with pytest.raises(KeyboardInterrupt):
        reuse.generate("Hello!")


def test_threads_sharing_the_models_get_the_replies_they_get_alone():
    reuse, off = pair()
    firsts = ["Hello!", "Give me tips.", "The quick brown fox", "Hello!"]
    expected = {first: [r.text for r in chat(off, first)] for first in firsts}
    got: dict[int, list[str]] = {}

    def work(index: int) -> None:
        got[index] = [r.text for r in chat(reuse, firsts[index])]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(firsts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == {i: expected[first] for i, first in enumerate(firsts)}


def test_streams_and_logprobs_read_the_cache_as_generate_does():
    reuse, off = pair()
    messages = [SYSTEM, {"role": "user", "content": "Give me tips."}]
    reuse.generate(messages)  # fills the cache with this prompt
    events = list(reuse.stream(messages, logprobs=True))
    expected = off.generate(messages, logprobs=True)
    result = events[-1].result
    assert "".join(e.text for e in events) == result.text == expected.text
    assert result.base_tokens_cached > 0 and result.draft_tokens_cached > 0
    assert [t.token for t in result.logprobs] == [t.token for t in expected.logprobs]
    assert [t.logprob for t in result.logprobs] == \
        pytest.approx([t.logprob for t in expected.logprobs], abs=1e-4)


def test_turned_off_nothing_is_kept_or_read():
    _, off = pair()
    assert off.base.prefix_cache is None and off.draft.prefix_cache is None
    for result in chat(off):
        assert result.base_tokens_cached == result.draft_tokens_cached == 0
        assert result.base_tokens_forwarded >= result.prompt_tokens - 1


def test_a_copy_is_exact_and_private_across_the_sliding_window():
    """A prefix longer than the tiny Gemma's 4-token window, cut out of a longer cache: the tail's
    logits on the copy equal those on the original cache cropped to the same prefix, bit for bit."""
    base = tiny_gemma3(tiny_base_tokenizer())
    ids = base.encode("The quick brown fox jumps over the lazy dog. Hello world! How are you today?")
    assert len(ids) > 12
    cache = DynamicCache()
    base.forward(ids, cache, rows=1)
    store = PrefixCache()
    store.offer(ids, cache)
    query = ids[:9] + base.encode(" Set goals.")
    prefix, copy = store.lookup(query, limit=len(query) - 1)
    assert prefix == ids[:9] and copy.get_seq_length() == 9
    stored = [(layer.keys, layer.values) for layer in cache.layers]
    for layer, (keys, values) in zip(copy.layers, stored):
        assert torch.equal(layer.keys, keys[..., :9, :]) and torch.equal(layer.values, values[..., :9, :])
        assert layer.keys.data_ptr() != keys.data_ptr()
    cache.crop(9 - len(ids))
    assert torch.equal(base.forward(query[9:], copy, rows=len(query) - 9),
                       base.forward(query[9:], cache, rows=len(query) - 9))
    # The session that took the copy grew it; the store's entry is as it was.
    assert store.lookup(ids, limit=len(ids))[1].get_seq_length() == len(ids)


def entry_cache(model: TransformersModel, text: str) -> tuple[list[int], DynamicCache]:
    ids = model.encode(text)
    cache = DynamicCache()
    model.forward(ids, cache, rows=1)
    return ids, cache


def test_the_store_is_bounded_by_bytes_least_recently_used_first():
    base = tiny_gemma3(tiny_base_tokenizer())
    entries = [entry_cache(base, text) for text in ("Hello world!", "Set goals. Take breaks.", "Sleep well.")]
    sizes = [sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers) for _, cache in entries]
    store = PrefixCache(max_bytes=sizes[0] + sizes[1] + sizes[2] - 1)
    for ids, cache in entries[:2]:
        store.offer(ids, cache)
    assert store.lookup(entries[0][0], limit=99) is not None  # the first entry is now the most recent
    store.offer(*entries[2])
    assert len(store) == 2 and store.nbytes == sizes[0] + sizes[2] <= store.max_bytes
    hit = store.lookup(entries[1][0], limit=99)  # the second was evicted: at most a shared first token
    assert hit is None or len(hit[0]) < len(entries[1][0])

    small = PrefixCache(max_bytes=min(sizes) - 1)
    small.offer(*entries[0])
    assert len(small) == 0  # an entry larger than the whole store is not kept


def test_a_longer_sequence_replaces_its_prefix():
    base = tiny_gemma3(tiny_base_tokenizer())
    short_ids, short = entry_cache(base, "Hello world!")
    long_ids, long = entry_cache(base, "Hello world! How are you today?")
    assert long_ids[: len(short_ids)] == short_ids
    store = PrefixCache()
    store.offer(short_ids, short)
    store.offer(long_ids, long)
    assert len(store) == 1
    store.offer(short_ids, short)  # already covered by the longer entry
    assert len(store) == 1 and store.lookup(long_ids, limit=len(long_ids))[0] == long_ids


@pytest.mark.parametrize("size", [-1, 1.5, "256MiB", True])
def test_a_bad_size_fails_in_one_line(size):
    draft = tiny_llama(tiny_draft_tokenizer())
    with pytest.raises(ValueError, match="^prefix_cache_bytes must be a whole number of bytes >= 0") as error:
        TransformersModel(draft.model, draft.tokenizer, prefix_cache_bytes=size)
    assert "\n" not in str(error.value)


def test_the_size_reaches_the_models_through_from_pretrained(tmp_path):
    models = {"draft": tiny_llama(tiny_draft_tokenizer()), "base": tiny_gemma3(tiny_base_tokenizer())}
    for role, model in models.items():
        model.model.save_pretrained(tmp_path / role)
        model.tokenizer.save_pretrained(tmp_path / role)
    pipe = WSDPipeline.from_pretrained(tmp_path / "draft", tmp_path / "base", prefix_cache_bytes=2**20)
    assert pipe.draft.prefix_cache.max_bytes == pipe.base.prefix_cache.max_bytes == 2**20
    off = WSDPipeline.from_pretrained(tmp_path / "draft", tmp_path / "base", prefix_cache_bytes=0)
    assert off.draft.prefix_cache is None and off.base.prefix_cache is None
