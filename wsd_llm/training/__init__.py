"""Train and measure drafters: DPO on preference pairs (TRL + peft), and DPO's implicit reward.

Install with ``pip install 'wsd-llm[train]'``. Names are imported on first use, so importing
this package does not load trl, peft or datasets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wsd_llm._lazy import lazy_getattr

if TYPE_CHECKING:
    from wsd_llm.training.data import PreferenceDataError, PreferencePair, read_preferences
    from wsd_llm.training.dpo import TrainingInterrupted, TrainingResult, train_drafter
    from wsd_llm.training.rewards import ImplicitReward, PreferenceReport, evaluate_drafter

_EXPORTS = {
    "ImplicitReward": "wsd_llm.training.rewards",
    "PreferenceDataError": "wsd_llm.training.data",
    "PreferencePair": "wsd_llm.training.data",
    "PreferenceReport": "wsd_llm.training.rewards",
    "TrainingInterrupted": "wsd_llm.training.dpo",
    "TrainingResult": "wsd_llm.training.dpo",
    "evaluate_drafter": "wsd_llm.training.rewards",
    "read_preferences": "wsd_llm.training.data",
    "train_drafter": "wsd_llm.training.dpo",
}
__all__ = [
    "ImplicitReward",
    "PreferenceDataError",
    "PreferencePair",
    "PreferenceReport",
    "TrainingInterrupted",
    "TrainingResult",
    "evaluate_drafter",
    "read_preferences",
    "train_drafter",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
