"""``wsd-llm compare``: registered on the ``wsd-llm`` app by ``wsd_llm.cli``; nothing heavy at import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wsd_llm.cli import (
    GENERATION,
    INTERRUPTED,
    Base,
    DeviceMap,
    Draft,
    Dtype,
    command,
    err,
    load_pipeline,
    out,
)
from wsd_llm.config import WSDConfig


@command(tuple(name for name in GENERATION if name != "gamma"))
def compare(
    source: Annotated[Path, typer.Argument(
        exists=True, dir_okay=False, help="JSONL of 'messages' or 'instruction'.")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", file_okay=False, help="Directory of the results; a rerun resumes its replies.jsonl.")],
    config: WSDConfig,
    gamma: Annotated[list[float] | None, typer.Option(
        help="WSD switch threshold to compare; repeat for several (--gamma 0.6 --gamma 0.8).",
        show_default="0.8")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N prompts.")] = None,
    reward_model: Annotated[list[str] | None, typer.Option(
        help="Score replies with this sequence-classification reward model (directory or hub id); repeatable.",
        show_default=False)] = None,
    implicit_reward: Annotated[list[Path] | None, typer.Option(
        help="Score replies with the DPO implicit reward of a drafter trained by wsd-llm train-drafter "
        "(its directory); repeatable.", show_default=False)] = None,
    reward_batch_size: Annotated[int, typer.Option(min=1, help="Replies per reward-model forward pass.")] = 8,
    reward_device: Annotated[str | None, typer.Option(
        help="Device of the reward models, e.g. cuda, cpu; default the GPU if there is one.")] = None,
    draft: Draft = None,
    base: Base = None,
    device_map: DeviceMap = None,
    dtype: Dtype = None,
) -> None:
    """Compare base only, draft only and WSD at each --gamma on the same prompts and budget.

    Writes replies.jsonl (every reply side by side), summary.json, PNG plots and a self-contained
    report.html into --output.

    Ctrl-C keeps every finished prompt; the same command resumes.
    """
    from wsd_llm.datasets import RunInterrupted, read_prompts
    from wsd_llm.evaluation.compare import compare as run_compare
    from wsd_llm.evaluation.report import system_label, write_report
    from wsd_llm.evaluation.scoring import RewardModel
    from wsd_llm.evaluation.scoring import implicit_reward as load_implicit

    # Every input is checked, and every scorer loaded, before the first reply is generated.
    try:
        import jinja2  # noqa: F401  (the report)
        import matplotlib  # noqa: F401  (its plots)
    except ImportError as error:
        raise ValueError(f"wsd-llm compare needs {error.name}: pip install 'wsd-llm[eval]'") from None
    read_prompts(source)
    for value in gamma or ():  # a ValidationError, so a bad value is a usage error like any option's
        WSDConfig.model_validate({**dict(config), "gamma": value})
    scorers = [RewardModel.from_pretrained(path, device=reward_device, batch_size=reward_batch_size)
               for path in reward_model or ()]
    scorers += [load_implicit(path) for path in implicit_reward or ()]
    pipe = load_pipeline(draft, base, config, device_map, dtype)
    try:
        summary, records = run_compare(pipe, source, output, gammas=gamma or (), scorers=scorers, limit=limit)
    except RunInterrupted as stop:
        err.print(f"interrupted: {stop.done} of {stop.total} prompts are kept in {output}; "
                  "run the same command again to resume")
        raise typer.Exit(INTERRUPTED) from None
    page = write_report(summary, records, output)
    for name, system in summary.systems.items():
        switches = system.switches
        share = f", switched {switches.switched}/{switches.lines}, draft share {switches.mean_draft_share:.0%}" \
            if switches else ""
        scores = "".join(f", {scorer.name} {scorer.mean[name]:.3f}" for scorer in summary.scorers)
        out.print(f"{system_label(name)}: {system.mean_tokens:.1f} tokens, {system.tokens_per_second:.1f} "
                  f"tokens/s{share}{scores}")
    for scorer in summary.scorers:
        for wsd, rates in scorer.win_rates.items():
            shown = ", ".join(f"vs {system_label(other)} {rate.rate:.0%} [{rate.low:.0%}, {rate.high:.0%}]"
                              for other, rate in rates.items())
            out.print(f"{scorer.name}: {system_label(wsd)} win rate {shown}")
    err.print(f"report: {page}")
