"""Bootstrap intervals over items: a 95% interval for a mean (an EM) and for a paired difference of two means.

Pure functions on per-item scores (EM of each item, averaged over its samples), deterministic for a seed. The
percentile bootstrap: resample the items with replacement `n_boot` times, take the mean each time, report the
2.5% and 97.5% quantiles. Paired: both models' scores are resampled with the *same* item indices, so the
interval is for the difference on the same items (much narrower than two separate intervals when the models agree
on most items).

Tests: `pytest tests/test_study.py`.
"""

from __future__ import annotations

from collections.abc import Sequence


def _check(values: Sequence[float], what: str) -> None:
    if len(values) == 0:
        raise ValueError(f"{what}: no values to bootstrap")


def bootstrap_ci(
    values: Sequence[float], n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """The `level` percentile-bootstrap interval of the mean of `values`."""
    import numpy as np

    _check(values, "bootstrap_ci")
    scores = np.asarray(values, dtype=float)
    index = np.random.default_rng(seed).integers(0, len(scores), size=(n_boot, len(scores)))
    lo, hi = np.quantile(scores[index].mean(axis=1), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """mean(b) - mean(a) on the same items (a[i] and b[i] score item i), and its paired `level` interval."""
    import numpy as np

    _check(a, "paired_bootstrap")
    if len(a) != len(b):
        raise ValueError(f"paired_bootstrap: {len(a)} and {len(b)} values; pair the same items")
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    index = np.random.default_rng(seed).integers(0, len(diff), size=(n_boot, len(diff)))
    lo, hi = np.quantile(diff[index].mean(axis=1), [(1 - level) / 2, (1 + level) / 2])
    return float(diff.mean()), float(lo), float(hi)
