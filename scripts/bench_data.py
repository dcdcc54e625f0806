"""Data-layer throughput: verified records/s per family, today's generator against the one before this change.

    python scripts/bench_data.py [--n 2000] [--old 8cf5dfe] [--skip-rewards]

The old generator is checked out in a temporary `git worktree` of commit --old and timed in its own process with
PYTHONPATH pointing at it; the new one (this checkout) is timed the same way, so both run in one go on the same
machine. Every rate is the best of 3 seeds x --n items, single process, with a cold program cache; the
`--workers 2` column runs the new generator in two processes. Reward scoring speed comes from
scripts/bench_rewards.py, which this script runs at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Runs inside the timed checkout; works with both the old API (load_program.cache_clear) and the new one.
RUNNER = """
import sys, time
from cftrain import execution
from cftrain.problems import FAMILIES, generate
name, variant, n, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
clear = getattr(execution, "clear_caches", execution.load_program.cache_clear)
extra = {"workers": workers} if workers > 1 else {}
best = 0.0
for seed in range(3):
    clear()  # a cold cache: every program is checked and compiled
    start = time.perf_counter()
    count = sum(1 for _ in generate(FAMILIES[name], variant, n, seed=seed, **extra))
    best = max(best, count / (time.perf_counter() - start))
print(best)
"""


def rate(checkout: Path, family: str, variant: str, n: int, workers: int = 1) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    argv = [sys.executable, "-c", RUNNER, family, variant, str(n), str(workers)]
    return float(subprocess.run(argv, env=env, cwd=checkout, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--old", default="8cf5dfe", help="commit of the generator to compare against")
    parser.add_argument("--families", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--skip-rewards", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from cftrain.problems import FAMILIES

    names = [f for f in args.families.split(",") if f] or list(FAMILIES)
    with tempfile.TemporaryDirectory(prefix="cftrain-bench-") as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old), args.old], check=True)
        try:
            print(f"Verified records/s, best of 3 seeds x {args.n} items, cold program cache; old = {args.old}\n")
            print("| family | CF old | CF new | CF ratio | all old | all new | all ratio | CF new, --workers 2 |")
            print("|---|---|---|---|---|---|---|---|")
            for name in names:
                cf = [rate(old, name, "counterfactual", args.n), rate(ROOT, name, "counterfactual", args.n)]
                every = [rate(old, name, "all", args.n), rate(ROOT, name, "all", args.n)]
                two = rate(ROOT, name, "counterfactual", args.n, workers=2)
                print(
                    f"| {name} | {cf[0]:,.0f} | {cf[1]:,.0f} | {cf[1] / cf[0]:.2f}x | {every[0]:,.0f} | "
                    f"{every[1]:,.0f} | {every[1] / every[0]:.2f}x | {two:,.0f} |",
                    flush=True,
                )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=True)
    if not args.skip_rewards:
        print()
        subprocess.run([sys.executable, str(Path(__file__).with_name("bench_rewards.py"))], check=True)


if __name__ == "__main__":
    main()
