"""PPO (cftrain.ppo) against GRPO (TRL via cftrain.grpo) on the embedded tiny model: the same easy counterfactual data
(if_else, max_branches 2, depth 0), the same rewards (answer + 0.1 format), the same LoRA, learning rate, temperature
and completion budget, and the same number of generated completions per update. Prints a markdown table.

    python scripts/bench_ppo_vs_grpo.py                       # 8 updates x 8 completions, 64 new tokens
    python scripts/bench_ppo_vs_grpo.py --updates 20 --completions 16 --max-new-tokens 96

Each method runs in its own child process, so that peak memory is that method's alone: `ru_maxrss` of the child
(resource.getrusage, peak resident set size of the whole process: Python, torch, model, activations). Wall time per
update is the mean gap between consecutive per-update log lines, the first update (warm-up) left out. Reward at
start/end is the mean of the first/last `--window` updates' rollout rewards. An untrained tiny model scores ~0 on
this task: the table compares cost, not learning (tests/test_learning.py holds both methods to a learning bar).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = {"family": "if_else", "n": 200, "variants": ["counterfactual"], "knobs": {"max_branches": 2, "depth": 0}}


def recipe(method: str, out: Path, args: argparse.Namespace) -> dict:
    common = {
        "method": method,
        "model": {"name_or_path": "cftrain:tiny"},
        "output_dir": str(out),
        "seed": 0,
        "data": {"train": [DATA]},
        "lora": {"r": 16, "alpha": 32, "dropout": 0.0},
        "rewards": {"answer": 1.0, "format": 0.1},
        "logging": {"wandb": False},
    }
    if method == "ppo":
        ppo = {"steps": args.updates, "batch_size": args.completions, "mini_batch_size": args.completions // 2,
               "ppo_epochs": 4, "learning_rate": args.lr, "max_new_tokens": args.max_new_tokens,
               "temperature": args.temperature, "save_steps": 0, "use_cpu": True}  # fmt: skip
        return {**common, "ppo": ppo}
    trainer = {"max_steps": args.updates, "per_device_train_batch_size": args.completions, "num_generations": 4,
               "learning_rate": args.lr, "lr_scheduler_type": "constant", "max_completion_length": args.max_new_tokens,
               "temperature": args.temperature, "beta": 0.04, "logging_steps": 1, "save_steps": 10_000,
               "log_completions": False, "use_cpu": True}  # fmt: skip
    return {**common, "trainer": trainer}


def child(method: str, out: Path, args: argparse.Namespace) -> None:
    from cftrain.recipes import Recipe, build

    main = __import__(f"cftrain.{method}", fromlist=["main"]).main
    main(build(Recipe, recipe(method, out, args), ""), resume=False)
    print(json.dumps({"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def summarise(method: str, out: Path, maxrss_mb: float, window: int) -> dict:
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in lines if "reward" in m]
    gaps = [b["time"] - a["time"] for a, b in zip(steps, steps[1:])]
    return {
        "method": method,
        "updates": len(steps),
        "start": sum(m["reward"] for m in steps[:window]) / window,
        "end": sum(m["reward"] for m in steps[-window:]) / window,
        "seconds": sum(gaps) / len(gaps),
        "maxrss_mb": maxrss_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=8)
    parser.add_argument("--completions", type=int, default=8, help="generated completions per update (multiple of 4)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--window", type=int, default=3, help="updates averaged for the start and end rewards")
    parser.add_argument("--threads", default="1", help="OMP_NUM_THREADS of the children (timings on a shared CPU)")
    parser.add_argument("--child", choices=["ppo", "grpo"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.completions % 4:
        parser.error("--completions must be a multiple of 4 (GRPO groups of 4)")
    if args.child:
        return child(args.child, args.out, args)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("ppo", "grpo"):
            out = Path(tmp) / method
            cmd = [sys.executable, __file__, *sys.argv[1:], "--child", method, "--out", str(out)]
            env = {**os.environ, "OMP_NUM_THREADS": args.threads, "WANDB_MODE": "disabled"}
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode:
                sys.exit(f"{method} failed:\n{done.stderr[-3000:]}")
            maxrss = json.loads(done.stdout.strip().splitlines()[-1])["maxrss_mb"]
            rows.append(summarise(method, out, maxrss, args.window))

    print(f"tiny model, if_else (max_branches 2, depth 0), {args.completions} completions/update, "
          f"{args.max_new_tokens} new tokens, T={args.temperature}, lr {args.lr}, OMP_NUM_THREADS={args.threads}\n")  # fmt: skip
    print("| method | updates | reward start | reward end | s / update | peak RSS (MB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method'].upper()} | {r['updates']} | {r['start']:.3f} | {r['end']:.3f} | {r['seconds']:.2f} "
              f"| {r['maxrss_mb']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
