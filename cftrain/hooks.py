"""The training-time eval callback: every `eval.every_steps` it generates on small ID and OOD suites and logs
exact set match and set F1 per family x variant (`eval/<family>/<variant>/em`), not only the reward.

It scores with `cftrain.evaluate.evaluate_records`, the same code `cftrain eval` uses, and generates with
`cftrain.generation.generate` as the recipe's `eval:` block says (`EvalSettings.generation()`).
"""

from __future__ import annotations

from transformers import TrainerCallback

from cftrain.data import load_suite
from cftrain.prompts import PromptConfig
from cftrain.recipes import EvalSettings


class EvalHook(TrainerCallback):
    """Call `attach(trainer)` after building the trainer, so results go through `trainer.log` (W&B + metrics.jsonl)."""

    def __init__(self, settings: EvalSettings, prompt: PromptConfig) -> None:
        self.settings = settings
        self.prompt = prompt
        suites = settings.suites if settings.every_steps else []
        self.records = [r for suite in suites for r in load_suite(suite, settings.n, settings.variants)]
        self.trainer = None
        self.last_step = -1

    def attach(self, trainer) -> EvalHook:
        self.trainer = trainer
        return self

    def run(self, model, tokenizer, step: int) -> dict[str, float]:
        from cftrain.evaluate import evaluate_records

        if step == self.last_step or not self.records:
            return {}
        self.last_step = step
        # Every rank generates (ZeRO-3 shards need all ranks in the forward); only rank 0's log is kept.
        generation = self.settings.generation()
        metrics, _ = evaluate_records(model, tokenizer, self.records, self.prompt, **generation.generate_kwargs())
        logged = {f"eval/{k}": v for k, v in metrics.items() if k.endswith(("/em", "/f1", "/format", "/gap"))}
        if self.trainer is not None:
            self.trainer.log(logged)
        return logged

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        every = self.settings.every_steps
        if every and state.global_step % every == 0:
            self.run(model, processing_class, state.global_step)

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if self.settings.every_steps and self.settings.at_end:
            self.run(model, processing_class, state.global_step)
