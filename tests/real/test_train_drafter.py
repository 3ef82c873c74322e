"""A drafter trained by DPO on the packaged SmolLM2-135M-Instruct (the `trained_drafter` fixture):
it prefers the held-out chosen replies more than the model it started from, and drafts WSD replies."""

from pathlib import Path

import pytest

from wsd_llm import WSDPipeline
from wsd_llm.training import ImplicitReward, read_preferences
from wsd_llm.training.metadata import read_metadata

# The first test trains the drafter (the session fixture): about 4.5 minutes on a quiet 2-core machine,
# over 10 minutes when the machine is shared, so beyond the suite's default timeout.
pytestmark = pytest.mark.timeout(1800)

HELD_OUT = Path(__file__).parents[2] / "examples" / "preferences-heldout.jsonl"


def test_training_moves_held_out_preferences_toward_the_chosen_replies(trained_drafter):
    record = read_metadata(trained_drafter)
    report = record.evaluation
    assert record.reference is None and record.reference_name == "SmolLM2-135M-Instruct"
    assert record.steps == record.settings["max_steps"]
    assert report["pairs"] == 10
    # The drafter's log-prob margin (chosen minus rejected) grew over the untrained model's:
    # its implicit reward prefers the chosen replies of pairs it never saw.
    assert report["drafter_margin"] > report["reference_margin"]
    assert report["reward_margin"] > 0 and report["reward_accuracy"] > 0.5


def test_the_reloaded_drafter_scores_what_training_reported(trained_drafter):
    reward = ImplicitReward.from_drafter(trained_drafter)
    pairs = read_preferences(HELD_OUT)
    chosen = reward.score([p.prompt for p in pairs], [p.chosen for p in pairs])
    rejected = reward.score([p.prompt for p in pairs], [p.rejected for p in pairs])
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    report = read_metadata(trained_drafter).evaluation
    assert sum(margins) / len(margins) == pytest.approx(report["reward_margin"], rel=1e-3, abs=1e-4)


def test_the_drafter_drafts_a_wsd_reply_with_the_packaged_base(trained_drafter, real_pipe):
    pipe = WSDPipeline(draft=str(trained_drafter), base=real_pipe.base, config=real_pipe.config)
    conversation = [{"role": "user", "content": "How can I fall asleep faster?"}]
    assert pipe.draft.apply_chat_template(conversation) == real_pipe.draft.apply_chat_template(conversation)
    result = pipe.generate(conversation)
    assert result.draft_model == str(trained_drafter) and result.draft_tokens > 0
    assert result.draft_text.strip() and result.text.strip()
