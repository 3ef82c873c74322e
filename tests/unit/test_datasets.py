import json
import signal

import pytest
from PIL import Image

from wsd_llm import WSDPipeline
from wsd_llm.datasets import (
    RunInterrupted,
    histogram_png,
    histogram_text,
    read_done,
    read_prompts,
    run_dataset,
)

LINES = [
    {"instruction": "Hello!"},
    {"instruction": "How are you today?", "system": "Be brief."},
    {"messages": [{"role": "user", "content": "Give me tips."}], "id": "tips"},
    {"instruction": "The quick brown fox"},
    {"instruction": "Say something."},
]
OPTIONS = {"gamma": 0.0035, "max_new_tokens": 16, "max_draft_tokens": 16}


class CountingPipeline(WSDPipeline):
    """The real tiny pipeline, counting prompts and optionally failing after some."""

    def __init__(self, pipe, fail_after=None):
        super().__init__(pipe.draft, pipe.base, pipe.config)
        self.calls, self.fail_after = 0, fail_after

    def generate(self, messages, **options):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        return super().generate(messages, **options)


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in LINES) + "\n")
    return path


def test_a_run_writes_every_line_and_summarises(tiny_pipe, source, tmp_path):
    output = tmp_path / "out.jsonl"
    summary = run_dataset(tiny_pipe, source, output, progress=False, **OPTIONS)
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["id"] for r in records] == ["1", "2", "tips", "4", "5"]
    assert all({"text", "draft_text", "switch_index", "draft_tokens", "base_tokens", "timings"} <= r.keys()
               for r in records)
    assert summary.lines == 5 and summary.switched + summary.no_switch == 5
    assert sum(summary.histogram.values()) == summary.switched
    assert 0 <= summary.mean_draft_share <= 1 and summary.tokens_per_second > 0
    assert "no switch |" in histogram_text(summary)
    png = histogram_png(summary, tmp_path / "h.png")
    assert Image.open(png).size == (800, 400)


def test_a_rerun_skips_done_lines(tiny_pipe, source, tmp_path):
    output = tmp_path / "out.jsonl"
    run_dataset(tiny_pipe, source, output, progress=False, **OPTIONS)
    before = output.read_text()
    counting = CountingPipeline(tiny_pipe)
    run_dataset(counting, source, output, progress=False, **OPTIONS)
    assert counting.calls == 0 and output.read_text() == before


def test_an_interrupted_run_keeps_what_it_wrote_and_resumes(tiny_pipe, source, tmp_path):
    output = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_dataset(CountingPipeline(tiny_pipe, fail_after=2), source, output, progress=False, **OPTIONS)
    assert len(read_done(output)) == 2
    resumed = CountingPipeline(tiny_pipe)
    run_dataset(resumed, source, output, progress=False, **OPTIONS)
    assert resumed.calls == 3 and list(read_done(output)) == ["1", "2", "tips", "4", "5"]


class LostCtrlC(WSDPipeline):
    """The real tiny pipeline; a Ctrl-C arrives during the first prompt and is swallowed, as a
    generator's finalizer swallows an exception raised in it."""

    def __init__(self, pipe):
        super().__init__(pipe.draft, pipe.base, pipe.config)

    def generate(self, messages, **options):
        if messages[-1]["content"] == "Hello!":
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                pass
        return super().generate(messages, **options)


def test_a_ctrl_c_lost_inside_a_prompt_stops_the_run_after_that_line(tiny_pipe, source, tmp_path):
    output = tmp_path / "out.jsonl"
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh process
    try:
        with pytest.raises(RunInterrupted) as interrupted:
            run_dataset(LostCtrlC(tiny_pipe), source, output, progress=False, **OPTIONS)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)
    assert (interrupted.value.done, interrupted.value.total) == (1, 5) and list(read_done(output)) == ["1"]


def test_a_torn_last_line_is_dropped_and_redone(tiny_pipe, source, tmp_path):
    output = tmp_path / "out.jsonl"
    run_dataset(tiny_pipe, source, output, progress=False, **OPTIONS)
    lines = output.read_text().splitlines(keepends=True)
    output.write_text("".join(lines[:3]) + lines[3][:20])
    resumed = CountingPipeline(tiny_pipe)
    run_dataset(resumed, source, output, progress=False, **OPTIONS)
    assert resumed.calls == 2
    assert [json.loads(line)["id"] for line in output.read_text().splitlines()] == ["1", "2", "tips", "4", "5"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 2"),
        ('{"prompt": "x"}', "line 2: a line needs 'messages'"),
        ('["x"]', "line 2: each line must be a JSON object"),
        ('{"messages": [{"role": "bot", "content": "x"}]}', "line 2: message 0 has unknown role 'bot'"),
        ('{"instruction": "again", "id": 1}', "line 2: duplicate id '1'"),
    ],
)
def test_bad_lines_are_named(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "fine"}\n' + line + "\n")
    with pytest.raises(ValueError, match=message):
        read_prompts(path)


def test_histogram_keeps_empty_bins_between_switches():
    from wsd_llm.datasets import summarize

    record = {"draft_tokens": 4, "base_tokens": 4, "timings": {"total_s": 1.0}}
    summary = summarize([{**record, "switched": True, "switch_index": 3},
                         {**record, "switched": True, "switch_index": 20},
                         {**record, "switched": False, "switch_index": 7}])
    assert summary.histogram == {"0-7": 1, "8-15": 0, "16-23": 1}
    assert (summary.no_switch, summary.mean_draft_share, summary.tokens_per_second) == (1, 0.5, 8.0)
