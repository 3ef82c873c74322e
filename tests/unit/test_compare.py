"""``wsd-llm compare`` end to end on the tiny pair saved to disk, scored by a tiny reward model built
from a config (mechanics only: its scores mean nothing)."""

from __future__ import annotations

import json
import sys
import types

import pytest
from tiny_models import tiny_draft_tokenizer
from transformers import LlamaConfig, LlamaForSequenceClassification
from typer.testing import CliRunner

from wsd_llm.cli import app
from wsd_llm.evaluation.compare import REPLIES, REPORT, SUMMARY
from wsd_llm.evaluation.scoring import IMPLICIT_REWARD_MEANS, RewardModel

PROMPTS = ['{"instruction": "Hello world!"}', '{"instruction": "How are you today?", "id": "q2"}',
           '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Take breaks."}]}',
           '{"instruction": "Set goals."}']
BUDGET = ["--max-new-tokens", "8", "--max-draft-tokens", "8"]


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory, tiny_draft, tiny_base):
    root = tmp_path_factory.mktemp("tiny")
    for name, lm in (("draft", tiny_draft), ("base", tiny_base)):
        lm.model.save_pretrained(root / name)
        lm.tokenizer.save_pretrained(root / name)
    return ["--draft", str(root / "draft"), "--base", str(root / "base")]


@pytest.fixture(scope="module")
def reward_dir(tmp_path_factory):
    """A tiny Llama sequence classifier with one label and the draft's chat-templated tokenizer."""
    tokenizer = tiny_draft_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256, num_labels=1,
                         pad_token_id=tokenizer.eos_token_id)
    path = tmp_path_factory.mktemp("reward")
    LlamaForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
    return path


def invoke(*args: str):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def test_compare_writes_replies_summary_plots_and_report_and_resumes(tiny_dirs, reward_dir, prompts, tmp_path):
    out = tmp_path / "report"
    args = ["compare", prompts, "-o", out, *tiny_dirs, *BUDGET, "--gamma", "0.5", "--gamma", "0.9",
            "--limit", "3", "--reward-model", reward_dir]
    done = invoke(*args)
    assert done.exit_code == 0, done.output
    records = [json.loads(line) for line in (out / REPLIES).read_text().splitlines()]
    assert [r["id"] for r in records] == ["1", "q2", "3"]
    systems = ["base", "draft", "wsd@0.5", "wsd@0.9"]
    for record in records:
        assert list(record["systems"]) == systems
        for name in systems:
            reply = record["systems"][name]
            assert isinstance(reply["text"], str) and reply["tokens"] <= 8 and reply["seconds"] > 0
        wsd = record["systems"]["wsd@0.5"]
        assert wsd["text"] == wsd["draft_text"] + wsd["base_text"]
        assert wsd["draft_share"] == pytest.approx(wsd["draft_tokens"] / wsd["tokens"]) if wsd["tokens"] else True
        assert set(record["rewards"][f"reward: {reward_dir.name}"]) == set(systems)

    summary = json.loads((out / SUMMARY).read_text())
    assert summary["prompts"] == 3 and summary["systems"]["wsd@0.9"]["switches"]["lines"] == 3
    assert summary["systems"]["base"]["switches"] is None
    (scorer,) = summary["scorers"]
    rate = scorer["win_rates"]["wsd@0.5"]["base"]
    assert rate["wins"] + rate["ties"] + rate["losses"] == 3 and rate["low"] <= rate["rate"] <= rate["high"]
    assert scorer["measures"].startswith("a reward model's score")

    page = (out / REPORT).read_text()
    assert page.count('src="data:image/png;base64,') == 3  # two switch histograms, one reward plot
    assert "http://" not in page and "https://" not in page
    assert sorted(p.name for p in out.glob("*.png")) == ["rewards-0.png", "switch-wsd-0.5.png", "switch-wsd-0.9.png"]
    assert "WSD, gamma 0.5" in page and "Take breaks." in page

    # A rerun with the same settings generates nothing new and keeps the lines; other settings are refused.
    before = [r["systems"] for r in records]
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert [json.loads(line)["systems"] for line in (out / REPLIES).read_text().splitlines()] == before
    other = invoke("compare", prompts, "-o", out, *tiny_dirs, *BUDGET, "--gamma", "0.7")
    assert other.exit_code == 1
    assert "holds a comparison made with other settings (systems differ)" in other.output


def test_untrusted_reply_text_is_escaped_in_the_report(tiny_dirs, prompts, tmp_path):
    from wsd_llm.evaluation.compare import CompareSummary, SystemSummary
    from wsd_llm.evaluation.report import render_html

    record = {"id": "x", "messages": [{"role": "user", "content": "<script>alert(1)</script>"}],
              "systems": {"base": {"text": "<img src=x onerror=alert(2)>", "tokens": 1, "seconds": 0.1}}}
    summary = CompareSummary(prompts=1, draft_model="d", base_model="<b>", settings={}, scorers=[],
                             systems={"base": SystemSummary(mean_tokens=1, mean_seconds=0.1, tokens_per_second=10)})
    page = render_html(summary, [record], [])
    assert "<script>alert" not in page and "<img src=x" not in page and "&lt;b&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_implicit_reward_of_a_trained_drafter_is_a_scorer(tiny_dirs, prompts, tmp_path, monkeypatch):
    """The training code is another helper's; a stand-in of its interface checks the wiring here."""

    class ImplicitReward:
        beta, name = 0.1, "implicit reward (drafter)"

        @classmethod
        def from_drafter(cls, path):
            cls.loaded = path
            return cls()

        def score(self, conversations, replies):
            assert len(conversations) == len(replies) and conversations[0][-1]["role"] == "user"
            return [float(len(reply)) for reply in replies]

    module = types.ModuleType("wsd_llm.training.rewards")
    module.ImplicitReward = ImplicitReward
    monkeypatch.setitem(sys.modules, "wsd_llm.training", types.ModuleType("wsd_llm.training"))
    monkeypatch.setitem(sys.modules, "wsd_llm.training.rewards", module)
    drafter = tmp_path / "drafter"
    drafter.mkdir()
    out = tmp_path / "report"
    done = invoke("compare", prompts, "-o", out, *tiny_dirs, *BUDGET, "--limit", "2", "--implicit-reward", drafter)
    assert done.exit_code == 0, done.output
    assert ImplicitReward.loaded == drafter
    (scorer,) = json.loads((out / SUMMARY).read_text())["scorers"]
    records = [json.loads(line) for line in (out / REPLIES).read_text().splitlines()]
    assert scorer["mean"]["draft"] == pytest.approx(sum(len(r["systems"]["draft"]["text"]) for r in records) / 2)
    assert scorer["measures"] == f"{IMPLICIT_REWARD_MEANS} (beta=0.1)"
    assert "not a human-preference reward model" in (out / REPORT).read_text()


@pytest.mark.parametrize(("lines", "expected"), [
    (['{"instruction": "hi"}', '{"prompt": "hi"}'], "prompts.jsonl line 2: a line needs 'messages'"),
    (['{"instruction": "hi"}', "not json"], "prompts.jsonl line 2:"),
])
def test_a_bad_prompts_file_fails_before_any_model_loads(lines, expected, tmp_path):
    source = tmp_path / "prompts.jsonl"
    source.write_text("\n".join(lines), encoding="utf-8")
    done = invoke("compare", source, "-o", tmp_path / "out", "--draft", tmp_path / "missing")
    assert done.exit_code == 1
    assert expected in done.output and len(done.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_models_fail_in_one_line_before_generation(tiny_dirs, prompts, tmp_path):
    out = tmp_path / "out"
    not_reward = invoke("compare", prompts, "-o", out, *tiny_dirs, "--reward-model", tiny_dirs[1])
    assert not_reward.exit_code == 1
    assert "is not a reward model: its architecture is LlamaForCausalLM" in not_reward.output
    missing = invoke("compare", prompts, "-o", out, *tiny_dirs, "--reward-model", tmp_path / "nope")
    assert missing.exit_code == 1 and "no model at" in missing.output
    no_drafter = invoke("compare", prompts, "-o", out, *tiny_dirs, "--implicit-reward", tmp_path / "nope")
    assert no_drafter.exit_code == 1 and "no trained drafter at" in no_drafter.output
    no_base = invoke("compare", prompts, "-o", out, "--draft", tiny_dirs[1], "--base", tmp_path / "nope")
    assert no_base.exit_code == 1 and "no model at" in no_base.output
    bad_gamma = invoke("compare", prompts, "-o", out, *tiny_dirs, "--gamma", "2")
    assert bad_gamma.exit_code == 2 and "gamma must be at most 1, got 2" in bad_gamma.output
    assert not out.exists()


def test_the_reward_model_uses_a_chat_template_or_the_plain_format(reward_dir, tiny_base):
    scorer = RewardModel.from_pretrained(reward_dir, device="cpu", batch_size=2)
    conversation = [{"role": "user", "content": "Hello"}]
    assert scorer.format(conversation, "Hi!") == ("<|im_start|>user\nHello<|im_end|>\n"
                                                  "<|im_start|>assistant\nHi!<|im_end|>\n")
    scores = scorer.score([conversation] * 3, ["Hi!", "Hello world, how are you today?", "Hi!"])
    assert len(scores) == 3 and scores[0] == pytest.approx(scores[2], abs=1e-5)  # batch padding changes nothing
    plain = RewardModel(scorer.model, tiny_base.tokenizer, name="plain")
    assert plain.format(conversation, " Hi! ") == "\n\n[User]\nHello\n\n[Assistant]\nHi!"


def test_compare_is_listed_by_help_without_torch_numpy_or_jinja():
    import subprocess

    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in ("torch", "transformers", "numpy", "jinja2",
                                                                      "matplotlib", "lm_eval"))
    code = f"import sys; {blocked}; sys.argv = ['wsd-llm', '--help']; from wsd_llm.cli import app; app()"
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "compare" in done.stdout
