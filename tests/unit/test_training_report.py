"""The held-out preference report: what each number measures, on log-probs worked out by hand."""

import pytest
from PIL import Image
from rich.console import Console

from wsd_llm.training.rewards import PreferenceReport

# (chosen, rejected) log-probs of three pairs under the reference and the trained drafter.
REFERENCE = ([-10.0, -20.0, -5.0], [-12.0, -18.0, -9.0])  # margins 2, -2, 4
DRAFTER = ([-9.0, -19.0, -6.0], [-13.0, -18.5, -9.5])     # margins 4, -0.5, 3.5


def test_accuracies_and_margins_before_and_after():
    report = PreferenceReport.from_logprobs(0.1, REFERENCE, DRAFTER)
    assert report.pairs == 3
    assert (report.reference_accuracy, report.reference_margin) == pytest.approx((2 / 3, 4 / 3))
    assert (report.drafter_accuracy, report.drafter_margin) == pytest.approx((2 / 3, 7 / 3))
    # r = beta * (drafter log-prob - reference log-prob): reward margins 0.2, 0.15, -0.05.
    assert (report.reward_accuracy, report.reward_margin) == pytest.approx((2 / 3, 0.1))


def test_the_reference_against_itself_has_no_reward_preference():
    report = PreferenceReport.from_logprobs(0.1, REFERENCE, REFERENCE)
    assert (report.reward_accuracy, report.reward_margin) == (0, 0)
    assert report.drafter_accuracy == report.reference_accuracy


def test_table_and_plot(tmp_path):
    report = PreferenceReport.from_logprobs(0.1, REFERENCE, DRAFTER)
    console = Console(record=True, width=120)
    console.print(report.table())
    text = console.export_text()
    assert "Held-out preferences (3 pairs, beta=0.1)" in text and "+0.100" in text and "66.7%" in text
    assert Image.open(report.plot(tmp_path / "eval.png")).size == (720, 320)
