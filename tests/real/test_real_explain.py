"""The explain view on the real pair, rendered in headless Chromium."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from PIL import Image

from wsd_llm.explain import PAGE_COLOURS, SWITCH_COLOUR, explain, render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a closed network: no background requests, no first-run work, a throwaway profile.
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def screenshot(page, tmp_path):
    shot = tmp_path / "explain.png"
    subprocess.run([CHROMIUM, *HEADLESS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,900",
                    f"--screenshot={shot}", page.as_uri()], check=True, capture_output=True, timeout=120)
    return Image.open(shot).convert("RGB")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test installs it)")
def test_explain_page_renders_with_the_switch_marker(real_pipe, tmp_path):
    explanation = explain(real_pipe, "Give me three tips for learning Python.", gamma=0.5)
    assert explanation.switched and explanation.tokens[explanation.switch_index].kept
    assert not explanation.tokens[-1].kept
    page = tmp_path / "explain.html"
    page.write_text(render_html(explanation), encoding="utf-8")

    image = screenshot(page, tmp_path)
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 50, "the page rendered blank or nearly blank"

    def pixels(hex_colour):
        rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        return sum(count for count, colour in colours if colour == rgb)

    assert pixels(SWITCH_COLOUR) > 500, "no switch marker on the page"
    assert pixels(PAGE_COLOURS["draft"][1]) > 500, "the reply does not set the draft's text apart"
