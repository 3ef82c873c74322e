"""``wsd-llm train-drafter`` and ``wsd-llm eval-drafter``: make your own aligned drafter by DPO,
and measure it on held-out preference pairs. The training libraries load only when these run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wsd_llm.cli import INTERRUPTED, DeviceMap, Dtype, app, err, out, user_errors

Data = Annotated[str, typer.Option(
    help="Preference pairs (prompt/chosen/rejected): a .jsonl file, a dataset directory or a hub dataset id.")]


@app.command()
def train_drafter(
    data: Data,
    output: Annotated[Path, typer.Option("--output", "-o", help="The drafter directory to write.")],
    model: Annotated[str | None, typer.Option(
        help="Instruct model to start from (hub id, directory or .gguf); default: packaged SmolLM2-135M-Instruct."
    )] = None,
    eval_data: Annotated[str | None, typer.Option(help="Held-out pairs; default: --eval-fraction of --data.")] = None,
    eval_fraction: Annotated[float, typer.Option(help="Share of --data held out when --eval-data is not given.")] = 0.1,
    lora: Annotated[bool, typer.Option(help="Train a LoRA adapter (merged on save), or every weight.")] = True,
    lora_rank: Annotated[int, typer.Option(help="LoRA rank (alpha is twice it).")] = 16,
    beta: Annotated[float, typer.Option(help="DPO beta: higher keeps the drafter closer to the model it starts from.")] = 0.1,
    learning_rate: Annotated[float, typer.Option(help="AdamW learning rate.")] = 5e-5,
    epochs: Annotated[float, typer.Option(help="Passes over the training pairs (unless --max-steps).")] = 1.0,
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps in all; overrides --epochs.")] = None,
    max_length: Annotated[int, typer.Option(help="Longest prompt + reply in tokens; a longer pair is an error.")] = 512,
    batch_size: Annotated[int, typer.Option(help="Pairs per step (per device).")] = 4,
    gradient_accumulation: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = 1,
    bf16: Annotated[bool, typer.Option(help="bfloat16 mixed precision (a GPU that supports it).")] = False,
    seed: Annotated[int, typer.Option(help="Seeds the adapter, the data order and the held-out split.")] = 0,
    save_steps: Annotated[int | None, typer.Option(
        help="Save a checkpoint every this many steps, for --resume.")] = None,
    logging_steps: Annotated[int, typer.Option(help="Log loss and reward margins every this many steps.")] = 5,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last checkpoint.")] = False,
    device_map: DeviceMap = None,
    dtype: Dtype = None,
) -> None:
    """Train a drafter by DPO (TRL) on preference pairs; the output loads as WSD's --draft.

    Every pair is checked (and measured in tokens) before training; at the end the held-out
    pairs are scored before and after, and the directory gets a plot of it.
    """
    from wsd_llm.training.dpo import PLOT_FILE, TrainingInterrupted
    from wsd_llm.training.dpo import train_drafter as train

    load = {key: value for key, value in {"device_map": device_map, "dtype": dtype}.items() if value}
    with user_errors():
        try:
            result = train(data, output, model=model, eval_data=eval_data, eval_fraction=eval_fraction, lora=lora,
                           lora_rank=lora_rank, beta=beta, learning_rate=learning_rate, epochs=epochs,
                           max_steps=max_steps, max_length=max_length, batch_size=batch_size,
                           gradient_accumulation=gradient_accumulation, bf16=bf16, seed=seed, save_steps=save_steps,
                           logging_steps=logging_steps, resume=resume, **load)
        except TrainingInterrupted as stop:
            where = (f"the last checkpoint is {stop.checkpoint}; run the same command with --resume to continue"
                     if stop.checkpoint else "no checkpoint was saved yet (--save-steps sets how often)")
            err.print(f"interrupted: {where}")
            raise typer.Exit(INTERRUPTED) from None
    if result.report is not None:
        out.print(result.report.table())
        err.print(f"plot: {output / PLOT_FILE}")
    err.print(f"drafter saved to {output} after {result.steps} steps; try it: wsd-llm generate --draft {output} \"Hi\"")


@app.command()
def eval_drafter(
    drafter: Annotated[Path, typer.Argument(help="A drafter directory written by train-drafter.")],
    data: Data,
    plot: Annotated[Path, typer.Option(help="Where to write the PNG plot.")] = Path("wsd-drafter-eval.png"),
    device_map: DeviceMap = None,
    dtype: Dtype = None,
) -> None:
    """Preference accuracy and implicit-reward margin of a drafter on held-out pairs, before
    (the model it was trained from) and after training."""
    with user_errors():
        from wsd_llm.training.data import read_preferences
        from wsd_llm.training.metadata import read_metadata
        from wsd_llm.training.rewards import evaluate_drafter

        read_metadata(drafter)  # not a drafter, or a bad line: fail before the models load
        pairs = read_preferences(data)
        load = {key: value for key, value in {"device_map": device_map, "dtype": dtype}.items() if value}
        with err.status("Scoring the pairs with the drafter and the model it was trained from"):
            report = evaluate_drafter(drafter, pairs, **load)
    out.print(report.table())
    err.print(f"plot: {report.plot(plot)}")
