"""DPO's implicit reward and the preference metrics of a drafter.

A drafter trained by DPO defines a reward for every reply without a reward model:
``r(x, y) = beta * (log pi_theta(y|x) - log pi_ref(y|x))``, summed over the reply's tokens,
where ``pi_ref`` is the model it was trained from. On held-out pairs we report, before and after:

- log-prob preference accuracy: the fraction of pairs where the model gives the chosen reply
  more probability than the rejected one, ``log pi(chosen|x) > log pi(rejected|x)``; "before"
  is the reference model itself (the untrained drafter), "after" the trained one;
- mean log-prob margin: the mean of ``log pi(chosen|x) - log pi(rejected|x)``, in nats;
- implicit-reward accuracy and mean margin: the same with ``r``. Before training the drafter
  *is* the reference, so ``r`` is 0 for every reply: there is no "before" reward accuracy, and
  the reward margin after training is beta times how far the log-prob margin moved.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from wsd_llm.messages import Message, normalize_messages
from wsd_llm.training.data import PreferencePair, encode_reply

if TYPE_CHECKING:
    from rich.table import Table
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def reply_logprobs(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[Sequence[Message]],
                   replies: Sequence[str], *, batch_size: int = 4) -> list[float]:
    """``log p(reply | prompt)`` summed over the reply's tokens (its end-of-turn tokens included),
    the reply encoded as the chat template renders it (see ``data.encode_reply``).

    Args:
        model: a causal LM; run in eval mode without gradients.
        tokenizer: its tokenizer, with a chat template.
        prompts: conversations ending with a user turn.
        replies: one assistant reply per prompt.
        batch_size: sequences per forward pass (right-padded).

    Returns:
        One log-probability (nats, <= 0) per reply.
    """
    import torch

    encoded = [encode_reply(tokenizer, prompt, reply) for prompt, reply in zip(prompts, replies, strict=True)]
    was_training = model.training
    model.eval()
    totals: list[float] = []
    try:
        with torch.inference_mode():
            for start in range(0, len(encoded), batch_size):
                totals += _batch_logprobs(model, encoded[start : start + batch_size])
    finally:
        model.train(was_training)
    return totals


def _batch_logprobs(model: PreTrainedModel, batch: list[tuple[list[int], list[int]]]) -> list[float]:
    import torch

    width = max(len(p) + len(r) for p, r in batch)
    ids = torch.zeros(len(batch), width, dtype=torch.long)
    mask = torch.zeros(len(batch), width, dtype=torch.long)
    reply = torch.zeros(len(batch), width, dtype=torch.bool)  # positions holding reply tokens
    for row, (prompt_ids, reply_ids) in enumerate(batch):
        sequence = prompt_ids + reply_ids
        ids[row, : len(sequence)] = torch.tensor(sequence)
        mask[row, : len(sequence)] = 1
        reply[row, len(prompt_ids) : len(sequence)] = True
    ids, mask, reply = ids.to(model.device), mask.to(model.device), reply.to(model.device)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()  # position t predicts t + 1
    token_logprobs = logits.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
    return (token_logprobs * reply[:, 1:]).sum(-1).tolist()


def pair_logprobs(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair],
                  *, batch_size: int = 4) -> tuple[list[float], list[float]]:
    """``(log p(chosen|x), log p(rejected|x))`` for every pair."""
    prompts = [pair.prompt for pair in pairs]
    chosen = reply_logprobs(model, tokenizer, prompts, [p.chosen for p in pairs], batch_size=batch_size)
    rejected = reply_logprobs(model, tokenizer, prompts, [p.rejected for p in pairs], batch_size=batch_size)
    return chosen, rejected


class PreferenceReport(BaseModel):
    """Preference metrics of a drafter against the model it was trained from, on held-out pairs.

    Attributes:
        pairs: held-out pairs measured.
        beta: the drafter's DPO beta.
        reference_accuracy, reference_margin: before training: fraction of pairs with
            ``log pi_ref(chosen) > log pi_ref(rejected)``, and the mean difference (nats).
        drafter_accuracy, drafter_margin: the same for the trained drafter.
        reward_accuracy, reward_margin: fraction of pairs whose implicit reward of the chosen
            reply beats the rejected one's, and the mean reward difference (beta * nats).
        reference_margins, drafter_margins: the per-pair log-prob margins (for plots).
    """

    pairs: int
    beta: float
    reference_accuracy: float
    reference_margin: float
    drafter_accuracy: float
    drafter_margin: float
    reward_accuracy: float
    reward_margin: float
    reference_margins: list[float]
    drafter_margins: list[float]

    @classmethod
    def from_logprobs(cls, beta: float, reference: tuple[Sequence[float], Sequence[float]],
                      drafter: tuple[Sequence[float], Sequence[float]]) -> PreferenceReport:
        """The report from ``(chosen, rejected)`` log-probs of the reference and of the drafter."""
        before = [c - r for c, r in zip(*reference, strict=True)]
        after = [c - r for c, r in zip(*drafter, strict=True)]
        rewards = [beta * (a - b) for a, b in zip(after, before, strict=True)]
        return cls(pairs=len(before), beta=beta,
                   reference_accuracy=_accuracy(before), reference_margin=_mean(before),
                   drafter_accuracy=_accuracy(after), drafter_margin=_mean(after),
                   reward_accuracy=_accuracy(rewards), reward_margin=_mean(rewards),
                   reference_margins=before, drafter_margins=after)

    def table(self) -> Table:
        """The report as a rich table: one row per measure, before and after."""
        from rich.table import Table

        table = Table(title=f"Held-out preferences ({self.pairs} pairs, beta={self.beta:g})")
        for column in ("measure", "before (reference)", "after (drafter)"):
            table.add_column(column, justify="left" if column == "measure" else "right")
        table.add_row("log-prob accuracy: log p(chosen) > log p(rejected)",
                      f"{self.reference_accuracy:.1%}", f"{self.drafter_accuracy:.1%}")
        table.add_row("mean log-prob margin (nats)", f"{self.reference_margin:+.3f}", f"{self.drafter_margin:+.3f}")
        table.add_row("implicit-reward accuracy: r(chosen) > r(rejected)", "- (r = 0)", f"{self.reward_accuracy:.1%}")
        table.add_row("mean implicit-reward margin", "0", f"{self.reward_margin:+.3f}")
        return table

    def plot(self, path: Path) -> Path:
        """A PNG: the accuracies before and after, and the implicit-reward margin of each pair."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, (bars, pairs) = plt.subplots(1, 2, figsize=(9, 4))
        labels = ["log-prob\nbefore", "log-prob\nafter", "implicit\nreward"]
        values = [self.reference_accuracy, self.drafter_accuracy, self.reward_accuracy]
        bars.bar(labels, values, color=["#868e96", "#2b8a3e", "#1971c2"])
        bars.axhline(0.5, color="black", linewidth=0.8, linestyle=":")
        bars.set_ylim(0, 1)
        bars.set_ylabel("preference accuracy")
        bars.set_title(f"{self.pairs} held-out pairs")
        rewards = sorted(self.beta * (a - b) for a, b in zip(self.drafter_margins, self.reference_margins, strict=True))
        pairs.bar(range(len(rewards)), rewards, color=["#2b8a3e" if r > 0 else "#c92a2a" for r in rewards])
        pairs.axhline(0, color="black", linewidth=0.8)
        pairs.set_xticks([])
        pairs.set_xlabel("held-out pairs, sorted")
        pairs.set_ylabel("r(chosen) - r(rejected)")
        pairs.set_title(f"implicit-reward margin per pair (mean {self.reward_margin:+.3f})")
        figure.tight_layout()
        figure.savefig(path, dpi=80)
        plt.close(figure)
        return path


def _accuracy(margins: Sequence[float]) -> float:
    return sum(m > 0 for m in margins) / len(margins) if margins else 0.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


class ImplicitReward:
    """DPO's implicit reward of a trained drafter: ``beta * (log pi_theta(y|x) - log pi_ref(y|x))``.

    >>> reward = ImplicitReward.from_drafter("my-drafter")            # doctest: +SKIP
    >>> reward.score([[{"role": "user", "content": "Hi"}]], ["Hello! How can I help?"])  # doctest: +SKIP

    Attributes:
        beta: the drafter's DPO beta.
        name: the drafter's name (its directory name).
    """

    def __init__(self, policy: PreTrainedModel, reference: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *,
                 beta: float, name: str, batch_size: int = 4) -> None:
        self.policy, self.reference, self.tokenizer = policy, reference, tokenizer
        self.beta, self.name, self.batch_size = beta, name, batch_size

    @classmethod
    def from_drafter(cls, path: str | os.PathLike[str], **load_kwargs: Any) -> ImplicitReward:
        """Load a drafter trained by ``wsd-llm train-drafter`` and the model it was trained from.

        Args:
            path: the drafter directory (it holds ``wsd_drafter.json``).
            load_kwargs: ``device_map``, ``dtype``... for both models (``TransformersModel.from_pretrained``).

        Raises:
            ValueError: ``path`` is not a drafter trained by wsd-llm.
            FileNotFoundError, OSError: the drafter or its reference model does not load.
        """
        from wsd_llm.training.metadata import load_model, read_metadata

        metadata = read_metadata(path)
        policy = load_model(path, **load_kwargs)
        reference = load_model(metadata.reference, **load_kwargs)
        return cls(policy.model, reference.model, policy.tokenizer, beta=metadata.beta, name=Path(path).name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, beta={self.beta})"

    def score(self, conversations: Sequence[Sequence[Message]], replies: Sequence[str]) -> list[float]:
        """The implicit reward of each reply to its conversation (batched, no gradients).

        Args:
            conversations: ``[{"role", "content"}, ...]`` lists, each ending with the user turn answered.
            replies: one assistant reply per conversation.

        Returns:
            One reward per reply (beta * nats; higher is more preferred by the drafter).

        Raises:
            ValueError: a malformed conversation, or as many replies as conversations not given.
        """
        if len(conversations) != len(replies):
            raise ValueError(f"{len(conversations)} conversations but {len(replies)} replies; give one reply each")
        prompts = [normalize_messages(conversation) for conversation in conversations]
        policy = reply_logprobs(self.policy, self.tokenizer, prompts, replies, batch_size=self.batch_size)
        reference = reply_logprobs(self.reference, self.tokenizer, prompts, replies, batch_size=self.batch_size)
        return [self.beta * (p - r) for p, r in zip(policy, reference, strict=True)]


def evaluate_drafter(path: str | os.PathLike[str], pairs: Sequence[PreferencePair],
                     **load_kwargs: Any) -> PreferenceReport:
    """The preference report of a trained drafter on ``pairs`` (see the module docstring).

    Raises:
        ValueError: ``path`` is not a drafter trained by wsd-llm.
    """
    reward = ImplicitReward.from_drafter(path, **load_kwargs)
    return PreferenceReport.from_logprobs(
        reward.beta, pair_logprobs(reward.reference, reward.tokenizer, pairs),
        pair_logprobs(reward.policy, reward.tokenizer, pairs))
