"""Reward functions only the tests use (importable as `train_rewards:NAME` in a recipe)."""


def length_reward(completions, **kwargs) -> list[float]:
    """Longer completions score higher: always gives GRPO a non-zero advantage on an untrained model."""
    return [len(c if isinstance(c, str) else c[-1]["content"]) / 100.0 for c in completions]
