"""WSD as an lm-evaluation-harness model: ``wsd-lm-eval --model wsd --model_args gamma=0.8 --tasks ...``.

lm-eval 0.4.13 finds models only in its own registry: it reads no entry points, and
``--include_path`` loads task YAMLs, not model code. So the model registers itself with
``register_model("wsd")`` when this module is imported, and ``wsd-lm-eval`` (or
``python -m wsd_llm.evaluation.lm_eval_model``) imports it and then runs lm-eval's own command
line with the arguments given; from Python, import this module before ``lm_eval.simple_evaluate``
or pass ``WSDLM(...)`` as its ``model``.

Each ``generate_until`` request's context is the user turn (with ``--apply_chat_template`` the
conversation lm-eval builds), WSD writes the assistant's reply, cut before the request's
``until`` strings and within its ``max_gen_toks``. ``system=base`` runs the base alone in the same
format (``system=draft`` the draft alone) with the same stops and budget: the baseline an
alignment-tax comparison needs. Likelihood requests are refused: WSD does not change the
likelihood of a given text, which is the base model's; evaluate those tasks on the base itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Literal

from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from lm_eval.models.api_models import JsonChatStr
from tqdm.auto import tqdm

from wsd_llm.baselines import base_only, draft_only
from wsd_llm.config import WSDConfig
from wsd_llm.messages import Message
from wsd_llm.pipeline import WSDPipeline

logger = logging.getLogger(__name__)

DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's own default for generate_until tasks


class ModelArgsError(ValueError):
    """A bad ``--model_args`` value of the ``wsd`` model (``wsd-lm-eval`` prints it as one line)."""


@register_model("wsd")
class WSDLM(LM):
    """Weak-to-Strong Decoding (or one of its models alone) answering lm-eval's generation requests."""

    def __init__(self, draft: str | None = None, base: str | None = None, *,
                 system: Literal["wsd", "base", "draft"] = "wsd", pipeline: WSDPipeline | None = None,
                 batch_size: int | str = 1, max_batch_size: int | None = None, device: str | None = None,
                 dtype: str | None = None, **options: Any) -> None:
        """Args:
            draft, base: hub id, directory or ``.gguf`` of each model; by default the packaged pair.
            system: ``wsd``; ``base`` for the base alone in WSD's base format (greedy); ``draft`` for
                the draft alone with its chat template.
            pipeline: an already loaded pair (then ``draft``, ``base``, ``device``, ``dtype`` are unused).
            batch_size: WSD replies per padded batch (> 1: the one-shot algorithm, for GPUs).
            max_batch_size: unused (lm-eval passes it to every model).
            device: ``device_map`` of both models (``cpu``, ``cuda``, ``auto``).
            dtype: e.g. ``bfloat16``.
            options: ``WSDConfig`` fields (``gamma``, ``window``, ``max_draft_tokens``, ``base_format``...);
                ``max_new_tokens``, ``stop`` and ``temperature`` come from each request.

        Raises:
            ModelArgsError: an unknown ``system`` or option, a bad option value, or ``batch_size``
                below 1 (a ``ValueError``), before any model loads.
        """
        super().__init__()
        if system not in ("wsd", "base", "draft"):
            raise ModelArgsError(f"system must be wsd, base or draft, got {system!r}")
        self.batch_size = int(batch_size) if str(batch_size).isdigit() else 1  # "auto" means one at a time
        if self.batch_size < 1:
            raise ModelArgsError(f"batch_size must be at least 1, got {batch_size}")
        self.system = system
        try:  # before the models load, so a typo costs nothing
            (pipeline.config if pipeline else WSDConfig()).updated(**options)
        except (TypeError, ValueError) as error:
            raise ModelArgsError(str(error)) from None
        if pipeline is None:
            load = {key: value for key, value in {"device_map": _usable(device), "dtype": dtype}.items() if value}
            pipeline = WSDPipeline.from_pretrained(draft, base, **load)
        self.pipe = pipeline
        self.config = pipeline.config.updated(**options)

    @property
    def tokenizer_name(self) -> str:
        """Names the prompt format in lm-eval's request cache: the conversation is kept as messages."""
        return f"{self.system}:{self.pipe.model_name}"

    def apply_chat_template(self, chat_history: list[dict[str, str]],
                            add_generation_prompt: bool = True) -> JsonChatStr:
        """The conversation itself (as lm-eval's API models keep it): each model applies its own format."""
        return JsonChatStr(json.dumps(chat_history, ensure_ascii=False))

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        """One reply per request, in order; requests with the same generation settings are batched."""
        replies: list[str | None] = [None] * len(requests)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(_settings_key(request.args[1]), []).append(index)
        with tqdm(total=len(requests), disable=disable_tqdm, desc=f"{self.system} generate_until") as bar:
            for key, indices in groups.items():
                config = self.config.updated(**dict(key))
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start : start + self.batch_size]
                    texts = self._generate([_conversation(requests[i].args[0]) for i in chunk], config)
                    for i, text in zip(chunk, texts):
                        replies[i] = text
                        self.cache_hook.add_partial("generate_until", requests[i].args, text)
                    bar.update(len(chunk))
        return [reply or "" for reply in replies]

    def _generate(self, conversations: list[list[Message]], config: WSDConfig) -> list[str]:
        if self.system == "base":
            return [base_only(self.pipe.base, c, config).text for c in conversations]
        if self.system == "draft":
            return [draft_only(self.pipe.draft, c, config).text for c in conversations]
        results = self.pipe.batch(conversations, batch_size=min(self.batch_size, len(conversations)), **dict(config))
        return [result.text for result in results]

    def loglikelihood(self, requests: list[Instance], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        raise _likelihood_refused(self.pipe)

    def loglikelihood_rolling(self, requests: list[Instance], disable_tqdm: bool = False) -> list[float]:
        raise _likelihood_refused(self.pipe)


def _usable(device: str | None) -> str | None:
    """``device``, unless it is a GPU this machine lacks: lm-eval's command line asks for ``cuda`` by
    default, and its own ``hf`` model falls back to the CPU then too."""
    import torch

    if device and device.startswith("cuda") and not torch.cuda.is_available():
        logger.info("device %s is not available; running on the CPU", device)
        return None
    return device


def _settings_key(gen_kwargs: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The WSD options a request asks for, hashable: stops, budget and sampling temperature."""
    until = gen_kwargs.get("until") or ()
    stops = (until,) if isinstance(until, str) else tuple(s for s in until if s)
    sampled = gen_kwargs.get("do_sample", False) and float(gen_kwargs.get("temperature", 0.0)) > 0
    return (("stop", stops), ("max_new_tokens", int(gen_kwargs.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS))),
            ("temperature", float(gen_kwargs["temperature"]) if sampled else 0.0))


def _conversation(context: str | JsonChatStr) -> list[Message]:
    """lm-eval's context as a conversation: its chat history, or the whole context as one user turn."""
    if isinstance(context, JsonChatStr):
        return json.loads(context.prompt)
    return [{"role": "user", "content": context}]


def _likelihood_refused(pipe: WSDPipeline) -> NotImplementedError:
    model = getattr(pipe.base, "model", None)  # a local base: its directory (a GGUF's converted copy)
    directory = getattr(getattr(model, "config", None), "name_or_path", "") or "<the base model's directory>"
    return NotImplementedError(
        "the wsd model answers generate_until tasks only: WSD does not change the likelihood of a given "
        f"text, which is the base model's ({pipe.base.name}); evaluate loglikelihood tasks with lm-eval's "
        f"hf model on the base: --model hf --model_args pretrained={directory}")


def main(argv: Sequence[str] | None = None) -> None:
    """``wsd-lm-eval``: lm-eval's command line with the ``wsd`` model registered."""
    import sys

    from lm_eval.__main__ import cli_evaluate

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    try:
        cli_evaluate()
    except ModelArgsError as error:
        sys.exit(f"error: --model_args: {' '.join(str(error).split())}")


if __name__ == "__main__":
    main()
