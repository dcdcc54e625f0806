"""Recipe YAML -> config dataclasses: cftrain's own blocks plus TRL's config for the method, validated.

A recipe is one YAML file; every field can be overridden on the command line as `--block.field value`
(`--trainer.learning_rate 1e-6`, `--lora.r 8`). Unknown or mistyped fields fail before any model loads,
with an error that names the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cftrain.data import Source
from cftrain.prompts import PromptConfig
from cftrain.rewards import REWARDS

METHODS = ("sft", "grpo", "rloo", "ppo")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class ModelConfig:
    name_or_path: str = field(metadata={"help": "Hub id, local folder, or cftrain:tiny / cftrain:smollm2"})
    dtype: str = field(default="auto", metadata={"help": f"one of {', '.join(DTYPES)}; auto = fp32 on CPU"})
    gguf_file: str | None = field(default=None, metadata={"help": "GGUF file inside name_or_path, if any"})

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype must be one of {', '.join(DTYPES)}; got {self.dtype!r}")


@dataclass
class DataConfig:
    train: list[Source] = field(default_factory=list, metadata={"help": "mixture of families to train on"})
    test: list[Source] = field(default_factory=list, metadata={"help": "held-out mixture (structures disjoint)"})
    train_path: str | None = field(default=None, metadata={"help": "a records .jsonl instead of `train`"})
    test_path: str | None = field(default=None, metadata={"help": "a records .jsonl instead of `test`"})

    def __post_init__(self) -> None:
        if self.train and self.train_path:
            raise ValueError("data: give either data.train or data.train_path, not both")


@dataclass
class LoraSettings:
    enabled: bool = field(default=True, metadata={"help": "train a LoRA adapter (false: full fine-tuning)"})
    r: int = field(default=16, metadata={"help": "LoRA rank"})
    alpha: int = field(default=32, metadata={"help": "LoRA alpha (scale = alpha / r)"})
    dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    target_modules: list[str] | str = field(default="all-linear", metadata={"help": "module names or all-linear"})

    def __post_init__(self) -> None:
        if self.r <= 0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lora.r must be > 0 and lora.dropout in [0, 1); got {self.r}, {self.dropout}")


@dataclass
class EvalSettings:
    every_steps: int = field(default=0, metadata={"help": "run the eval hook every N steps (0: off)"})
    suites: list[str] = field(default_factory=lambda: ["id", "ood"], metadata={"help": "id, ood, all, family, .jsonl"})
    n: int = field(default=8, metadata={"help": "items per family x variant in the hook"})
    variants: list[str] = field(
        default_factory=lambda: ["counterfactual", "interventional"], metadata={"help": "variants evaluated"}
    )
    max_new_tokens: int = field(default=256, metadata={"help": "generation budget per completion"})
    batch_size: int = field(default=16, metadata={"help": "prompts per generate call"})
    at_end: bool = field(default=True, metadata={"help": "also run the hook after the last step"})


@dataclass
class LoggingSettings:
    wandb: bool = field(default=True, metadata={"help": "log to Weights & Biases"})
    project: str = field(default="cftrain", metadata={"help": "W&B project"})
    mode: str = field(default="offline", metadata={"help": "W&B mode: offline (default, no network) or online"})

    def __post_init__(self) -> None:
        if self.mode not in ("offline", "online", "disabled"):
            raise ValueError(f"logging.mode must be one of offline, online, disabled; got {self.mode!r}")


@dataclass
class PPOSettings:
    """The `ppo:` block of a recipe. The PPO defaults follow TRL's old PPOConfig and its PPOv2 config, Huang et al.
    2022 and Ziegler et al. 2019; the loop sizes default small (CPU), recipes set them."""

    # ---- loop sizes
    steps: int = field(default=100, metadata={"help": "rollouts, each followed by one PPO update"})
    batch_size: int = field(default=8, metadata={"help": "prompts per rollout on each process (one completion each)"})
    mini_batch_size: int = field(default=4, metadata={"help": "completions per optimizer step; divides batch_size"})
    ppo_epochs: int = field(default=4, metadata={"help": "passes over each rollout (TRL: 4)"})
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate, constant (TRL: 1e-5)"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping (transformers' default 1.0)"})
    # ---- generation
    max_new_tokens: int = field(default=64, metadata={"help": "completion budget per rollout"})
    temperature: float = field(default=0.7, metadata={"help": "sampling temperature, also applied to the log-probs"})
    # ---- advantages and losses
    gamma: float = field(default=1.0, metadata={"help": "discount (TRL, Huang et al.: 1.0)"})
    lam: float = field(default=0.95, metadata={"help": "GAE lambda (TRL, Huang et al.: 0.95)"})
    whiten_advantages: bool = field(default=True, metadata={"help": "normalise advantages (Huang et al.)"})
    advantage_std_floor: float = field(
        default=0.1,
        metadata={
            "help": "whitening divides by max(std, this), in reward units: a batch whose rewards are all equal is not "
            "blown up to unit-size noise (without it PPO unlearns a solved task)"
        },
    )
    cliprange: float = field(default=0.2, metadata={"help": "policy ratio clip (Schulman et al. 2017; TRL: 0.2)"})
    cliprange_value: float = field(default=0.2, metadata={"help": "value clip around the old values (TRL: 0.2)"})
    vf_coef: float = field(default=0.1, metadata={"help": "value loss weight (TRL: 0.1)"})
    target_kl: float | None = field(
        default=None, metadata={"help": "stop the epochs when approx KL (k3) passes this; null: never (CleanRL)"}
    )
    # ---- KL penalty to the reference
    kl_coef: float = field(default=0.05, metadata={"help": "KL coefficient, initial if adaptive (TRL PPOv2: 0.05)"})
    adaptive_kl: bool = field(default=False, metadata={"help": "adapt kl_coef toward kl_target (Ziegler et al.)"})
    kl_target: float = field(default=6.0, metadata={"help": "adaptive target for the sequence KL (Ziegler: 6)"})
    kl_horizon: int = field(default=10000, metadata={"help": "adaptive controller horizon in samples (Ziegler)"})
    # ---- models, bookkeeping
    value_model: str | None = field(
        default=None, metadata={"help": "separate critic model (same tokenizer); null: a critic adapter on the base"}
    )
    logging_steps: int = field(default=1, metadata={"help": "log every N steps"})
    save_steps: int = field(default=50, metadata={"help": "checkpoint every N steps (0: only the final save)"})
    use_cpu: bool = field(default=False, metadata={"help": "train on the CPU even when a GPU is present"})

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "mini_batch_size", "ppo_epochs", "max_new_tokens", "logging_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ppo.{name} must be a positive integer; got {getattr(self, name)}")
        if self.batch_size % self.mini_batch_size:
            raise ValueError(f"ppo.mini_batch_size must divide ppo.batch_size ({self.batch_size})")
        for name in ("learning_rate", "max_grad_norm", "temperature", "cliprange", "cliprange_value", "kl_target"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ppo.{name} must be > 0; got {getattr(self, name)}")
        for name in ("gamma", "lam"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"ppo.{name} must be in [0, 1]; got {getattr(self, name)}")
        if self.advantage_std_floor < 0:
            raise ValueError(f"ppo.advantage_std_floor must be >= 0; got {self.advantage_std_floor}")
        if self.vf_coef < 0 or self.kl_coef < 0:
            raise ValueError(f"ppo.vf_coef and ppo.kl_coef must be >= 0; got {self.vf_coef}, {self.kl_coef}")
        if self.target_kl is not None and self.target_kl <= 0:
            raise ValueError(f"ppo.target_kl must be > 0 or null; got {self.target_kl}")
        if self.kl_horizon <= 0 or self.save_steps < 0:
            raise ValueError(
                f"ppo.kl_horizon must be > 0 and ppo.save_steps >= 0; got {self.kl_horizon}, {self.save_steps}"
            )


@dataclass
class Recipe:
    method: str = field(metadata={"help": f"one of {', '.join(METHODS)}"})
    model: ModelConfig = field(metadata={"help": "the base model"})
    output_dir: str = field(metadata={"help": "run folder: checkpoints, recipe, manifest, metrics.jsonl"})
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "training and test data"})
    prompt: PromptConfig = field(default_factory=PromptConfig, metadata={"help": "prompt template"})
    lora: LoraSettings = field(default_factory=LoraSettings, metadata={"help": "LoRA adapter"})
    rewards: dict[str, float] = field(
        default_factory=lambda: {"answer": 1.0, "format": 0.1}, metadata={"help": "reward name -> weight"}
    )
    dynamic_sampling: bool = field(
        default=False, metadata={"help": "GRPO: drop prompt groups whose rewards all agree (DAPO)"}
    )
    trainer: dict[str, Any] = field(default_factory=dict, metadata={"help": "TRL config fields for the method"})
    ppo: dict[str, Any] = field(default_factory=dict, metadata={"help": "PPO settings (method: ppo)"})
    eval: EvalSettings = field(default_factory=EvalSettings, metadata={"help": "training-time eval hook"})
    logging: LoggingSettings = field(default_factory=LoggingSettings, metadata={"help": "W&B and local logs"})
    seed: int = field(default=0, metadata={"help": "seed for data order, init and sampling"})

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}; got {self.method!r}")
        for name in self.rewards:
            resolve_reward(name)
        if self.method != "sft" and "answer" not in self.rewards:
            raise ValueError("rewards must include `answer` for RL methods")
        if self.method == "ppo" and self.trainer:
            raise ValueError("trainer: method ppo is configured in the `ppo:` block; leave `trainer:` empty")
        if self.method != "ppo" and self.ppo:
            raise ValueError(f"ppo: only method ppo reads the `ppo:` block; method is {self.method}")


def resolve_reward(name: str) -> Callable[..., list[float]]:
    """A reward by table name (`answer`, `f1`, `format`) or by import path `package.module:function`."""
    if name in REWARDS:
        return REWARDS[name]
    module, _, attr = name.partition(":")
    if not attr:
        raise ValueError(f"rewards: unknown reward {name!r}; rewards: {', '.join(REWARDS)}, or module:function")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"rewards: cannot import {name!r}: {e}") from None


# ---------------------------------------------------------------- building dataclasses from dicts


def _fail(path: str, message: str) -> None:
    raise ValueError(f"{path}: {message}")


def _build(cls: type, raw: Any, path: str) -> Any:
    """Build dataclass `cls` from a dict, recursively and strictly: unknown keys and wrong types are errors."""
    if not isinstance(raw, dict):
        _fail(path, f"expected a mapping with fields {', '.join(f.name for f in dataclasses.fields(cls))}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in raw.items():
        where = f"{path}.{key}" if path else key
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            _fail(where, f"unknown field{hint}; allowed: {', '.join(fields)}")
        kwargs[key] = _coerce(hints[key], value, where)
    missing = [
        n
        for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and n not in kwargs
    ]
    if missing:
        _fail(path or "recipe", f"missing required field(s): {', '.join(missing)}")
    try:
        return cls(**kwargs)
    except ValueError as e:
        prefix = f"{path}: " if path and not str(e).startswith(path) else ""
        raise ValueError(f"{prefix}{e}") from None


def _coerce(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, path)
            except ValueError:
                continue
        _fail(path, f"expected {_name(hint)}; got {value!r}")
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)
    if origin is list:
        if not isinstance(value, list):
            _fail(path, f"expected a list; got {value!r}")
        return [_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            _fail(path, f"expected a mapping; got {value!r}")
        return {k: _coerce(args[1], v, f"{path}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool):
        _fail(path, f"expected true or false; got {value!r}")
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        _fail(path, f"expected {hint.__name__}; got {value!r}")
    return value


def _name(hint: Any) -> str:
    return " or ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(hint))


# ---------------------------------------------------------------- overrides and loading


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """`--trainer.learning_rate 1e-6 --lora.r=8` -> {"trainer.learning_rate": 1e-6, "lora.r": 8} (YAML-typed)."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or arg == "--":
            raise ValueError(f"override {arg!r}: expected --block.field VALUE")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args):
                raise ValueError(f"override --{key}: missing value")
            value = args[i + 1]
            i += 1
        out[key] = _scalar(value)
        i += 1
    return out


def _scalar(text: str) -> Any:
    # YAML 1.1 reads `1e-6` as a string; a user typing it on a command line means the float.
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


def _set(raw: dict, dotted: str, value: Any) -> None:
    node = raw
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {dotted}: {part} is not a block")
    node[last] = value


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read a recipe YAML, apply dotted overrides, validate cftrain blocks and the TRL trainer block."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise ValueError(f"recipe {path}: no such file") from None
    except yaml.YAMLError as e:
        raise ValueError(f"recipe {path}: invalid YAML: {e}") from None
    for key, value in (overrides or {}).items():
        _set(raw, key, value)
    recipe = _build(Recipe, raw, "")
    trainer_config(recipe, hardware=False)  # validate the trainer block now, before any model loads
    return recipe


def recipe_dict(recipe: Recipe) -> dict:
    return dataclasses.asdict(recipe)


def save_recipe(recipe: Recipe, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(recipe_dict(recipe), sort_keys=False))


# ---------------------------------------------------------------- TRL configs

_TRL_CONFIGS = {"sft": "SFTConfig", "grpo": "GRPOConfig", "rloo": "RLOOConfig"}
# Fields cftrain sets itself from other blocks; setting them in `trainer:` would be silently overwritten.
_OWNED = {"output_dir": "output_dir", "seed": "seed", "report_to": "logging.wandb", "reward_weights": "rewards"}


def trainer_config(recipe: Recipe, hardware: bool = True):
    """The TRL config dataclass for the recipe's method, built from `trainer:` (PPOSettings for ppo).

    With `hardware=False` the fields are validated without checking this machine can run them (a bf16 GPU
    recipe still parses on a CPU laptop); training uses `hardware=True`.
    """
    if recipe.method == "ppo":
        return _build(PPOSettings, recipe.ppo, "ppo")
    import trl

    cls = getattr(trl, _TRL_CONFIGS[recipe.method])
    allowed = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in recipe.trainer:
        if key in _OWNED:
            raise ValueError(f"trainer.{key}: set it with `{_OWNED[key]}` in the recipe, not in trainer")
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; see the fields of trl.{cls.__name__}"
            raise ValueError(f"trainer.{key}: not a field of trl.{cls.__name__}{hint}")
    kwargs = {
        "output_dir": recipe.output_dir,
        "seed": recipe.seed,
        "report_to": ["wandb"] if recipe.logging.wandb and recipe.logging.mode != "disabled" else [],
        **recipe.trainer,
    }
    if recipe.method != "sft":
        kwargs["reward_weights"] = list(recipe.rewards.values())
    if not hardware:
        kwargs.update(bf16=False, fp16=False)
        if recipe.method != "sft":
            kwargs["use_vllm"] = False
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"trainer: trl.{cls.__name__} rejected the values: {e}") from None
