"""Train a drafter (the paper's Pilot) by DPO: TRL's ``DPOTrainer``, LoRA through ``peft``.

The output directory is a plain transformers model (LoRA merged into the weights) with its
tokenizer and chat template, plus ``wsd_drafter.json``: it loads as the ``draft`` of
``WSDPipeline``, ``ChatWSD`` or ``WSDLLM``. Checkpoints go to ``<output>/checkpoints`` while
training runs; ``resume=True`` continues from the last one after an interruption.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import ProgressCallback

from wsd_llm.training.data import PreferencePair, check_lengths, read_preferences, split_eval
from wsd_llm.training.metadata import DrafterMetadata, load_model, model_reference, write_metadata
from wsd_llm.training.rewards import PreferenceReport, pair_logprobs

if TYPE_CHECKING:
    from transformers import TrainerCallback

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
PLOT_FILE = "wsd_drafter_eval.png"


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a callback) stopped training; ``checkpoint`` is the last one saved, if any.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C still does.
    """

    def __init__(self, checkpoint: Path | None) -> None:
        super().__init__(f"training interrupted; last checkpoint: {checkpoint}")
        self.checkpoint = checkpoint


@dataclass
class TrainingResult:
    """What ``train_drafter`` produced.

    Attributes:
        output: the drafter directory.
        steps: optimizer steps taken in all (a resumed run counts those before the interruption).
        report: held-out preference metrics before and after training; ``None`` without a held-out set.
    """

    output: Path
    steps: int
    report: PreferenceReport | None


def train_drafter(
    data: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    eval_data: str | os.PathLike[str] | None = None,
    eval_fraction: float = 0.1,
    lora: bool = True,
    lora_rank: int = 16,
    beta: float = 0.1,
    learning_rate: float = 5e-5,
    epochs: float = 1.0,
    max_steps: int | None = None,
    max_length: int = 512,
    batch_size: int = 4,
    gradient_accumulation: int = 1,
    bf16: bool = False,
    seed: int = 0,
    save_steps: int | None = None,
    logging_steps: int = 5,
    resume: bool = False,
    callbacks: Sequence[TrainerCallback] = (),
    **load_kwargs: Any,
) -> TrainingResult:
    """Train an instruct model into a drafter by DPO on preference pairs, and save it.

    Args:
        data: preference pairs: a ``.jsonl`` file, a dataset directory or a hub dataset id
            (see ``wsd_llm.training.data``).
        output: the drafter directory to write; it must be new or empty unless ``resume``.
        model: the instruct model to start from (hub id, directory or ``.gguf``); default the
            packaged SmolLM2-135M-Instruct. It is also the DPO reference model.
        eval_data: held-out pairs; without it, ``eval_fraction`` of ``data`` is held out.
        eval_fraction: the share of ``data`` held out when there is no ``eval_data`` (0: none).
        lora: train a LoRA adapter (merged into the weights on save) instead of every weight.
        lora_rank: the adapter's rank (alpha is twice it).
        beta: DPO's beta: higher keeps the drafter closer to the reference.
        learning_rate: the AdamW learning rate.
        epochs: passes over the training pairs (ignored when ``max_steps`` is set).
        max_steps: optimizer steps in all, if set.
        max_length: the longest prompt + reply, in tokens; a longer pair is an error.
        batch_size: pairs per device per step; gradient_accumulation: micro-batches per step.
        bf16: bfloat16 mixed precision (a GPU that supports it).
        seed: seeds the adapter initialisation, the data order and the held-out split.
        save_steps: save a checkpoint every this many steps (``None``: none).
        logging_steps: log loss and reward margins every this many steps.
        resume: continue from the last checkpoint in ``output``.
        callbacks: extra ``transformers.TrainerCallback`` objects.
        load_kwargs: ``device_map``, ``dtype``... for loading ``model``.

    Returns:
        The output directory, the steps taken and the held-out report.

    Raises:
        wsd_llm.training.data.PreferenceDataError: a bad record or a pair longer than ``max_length``
            (naming its line), found before training starts.
        ValueError: a bad setting, a non-empty ``output`` without ``resume``, or ``resume``
            without a checkpoint.
        TrainingInterrupted: Ctrl-C or a callback interrupted training (resume with ``resume=True``).
    """
    from transformers.trainer_utils import get_last_checkpoint

    _check_settings(beta=beta, learning_rate=learning_rate, epochs=epochs, max_steps=max_steps,
                    max_length=max_length, batch_size=batch_size, gradient_accumulation=gradient_accumulation,
                    lora_rank=lora_rank, save_steps=save_steps, logging_steps=logging_steps)
    output = Path(output)
    checkpoints = output / CHECKPOINTS
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    if resume and last is None:
        raise ValueError(f"no checkpoint to resume from in {checkpoints}; train with --save-steps to write some")
    if not resume and output.exists() and any(output.iterdir()):
        raise ValueError(f"{output} is not empty; choose a new --output, or pass --resume to continue the run there")

    # Every record is checked before the model loads, and measured before training starts.
    pairs = read_preferences(data)
    given = read_preferences(eval_data) if eval_data else []
    train, held_out = (pairs, given) if eval_data else split_eval(pairs, eval_fraction, seed)
    policy = load_model(model, **load_kwargs)
    check_lengths([*pairs, *given], policy.tokenizer, max_length)
    logger.info("Training %s on %d pairs (%d held out)", policy.name, len(train), len(held_out))
    before = pair_logprobs(policy.model, policy.tokenizer, held_out) if held_out else None

    trainer = _trainer(policy, train, checkpoints, model=model, lora=lora, lora_rank=lora_rank, beta=beta,
                       learning_rate=learning_rate, epochs=epochs, max_steps=max_steps, max_length=max_length,
                       batch_size=batch_size, gradient_accumulation=gradient_accumulation, bf16=bf16, seed=seed,
                       save_steps=save_steps, logging_steps=logging_steps, callbacks=callbacks,
                       load_kwargs=load_kwargs)
    try:
        trainer.train(resume_from_checkpoint=last if resume else None)
    except KeyboardInterrupt:
        raise TrainingInterrupted(Path(found) if (found := get_last_checkpoint(str(checkpoints))) else None) from None

    trained = trainer.model.merge_and_unload() if lora else trainer.model
    report = None
    if before is not None:
        report = PreferenceReport.from_logprobs(beta, before, pair_logprobs(trained, policy.tokenizer, held_out))
    trained.save_pretrained(output)
    policy.tokenizer.save_pretrained(output)
    write_metadata(output, DrafterMetadata(
        reference=model_reference(model), reference_name=policy.name, beta=beta, data=str(data),
        eval_data=str(eval_data) if eval_data else None, steps=trainer.state.global_step,
        lora_rank=lora_rank if lora else None,
        settings={"learning_rate": learning_rate, "epochs": epochs, "max_steps": max_steps, "max_length": max_length,
                  "batch_size": batch_size, "gradient_accumulation": gradient_accumulation, "seed": seed,
                  "eval_fraction": None if eval_data else eval_fraction},
        evaluation=report.model_dump(exclude={"reference_margins", "drafter_margins"}) if report else None))
    if report is not None:
        report.plot(output / PLOT_FILE)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the run is complete: nothing left to resume
    logger.info("Saved the drafter to %s after %d steps", output, trainer.state.global_step)
    return TrainingResult(output, trainer.state.global_step, report)


def _check_settings(**settings: float | None) -> None:
    """Every numeric setting must be positive (``max_steps``/``save_steps`` may be unset)."""
    for name, value in settings.items():
        if value is not None and value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be greater than 0, got {value:g}")


def _trainer(policy: Any, train: Sequence[PreferencePair], checkpoints: Path, *, model: Any, lora: bool,
             lora_rank: int, beta: float, learning_rate: float, epochs: float, max_steps: int | None,
             max_length: int, batch_size: int, gradient_accumulation: int, bf16: bool, seed: int,
             save_steps: int | None, logging_steps: int, callbacks: Sequence[TrainerCallback],
             load_kwargs: dict[str, Any]) -> Any:
    """TRL's DPOTrainer on ``policy``, its progress and metrics going to the ``logging`` module."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(
        output_dir=str(checkpoints), beta=beta, learning_rate=learning_rate, num_train_epochs=epochs,
        max_steps=max_steps or -1, max_length=max_length, per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=gradient_accumulation, bf16=bf16, seed=seed, data_seed=seed,
        save_strategy="steps" if save_steps else "no", save_steps=save_steps or 500, save_total_limit=2,
        logging_steps=logging_steps, report_to="none", activation_checkpointing=False,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    peft_config = LoraConfig(r=lora_rank, lora_alpha=2 * lora_rank, lora_dropout=0.0, target_modules="all-linear",
                             task_type="CAUSAL_LM") if lora else None
    # Full fine-tuning needs a frozen copy as the reference; LoRA gets it by disabling the adapter.
    reference = None if lora else load_model(model, **load_kwargs).model
    trainer = DPOTrainer(model=policy.model, ref_model=reference, args=args,
                         train_dataset=Dataset.from_list([pair.as_trl() for pair in train]),
                         processing_class=policy.tokenizer, peft_config=peft_config,
                         callbacks=[*callbacks])
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(LoggingProgress())
    return trainer



class LoggingProgress(ProgressCallback):
    """transformers' progress bar, with each log line (loss, reward margins...) sent to ``logging``
    rather than written into the bar."""

    SHOWN = ("loss", "train_loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected", "learning_rate")

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        shown = ", ".join(f"{key} {logs[key]:.4g}" for key in self.SHOWN if key in logs)
        if shown:
            logger.info("step %d/%d: %s", state.global_step, state.max_steps, shown)
