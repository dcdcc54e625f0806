"""The run folder every trainer shares: resolved recipe, data + manifest, metrics.jsonl, checkpoints, resume.

```
<output_dir>/
  recipe.yaml            the resolved recipe (also copied into every checkpoint)
  data/                  train.jsonl, test.jsonl, manifest.json
  metrics.jsonl          one JSON object per log step (W&B offline files have no Python reader)
  checkpoint-N/          adapter + tokenizer (save_pretrained) + optimizer/scheduler/RNG state
  final/                 the last adapter + tokenizer + recipe.yaml: loads in plain transformers + peft
```
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transformers import TrainerCallback

from cftrain.data import build_mixture, counts, read_jsonl
from cftrain.problems.records import read_records
from cftrain.recipes import Recipe, save_recipe


@dataclass
class Run:
    dir: Path
    train: list[dict]
    test: list[dict]
    resume_from: str | None


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def prepare_run(recipe: Recipe, resume: bool = True) -> Run:
    """Create the run folder, write the recipe and the data (main process), and find a checkpoint to resume."""
    for path in (recipe.data.train_path, recipe.data.test_path):
        if path:
            read_records(path)  # a bad records file fails here, before anything is written
    out = Path(recipe.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("WANDB_MODE", recipe.logging.mode)
    os.environ.setdefault("WANDB_PROJECT", recipe.logging.project)
    os.environ.setdefault("WANDB_DIR", str(out))
    data_dir = out / "data"
    if is_main_process():
        save_recipe(recipe, out / "recipe.yaml")
        if recipe.data.train or recipe.data.test:
            build_mixture(recipe.data.train, recipe.data.test, data_dir)
        for name, path in (("train", recipe.data.train_path), ("test", recipe.data.test_path)):
            if path:
                data_dir.mkdir(exist_ok=True)
                shutil.copyfile(path, data_dir / f"{name}.jsonl")
    _wait_for(data_dir / ("train.jsonl" if recipe.data.train or recipe.data.train_path else "manifest.json"))
    train = read_jsonl(data_dir / "train.jsonl") if (data_dir / "train.jsonl").exists() else []
    test = read_jsonl(data_dir / "test.jsonl") if (data_dir / "test.jsonl").exists() else []
    if not train:
        raise ValueError("data: no training records; set data.train or data.train_path")
    if is_main_process() and (recipe.data.train_path or recipe.data.test_path):
        (data_dir / "manifest.json").write_text(
            json.dumps({"train": {"counts": counts(train)}, "test": {"counts": counts(test)}}, indent=2) + "\n"
        )
    return Run(out, train, test, last_checkpoint(out) if resume else None)


def last_checkpoint(run_dir: str | Path) -> str | None:
    """The newest *complete* checkpoint-N: a process killed mid-save leaves a folder without trainer_state.json
    (the Trainer writes it last), and resuming from that would fail or load partial weights."""
    checkpoints = sorted(Path(run_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for checkpoint in checkpoints:
        if (checkpoint / "trainer_state.json").exists():
            return str(checkpoint)
    return None


def _wait_for(path: Path, timeout: float = 600.0) -> None:
    """Non-main processes wait for the main process to write the data (no process group exists yet)."""
    start = time.time()
    while not path.exists():
        if time.time() - start > timeout:
            raise TimeoutError(f"{path} was not written by the main process")
        time.sleep(0.2)


class MetricsLogger(TrainerCallback):
    """Append every log to <output_dir>/metrics.jsonl on the main process, after a `start` line per launch. Each line
    has the wall `time` and `cpu_s`, this process's CPU seconds (all threads) since it started: the compute a stage
    used, unchanged by pauses or by other jobs sharing the cores (the study matches its control on it)."""

    def __init__(self, path: str | Path, resumed_from: str | None = None) -> None:
        self.path = Path(path)
        self.resumed_from = resumed_from

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            start = {"event": "start", "world_size": args.world_size, "resumed_from": self.resumed_from}
            append_metrics(self.path, state.global_step, start)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            append_metrics(self.path, state.global_step, logs)


def append_metrics(path: Path, step: int, logs: dict) -> None:
    """One line of metrics.jsonl: the step, the wall and CPU clocks, and `logs` (PPO's loop writes it too)."""
    with path.open("a") as f:
        f.write(json.dumps({"step": step, "time": time.time(), "cpu_s": round(time.process_time(), 3), **logs}) + "\n")


class RecipeInCheckpoints(TrainerCallback):
    """Copy recipe.yaml into each checkpoint so a checkpoint alone says how it was trained and prompted."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            checkpoint = self.run_dir / f"checkpoint-{state.global_step}"
            if checkpoint.is_dir():
                shutil.copyfile(self.run_dir / "recipe.yaml", checkpoint / "recipe.yaml")


class Deadline(TrainerCallback):
    """A wall-clock budget for one training run: after `probe` timed steps (the first step warms up and is not
    timed) it plans as many of the run's steps as fit before `deadline` (a `time.time()`), prints the plan, and
    rescales the learning-rate schedule to the planned length, so a reduced plan is a shorter run of the same
    schedule rather than a cut-off one. Past the deadline it stops at the next step whatever the plan said.
    `planned`, `s_per_step` and `steps_run` are read after training."""

    def __init__(
        self, deadline: float, name: str, probe: int = 5, min_steps: int = 2, clock: Callable[[], float] = time.time
    ) -> None:
        self.deadline, self.name, self.probe, self.min_steps, self.clock = deadline, name, probe, min_steps, clock
        self.full: int | None = None
        self.planned: int | None = None
        self.s_per_step: float | None = None
        self.steps_run = 0
        self.stopped_at_deadline = False
        self._timer: tuple[int, float] | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.full = self.planned = state.max_steps

    def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
        now, step = self.clock(), state.global_step
        self.steps_run = step
        if self._timer is None:  # the end of the warm-up step starts the clock
            self._timer = (step, now)
        elif self.s_per_step is None and step - self._timer[0] >= self.probe:
            self.s_per_step = (now - self._timer[1]) / (step - self._timer[0])
            fit = step + int(max(0.0, self.deadline - now) / self.s_per_step)
            self.planned = min(self.full, max(fit, self.min_steps))
            if self.planned < self.full:
                _rescale_schedule(lr_scheduler, args, self.planned)
                state.max_steps = self.planned
            self.announce()
        if step >= self.planned or (self.s_per_step is not None and now > self.deadline):
            self.stopped_at_deadline = step < self.planned
            control.should_training_stop = True
        return control

    def announce(self) -> None:
        minutes = self.planned * self.s_per_step / 60
        note = "" if self.planned == self.full else f" (reduced from {self.full} to fit the budget)"
        print(f"{self.name}: {self.planned} steps planned{note}, ~{minutes:.1f} min at {self.s_per_step:.2f} s/step",
              flush=True)  # fmt: skip

    def summary(self) -> dict:
        """What ran, for a run's summary: steps run, planned and in the recipe, and the measured s/step."""
        return {"steps_run": self.steps_run, "steps_planned": self.planned, "steps_full": self.full,
                "s_per_step": None if self.s_per_step is None else round(self.s_per_step, 3),
                "stopped_at_deadline": self.stopped_at_deadline}  # fmt: skip


def _rescale_schedule(scheduler, args, steps: int) -> None:
    """Point a LambdaLR schedule (linear, cosine, constant with warm-up: the Trainer's) at a new total length, keeping
    the step it is at; other schedulers keep their own length."""
    from torch.optim.lr_scheduler import LambdaLR
    from transformers import get_scheduler

    if not isinstance(scheduler, LambdaLR):
        return
    optimizer = scheduler.optimizer
    fresh = get_scheduler(args.lr_scheduler_type, optimizer, args.get_warmup_steps(steps), steps,
                          scheduler_specific_kwargs=args.lr_scheduler_kwargs or {})  # fmt: skip
    scheduler.lr_lambdas = fresh.lr_lambdas
    for group, base, lr_lambda in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * lr_lambda(scheduler.last_epoch)  # the fresh scheduler set step 0's rate: undo that
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def lora_config(recipe: Recipe):
    """PEFT LoraConfig from the recipe (None when LoRA is off: full fine-tuning)."""
    if not recipe.lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=recipe.lora.r,
        lora_alpha=recipe.lora.alpha,
        lora_dropout=recipe.lora.dropout,
        target_modules=recipe.lora.target_modules,
        task_type="CAUSAL_LM",
    )


def model_init_kwargs(recipe: Recipe) -> dict:
    import torch

    if recipe.model.dtype == "auto":
        return {"dtype": "auto" if torch.cuda.is_available() else torch.float32}
    return {"dtype": getattr(torch, recipe.model.dtype)}


def save_final(trainer, run: Run) -> Path:
    """Save the trained adapter + tokenizer + recipe to <run>/final."""
    final = run.dir / "final"
    trainer.save_model(str(final))
    if trainer.accelerator.is_main_process:
        save_alongside(final, trainer.processing_class, run.dir)
    return final


def save_alongside(folder: Path, tokenizer, run_dir: Path) -> None:
    """What every checkpoint and final folder holds next to the weights: the tokenizer and the run's recipe."""
    tokenizer.save_pretrained(str(folder))
    shutil.copyfile(run_dir / "recipe.yaml", folder / "recipe.yaml")
