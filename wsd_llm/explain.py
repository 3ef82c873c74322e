"""Why did the base take over where it did? The draft, token by token, with the base's view of it.

The explanation runs in faithful mode, so the whole draft is scored and shown, including the
tokens after the switch that WSD throws away.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from rich.console import Console
from rich.text import Text

from wsd_llm.messages import Conversation, normalize_messages
from wsd_llm.results import WSDResult

if TYPE_CHECKING:
    from wsd_llm.pipeline import WSDPipeline

SWITCH_COLOUR = "#d6336c"
# Who wrote which part of the reply: rich colour names in the terminal, (text, background) in the page.
TERMINAL_COLOURS = {"draft": "cyan", "base": "green"}
PAGE_COLOURS = {"draft": ("#1864ab", "#d0ebff"), "base": ("#2b8a3e", "transparent")}
MEAN_COLOUR = "#1c4e80"


class TokenView(BaseModel):
    """One draft token (in base tokens) as the base saw it."""

    text: str
    prob: float
    window_mean: float | None  # None until the window is full, or for a policy without window means
    kept: bool


class Explanation(BaseModel):
    """The draft's tokens with the base's probabilities, the window means and the switch point."""

    question: str
    tokens: list[TokenView]
    gamma: float
    window: int
    switched: bool
    switch_index: int
    result: WSDResult


def explain(pipe: WSDPipeline, messages: Conversation, **options: Any) -> Explanation:
    """Run WSD on ``messages`` in faithful mode and pair every draft token with its scores."""
    result = pipe.generate(messages, **{**options, "mode": "faithful"})
    config = pipe.config.updated(**options)
    policy = config.policy
    means: Sequence[float | None] = (
        policy.window_means(result.probs) if hasattr(policy, "window_means") else [None] * len(result.probs)
    )
    tokens = [
        TokenView(text=text, prob=prob, window_mean=mean if i + 1 >= config.window else None,
                  kept=i <= result.switch_index)
        for i, (text, prob, mean) in enumerate(zip(result.tokens, result.probs, means))
    ]
    question = normalize_messages(messages)[-1]["content"]
    return Explanation(question=question, tokens=tokens, gamma=config.gamma, window=config.window,
                       switched=result.switched, switch_index=result.switch_index, result=result)


def _heat(prob: float) -> str:
    """Light red for tokens the base finds unlikely, light green for tokens it would write itself."""
    red, green = int(255 - 95 * prob), int(160 + 80 * prob)
    return f"#{red:02x}{green:02x}a0"


def render_terminal(explanation: Explanation, console: Console) -> None:
    """The draft coloured by base probability with the switch marked, a per-token table, the reply."""
    line = Text()
    for i, token in enumerate(explanation.tokens):
        style = f"bold {_heat(token.prob)}" if token.kept else "dim strike"
        line.append(token.text, style=style)
        if explanation.switched and i == explanation.switch_index:
            line.append(" → base ", style=f"bold white on {SWITCH_COLOUR}")
    console.print(line)
    console.print()
    console.print(f"{'#':>4} {'token':>18}  {'p':>8}  window mean (w={explanation.window})")
    for i, token in enumerate(explanation.tokens):
        mean = "" if token.window_mean is None else f"{token.window_mean:.3f}"
        mark = "  <- switch" if explanation.switched and i == explanation.switch_index else ""
        console.print(f"{i:4d} {token.text!r:>18}  p={token.prob:6.3f}  {mean:>5}{mark}".rstrip(),
                      style=None if token.kept else "dim")
    console.print(_summary(explanation), style="bold")
    console.print()
    result = explanation.result
    legend = Text("Reply: ").append("draft", style=TERMINAL_COLOURS["draft"]).append(" + ")
    console.print(legend.append("base", style=TERMINAL_COLOURS["base"]), style="bold")
    reply = Text(result.draft_text, style=TERMINAL_COLOURS["draft"])
    console.print(reply.append(result.base_text, style=TERMINAL_COLOURS["base"]))


def _summary(explanation: Explanation) -> str:
    if explanation.switched:
        return (f"switch at token {explanation.switch_index}: window mean over {explanation.window} tokens "
                f"reached gamma={explanation.gamma}; the base wrote the rest")
    return f"no switch: no window mean reached gamma={explanation.gamma}; the whole draft was kept"


def render_html(explanation: Explanation) -> str:
    """A self-contained page: the coloured draft, a chart of p and the window mean, the reply."""
    spans = []
    for i, token in enumerate(explanation.tokens):
        mean = "n/a" if token.window_mean is None else f"{token.window_mean:.3f}"
        classes = "tok" if token.kept else "tok dropped"
        spans.append(f'<span class="{classes}" style="background:{_heat(token.prob)}" '
                     f'title="#{i} p={token.prob:.3f} mean={mean}">{html.escape(token.text)}</span>')
        if explanation.switched and i == explanation.switch_index:
            spans.append('<span id="switch-marker" class="marker">&#8594; base</span>')
    result = explanation.result
    return _PAGE.format(
        question=html.escape(explanation.question),
        draft="".join(spans),
        chart=_chart(explanation),
        summary=html.escape(_summary(explanation)),
        reply_draft=html.escape(result.draft_text),
        reply_base=html.escape(result.base_text),
        draft_model=html.escape(result.draft_model),
        base_model=html.escape(result.base_model),
        switch_colour=SWITCH_COLOUR,
        draft_colour=PAGE_COLOURS["draft"][0],
        draft_background=PAGE_COLOURS["draft"][1],
        base_colour=PAGE_COLOURS["base"][0],
        base_background=PAGE_COLOURS["base"][1],
    )


def _tick_step(count: int, most: int = 16) -> int:
    """A round step (1, 2, 5, 10, 20, 50...) giving at most ``most`` ticks over ``count`` tokens."""
    scale = 1
    while True:
        for multiple in (1, 2, 5):
            if count <= most * multiple * scale:
                return multiple * scale
        scale *= 10


def _chart(explanation: Explanation, width: int = 900, height: int = 300) -> str:
    """An inline SVG with axes: bars of p per draft token, the window-mean line, gamma, the switch."""
    left, right, top, bottom = 56, 16, 34, 44  # margins for the tick labels, the legend and the axis titles
    plot_w, plot_h = width - left - right, height - top - bottom
    count = max(len(explanation.tokens), 1)
    step = plot_w / count

    def x(index: float) -> float:
        return left + index * step

    def y(value: float) -> float:
        return top + (1 - value) * plot_h

    parts: list[str] = []
    for value in (0.0, 0.25, 0.5, 0.75, 1.0):  # y axis: grid lines and their labels
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     f'stroke="#e9ecef"/>'
                     f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:g}</text>')
    tick = _tick_step(count)
    for index in range(0, count, tick):  # x axis: token index ticks
        parts.append(f'<line x1="{x(index + 0.5):.1f}" x2="{x(index + 0.5):.1f}" y1="{y(0):.1f}" '
                     f'y2="{y(0) + 5:.1f}" stroke="#495057"/>'
                     f'<text x="{x(index + 0.5):.1f}" y="{y(0) + 18:.1f}" text-anchor="middle">'
                     f'{index}</text>')
    for i, token in enumerate(explanation.tokens):
        parts.append(f'<rect x="{x(i):.1f}" y="{y(token.prob):.1f}" width="{max(step - 1, 1):.1f}" '
                     f'height="{y(0) - y(token.prob):.1f}" fill="{_heat(token.prob)}" '
                     f'opacity="{1 if token.kept else 0.35}"><title>#{i} p={token.prob:.3f}</title></rect>')
    points = " ".join(f"{x(i + 0.5):.1f},{y(t.window_mean):.1f}"
                      for i, t in enumerate(explanation.tokens) if t.window_mean is not None)
    if points:
        parts.append(f'<polyline points="{points}" fill="none" stroke="{MEAN_COLOUR}" stroke-width="2"/>')
    gamma = y(explanation.gamma)
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{gamma:.1f}" y2="{gamma:.1f}" stroke="#495057" '
                 f'stroke-dasharray="6 4"/>')
    if explanation.switched:
        at = x(explanation.switch_index + 1)
        parts.append(f'<rect x="{at - 2:.1f}" y="{top}" width="4" height="{plot_h}" fill="{SWITCH_COLOUR}"/>'
                     f'<text x="{at + 6:.1f}" y="{top + 12}" fill="{SWITCH_COLOUR}" font-weight="bold" '
                     f'stroke="#fff" stroke-width="3" paint-order="stroke">'
                     f'switch: base takes over</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{y(0):.1f}" stroke="#495057"/>'
                 f'<line x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#495057"/>'
                 f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">base probability</text>'
                 f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                 f'draft token (base tokens; faded: dropped after the switch)</text>')
    parts.append(_legend(explanation, left))
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" font-size="12" '
            f'font-family="system-ui, sans-serif" fill="#212529">{"".join(parts)}</svg>')


def _legend(explanation: Explanation, left: int) -> str:
    entries = [
        (f'<rect x="0" y="-9" width="14" height="10" fill="{_heat(0.2)}"/><rect x="14" y="-9" width="14" '
         f'height="10" fill="{_heat(0.9)}"/><text x="34" y="0">p: base probability of the token</text>'),
        (f'<line x1="0" x2="28" y1="-4" y2="-4" stroke="{MEAN_COLOUR}" stroke-width="2"/>'
         f'<text x="34" y="0">window mean (last {explanation.window} tokens)</text>'),
        (f'<line x1="0" x2="28" y1="-4" y2="-4" stroke="#495057" stroke-dasharray="6 4"/>'
         f'<text x="34" y="0">gamma = {explanation.gamma:g}</text>'),
    ]
    offsets = (0, 250, 470)
    return "".join(f'<g transform="translate({left + dx},16)">{entry}</g>'
                   for dx, entry in zip(offsets, entries))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>WSD explain</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 960px; color: #222; background: #fff; }}
.tok {{ white-space: pre-wrap; border-radius: 3px; padding: 1px 0; }}
.dropped {{ opacity: .35; text-decoration: line-through; }}
.marker {{ background: {switch_colour}; color: #fff; font-weight: bold; padding: 2px 8px; margin: 0 4px;
           border-radius: 4px; }}
.draft {{ color: {draft_colour}; background: {draft_background}; }}
.base {{ color: {base_colour}; background: {base_background}; }}
.key {{ padding: 1px 6px; border-radius: 3px; border: 1px solid #ced4da; }}
pre {{ white-space: pre-wrap; border: 1px solid #ced4da; border-radius: 4px; padding: 1em; }}
</style></head><body>
<h1>Weak-to-Strong Decoding, token by token</h1>
<p><b>Question:</b> {question}</p>
<p>Draft model {draft_model}, base model {base_model}. Colour: the base model's probability of each
draft token (red low, green high); struck-through tokens were drafted but dropped after the switch.</p>
<div class="draftview">{draft}</div>
<h2>The base's probabilities and the switch rule</h2>
{chart}
<p><b>{summary}</b></p>
<h2>Reply</h2>
<p class="legend"><span class="key draft">written by the draft ({draft_model})</span>
<span class="key base">written by the base ({base_model})</span></p>
<pre><span class="draft">{reply_draft}</span><span class="base">{reply_base}</span></pre>
</body></html>
"""
