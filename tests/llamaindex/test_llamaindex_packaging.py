"""The integration installs as part of the llama_index namespace, beside llama-index-core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import llama_index.llms.wsd

INTEGRATIONS = Path(__file__).parents[2] / "integrations"


def test_namespace_levels_have_no_init_file():
    # An __init__.py in llama_index/ or llama_index/llms/ would hide llama-index-core's modules.
    assert not (INTEGRATIONS / "llama_index" / "__init__.py").exists()
    assert not (INTEGRATIONS / "llama_index" / "llms" / "__init__.py").exists()
    assert (INTEGRATIONS / "llama_index" / "llms" / "wsd" / "__init__.py").exists()


def test_imports_from_outside_the_repository_alongside_llama_index_core(tmp_path):
    code = (
        "import llama_index.core, llama_index.llms.wsd as wsd\n"
        "from llama_index.core.llms.function_calling import FunctionCallingLLM\n"
        "assert issubclass(wsd.WSDLLM, FunctionCallingLLM)\n"
        "print(wsd.__file__)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == Path(llama_index.llms.wsd.__file__)
