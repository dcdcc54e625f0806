"""SFT baseline: TRL SFTTrainer on gold rationales (or verified teacher traces) with a LoRA adapter.

cftrain train recipes/tiny/sft.yaml
accelerate launch --config_file recipes/accelerate/ddp.yaml -m cftrain train recipes/qwen2.5-1.5b/sft.yaml
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from cftrain.data import to_dataset
from cftrain.hooks import EvalHook
from cftrain.models import load_tokenizer, plain_checkpoint
from cftrain.recipes import Recipe, trainer_config
from cftrain.runs import (
    MetricsLogger,
    RecipeInCheckpoints,
    Run,
    lora_config,
    model_init_kwargs,
    prepare_run,
    save_final,
)


def main(recipe: Recipe, resume: bool = True, callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Train, resuming from the last checkpoint in output_dir if any; `callbacks` are added to the run's own."""
    trainer, run = build(recipe, resume, callbacks)
    # ---- train (resuming from the last checkpoint in output_dir, if any) and save
    trainer.train(resume_from_checkpoint=run.resume_from)
    return save_final(trainer, run)


def build(recipe: Recipe, resume: bool = True, callbacks: Sequence[TrainerCallback] = ()) -> tuple[Any, Run]:
    """The SFTTrainer `main` trains, and its run folder (scripts/bench_train.py times its steps)."""
    from trl import SFTTrainer

    # ---- config, run folder, data
    args = trainer_config(recipe)
    run = prepare_run(recipe, resume)
    train_dataset = to_dataset(run.train, recipe.prompt, with_rationale=True)

    # ---- model and tokenizer (a path, not a loaded model: DeepSpeed ZeRO-3 must build it sharded)
    model_path = plain_checkpoint(recipe.model.name_or_path, recipe.model.gguf_file)
    tokenizer = load_tokenizer(model_path, padding_side="right")
    args.model_init_kwargs = model_init_kwargs(recipe)

    # ---- trainer
    hook = EvalHook(recipe.eval, recipe.prompt)
    trainer = SFTTrainer(
        model=model_path,
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=lora_config(recipe),
        callbacks=[
            MetricsLogger(run.dir / "metrics.jsonl", run.resume_from),
            RecipeInCheckpoints(run.dir),
            hook,
            *callbacks,
        ],
    )
    hook.attach(trainer)
    return trainer, run
