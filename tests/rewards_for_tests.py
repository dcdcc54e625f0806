"""Reward functions for the PPO tests, importable as `rewards_for_tests:NAME` in a recipe (pytest puts tests/ on
sys.path; subprocesses get it through conftest.subprocess_env)."""

from cftrain.rewards import completion_text

# The token the learning test rewards. tests/test_learning.py sets it from the untrained model's own first-token
# distribution (a token it samples 8-20% of the time), so that the task survives a rebuild of the tiny model.
TARGET_ID = 202


def starts_with_reward(completion_ids, **kwargs) -> list[float]:
    """1.0 when the completion's first generated token is TARGET_ID. TRL's GRPO and cftrain's PPO both pass
    `completion_ids`.

    >>> starts_with_reward([[202, 5], [5, 202], []])
    [1.0, 0.0, 0.0]
    """
    return [float(ids[:1] == [TARGET_ID]) for ids in completion_ids]


def vowel_fraction_reward(completions, **kwargs) -> list[float]:
    """The fraction of lowercase vowels among the completion's characters: a dense reward for plumbing tests.

    >>> vowel_fraction_reward(["abab", ""])
    [0.5, 0.0]
    """
    return [sum(ch in "aeiou" for ch in text) / max(len(text), 1) for text in map(completion_text, completions)]
