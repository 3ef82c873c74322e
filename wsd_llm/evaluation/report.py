"""The comparison as files a person reads: PNG plots and one self-contained HTML page.

The page has no external resource (inline CSS, plots as base64 PNGs), so it opens offline and can
be mailed around. Replies are untrusted text: the template escapes everything it is given.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from wsd_llm.datasets import histogram_png
from wsd_llm.evaluation.compare import BASE, DRAFT, REPORT, CompareSummary
from wsd_llm.evaluation.stats import CONFIDENCE
from wsd_llm.explain import PAGE_COLOURS, SWITCH_COLOUR

TEMPLATES = Path(__file__).parent / "templates"
SYSTEM_COLOURS = {BASE: "#2b8a3e", DRAFT: "#1864ab"}
WSD_COLOURS = ("#d6336c", "#f08c00", "#7048e8", "#0c8599", "#5c940d")


def system_label(name: str) -> str:
    """How a system is named on the page."""
    return {BASE: "base only", DRAFT: "draft only"}.get(name, name.replace("wsd@", "WSD, gamma "))


def write_plots(summary: CompareSummary, records: list[dict[str, Any]], output: Path) -> list[tuple[Path, str]]:
    """Switch-position histograms (one per gamma) and reward distributions (one per scorer), as PNGs.

    Returns:
        ``(path, caption)`` of each PNG, in the order the report shows them.
    """
    plots = []
    for name, system in summary.systems.items():
        if system.switches is not None:
            path = histogram_png(system.switches, output / f"switch-{name.replace('@', '-')}.png")
            plots.append((path, f"{system_label(name)}: where the base took over"))
    for index, scorer in enumerate(summary.scorers):
        path = _reward_png(scorer.name, records, list(summary.systems), output / f"rewards-{index}.png")
        plots.append((path, f"{scorer.name}: scores of each system's replies"))
    return plots


def _reward_png(scorer: str, records: list[dict[str, Any]], systems: list[str], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = [[record["rewards"][scorer][name] for record in records] for name in systems]
    figure, axes = plt.subplots(figsize=(8, 4))
    parts = axes.boxplot(values, patch_artist=True, showmeans=True)
    axes.set_xticks(range(1, len(systems) + 1), [system_label(name) for name in systems])
    for patch, name in zip(parts["boxes"], systems):
        patch.set_facecolor(_colour(name, systems))
        patch.set_alpha(0.5)
    axes.set_ylabel("score")
    axes.set_title(f"{scorer}: scores per system ({len(records)} prompts; triangle = mean)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _colour(name: str, systems: list[str]) -> str:
    wsd = [s for s in systems if s not in SYSTEM_COLOURS]
    return SYSTEM_COLOURS.get(name) or WSD_COLOURS[wsd.index(name) % len(WSD_COLOURS)]


def render_html(summary: CompareSummary, records: list[dict[str, Any]], plots: list[tuple[Path, str]]) -> str:
    """The report page: settings, a table per system (speed, switches, mean scores), WSD's win rates,
    the plots, and every prompt's replies in columns with the draft and base parts of WSD marked."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                              trim_blocks=True, lstrip_blocks=True)
    environment.filters["label"] = system_label
    images = [(path.stem, caption, base64.b64encode(path.read_bytes()).decode("ascii")) for path, caption in plots]
    return environment.get_template("compare.html.j2").render(
        summary=summary, records=records, systems=list(summary.systems), images=images,
        draft_colour=PAGE_COLOURS["draft"], base_colour=PAGE_COLOURS["base"], switch_colour=SWITCH_COLOUR, confidence=CONFIDENCE,
    )


def write_report(summary: CompareSummary, records: list[dict[str, Any]], output: Path) -> Path:
    """Write the plots and ``report.html`` into ``output``; returns the page's path."""
    page = output / REPORT
    page.write_text(render_html(summary, records, write_plots(summary, records, output)), encoding="utf-8")
    return page
