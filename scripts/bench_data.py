"""Data-layer throughput: verified records/s per family, today's generator against the one before this change.

    python scripts/bench_data.py [--n 2000] [--old 8cf5dfe] [--skip-rewards]

The old generator is checked out in a temporary `git worktree` of commit --old and timed in its own process with
PYTHONPATH pointing at it; the new one (this checkout) is timed the same way, so both run in one go on the same
machine. Two rates per generator, each the best of 3 seeds x --n items in one process:
- cold: every seed starts with empty caches (each program checked and compiled; generator v3 also builds its
  pool of structures and compiles them), as a fresh `cftrain generate --n N` does;
- steady: the caches kept from a first run of --n items (seed 100), as in a long run: the one-time cost left out.
`one-time ms` is what the cold run spent beyond the steady rate: n / cold - n / steady. The `--workers 2` column
runs the new generator cold in two processes. Reward scoring speed comes from scripts/bench_rewards.py, which
this script runs at the end.
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
name, variant, n, workers, steady = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
clear = getattr(execution, "clear_caches", execution.load_program.cache_clear)
extra = {"workers": workers} if workers > 1 else {}
clear()
if steady:  # fill the caches once, then keep them
    sum(1 for _ in generate(FAMILIES[name], variant, n, seed=100, **extra))
best = 0.0
for seed in range(3):
    if not steady:
        clear()  # a cold cache: every program is checked and compiled
    start = time.perf_counter()
    count = sum(1 for _ in generate(FAMILIES[name], variant, n, seed=seed, **extra))
    best = max(best, count / (time.perf_counter() - start))
print(best)
"""


def rate(checkout: Path, family: str, variant: str, n: int, workers: int = 1, steady: bool = False) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    argv = [sys.executable, "-c", RUNNER, family, variant, str(n), str(workers), str(int(steady))]
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
            print(f"Verified records/s, best of 3 seeds x {args.n} items; old = {args.old}\n")
            print(
                "| family | CF old, cold | CF new, cold | ratio | CF old, steady | CF new, steady | ratio | "
                "new one-time ms | all old, cold | all new, cold | ratio | CF new, cold, --workers 2 |"
            )
            print("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for name in names:
                cf = [rate(old, name, "counterfactual", args.n), rate(ROOT, name, "counterfactual", args.n)]
                steady = [rate(where, name, "counterfactual", args.n, steady=True) for where in (old, ROOT)]
                once = (args.n / cf[1] - args.n / steady[1]) * 1000
                every = [rate(old, name, "all", args.n), rate(ROOT, name, "all", args.n)]
                two = rate(ROOT, name, "counterfactual", args.n, workers=2)
                print(
                    f"| {name} | {cf[0]:,.0f} | {cf[1]:,.0f} | {cf[1] / cf[0]:.2f}x | {steady[0]:,.0f} | "
                    f"{steady[1]:,.0f} | {steady[1] / steady[0]:.2f}x | {once:,.0f} | {every[0]:,.0f} | "
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
