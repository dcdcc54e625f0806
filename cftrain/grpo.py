"""GRPO (and RLOO) with cftrain's verifiable rewards on a LoRA adapter, via TRL.

    cftrain train recipes/tiny/grpo.yaml
    accelerate launch --config_file recipes/accelerate/zero2.yaml -m cftrain train recipes/qwen2.5-1.5b/grpo.yaml

Dynamic sampling (DAPO): with `dynamic_sampling: true`, completions whose group rewards all agree (zero
advantage) are masked out of the loss and of its token normalisation, so they no longer dilute the update.
TRL does not refill the batch with new groups as DAPO does; the fraction dropped is logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from transformers import TrainerCallback

from cftrain.data import to_dataset
from cftrain.hooks import EvalHook
from cftrain.models import load_tokenizer, plain_checkpoint
from cftrain.recipes import METHODS, Recipe, resolve_reward, trainer_config
from cftrain.runs import MetricsLogger, RecipeInCheckpoints, lora_config, model_init_kwargs, prepare_run, save_final


def dynamic_sampling(trainer_cls: type) -> type:
    """A subclass of a TRL GRPO-style trainer that masks zero-advantage completions out of the loss."""

    class DynamicSampling(trainer_cls):
        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            # A group whose rewards all agree gets advantage (r - mean) / (std + 1e-4): float32 noise in the std
            # makes that ~1e-5, not 0. Real advantages are >= ~1e-2 (a binary reward in a group of 64 is 0.125).
            keep = (output["advantages"].abs() > 1e-3).int()
            output["completion_mask"] = output["completion_mask"] * keep.unsqueeze(1)
            if "num_items_in_batch" in output:  # GRPO's dapo/cispo normaliser; RLOO has none
                output["num_items_in_batch"] = self.accelerator.gather(output["completion_mask"].sum()).sum()
            mode = "train" if self.model.training else "eval"
            dropped = 1.0 - self.accelerator.gather(keep.float()).mean().item()
            self._metrics[mode]["dynamic_sampling/dropped_frac"].append(dropped)
            return output

    DynamicSampling.__name__ = f"DynamicSampling{trainer_cls.__name__}"
    return DynamicSampling


def main(recipe: Recipe, resume: bool = True, callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Train, resuming from the last checkpoint in output_dir if any; `callbacks` are added to the run's own."""
    import trl

    # ---- config, run folder, data
    args = trainer_config(recipe)
    run = prepare_run(recipe, resume)
    train_dataset = to_dataset(run.train, recipe.prompt)

    # ---- model and tokenizer (a path, not a loaded model: DeepSpeed ZeRO-3 must build it sharded)
    model_path = plain_checkpoint(recipe.model.name_or_path, recipe.model.gguf_file)
    tokenizer = load_tokenizer(model_path, padding_side="left")
    args.model_init_kwargs = model_init_kwargs(recipe)

    # ---- trainer
    trainer_cls = getattr(trl, METHODS[recipe.method].trainer)
    if recipe.dynamic_sampling:
        trainer_cls = dynamic_sampling(trainer_cls)
    hook = EvalHook(recipe.eval, recipe.prompt)
    trainer = trainer_cls(
        model=model_path,
        reward_funcs=[resolve_reward(name) for name in recipe.rewards],
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

    # ---- train (resuming from the last checkpoint in output_dir, if any) and save
    trainer.train(resume_from_checkpoint=run.resume_from)
    return save_final(trainer, run)
