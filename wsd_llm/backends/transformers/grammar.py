"""Constrained decoding on a local model with llguidance: a token mask per step from a matcher
compiled for the model's own tokenizer (draft and base each get theirs)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from wsd_llm.constraints import JSON_LAYOUT, Constraint

if TYPE_CHECKING:
    import llguidance
    from transformers import PreTrainedTokenizerBase

_TOKENIZERS: weakref.WeakKeyDictionary[PreTrainedTokenizerBase, llguidance.LLTokenizer] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _llg_tokenizer(tokenizer: PreTrainedTokenizerBase) -> llguidance.LLTokenizer:
    """llguidance's view of ``tokenizer``, built once per tokenizer (a second or more for 262k tokens)."""
    try:
        import llguidance.hf
    except ImportError as error:
        raise ImportError("constrained decoding needs llguidance: pip install 'wsd-llm[constraints]'") from error
    with _LOCK:
        if tokenizer not in _TOKENIZERS:
            try:
                _TOKENIZERS[tokenizer] = llguidance.hf.from_tokenizer(tokenizer)
            except ValueError as error:
                raise ValueError(f"llguidance cannot read this model's tokenizer ({error}), so it cannot "
                                 "constrain its output") from None
        return _TOKENIZERS[tokenizer]



def reads_tokenizer(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether llguidance is installed and can read ``tokenizer``."""
    try:
        _llg_tokenizer(tokenizer)
    except (ImportError, ValueError):
        return False
    return True


def _grammar(constraint: Constraint) -> str:
    import llguidance

    if constraint.kind == "regex":
        return llguidance.LLMatcher.grammar_from_regex(constraint.value)
    if constraint.kind == "grammar":
        return llguidance.LLMatcher.grammar_from_lark(constraint.value)
    # A schema's own "x-guidance" options take precedence over the layout.
    return llguidance.LLMatcher.grammar_from_json_schema(constraint.schema, defaults=JSON_LAYOUT)


class GrammarMask:
    """Keeps a reply inside ``constraint``: masks the logits of every token that would break it,
    and reads each token written. End-of-sequence is allowed only once the reply is complete."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, constraint: Constraint, written: Sequence[int] = ()):
        """Args:
            tokenizer: the model's (fast) tokenizer.
            constraint: what the reply must match.
            written: token ids of the reply so far (the accepted draft, for the base).

        Raises:
            ValueError: a constraint llguidance cannot compile (naming its error), or ``written``
                that already breaks it.
        """
        import llguidance
        import llguidance.torch

        self.tokenizer = _llg_tokenizer(tokenizer)
        self.matcher = llguidance.LLMatcher(self.tokenizer, _grammar(constraint))
        if error := self.matcher.get_error():
            # llguidance's first line says what is wrong; the rest dumps its grammar.
            raise ValueError(f"the {constraint.kind} constraint does not compile: {error.splitlines()[0]}")
        if written and not self.matcher.consume_tokens(list(written)):
            raise ValueError(f"the reply so far does not match the {constraint.kind} constraint: "
                             f"{self.matcher.get_error()}")
        self.bitmask = llguidance.torch.allocate_token_bitmask(1, self.tokenizer.vocab_size)
        self._fill = llguidance.torch.fill_next_token_bitmask
        self._apply = llguidance.torch.apply_token_bitmask_inplace

    def mask(self, scores: torch.Tensor) -> torch.Tensor:
        """``scores`` (``(1, vocab)``, float) with every disallowed token at -inf."""
        self._fill(self.matcher, self.bitmask)
        scores = scores.clone()  # the model's logits may be an inference-mode tensor
        # A model's logits may be wider than its tokenizer (padded embeddings): those ids never fit.
        scores[:, self.tokenizer.vocab_size:] = -torch.inf
        self._apply(scores[:, : self.tokenizer.vocab_size], self.bitmask.to(scores.device))
        return scores

    def accept(self, token: int) -> None:
        """Read the token just written."""
        if not self.matcher.consume_token(token):
            raise RuntimeError(f"token {token} broke the constraint: {self.matcher.get_error()}")
