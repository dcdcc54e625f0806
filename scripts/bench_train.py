"""GRPO step time: `cftrain train` vs a bare TRL GRPOTrainer script, same tiny model, data and settings.

    python scripts/bench_train.py [--steps 12] [--rounds 2]

Each round runs both, alternating, as fresh processes; the first 2 steps of every run are warm-up and dropped.
Step time is TRL's own `step_time` log (generation + scoring + update). Prints a table and the ratio (target <= 1.03).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

SETTINGS = {"max_steps": 12, "per_device_train_batch_size": 8, "num_generations": 4, "max_completion_length": 64,
            "learning_rate": 3e-5, "beta": 0.04, "loss_type": "dapo", "temperature": 0.7, "logging_steps": 1,
            "save_strategy": "no", "use_cpu": True, "seed": 0}  # fmt: skip
DATA = {"family": "if_else", "n": 64, "variants": ["counterfactual"], "knobs": {"max_branches": 2, "depth": 0}}


def bare(out: str, steps: int) -> None:
    """The baseline: what a user would write with TRL alone (same records, prompts, rewards, LoRA)."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    from cftrain.data import Source
    from cftrain.models import load_tokenizer, resolve_model
    from cftrain.prompts import PromptConfig, build_prompt
    from cftrain.rewards import answer_reward, format_reward

    records = list(Source(**DATA).records("train"))
    prompt = PromptConfig("chat")
    dataset = Dataset.from_dict(
        {"prompt": [build_prompt(r, prompt) for r in records], "answer": [r["answer"] for r in records]}
    )
    path = resolve_model("cftrain:tiny")
    settings = {k: v for k, v in SETTINGS.items() if k != "seed"}
    args = GRPOConfig(
        output_dir=out, report_to=[], reward_weights=[1.0, 0.1], seed=0, **{**settings, "max_steps": steps}
    )
    trainer = GRPOTrainer(model=path, reward_funcs=[answer_reward, format_reward], args=args, train_dataset=dataset,
                          processing_class=load_tokenizer(path, padding_side="left"),
                          peft_config=LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"))  # fmt: skip
    trainer.train()
    times = [log["step_time"] for log in trainer.state.log_history if "step_time" in log]
    Path(out, "times.json").write_text(json.dumps(times))


def run_cftrain(tmp: Path, steps: int) -> list[float]:
    recipe = {"method": "grpo", "model": {"name_or_path": "cftrain:tiny"}, "output_dir": str(tmp / "cftrain"),
              "data": {"train": [DATA]}, "lora": {"r": 16, "alpha": 32, "dropout": 0.0},
              "rewards": {"answer": 1.0, "format": 0.1}, "logging": {"wandb": False}, "seed": 0,
              "trainer": {k: v for k, v in {**SETTINGS, "max_steps": steps}.items() if k != "seed"}}  # fmt: skip
    (tmp / "r.yaml").write_text(yaml.safe_dump(recipe))
    subprocess.run(
        [sys.executable, "-m", "cftrain", "train", str(tmp / "r.yaml"), "--no-resume"], check=True, capture_output=True
    )
    lines = [json.loads(x) for x in (tmp / "cftrain" / "metrics.jsonl").read_text().splitlines()]
    return [x["step_time"] for x in lines if "step_time" in x]


def run_bare(tmp: Path, steps: int) -> list[float]:
    subprocess.run(
        [sys.executable, __file__, "--bare", str(tmp / "bare"), "--steps", str(steps)], check=True, capture_output=True
    )
    return json.loads((tmp / "bare" / "times.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        return bare(args.bare, args.steps)
    times: dict[str, list[float]] = {"bare TRL GRPOTrainer": [], "cftrain train": []}
    for _ in range(args.rounds):
        for name, fn in (("bare TRL GRPOTrainer", run_bare), ("cftrain train", run_cftrain)):
            with tempfile.TemporaryDirectory() as tmp:
                times[name] += fn(Path(tmp), args.steps)[2:]
    base = statistics.median(times["bare TRL GRPOTrainer"])
    print(f"GRPO step time, cftrain:tiny, {args.rounds} rounds x {args.steps - 2} timed steps (median)\n")
    print("| runner | median s/step | mean s/step | ratio vs bare |")
    print("|---|---|---|---|")
    for name, values in times.items():
        print(
            f"| {name} | {statistics.median(values):.3f} | {statistics.mean(values):.3f} | {statistics.median(values) / base:.3f} |"
        )


if __name__ == "__main__":
    main()
