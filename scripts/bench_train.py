"""Training step time of `cftrain train` against bare baselines on the same tiny model (cftrain:tiny), one run.

    python scripts/bench_train.py [--steps 12] [--rounds 2] [--sft-steps 14] [--only sft|grpo]

SFT (in one process, interleaved step by step): the demo's SFT recipe (recipes/demo/sft.yaml) trains; after each
of its steps a bare PyTorch step (forward + backward + AdamW, float32, no Trainer) runs on the very batch cftrain just
used. A cftrain step is the wall time between two step ends, less the bare step: data loading, logging and callbacks
count. Also timed: the same recipe with TRL's own defaults (bf16 autocast, activation checkpointing), which cftrain
turned off on CPU. Target: cftrain <= 1.5x bare.

GRPO (fresh processes, alternating): `cftrain train` against a bare TRL GRPOTrainer script with the same records,
prompts, rewards, LoRA and settings; the first 2 steps of every run are warm-up and dropped. Step time is TRL's own
`step_time` log (generation + scoring + update). The bare script runs with the settings cftrain resolves on CPU
(float32, no checkpointing) for the ratio (target <= 1.03), and once more with TRL's defaults for reference.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from transformers import TrainerCallback

RECIPES = Path(__file__).resolve().parent.parent / "recipes" / "demo"

SETTINGS = {"max_steps": 12, "per_device_train_batch_size": 8, "num_generations": 4, "max_completion_length": 64,
            "learning_rate": 3e-5, "beta": 0.04, "loss_type": "dapo", "temperature": 0.7, "logging_steps": 1,
            "save_strategy": "no", "use_cpu": True, "seed": 0}  # fmt: skip
DATA = {"family": "if_else", "n": 64, "variants": ["counterfactual"], "knobs": {"max_branches": 2, "depth": 0}}


# What a bare TRL script gets on CPU unless it asks otherwise, and what cftrain sets on CPU (recipes._cpu_defaults).
TRL_DEFAULTS = {"bf16": True, "activation_checkpointing": True}
CPU_SETTINGS = {"bf16": False, "activation_checkpointing": False}


def bare(out: str, steps: int, trl_defaults: bool = False) -> None:
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
    settings.update(TRL_DEFAULTS if trl_defaults else CPU_SETTINGS)
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


def run_bare(tmp: Path, steps: int, trl_defaults: bool = False) -> list[float]:
    command = [sys.executable, __file__, "--bare", str(tmp / "bare"), "--steps", str(steps)]
    subprocess.run(command + (["--trl-defaults"] if trl_defaults else []), check=True, capture_output=True)
    return json.loads((tmp / "bare" / "times.json").read_text())


def bench_grpo(steps: int, rounds: int) -> dict[str, list[float]]:
    runners = {
        "bare TRL GRPOTrainer (fp32, no checkpointing)": run_bare,
        "cftrain train GRPO": run_cftrain,
        "bare TRL GRPOTrainer (TRL defaults)": functools.partial(run_bare, trl_defaults=True),
    }
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            with tempfile.TemporaryDirectory() as tmp:
                times[name] += fn(Path(tmp), steps)[2:]
    return times


class Interleaved(TrainerCallback):
    """A TrainerCallback that, after each cftrain step, runs one bare PyTorch step on the batch cftrain just used."""

    def __init__(self, model_path: str, learning_rate: float) -> None:
        from transformers import AutoModelForCausalLM

        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).train()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=learning_rate, weight_decay=0.0)
        self.batch: dict | None = None
        self.last: float | None = None
        self.cftrain: list[float] = []
        self.bare: list[float] = []

    def collate(self, collator):
        def stash(features):
            self.batch = collator(features)
            return self.batch

        return stash

    def bare_step(self) -> None:
        loss = self.model(
            **{k: v for k, v in self.batch.items() if k in ("input_ids", "attention_mask", "labels")}
        ).loss
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def on_step_begin(self, args, state, control, **kwargs):
        if self.last is None:
            self.last = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.cftrain.append(time.perf_counter() - self.last)
        start = time.perf_counter()
        self.bare_step()
        self.bare.append(time.perf_counter() - start)
        self.last = time.perf_counter()


def bench_sft(steps: int, out: Path) -> dict[str, list[float]]:
    """The demo SFT recipe with cftrain's settings, then with TRL's defaults; a bare step after every step of both."""
    from cftrain import sft
    from cftrain.recipes import load_recipe

    times: dict[str, list[float]] = {}
    for name, extra in (("cftrain train SFT", {}), ("cftrain train SFT, TRL defaults (before)", TRL_DEFAULTS)):
        overrides = {"output_dir": str(out / name.split(",")[-1].strip()), "trainer.max_steps": steps,
                     "trainer.save_steps": 10 * steps, "logging.wandb": False}  # fmt: skip
        recipe = load_recipe(RECIPES / "sft.yaml", {**overrides, **{f"trainer.{k}": v for k, v in extra.items()}})
        trainer, _ = sft.build(recipe, resume=False)
        timer = Interleaved(trainer.model.name_or_path, recipe.trainer["learning_rate"])
        trainer.data_collator = timer.collate(trainer.data_collator)
        trainer.add_callback(timer)
        trainer.train()
        times.setdefault(f"bare PyTorch step (beside {name})", []).extend(timer.bare[2:])
        times[name] = timer.cftrain[2:]
    return times


def table(title: str, times: dict[str, list[float]], base: str) -> None:
    reference = statistics.median(times[base])
    print(f"\n{title}\n")
    print("| runner | steps timed | median s/step | mean s/step | ratio vs bare |")
    print("|---|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {len(values)} | {median:.3f} | {statistics.mean(values):.3f} | {median / reference:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12, help="GRPO steps per run")
    parser.add_argument("--rounds", type=int, default=2, help="GRPO runs of each runner")
    parser.add_argument("--sft-steps", type=int, default=14, help="SFT steps per setting")
    parser.add_argument("--only", choices=("sft", "grpo"))
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    parser.add_argument("--trl-defaults", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        return bare(args.bare, args.steps, args.trl_defaults)
    print(f"cftrain:tiny, torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    if args.only != "grpo":
        with tempfile.TemporaryDirectory() as tmp:
            sft_times = bench_sft(args.sft_steps, Path(tmp))
        table(f"SFT step, recipes/demo/sft.yaml (batch 32), {args.sft_steps - 2} timed steps each (median)", sft_times,
              "bare PyTorch step (beside cftrain train SFT)")  # fmt: skip
    if args.only != "sft":
        grpo_times = bench_grpo(args.steps, args.rounds)
        table(f"GRPO step, {args.rounds} runs x {args.steps - 2} timed steps each (median)", grpo_times,
              "bare TRL GRPOTrainer (fp32, no checkpointing)")  # fmt: skip


if __name__ == "__main__":
    main()
