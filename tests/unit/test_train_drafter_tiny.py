"""train_drafter on the tiny random llama saved to disk: checkpoints, resume, the output directory,
and the implicit reward. The real model is trained in tests/real/test_train_drafter.py."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import TrainerCallback

from wsd_llm import WSDPipeline
from wsd_llm.training import ImplicitReward, TrainingInterrupted, read_preferences, train_drafter
from wsd_llm.training.data import encode_reply
from wsd_llm.training.metadata import METADATA_FILE, read_metadata

EXAMPLES = Path(__file__).parents[2] / "examples"
DATA, HELD_OUT = EXAMPLES / "preferences.jsonl", EXAMPLES / "preferences-heldout.jsonl"
FAST = {"max_length": 1024, "batch_size": 2, "logging_steps": 1, "learning_rate": 1e-3}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tiny_draft):
    """The tiny llama and its ChatML tokenizer as a model directory (the reference model)."""
    path = tmp_path_factory.mktemp("tiny") / "instruct"
    tiny_draft.model.save_pretrained(path)
    tiny_draft.tokenizer.save_pretrained(path)
    return path


class Steps(TrainerCallback):
    """Records the global step after each optimizer step; raises Ctrl-C at ``stop_at``."""

    def __init__(self, stop_at=None):
        self.seen, self.stop_at, self.dataset = [], stop_at, None

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        self.dataset = train_dataloader.dataset

    def on_step_end(self, args, state, control, **kwargs):
        self.seen.append(state.global_step)
        if state.global_step == self.stop_at:
            raise KeyboardInterrupt


def test_an_interrupted_run_resumes_from_its_last_checkpoint(tiny_dir, tmp_path):
    output = tmp_path / "drafter"
    first = Steps(stop_at=3)
    with pytest.raises(TrainingInterrupted) as caught:
        train_drafter(DATA, output, model=tiny_dir, eval_data=HELD_OUT, max_steps=6, save_steps=2,
                      callbacks=[first], **FAST)
    assert first.seen == [1, 2, 3]
    assert caught.value.checkpoint == output / "checkpoints" / "checkpoint-2"
    with pytest.raises(ValueError, match="is not empty; choose a new --output, or pass --resume"):
        train_drafter(DATA, output, model=tiny_dir, max_steps=6, **FAST)

    second = Steps()
    result = train_drafter(DATA, output, model=tiny_dir, eval_data=HELD_OUT, max_steps=6, save_steps=2,
                           resume=True, callbacks=[second], **FAST)
    assert second.seen == [3, 4, 5, 6]  # continued from checkpoint-2, not from 0
    assert result.steps == 6 and read_metadata(output).steps == 6
    assert not (output / "checkpoints").exists()


def test_resume_without_a_checkpoint_is_an_error(tiny_dir, tmp_path):
    with pytest.raises(ValueError, match="no checkpoint to resume from in .*; train with --save-steps"):
        train_drafter(DATA, tmp_path / "new", model=tiny_dir, resume=True, **FAST)


def test_trl_trains_on_the_tokens_the_implicit_reward_scores(tiny_dir, tmp_path):
    steps = Steps()
    train_drafter(DATA, tmp_path / "d", model=tiny_dir, eval_fraction=0, max_steps=1, callbacks=[steps], **FAST)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    for pair, row in zip(read_preferences(DATA), steps.dataset, strict=True):
        prompt_ids, chosen_ids = encode_reply(tokenizer, pair.prompt, pair.chosen)
        assert (row["prompt_ids"], row["chosen_ids"]) == (prompt_ids, chosen_ids)
        assert row["rejected_ids"] == encode_reply(tokenizer, pair.prompt, pair.rejected)[1]


@pytest.fixture(scope="module")
def tiny_drafter(tiny_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("trained") / "drafter"
    result = train_drafter(DATA, output, model=tiny_dir, eval_data=HELD_OUT, max_steps=4, **FAST)
    return output, result


def test_the_output_is_a_plain_model_directory_with_its_record(tiny_drafter, tiny_dir, tiny_base):
    output, result = tiny_drafter
    metadata = json.loads((output / METADATA_FILE).read_text())
    assert metadata["reference"] == str(tiny_dir.resolve()) and metadata["beta"] == 0.1
    assert metadata["steps"] == 4 and metadata["lora_rank"] == 16 and metadata["data"] == str(DATA)
    assert metadata["evaluation"]["pairs"] == result.report.pairs == 10
    assert (output / "wsd_drafter_eval.png").stat().st_size > 0
    assert not any(path.name.startswith("adapter") for path in output.iterdir())  # LoRA merged, not an adapter
    pipe = WSDPipeline(draft=str(output), base=tiny_base)
    chat = [{"role": "user", "content": "Hello!"}]
    assert pipe.draft.apply_chat_template(chat) == template_of(tiny_dir, chat)
    assert pipe.generate(chat, max_new_tokens=8, gamma=0.0035).text


def template_of(tiny_dir, chat):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir).apply_chat_template(chat, tokenize=False, add_generation_prompt=True)


def test_the_implicit_reward_is_beta_times_the_log_ratio_the_report_uses(tiny_drafter):
    output, result = tiny_drafter
    reward = ImplicitReward.from_drafter(output)
    assert (reward.beta, reward.name) == (0.1, "drafter")
    pairs = read_preferences(HELD_OUT)
    chosen = reward.score([p.prompt for p in pairs], [p.chosen for p in pairs])
    rejected = reward.score([p.prompt for p in pairs], [p.rejected for p in pairs])
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    assert sum(margins) / len(margins) == pytest.approx(result.report.reward_margin, abs=1e-4)
    assert result.report.reward_accuracy == sum(m > 0 for m in margins) / len(margins)
    with pytest.raises(ValueError, match="2 conversations but 1 replies"):
        reward.score([pairs[0].prompt] * 2, ["a"])


def test_a_directory_that_is_not_a_drafter_is_one_line(tiny_dir):
    with pytest.raises(ValueError, match=f"is not a drafter trained by wsd-llm \\(no {METADATA_FILE}\\)"):
        ImplicitReward.from_drafter(tiny_dir)


def test_full_fine_tuning_without_lora(tiny_dir, tmp_path):
    result = train_drafter(DATA, tmp_path / "full", model=tiny_dir, lora=False, eval_fraction=0.1, max_steps=2, **FAST)
    assert result.steps == 2 and read_metadata(result.output).lora_rank is None
    assert result.report.pairs == 4


def test_the_training_modules_load_nothing_heavy_on_import():
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in ("torch", "transformers", "trl", "peft", "datasets"))
    code = f"import sys; {blocked}; import wsd_llm.training, wsd_llm.training.rewards, wsd_llm.training.cli"
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
