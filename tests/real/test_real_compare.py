"""``compare`` and the lm-eval model on the real pair (loaded once by the ``real_pipe`` fixture), tiny budgets."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from wsd_llm.evaluation.compare import REPLIES, SUMMARY, compare
from wsd_llm.evaluation.report import write_report
from wsd_llm.explain import PAGE_COLOURS

ROOT = Path(__file__).parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a closed network: no background requests, no first-run work, a throwaway profile.
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Layout(HTMLParser):
    """Counts what the browser's DOM holds: reply-table columns and rows, and decoded plot images."""

    def __init__(self) -> None:
        super().__init__()
        self.in_replies, self.headers, self.rows, self.plots = False, [], 0, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.in_replies = attrs.get("id") == "replies"
        elif tag == "tr" and self.in_replies:
            self.rows += 1
        elif tag == "img" and (attrs.get("src") or "").startswith("data:image/png;base64,"):
            self.plots += 1

    def handle_data(self, data):
        if self.in_replies and self.lasttag == "th" and data.strip():
            self.headers.append(data.strip())


@pytest.fixture(scope="module")
def comparison(real_pipe, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    summary, records = compare(real_pipe, ROOT / "examples" / "prompts.jsonl", out, gammas=(0.5, 0.8), limit=2,
                               progress=False, max_new_tokens=16)
    return out, summary, records, write_report(summary, records, out)


def test_compare_runs_every_system_on_the_real_pair(comparison):
    out, summary, records, _ = comparison
    assert [json.loads(line)["id"] for line in (out / REPLIES).read_text().splitlines()] == ["1", "2"]
    for record in records:
        assert set(record["systems"]) == {"base", "draft", "wsd@0.5", "wsd@0.8"}
        for reply in record["systems"].values():
            assert reply["text"].strip() and 0 < reply["tokens"] <= 16
        for name in ("wsd@0.5", "wsd@0.8"):
            wsd = record["systems"][name]
            assert wsd["text"] == wsd["draft_text"] + wsd["base_text"] and wsd["draft_text"]
    assert summary.systems["wsd@0.8"].switches.lines == 2
    assert json.loads((out / SUMMARY).read_text()) == summary.model_dump(mode="json")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test installs it)")
def test_the_report_renders_with_columns_and_plots_in_a_browser(comparison, tmp_path):
    _, _, _, page = comparison
    dom = subprocess.run([CHROMIUM, *HEADLESS, f"--user-data-dir={tmp_path / 'dom'}", "--dump-dom", page.as_uri()],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    layout = Layout()
    layout.feed(dom)
    assert layout.headers == ["prompt", "base only", "draft only", "WSD, gamma 0.5", "WSD, gamma 0.8"]
    assert layout.rows == 3 and layout.plots == 2  # header + 2 prompts; a switch histogram per gamma

    shot = tmp_path / "compare.png"
    subprocess.run([CHROMIUM, *HEADLESS, f"--user-data-dir={tmp_path / 'shot'}", "--window-size=1300,1400",
                    f"--screenshot={shot}", page.as_uri()], check=True, capture_output=True, timeout=120)
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)
    assert len(colours) > 50, "the page rendered blank or nearly blank"
    draft_background = tuple(int(PAGE_COLOURS["draft"][1][i : i + 2], 16) for i in (1, 3, 5))
    assert sum(count for count, colour in colours if colour == draft_background) > 500, "no draft text marked"


def test_lm_eval_scores_the_example_task_with_the_wsd_model(real_pipe):
    import lm_eval
    from lm_eval.tasks import TaskManager

    from wsd_llm.evaluation.lm_eval_model import WSDLM

    results = lm_eval.simple_evaluate(model=WSDLM(pipeline=real_pipe), tasks=["wsd_arithmetic"], limit=2,
                                      task_manager=TaskManager(include_path=str(ROOT / "examples" / "lm_eval")))
    metrics = results["results"]["wsd_arithmetic"]
    assert 0.0 <= metrics["exact_match,last_number"] <= 1.0
    assert results["n-samples"]["wsd_arithmetic"]["effective"] == 2


def test_a_trained_drafters_implicit_reward_scores_every_system(real_pipe, trained_drafter, tmp_path):
    from wsd_llm.training import ImplicitReward

    scorer = ImplicitReward.from_drafter(trained_drafter)
    summary, records = compare(real_pipe, ROOT / "examples" / "prompts.jsonl", tmp_path, gammas=(0.5,), limit=2,
                               scorers=[scorer], progress=False, max_new_tokens=16)
    systems = {"base", "draft", "wsd@0.5"}
    assert all(set(record["rewards"][scorer.name]) == systems for record in records)
    rewards = [value for record in records for value in record["rewards"][scorer.name].values()]
    assert all(isinstance(value, float) for value in rewards) and any(value != 0 for value in rewards)
    (scored,) = summary.scorers
    assert scored.name == scorer.name and "implicit" in scored.measures.lower()
    assert set(scored.win_rates["wsd@0.5"]) == {"base", "draft"}
    page = write_report(summary, records, tmp_path)
    assert scorer.name in page.read_text()
