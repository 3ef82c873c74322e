import re

from rich.console import Console

from wsd_llm.explain import PAGE_COLOURS, explain, render_html, render_terminal


def switched_explanation(pipe, **options):
    """The tiny pair with a gamma low enough for its random base to take over."""
    settings = {"gamma": 0.0035, "max_new_tokens": 24, "max_draft_tokens": 24, **options}
    return explain(pipe, "How are you today?", **settings)


def test_html_marks_the_switch_and_dropped_tokens(tiny_pipe):
    explanation = switched_explanation(tiny_pipe)
    assert explanation.switched
    assert [t.kept for t in explanation.tokens] == [i <= explanation.switch_index
                                                    for i in range(len(explanation.tokens))]
    assert [t.prob for t in explanation.tokens] == explanation.result.probs
    page = render_html(explanation)
    assert page.count('id="switch-marker"') == 1 and page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "http" not in page.split("</head>")[1]  # self-contained


def test_no_marker_without_a_switch(tiny_pipe):
    explanation = explain(tiny_pipe, "How are you today?", gamma=1.0, max_new_tokens=24, max_draft_tokens=24)
    assert not explanation.switched and all(t.kept for t in explanation.tokens)
    assert 'id="switch-marker"' not in render_html(explanation)


def test_no_window_mean_until_the_window_is_full(tiny_pipe):
    explanation = explain(tiny_pipe, "Hello!", gamma=0.0035, window=3, max_new_tokens=16, max_draft_tokens=16)
    means = [t.window_mean for t in explanation.tokens]
    assert means[:2] == [None, None] and all(m > 0 for m in means[2:])


def test_the_chart_has_axes_a_scale_and_a_legend(tiny_pipe):
    explanation = switched_explanation(tiny_pipe)
    chart = render_html(explanation).split("<svg", 1)[1].split("</svg>", 1)[0]
    labels = re.findall(r">([^<>]+)</text>", chart)
    assert ["0", "0.25", "0.5", "0.75", "1"] == labels[:5]  # the probability scale
    ticks = [int(label) for label in labels[5:] if label.isdigit()]  # the token index scale
    assert len(ticks) > 2 and ticks[0] == 0 and ticks == sorted(ticks) and ticks[-1] < len(explanation.tokens)
    assert {"base probability", "gamma = 0.0035", "window mean (last 6 tokens)"} <= set(labels)
    assert any(label.startswith("draft token") for label in labels)
    assert any(label.startswith("switch") for label in labels)


def test_the_reply_tells_draft_and_base_apart_with_a_legend(tiny_pipe):
    explanation = switched_explanation(tiny_pipe)
    page = render_html(explanation)
    draft, base = PAGE_COLOURS["draft"], PAGE_COLOURS["base"]
    assert draft[0] != base[0] and draft[1] != base[1]  # text and background both differ
    reply = page.split("<h2>Reply</h2>", 1)[1]
    assert f"written by the draft ({explanation.result.draft_model})" in reply
    assert f"written by the base ({explanation.result.base_model})" in reply


def test_the_terminal_shows_no_mean_before_the_window_is_full_and_the_base_text(tiny_pipe):
    explanation = switched_explanation(tiny_pipe, window=4)
    assert explanation.result.base_text  # the base wrote something to show
    console = Console(record=True, width=200, force_terminal=False)
    render_terminal(explanation, console)
    text = console.export_text()
    rows = [line for line in text.splitlines() if re.match(r"\s*\d+ ", line)]
    assert len(rows) == len(explanation.tokens)
    assert all(not re.search(r"p=\s*[\d.]+\s+[\d.]", row) for row in rows[:3])  # no mean for tokens 0-2
    assert all(re.search(r"p=\s*[\d.]+\s+[\d.]+", row) for row in rows[3:])
    assert "Reply: draft + base" in text
    assert (explanation.result.draft_text + explanation.result.base_text).strip() in text
