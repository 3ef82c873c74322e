"""The core imports no backend: configuration, policies, decoding and the CLI's help run without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A module set to None in sys.modules raises ImportError on import: torch is then unusable.
NO_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None; "


@pytest.mark.parametrize("module", ["wsd_llm", "wsd_llm.config", "wsd_llm.policies", "wsd_llm.decoding",
                                    "wsd_llm.pipeline", "wsd_llm.text", "wsd_llm.results"])
def test_core_modules_import_without_torch_or_transformers(module):
    done = subprocess.run([sys.executable, "-c", NO_TORCH + f"import {module}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_cli_help_runs_without_torch():
    code = NO_TORCH + "sys.argv = ['wsd-llm', '--help']; from wsd_llm.cli import app; app()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "generate" in done.stdout and "serve" in done.stdout


def test_package_names_resolve_on_first_use():
    import wsd_llm

    assert "TransformersModel" in dir(wsd_llm) and "WSDPipeline" in wsd_llm.__all__
    assert wsd_llm.WSDConfig().gamma == 0.8
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        wsd_llm.Nope  # noqa: B018
