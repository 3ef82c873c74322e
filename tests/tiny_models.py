"""Tiny random models with two different tokenizers, built in memory in seconds.

They exercise the mechanics (cache reuse, cropping, re-tokenization, streaming, threads)
cheaply; the real packaged models are tested under tests/real.
"""

from __future__ import annotations

import string

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from wsd_llm import TransformersModel

CORPUS = [
    string.printable,
    "The quick brown fox jumps over the lazy dog. Hello world! How are you today?",
    "Here are three tips:\n\n1. Set goals.\n2. Take breaks.\n3. Sleep well.",
] * 4
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _train(pre_tokenizer, decoder, vocab_size: int, specials: list[str]) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer, tokenizer.decoder = pre_tokenizer, decoder
    tokenizer.train_from_iterator(
        CORPUS, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    )
    return tokenizer


def tiny_draft_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE with a ChatML template, like SmolLM2's."""
    raw = _train(pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel(), 200,
                 ["<|im_start|>", "<|im_end|>"])
    return PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   chat_template=CHAT_TEMPLATE)


def tiny_base_tokenizer(gemma_decoder: bool = False) -> PreTrainedTokenizerFast:
    """Metaspace BPE without a chat template, like Gemma's base tokenizer. ``gemma_decoder`` decodes
    with Gemma's own decoder sequence (what llguidance reads) instead of a Metaspace decoder."""
    decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                 decoders.Strip(" ", 1, 0)]) if gemma_decoder else decoders.Metaspace()
    raw = _train(pre_tokenizers.Metaspace(), decoder, 300, ["<pad>", "<eos>", "<bos>"])
    return PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")


def tiny_llama(tokenizer, seed: int = 0, context: int = 256) -> TransformersModel:
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=context,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    return TransformersModel(LlamaForCausalLM(config), tokenizer, name=f"tiny-llama-{seed}")


def tiny_gemma3(tokenizer, seed: int = 1, context: int = 384) -> TransformersModel:
    """A Gemma-3 with a 4-token sliding window, so cache cropping crosses the window."""
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=4,
                              layer_types=["sliding_attention", "full_attention"] * 2,
                              max_position_embeddings=context, bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    return TransformersModel(Gemma3ForCausalLM(config), tokenizer, name=f"tiny-gemma3-{seed}")
