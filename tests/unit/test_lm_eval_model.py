"""The lm-eval ``wsd`` model on the tiny pair: requests in, replies out, as lm-eval drives it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lm_eval.api.instance import Instance
from lm_eval.api.registry import get_model

from wsd_llm.baselines import base_only
from wsd_llm.evaluation.lm_eval_model import WSDLM

EXAMPLES = Path(__file__).parents[2] / "examples" / "lm_eval"


def request(context, **gen_kwargs):
    return Instance(request_type="generate_until", doc={}, arguments=(context, gen_kwargs), idx=0)


def test_the_model_is_registered_as_wsd():
    assert get_model("wsd") is WSDLM


def test_replies_honour_until_and_max_gen_toks_and_batches_match_single_runs(tiny_pipe):
    requests = [request("Hello world!", until=["o"], max_gen_toks=12), request("How are you today?", max_gen_toks=6),
                request("Take breaks.", until="\n", max_gen_toks=6)]
    one = WSDLM(pipeline=tiny_pipe).generate_until(requests, disable_tqdm=True)
    assert "o" not in one[0]
    expected = tiny_pipe.generate("How are you today?", max_new_tokens=6)
    assert one[1] == expected.text and expected.completion_tokens <= 6
    # Three at a time: the one-shot batch path, which the tests of the pipeline hold equal to single runs.
    assert WSDLM(pipeline=tiny_pipe, batch_size=3).generate_until(requests, disable_tqdm=True) == one


def test_base_alone_is_the_same_base_only_reply_as_compare_uses(tiny_pipe):
    model = WSDLM(pipeline=tiny_pipe, system="base")
    (reply,) = model.generate_until([request("Hello world!", until=["\n\n"], max_gen_toks=8)], disable_tqdm=True)
    assert reply == base_only(tiny_pipe.base, "Hello world!", tiny_pipe.config.updated(max_new_tokens=8,
                                                                                        stop=["\n\n"])).text


def test_chat_histories_from_apply_chat_template_are_kept_as_conversations(tiny_pipe):
    model = WSDLM(pipeline=tiny_pipe, gamma=0.5)
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    context = model.apply_chat_template(history)
    (reply,) = model.generate_until([request(context, max_gen_toks=6)], disable_tqdm=True)
    assert reply == tiny_pipe.generate(history, max_new_tokens=6, gamma=0.5).text


def test_likelihood_requests_are_refused_with_what_to_run_instead(tiny_pipe):
    model = WSDLM(pipeline=tiny_pipe)
    for method in (model.loglikelihood, model.loglikelihood_rolling):
        with pytest.raises(NotImplementedError, match="WSD does not change the likelihood .*--model hf"):
            method([])


def test_bad_arguments_are_one_line_errors(tiny_pipe):
    with pytest.raises(ValueError, match="system must be wsd, base or draft, got 'both'"):
        WSDLM(pipeline=tiny_pipe, system="both")
    with pytest.raises(ValueError, match="gamma must be at most 1, got 2"):
        WSDLM(pipeline=tiny_pipe, gamma=2)


def test_wsd_lm_eval_runs_lm_evals_cli_with_the_model_registered(tiny_draft, tiny_base, tmp_path):
    for name, lm in (("draft", tiny_draft), ("base", tiny_base)):
        lm.model.save_pretrained(tmp_path / name)
        lm.tokenizer.save_pretrained(tmp_path / name)
    args = ["--model", "wsd", "--model_args", f"draft={tmp_path / 'draft'},base={tmp_path / 'base'},gamma=0.5",
            "--include_path", str(EXAMPLES), "--tasks", "wsd_arithmetic", "--limit", "2",
            "--output_path", str(tmp_path / "results")]
    done = subprocess.run([sys.executable, "-m", "wsd_llm.evaluation.lm_eval_model", *args], check=False,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "HF_DATASETS_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = (tmp_path / "results").rglob("results_*.json")
    metrics = json.loads(path.read_text())["results"]["wsd_arithmetic"]
    assert 0.0 <= metrics["exact_match,last_number"] <= 1.0


def test_wsd_lm_eval_says_what_is_wrong_in_model_args_in_one_line_before_loading():
    args = ["--model", "wsd", "--model_args", "draft=/nowhere,gama=0.8", "--tasks", "wsd_arithmetic",
            "--include_path", str(EXAMPLES)]
    done = subprocess.run([sys.executable, "-m", "wsd_llm.evaluation.lm_eval_model", *args], check=False,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --model_args: unknown generation option(s): gama")
    assert "Traceback" not in done.stderr
