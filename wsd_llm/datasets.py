"""WSD over a dataset: the paper's draft/check/target workflow as one resumable command.

Input is JSONL: each line has ``messages`` (a conversation) or ``instruction`` (a user turn,
with an optional ``system``), and optionally an ``id``. Each result is appended to the output
JSONL and flushed at once, so an interrupted run loses nothing it wrote and a rerun skips the
lines already done.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import BaseModel
from tqdm.auto import tqdm

from wsd_llm.messages import Message, normalize_messages
from wsd_llm.pipeline import WSDPipeline
from wsd_llm.results import WSDResult

logger = logging.getLogger(__name__)

HISTOGRAM_BIN = 8  # switch positions are grouped in bins of this many base tokens


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a dataset run; every line finished before it is in the output.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C still does.

    Attributes:
        done: lines of the input that have a result in the output.
        total: lines of the input.
    """

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"{done} of {total} lines done")
        self.done, self.total = done, total


class Summary(BaseModel):
    """What a dataset run produced: switch positions, the draft's share of replies, speed."""

    lines: int
    switched: int
    histogram: dict[str, int]
    no_switch: int
    mean_draft_share: float
    tokens_per_second: float


def read_prompts(path: Path) -> list[tuple[str, list[Message]]]:
    """``(id, messages)`` for every line, checked before any generation starts."""
    prompts: list[tuple[str, list[Message]]] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("each line must be a JSON object")
                prompts.append((_line_id(record, number, seen), _messages(record)))
            except (ValueError, TypeError) as error:
                raise ValueError(f"{path.name} line {number}: {error}") from error
    return prompts


def _line_id(record: dict[str, Any], number: int, seen: set[str]) -> str:
    line_id = str(record.get("id", number))
    if line_id in seen:
        raise ValueError(f"duplicate id {line_id!r}; ids must be unique so a rerun can skip done lines")
    seen.add(line_id)
    return line_id


def _messages(record: dict[str, Any]) -> list[Message]:
    if "messages" in record:
        return normalize_messages(record["messages"])
    if "instruction" in record:
        system = [{"role": "system", "content": record["system"]}] if record.get("system") else []
        return normalize_messages([*system, {"role": "user", "content": record["instruction"]}])
    raise ValueError("a line needs 'messages' (a conversation) or 'instruction' (a prompt string)")


def read_done(path: Path) -> dict[str, dict[str, Any]]:
    """Results already written; a torn last line (a killed run) is cut off so appending stays valid."""
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    good_bytes = 0
    with path.open("rb") as handle:
        for raw in handle:
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                break
            done[str(record["id"])] = record
            good_bytes += len(raw)
    if good_bytes < path.stat().st_size:
        logger.warning("dropping a partly written last line of %s; that prompt runs again", path.name)
        with path.open("r+b") as handle:
            handle.truncate(good_bytes)
    return done


def result_record(line_id: str, result: WSDResult) -> dict[str, Any]:
    return {"id": line_id, "text": result.text, "draft_text": result.draft_text, "base_text": result.base_text,
            **result.stats()}


def run_dataset(pipe: WSDPipeline, source: Path, output: Path, *, batch_size: int = 1, progress: bool = True,
                **options: Any) -> Summary:
    """Run every pending line of ``source`` into ``output``; summarise all lines written.

    Raises:
        ValueError: a malformed input line (before anything runs).
        RunInterrupted: Ctrl-C; the lines finished so far are in ``output``, and a rerun resumes.
    """
    prompts = read_prompts(source)
    pipe.config.updated(**options)
    done = read_done(output)
    pending = [(line_id, messages) for line_id, messages in prompts if line_id not in done]
    logger.info("%d lines, %d done already, %d to run", len(prompts), len(prompts) - len(pending), len(pending))

    def records() -> Iterator[tuple[str, dict[str, Any]]]:
        for start in range(0, len(pending), batch_size):
            group = pending[start : start + batch_size]
            results = pipe.batch([messages for _, messages in group], batch_size=batch_size, **options)
            yield from ((line_id, result_record(line_id, result)) for (line_id, _), result in zip(group, results))

    append_records(output, [line_id for line_id, _ in prompts], done, records(), progress=progress)
    return summarize(done[line_id] for line_id, _ in prompts if line_id in done)


def append_records(path: Path, line_ids: Sequence[str], done: dict[str, dict[str, Any]],
                   records: Iterator[tuple[str, dict[str, Any]]], *, progress: bool = True) -> None:
    """Append each ``(line id, record)`` of ``records`` to ``path`` as one JSONL line, flushed and
    synced before the next is computed, and add it to ``done``; a tqdm bar counts ``line_ids``.

    Raises:
        RunInterrupted: Ctrl-C; every record finished before it is in ``path``.
    """
    with path.open("a", encoding="utf-8") as sink, contextlib.closing(records), tqdm(
        total=len(line_ids), initial=sum(line_id in done for line_id in line_ids), disable=not progress, unit="prompt"
    ) as bar, _ctrl_c_noted() as ctrl_c:
        try:
            for line_id, record in records:
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                sink.flush()
                os.fsync(sink.fileno())
                done[line_id] = record
                bar.update()
                if ctrl_c.is_set():  # one that arrived inside a finalizer was printed there and lost
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RunInterrupted(sum(line_id in done for line_id in line_ids), len(line_ids)) from None


@contextlib.contextmanager
def _ctrl_c_noted() -> Iterator[threading.Event]:
    """Ctrl-C does what the handler in place does (``KeyboardInterrupt`` by default) and also sets the
    event yielded. Only in the main thread, and only over a Python handler (not an ignored SIGINT)."""
    noted = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield noted
        return

    def note(signum: int, frame: FrameType | None) -> None:
        noted.set()
        previous(signum, frame)

    signal.signal(signal.SIGINT, note)
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, previous)


def summarize(records: Iterable[dict[str, Any]]) -> Summary:
    records = list(records)
    bins: Counter[int] = Counter()
    for record in records:
        if record["switched"]:
            bins[record["switch_index"] // HISTOGRAM_BIN] += 1
    tokens = [r["draft_tokens"] + r["base_tokens"] for r in records]
    seconds = sum(r["timings"]["total_s"] for r in records)
    shares = [r["draft_tokens"] / n for r, n in zip(records, tokens) if n]
    return Summary(
        lines=len(records),
        switched=sum(bins.values()),
        histogram={f"{b * HISTOGRAM_BIN}-{(b + 1) * HISTOGRAM_BIN - 1}": bins[b] for b in range(max(bins, default=-1) + 1)},
        no_switch=len(records) - sum(bins.values()),
        mean_draft_share=sum(shares) / len(shares) if shares else 0.0,
        tokens_per_second=sum(tokens) / seconds if seconds else 0.0,
    )


def histogram_text(summary: Summary, width: int = 40) -> str:
    """The switch-position histogram as text bars, for terminals and logs."""
    rows = list(summary.histogram.items()) + [("no switch", summary.no_switch)]
    top = max((count for _, count in rows), default=0) or 1
    label = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:>{label}} | {'#' * round(width * count / top):<{width}} {count}" for name, count in rows)


def histogram_png(summary: Summary, path: Path) -> Path:
    """The switch-position histogram as a PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [*summary.histogram, "no switch"]
    counts = [*summary.histogram.values(), summary.no_switch]
    figure, axes = plt.subplots(figsize=(8, 4))
    axes.bar(labels, counts, color=["#2b8a3e"] * len(summary.histogram) + ["#868e96"])
    axes.set_xlabel("switch position (base tokens of the draft)")
    axes.set_ylabel("prompts")
    axes.set_title(f"Where the base took over ({summary.lines} prompts, "
                   f"mean draft share {summary.mean_draft_share:.0%})")
    axes.tick_params(axis="x", rotation=45)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
