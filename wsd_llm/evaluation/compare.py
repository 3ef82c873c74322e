"""WSD side by side with its own two models: base only, draft only, and WSD at each gamma.

Every prompt runs through every system with the same budget; its line (all the systems' replies)
is appended to ``replies.jsonl`` and flushed at once, so an interrupted comparison resumes where
it stopped, as ``wsd-llm run`` does. Scores, the summary, plots and the HTML report are made from
all the lines once generation is done.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from wsd_llm.baselines import base_only, draft_only
from wsd_llm.datasets import Summary, append_records, read_done, read_prompts, result_record, summarize
from wsd_llm.evaluation.scoring import Scorer, describe
from wsd_llm.evaluation.stats import WinRate, win_rate
from wsd_llm.messages import Message

if TYPE_CHECKING:
    from wsd_llm.pipeline import WSDPipeline

logger = logging.getLogger(__name__)

BASE, DRAFT = "base", "draft"
REPLIES, SUMMARY, SETTINGS, REPORT = "replies.jsonl", "summary.json", "settings.json", "report.html"


def wsd_system(gamma: float) -> str:
    """The name of WSD at ``gamma`` in results: ``wsd@0.8``."""
    return f"wsd@{gamma:g}"


class SystemSummary(BaseModel):
    """One system over all prompts; ``switches`` only for WSD systems."""

    mean_tokens: float
    mean_seconds: float
    tokens_per_second: float
    switches: Summary | None = None


class ScorerSummary(BaseModel):
    """One scorer over all prompts: what it measures, mean score per system, WSD's win rates."""

    name: str
    measures: str
    mean: dict[str, float]
    win_rates: dict[str, dict[str, WinRate]]  # WSD system -> baseline system -> its win rate


class CompareSummary(BaseModel):
    prompts: int
    draft_model: str
    base_model: str
    settings: dict[str, Any]
    systems: dict[str, SystemSummary]
    scorers: list[ScorerSummary]


def compare(pipe: WSDPipeline, source: Path, output: Path, *, gammas: Sequence[float] = (),
            scorers: Sequence[Scorer] = (), limit: int | None = None, progress: bool = True,
            **options: Any) -> tuple[CompareSummary, list[dict[str, Any]]]:
    """Run base only, draft only and WSD at each of ``gammas`` on the prompts of ``source``; score
    every reply with each of ``scorers``.

    Args:
        pipe: the loaded pair; its config (updated by ``options``) is every system's budget.
        source: JSONL of ``messages`` or ``instruction`` lines (see ``wsd_llm.datasets``).
        output: a directory; ``replies.jsonl`` in it is resumed if it exists.
        gammas: WSD thresholds to compare; by default the config's gamma.
        scorers: reply scorers (``RewardModel``, an implicit reward...).
        limit: only the first ``limit`` prompts.
        progress: a tqdm bar over prompts.
        options: ``WSDConfig`` fields for every system (``max_new_tokens``, ``temperature``...).

    Returns:
        The summary, and one record per prompt: ``id``, ``messages``, ``systems`` (name -> reply
        with ``text``, ``tokens``, ``seconds``; WSD replies also the switch statistics and
        ``draft_share``), and ``rewards`` (scorer -> system -> score).

    Raises:
        ValueError: a malformed prompts file or option, a ``limit`` below 1, or an ``output``
            holding a comparison made with other settings (all before any generation).
        RunInterrupted: Ctrl-C; the finished prompts are kept and the same call resumes.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    prompts = read_prompts(source)[:limit]
    if not prompts:
        raise ValueError(f"{source} has no prompts; give a JSONL with one 'messages' or 'instruction' per line")
    config = pipe.config.updated(**options)
    gammas = tuple(dict.fromkeys(gammas or (config.gamma,)))
    configs = {wsd_system(gamma): config.updated(gamma=gamma) for gamma in gammas}
    settings = {"draft": pipe.draft.name, "base": pipe.base.name, "systems": [BASE, DRAFT, *configs],
                **config.model_dump(mode="json", exclude={"gamma", "switch_policy"})}
    output.mkdir(parents=True, exist_ok=True)
    _check_settings(output / SETTINGS, settings)
    replies = output / REPLIES
    done = read_done(replies)
    pending = [(line_id, messages) for line_id, messages in prompts if line_id not in done]
    logger.info("%d prompts, %d done already, %d to run", len(prompts), len(prompts) - len(pending), len(pending))
    records = ((line_id, {"id": line_id, "messages": messages,
                          "systems": _run_systems(pipe, messages, config, configs)})
               for line_id, messages in pending)
    append_records(replies, [line_id for line_id, _ in prompts], done, records, progress=progress)
    records = [done[line_id] for line_id, _ in prompts]
    summaries = [_score(scorer, records, settings["systems"], tuple(configs)) for scorer in scorers]
    _rewrite(replies, records, done)
    summary = CompareSummary(prompts=len(records), draft_model=pipe.draft.name, base_model=pipe.base.name,
                             settings={**settings, "gammas": list(gammas)},
                             systems={name: _system_summary(records, name) for name in settings["systems"]},
                             scorers=summaries)
    (output / SUMMARY).write_text(summary.model_dump_json(indent=2), encoding="utf-8")
    return summary, records


def _check_settings(path: Path, settings: dict[str, Any]) -> None:
    """Resuming is only sound with the settings the finished lines were made with."""
    if path.exists():
        before = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(key for key in {*before, *settings} if before.get(key) != settings.get(key))
        if changed:
            raise ValueError(f"{path.parent} holds a comparison made with other settings ({', '.join(changed)} "
                             "differ); give another --output directory or delete that one")
    else:
        path.write_text(json.dumps(settings, indent=2), encoding="utf-8")


def _run_systems(pipe: WSDPipeline, messages: list[Message], config: Any,
                 configs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    systems = {BASE: base_only(pipe.base, messages, config).model_dump(mode="json"),
               DRAFT: draft_only(pipe.draft, messages, config).model_dump(mode="json")}
    for name, wsd_config in configs.items():
        result = pipe.generate(messages, **dict(wsd_config))
        share = result.draft_tokens / result.completion_tokens if result.completion_tokens else 0.0
        systems[name] = {**result_record(name, result), "tokens": result.completion_tokens,
                         "seconds": result.timings.total_s, "draft_share": share}
        del systems[name]["id"]
    return systems


def _score(scorer: Scorer, records: list[dict[str, Any]], systems: list[str],
           wsd_systems: tuple[str, ...]) -> ScorerSummary:
    conversations = [record["messages"] for record in records]
    scores = {name: scorer.score(conversations, [r["systems"][name]["text"] for r in records]) for name in systems}
    for i, record in enumerate(records):
        record.setdefault("rewards", {})[scorer.name] = {name: scores[name][i] for name in systems}
    return ScorerSummary(
        name=scorer.name, measures=describe(scorer),
        mean={name: sum(values) / len(values) for name, values in scores.items()},
        win_rates={wsd: {other: win_rate(scores[wsd], scores[other]) for other in (BASE, DRAFT)}
                   for wsd in wsd_systems},
    )


def _rewrite(path: Path, records: list[dict[str, Any]], done: dict[str, dict[str, Any]]) -> None:
    """The replies file with this run's scores; lines of prompts outside ``limit`` are kept as they were."""
    if not any("rewards" in record for record in records):
        return
    listed = {record["id"] for record in records}
    rest = [record for line_id, record in done.items() if line_id not in listed]
    partial = path.with_suffix(".jsonl.partial")
    with partial.open("w", encoding="utf-8") as sink:
        for record in [*records, *rest]:
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(partial, path)  # atomic: a crash leaves the old file or the new one, never half of one


def _system_summary(records: list[dict[str, Any]], name: str) -> SystemSummary:
    replies = [record["systems"][name] for record in records]
    tokens, seconds = sum(r["tokens"] for r in replies), sum(r["seconds"] for r in replies)
    return SystemSummary(mean_tokens=tokens / len(replies), mean_seconds=seconds / len(replies),
                         tokens_per_second=tokens / seconds if seconds else 0.0,
                         switches=summarize(replies) if "switched" in replies[0] else None)
