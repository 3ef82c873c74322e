import subprocess
import sys

from wsd_llm.cli import describe_switch
from wsd_llm.config import WSDConfig
from wsd_llm.results import Timings, WSDResult


def result(switched: bool) -> WSDResult:
    return WSDResult(text="ab", draft_text="a", base_text="b", switched=switched, switch_index=7, draft_tokens=8,
                     base_tokens=5, prompt_tokens=12, draft_tokens_generated=16, base_tokens_forwarded=40, probs=[], tokens=[],
                     finish_reason="stop", draft_model="d", base_model="b", timings=Timings(total_s=1.25))


def test_switch_line_says_where_the_base_took_over():
    line = describe_switch(result(True), WSDConfig())
    assert line.startswith("switch: the base took over after 8 draft tokens (window mean reached gamma=0.8 at token 7)")
    assert "the base wrote 5 more tokens [1.2 s, finish: stop]" in line


def test_no_switch_line_says_the_draft_was_kept():
    assert describe_switch(result(False), WSDConfig(gamma=0.5)).startswith(
        "no switch: the base never reached gamma=0.5, so all 8 draft tokens were kept")


def test_cli_rejects_bad_options():
    done = subprocess.run(
        [sys.executable, "-m", "wsd_llm.cli", "generate", "hi", "--gamma", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and "gamma" in done.stderr
