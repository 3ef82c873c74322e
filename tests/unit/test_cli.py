"""The ``wsd-llm`` command, run as users run it: a real process, on the tiny models saved to disk."""

import json
import os
import signal
import subprocess
import sys
import time

import openai
import pytest
import typer
from live_servers import free_port, server_process

from wsd_llm.cli import GENERATION, app, describe_switch
from wsd_llm.config import WSDConfig
from wsd_llm.results import Timings, WSDResult

GENERATING = ("generate", "explain", "run", "serve")
# `python -m wsd_llm.cli` with Ctrl-C raising KeyboardInterrupt, as in a terminal, even where the
# tests run as a background job (which starts its children with SIGINT ignored).
CTRL_C_MAIN = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
               "runpy.run_module('wsd_llm.cli', run_name='__main__')")


def result(switched: bool) -> WSDResult:
    return WSDResult(text="ab", draft_text="a", base_text="b", switched=switched, switch_index=7, draft_tokens=8,
                     base_tokens=5, prompt_tokens=12, draft_tokens_generated=16, base_tokens_forwarded=40, probs=[], tokens=[],
                     finish_reason="stop", draft_model="d", base_model="b", timings=Timings(total_s=1.25))


def wsd_llm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wsd_llm.cli", *args], check=False, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory, tiny_draft, tiny_base):
    """The tiny pair saved as model directories, so a CLI process can load them by path."""
    root = tmp_path_factory.mktemp("tiny")
    for name, lm in (("draft", tiny_draft), ("base", tiny_base)):
        lm.model.save_pretrained(root / name)
        lm.tokenizer.save_pretrained(root / name)
    return ["--draft", str(root / "draft"), "--base", str(root / "base")]


def test_switch_line_says_where_the_base_took_over():
    line = describe_switch(result(True), WSDConfig())
    assert line.startswith("switch: the base took over after 8 draft tokens (window mean reached gamma=0.8 at token 7)")
    assert "the base wrote 5 more tokens [1.2 s, finish: stop]" in line


def test_no_switch_line_says_the_draft_was_kept():
    assert describe_switch(result(False), WSDConfig(gamma=0.5)).startswith(
        "no switch: the base never reached gamma=0.5, so all 8 draft tokens were kept")


@pytest.mark.parametrize("name", GENERATING)
def test_every_generating_command_takes_wsdconfig_options_with_its_defaults(name):
    command = typer.main.get_command(app).commands[name]
    options = {param.name: param for param in command.params}
    # explain always drafts in full (faithful mode), so --mode would be ignored there.
    expected = [field for field in GENERATION if not (name == "explain" and field == "mode")]
    for field in expected:
        default = WSDConfig.model_fields[field].default
        assert options[field].default is None, f"{name} --{field} restates a default"
        assert options[field].show_default == ("none" if default in (None, ()) else str(default))
    assert set(GENERATION) - set(expected) <= {"mode"} and "max_new_tokens" in options
    assert ("system" in options) == (name in ("generate", "explain"))


def test_a_bad_option_is_one_line_without_pydantic_noise():
    done = wsd_llm("generate", "hi", "--gamma", "2")
    assert done.returncode == 2
    assert lines(done.stderr) == ["error: gamma must be at most 1, got 2"]


def test_serve_rejects_zero_workers_in_one_line():
    done = wsd_llm("serve", "--workers", "0")
    assert done.returncode == 2
    assert lines(done.stderr) == ["error: workers must be greater than 0, got 0"]


def test_a_missing_model_path_is_one_line():
    done = wsd_llm("generate", "hi", "--draft", "/no/such/model")
    assert done.returncode == 1
    expected = ("error: no model at /no/such/model: give an existing directory or .gguf file, "
                "or a hub id like org/name")
    assert lines(done.stderr) == [expected]


def test_an_unreachable_hub_id_fails_at_once_in_one_line():
    # An endpoint nothing listens on stands for "no network", whatever network the test machine has.
    done = wsd_llm("generate", "hi", "--base", "wsd-llm-tests/no-such-model", env={"HF_ENDPOINT": "http://127.0.0.1:9"})
    assert done.returncode == 1
    [line] = lines(done.stderr)
    assert line.startswith("error: wsd-llm-tests/no-such-model is not a local path")
    assert "cannot be reached" in line


def test_debug_shows_the_traceback():
    done = wsd_llm("--debug", "generate", "hi", "--draft", "/no/such/model")
    assert done.returncode == 1 and "Traceback" in done.stderr and "FileNotFoundError" in done.stderr


def test_a_base_without_chat_template_is_one_line(tiny_dirs):
    done = wsd_llm("generate", "hi", *tiny_dirs, "--base-format", "chat_template", "--max-new-tokens", "8")
    assert done.returncode == 1
    [error] = [line for line in lines(done.stderr) if line.startswith("error:")]
    assert "has no chat template" in error and "Traceback" not in done.stderr


def test_generate_streams_a_reply_with_the_given_options(tiny_dirs):
    done = wsd_llm("generate", "How are you today?", *tiny_dirs, "--gamma", "0.0035", "--max-new-tokens",
                   "12", "--max-draft-tokens", "12", "--system", "Be brief.", "--stop", "zzz")
    assert done.returncode == 0, done.stderr
    switch_line = [line for line in lines(done.stderr) if "switch" in line]
    assert len(switch_line) == 1 and "gamma=0.0035" in switch_line[0] and done.stdout.strip()
    # No deprecation noise from transformers, and no progress bar for a load of a few seconds.
    assert "deprecated" not in done.stderr and "Loading weights" not in done.stderr, done.stderr


def test_ctrl_c_keeps_finished_lines_and_says_how_to_resume(tiny_dirs, tmp_path):
    source, output = tmp_path / "prompts.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps({"instruction": f"Say {i} things."}) + "\n" for i in range(30)))
    command = [sys.executable, "-c", CTRL_C_MAIN, "run", str(source), "-o", str(output), *tiny_dirs,
               "--max-new-tokens", "8", "--max-draft-tokens", "8"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while process.poll() is None and not (output.exists() and output.read_text().count("\n") >= 1):
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    kept = output.read_text().count("\n")
    assert process.returncode == 130, stderr
    assert f"interrupted: {kept} of 30 lines are kept in {output}; run the same command again to resume" \
        in stderr
    assert 1 <= kept < 30 and "Traceback" not in stderr
    resumed = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    ids = [json.loads(line)["id"] for line in output.read_text().splitlines()]
    assert ids == [str(i) for i in range(1, 31)]


def test_serve_replies_within_its_max_new_tokens(tiny_dirs):
    port = free_port()
    command = [sys.executable, "-m", "wsd_llm.cli", "serve", "--port", str(port), *tiny_dirs,
               "--max-new-tokens", "5", "--gamma", "0.0035"]
    with server_process(command, port) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=300)
        reply = client.chat.completions.create(model="wsd", messages=[{"role": "user", "content": "Hello!"}])
    assert 0 < reply.usage.completion_tokens <= 5
