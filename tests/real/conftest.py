"""Every test here runs the real packaged pair (the `real_pipe` fixture of tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.real)


# 12 LoRA steps of 2 pairs: enough for the held-out implicit-reward margin to turn positive
# on the packaged draft (about 4.5 minutes on a quiet 2-core machine).
TRAINED_DRAFTER_SETTINGS = {"max_steps": 12, "batch_size": 2, "learning_rate": 2e-4, "logging_steps": 4,
                            "seed": 0}


@pytest.fixture(scope="session")
def trained_drafter(tmp_path_factory) -> Path:
    """The packaged SmolLM2-135M-Instruct trained by DPO (LoRA) on examples/preferences.jsonl,
    held out on examples/preferences-heldout.jsonl: the drafter directory, trained once a session.

    Its wsd_drafter.json records the held-out report before and after training.
    """
    from wsd_llm.training import train_drafter

    examples = Path(__file__).parents[2] / "examples"
    output = tmp_path_factory.mktemp("drafter") / "smollm2-dpo"
    train_drafter(examples / "preferences.jsonl", output, eval_data=examples / "preferences-heldout.jsonl",
                  **TRAINED_DRAFTER_SETTINGS)
    return output

