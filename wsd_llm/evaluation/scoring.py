"""Scorers of replies: a reward model, or the DPO implicit reward of a trained drafter.

A scorer is anything with a ``name`` and ``score(conversations, replies) -> list[float]``
(higher is better); ``wsd-llm compare`` takes any list of them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from wsd_llm.messages import Message
from wsd_llm.prompts import plain_prompt

if TYPE_CHECKING:
    import torch

REWARD_MODEL_MEANS = ("a reward model's score of the reply to the conversation (a model trained to predict "
                      "which replies people prefer); higher is better")
IMPLICIT_REWARD_MEANS = ("the DPO implicit reward, beta * log(p_drafter(reply) / p_reference(reply)): how much "
                         "more the trained drafter likes the reply than the model it was trained from. It is not "
                         "a human-preference reward model, and it favours replies written like the drafter's own")


@runtime_checkable
class Scorer(Protocol):
    """Scores replies to conversations; higher is better."""

    name: str

    def score(self, conversations: Sequence[list[Message]], replies: Sequence[str]) -> list[float]:
        """One score per ``(conversation, reply)`` pair, in order."""
        ...


def describe(scorer: Scorer) -> str:
    """What a scorer's numbers mean, for the report: its own ``description`` if it has one;
    a scorer with a ``beta`` is the DPO implicit reward of a trained drafter."""
    own = getattr(scorer, "description", None)
    if own:
        return str(own)
    if hasattr(scorer, "beta"):
        return f"{IMPLICIT_REWARD_MEANS} (beta={scorer.beta:g})"  # type: ignore[attr-defined]
    return "a custom scorer; higher is better"


class RewardModel:
    """A transformers sequence-classification reward model (one score output) as a scorer.

    The conversation and reply are formatted with the reward tokenizer's chat template when it
    has one, else in the plain ``[User]/[Assistant]`` format, and scored in padded batches.
    """

    description = REWARD_MODEL_MEANS

    def __init__(self, model: Any, tokenizer: Any, *, name: str, batch_size: int = 8) -> None:
        """Args:
            model: an ``AutoModelForSequenceClassification`` with ``num_labels == 1``.
            tokenizer: its tokenizer.
            name: the name shown in reports.
            batch_size: replies per forward pass.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model, self.tokenizer, self.name, self.batch_size = model.eval(), tokenizer, name, batch_size
        if tokenizer.pad_token is None:  # many reward tokenizers have none; the model must know which one pads
            tokenizer.pad_token = tokenizer.eos_token
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        tokenizer.padding_side = "right"
        tokenizer.truncation_side = "left"  # a conversation too long for the model loses its start, not the reply

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike[str], *, device: str | None = None,
                        batch_size: int = 8, name: str | None = None) -> RewardModel:
        """Load a reward model from a directory or hub id; its config is checked before the weights load.

        Args:
            source: a directory or hub id of a sequence-classification model with one label.
            device: e.g. ``"cuda"``, ``"cpu"``; by default the GPU when there is one.
            batch_size: replies per forward pass.
            name: the name shown in reports; by default ``source``.

        Raises:
            FileNotFoundError: no such directory, and not a hub id either.
            ValueError: the model is not a sequence classifier with one output.
        """
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        from wsd_llm.hub import check_source

        check_source(source)
        config = AutoConfig.from_pretrained(source)
        architectures = list(getattr(config, "architectures", None) or [])
        if not any(arch.endswith("ForSequenceClassification") for arch in architectures):
            raise ValueError(
                f"{source} is not a reward model: its architecture is {', '.join(architectures) or 'not stated'}, "
                "not a ...ForSequenceClassification; give a sequence-classification model with one output "
                "(AutoModelForSequenceClassification, num_labels=1)")
        if config.num_labels != 1:
            raise ValueError(f"{source} has {config.num_labels} outputs; a reward model has one (num_labels=1)")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = AutoModelForSequenceClassification.from_pretrained(source).to(device)
        tokenizer = AutoTokenizer.from_pretrained(source)
        return cls(model, tokenizer, name=name or f"reward: {Path(str(source)).name or source}", batch_size=batch_size)

    def format(self, conversation: Sequence[Message], reply: str) -> str:
        """The text the reward model reads: the conversation with the reply as the assistant's turn."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template([*conversation, {"role": "assistant", "content": reply}],
                                                      tokenize=False)
        return plain_prompt(conversation) + reply.strip()

    def score(self, conversations: Sequence[list[Message]], replies: Sequence[str]) -> list[float]:
        """One reward per reply (the model's single logit), in order.

        Raises:
            ValueError: different numbers of conversations and replies.
        """
        if len(conversations) != len(replies):
            raise ValueError(f"{len(conversations)} conversations but {len(replies)} replies")
        texts = [self.format(c, r) for c, r in zip(conversations, replies)]
        scores: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            scores += self._forward(texts[start : start + self.batch_size])
        return scores

    def _forward(self, texts: list[str]) -> list[float]:
        import torch

        limits = [n for n in (self.tokenizer.model_max_length, getattr(self.model.config, "max_position_embeddings", None))
                  if isinstance(n, int) and 0 < n < 10**9]
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=bool(limits),
                               max_length=min(limits) if limits else None,
                               add_special_tokens=not getattr(self.tokenizer, "chat_template", None))
        with torch.inference_mode():
            logits: torch.Tensor = self.model(**batch.to(self.model.device)).logits
        return logits[:, 0].float().tolist()


def implicit_reward(drafter: str | os.PathLike[str]) -> Scorer:
    """The DPO implicit reward of a drafter trained by ``wsd-llm train-drafter``.

    Raises:
        FileNotFoundError: ``drafter`` is not a directory.
        ValueError: the training extra is not installed.
    """
    if not Path(drafter).is_dir():
        raise FileNotFoundError(f"no trained drafter at {drafter}: give the output directory of wsd-llm train-drafter")
    try:
        from wsd_llm.training.rewards import ImplicitReward
    except ImportError as error:
        raise ValueError(f"the implicit reward needs the training code ({error}); "
                         "pip install 'wsd-llm[train]'") from None
    return ImplicitReward.from_drafter(drafter)
