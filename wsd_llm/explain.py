"""Why did the base take over where it did? The draft, token by token, with the base's view of it.

The explanation runs in faithful mode, so the whole draft is scored and shown, including the
tokens after the switch that WSD throws away.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.text import Text

from wsd_llm.messages import Conversation, normalize_messages
from wsd_llm.pipeline import WSDPipeline
from wsd_llm.results import WSDResult

SWITCH_COLOUR = "#d6336c"


class TokenView(BaseModel):
    text: str
    prob: float
    window_mean: float | None
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
        TokenView(text=text, prob=prob, window_mean=mean, kept=i <= result.switch_index)
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
    """The draft coloured by base probability, the switch token marked, then a per-token table."""
    line = Text()
    for i, token in enumerate(explanation.tokens):
        style = f"bold {_heat(token.prob)}" if token.kept else "dim strike"
        line.append(token.text, style=style)
        if explanation.switched and i == explanation.switch_index:
            line.append(" → base ", style=f"bold white on {SWITCH_COLOUR}")
    console.print(line)
    console.print()
    for i, token in enumerate(explanation.tokens):
        mean = "" if token.window_mean is None else f"{token.window_mean:6.3f}"
        mark = "  <- switch" if explanation.switched and i == explanation.switch_index else ""
        console.print(f"{i:4d} {token.text!r:>18}  p={token.prob:6.3f}  mean={mean}{mark}",
                      style=None if token.kept else "dim")
    console.print(_summary(explanation), style="bold")


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
        models=html.escape(f"draft {result.draft_model}, base {result.base_model}"),
        colour=SWITCH_COLOUR,
    )


def _chart(explanation: Explanation, width: int = 900, height: int = 220) -> str:
    """An inline SVG: bars of p_i, the window-mean line, gamma, and the switch line."""
    count = max(len(explanation.tokens), 1)
    step = width / count

    def y(value: float) -> float:
        return height - value * (height - 10)

    bars = "".join(
        f'<rect x="{i * step:.1f}" y="{y(t.prob):.1f}" width="{max(step - 1, 1):.1f}" '
        f'height="{height - y(t.prob):.1f}" fill="{_heat(t.prob)}" opacity="{1 if t.kept else 0.35}"/>'
        for i, t in enumerate(explanation.tokens)
    )
    points = " ".join(f"{(i + 0.5) * step:.1f},{y(t.window_mean):.1f}"
                      for i, t in enumerate(explanation.tokens) if t.window_mean is not None)
    parts = [bars, f'<polyline points="{points}" fill="none" stroke="#1c4e80" stroke-width="2"/>',
             f'<line x1="0" x2="{width}" y1="{y(explanation.gamma):.1f}" y2="{y(explanation.gamma):.1f}" '
             f'stroke="#555" stroke-dasharray="6 4"/>']
    if explanation.switched:
        x = (explanation.switch_index + 1) * step
        parts.append(f'<rect x="{x - 2:.1f}" y="0" width="4" height="{height}" fill="{SWITCH_COLOUR}"/>')
    return f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}">{"".join(parts)}</svg>'


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>WSD explain</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 960px; color: #222; background: #fff; }}
.tok {{ white-space: pre-wrap; border-radius: 3px; padding: 1px 0; }}
.dropped {{ opacity: .35; text-decoration: line-through; }}
.marker {{ background: {colour}; color: #fff; font-weight: bold; padding: 2px 8px; margin: 0 4px;
           border-radius: 4px; }}
.draft {{ color: #0b7285; }} .base {{ color: #2b8a3e; }}
pre {{ white-space: pre-wrap; background: #f6f6f6; padding: 1em; }}
</style></head><body>
<h1>Weak-to-Strong Decoding, token by token</h1>
<p><b>Question:</b> {question}</p>
<p>{models}. Colour: the base model's probability of each draft token (red low, green high);
struck-through tokens were drafted but dropped after the switch.</p>
<div class="draftview">{draft}</div>
<h2>Probability (bars), window mean (line), gamma (dashed)</h2>
{chart}
<p><b>{summary}</b></p>
<h2>Reply</h2>
<pre><span class="draft">{reply_draft}</span><span class="base">{reply_base}</span></pre>
</body></html>
"""
