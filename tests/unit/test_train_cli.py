"""``wsd-llm train-drafter`` and ``eval-drafter`` in-process (typer's CliRunner), on the tiny llama."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wsd_llm.cli import app

EXAMPLES = Path(__file__).parents[2] / "examples"
DATA, HELD_OUT = str(EXAMPLES / "preferences.jsonl"), str(EXAMPLES / "preferences-heldout.jsonl")
runner = CliRunner()


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tiny_draft):
    path = tmp_path_factory.mktemp("tiny") / "instruct"
    tiny_draft.model.save_pretrained(path)
    tiny_draft.tokenizer.save_pretrained(path)
    return str(path)


def train(*args: str):
    return runner.invoke(app, ["train-drafter", *args])


def test_a_bad_line_is_one_error_line_before_the_model_loads(tmp_path):
    bad = tmp_path / "prefs.jsonl"
    bad.write_text(json.dumps({"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}) + "\n"
                   + json.dumps({"prompt": "Hi", "chosen": "Hello!"}) + "\n")
    # A model that does not exist: the data is checked first, so its error never comes.
    done = train("--data", str(bad), "--output", str(tmp_path / "out"), "--model", str(tmp_path / "no-model"))
    assert done.exit_code == 1
    assert lines(done.output) == ["error: prefs.jsonl line 2: 'rejected' is missing; each record needs prompt, "
                                  "chosen and rejected"]


@pytest.mark.parametrize(("args", "message"), [
    (["--beta", "0"], "error: --beta must be greater than 0, got 0"),
    (["--max-length", "-1"], "error: --max-length must be greater than 0, got -1"),
    (["--resume"], "error: no checkpoint to resume from in"),
    (["--eval-fraction", "1"], "error: --eval-fraction must be at least 0 and less than 1, got 1"),
    (["--data", "missing.jsonl"], "error: no preference file at missing.jsonl"),
])
def test_bad_settings_are_one_line(tmp_path, tiny_dir, args, message):
    done = train("--data", DATA, "--output", str(tmp_path / "out"), "--model", tiny_dir, *args)
    assert done.exit_code == 1
    (line,) = lines(done.output)
    assert line.startswith(message)


def test_a_pair_too_long_for_max_length_is_one_line(tmp_path, tiny_dir):
    done = train("--data", DATA, "--output", str(tmp_path / "out"), "--model", tiny_dir, "--max-length", "40")
    assert done.exit_code == 1
    (line,) = lines(done.output)
    assert line.startswith("error: preferences.jsonl line 1: prompt + 'chosen' is ")
    assert line.endswith("tokens, more than --max-length 40; shorten the pair or raise --max-length")


def test_eval_drafter_on_a_model_that_is_not_a_drafter_is_one_line(tiny_dir):
    done = runner.invoke(app, ["eval-drafter", tiny_dir, "--data", HELD_OUT])
    assert done.exit_code == 1
    assert lines(done.output) == [f"error: {tiny_dir} is not a drafter trained by wsd-llm (no wsd_drafter.json); "
                                  "train one with `wsd-llm train-drafter`"]


def test_train_then_eval_a_drafter(tmp_path, tiny_dir):
    output, plot = tmp_path / "drafter", tmp_path / "eval.png"
    done = train("--data", DATA, "--eval-data", HELD_OUT, "--output", str(output), "--model", tiny_dir,
                 "--max-steps", "2", "--batch-size", "2", "--max-length", "1024")
    assert done.exit_code == 0, done.output
    assert "Held-out preferences (10 pairs, beta=0.1)" in done.output
    assert f"drafter saved to {output} after 2 steps" in done.output
    done = runner.invoke(app, ["eval-drafter", str(output), "--data", HELD_OUT, "--plot", str(plot)])
    assert done.exit_code == 0, done.output
    assert "implicit-reward accuracy" in done.output and plot.stat().st_size > 0


def test_the_commands_are_listed():
    done = runner.invoke(app, ["--help"])
    assert "train-drafter" in done.output and "eval-drafter" in done.output
