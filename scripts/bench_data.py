"""Data-layer throughput: verified records/s per family (single process), plus reward scoring speed.

    python scripts/bench_data.py [--n 2000]

Targets on a 2-core machine: >= 2,000 verified if_else counterfactual records/s (aim 10,000); reward numbers
come from scripts/bench_rewards.py, which this script runs at the end.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from cftrain.execution import load_program
from cftrain.problems import FAMILIES, generate


def rate(family, variant: str, n: int) -> float:
    best = 0.0
    for seed in range(3):
        load_program.cache_clear()  # a cold cache: every program is checked and compiled
        start = time.perf_counter()
        count = sum(1 for _ in generate(family, variant, n, seed=seed))
        best = max(best, count / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    print(f"Verified records/s, single process, best of 3 seeds x {args.n} items, cold program cache\n")
    print("| family | counterfactual rec/s | all variants rec/s |")
    print("|---|---|---|")
    for name, family in FAMILIES.items():
        n_variants = len(family.variants)
        print(
            f"| {name} | {rate(family, 'counterfactual', args.n):,.0f} | {rate(family, 'all', args.n) * 1:,.0f} (x{n_variants}) |"
        )
    print()
    subprocess.run([sys.executable, str(Path(__file__).with_name("bench_rewards.py"))], check=True)


if __name__ == "__main__":
    main()
