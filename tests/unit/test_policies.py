import math
import random

import pytest

from wsd_llm import GeometricMeanWindow, SwitchPolicy


def reference_accept_index(probs, threshold=0.8, window_size=6):
    """inference/check.py:get_accept_index of the published reference, verbatim in substance."""
    avg_probs = []
    for i in range(len(probs)):
        if i + 1 - window_size < 0:
            avg_probs.append(0)
        else:
            avg_probs.append(math.pow(math.prod(probs[i + 1 - window_size : i + 1]), 1 / window_size))
    accept = [i for i, p in enumerate(avg_probs) if p >= threshold]
    return accept[0] if accept else len(probs) - 1


def one_shot(policy, probs):
    k = policy.first_switch(probs)
    return len(probs) - 1 if k is None else k


@pytest.mark.parametrize("seed", range(200))
def test_matches_reference_rule_on_random_probabilities(seed):
    rng = random.Random(seed)
    window, gamma = rng.randint(1, 8), rng.choice([0.3, 0.5, 0.8, 0.95])
    probs = [rng.random() ** rng.choice([0.1, 0.5, 1, 3]) for _ in range(rng.randint(0, 40))]
    assert one_shot(GeometricMeanWindow(gamma, window), probs) == reference_accept_index(probs, gamma, window)


@pytest.mark.parametrize("seed", range(50))
def test_chunked_evaluation_equals_one_shot(seed):
    """The pipeline asks with growing lists and a start index; the answer must not change."""
    rng = random.Random(seed)
    policy = GeometricMeanWindow(0.6, 4)
    probs = [rng.random() ** 0.3 for _ in range(60)]
    seen, found = 0, None
    while seen < len(probs) and found is None:
        grown = min(len(probs), seen + rng.randint(1, 9))
        found = policy.first_switch(probs[:grown], seen)
        seen = grown
    assert found == policy.first_switch(probs)


def test_no_switch_before_a_full_window():
    assert GeometricMeanWindow(0.8, 6).first_switch([1.0] * 5) is None
    assert GeometricMeanWindow(0.8, 6).first_switch([1.0] * 6) == 5


def test_empty_draft_keeps_nothing():
    assert GeometricMeanWindow().first_switch([]) is None
    assert reference_accept_index([]) == -1


def test_threshold_is_inclusive():
    assert GeometricMeanWindow(0.5, 1).first_switch([0.4, 0.5]) == 1


def test_zero_probability_blocks_its_windows():
    policy = GeometricMeanWindow(0.5, 3)
    assert policy.first_switch([1, 1, 0, 1, 1, 1]) == 5


def test_window_of_one_switches_on_first_confident_token():
    assert GeometricMeanWindow(0.9, 1).first_switch([0.1, 0.95, 0.99]) == 1


def test_window_means_match_rule():
    policy = GeometricMeanWindow(0.8, 2)
    assert policy.window_means([0.25, 1.0, 0.64]) == pytest.approx([0.0, 0.5, 0.8])


def test_is_a_switch_policy():
    assert isinstance(GeometricMeanWindow(), SwitchPolicy)
