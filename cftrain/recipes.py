"""Recipe YAML -> config dataclasses: cftrain's own blocks plus TRL's config for the method, validated.

A recipe is one YAML file; every field can be overridden on the command line as `--block.field value`
(`--trainer.learning_rate 1e-6`, `--lora.r 8`). Unknown or mistyped fields fail before any model loads,
with an error that names the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import importlib
import importlib.util
import math
import reprlib
import types
import typing
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cftrain.data import Source
from cftrain.generation import GenerationSettings
from cftrain.models import DTYPES
from cftrain.problems.base import check_probability
from cftrain.prompts import PromptConfig
from cftrain.rewards import REWARDS
from cftrain.yamlfile import read_yaml


@dataclass(frozen=True)
class Method:
    """How a recipe's `method` trains: the cftrain module whose `main(recipe, resume)` runs it, the TRL config
    class its `trainer:` block builds (None: the `ppo:` block builds PPOSettings) and the TRL trainer class."""

    module: str
    config: str | None
    trainer: str | None
    rewards: bool  # reads `rewards:` (every RL method)


# The one table of methods: adding a method is a row here (and its module, if it is new).
METHODS = {
    "sft": Method("cftrain.sft", "SFTConfig", "SFTTrainer", rewards=False),
    "grpo": Method("cftrain.grpo", "GRPOConfig", "GRPOTrainer", rewards=True),
    "rloo": Method("cftrain.grpo", "RLOOConfig", "RLOOTrainer", rewards=True),
    "ppo": Method("cftrain.ppo", None, None, rewards=True),
}


def train_function(method: str):
    """The `main(recipe, resume=True)` that trains `method`."""
    return importlib.import_module(METHODS[method].module).main


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
    """The `eval:` block: the training-time eval hook (`cftrain.hooks.EvalHook`). It generates greedily; its
    `max_new_tokens` and `batch_size` are those of `generation.GenerationSettings` (see `generation()`)."""

    every_steps: int = field(default=0, metadata={"help": "run the eval hook every N steps (0: off)"})
    suites: list[str] = field(default_factory=lambda: ["id", "ood"], metadata={"help": "id, ood, all, family, .jsonl"})
    n: int = field(default=8, metadata={"help": "items per family x variant in the hook"})
    variants: list[str] = field(
        default_factory=lambda: ["counterfactual", "interventional"], metadata={"help": "variants evaluated"}
    )
    max_new_tokens: int = field(
        default=GenerationSettings.max_new_tokens, metadata={"help": "generation budget per completion"}
    )
    batch_size: int = field(default=GenerationSettings.batch_size, metadata={"help": "prompts per generate call"})
    at_end: bool = field(default=True, metadata={"help": "also run the hook after the last step"})

    def generation(self) -> GenerationSettings:
        """How the hook generates: greedy, one completion per item, with this block's budget and batch size."""
        return GenerationSettings(max_new_tokens=self.max_new_tokens, batch_size=self.batch_size)


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
        default=1.0,
        metadata={
            "help": "whitening divides by max(std, this), in reward units. 1.0: advantages of 0/1 rewards (std <= 0.5) "
            "are centred, never blown up, so a batch whose rewards are all equal does not turn the critic's noise into "
            "full-size steps (with 1e-4 PPO unlearned a solved task; 0.1 still did in 1 of 6 seeds)"
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
            check_probability(f"ppo.{name}", getattr(self, name))
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
        if METHODS[self.method].rewards and "answer" not in self.rewards:
            raise ValueError("rewards must include `answer` for RL methods")
        if METHODS[self.method].config is None and self.trainer:
            raise ValueError("trainer: method ppo is configured in the `ppo:` block; leave `trainer:` empty")
        if METHODS[self.method].config is not None and self.ppo:
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


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = 4
_REPR.maxlevel = 2


def short_repr(value: Any, limit: int = 80) -> str:
    """repr() bounded in size and time (a value built from YAML aliases can be huge)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(path: str, message: str) -> None:
    raise ValueError(f"{path}: {message}")


def build(cls: type, raw: Any, path: str) -> Any:
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
    """`value` checked (and, for numbers, converted) against the annotation `hint`, as HfArgumentParser would."""
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
        _fail(path, f"expected {_name(hint)}; got {short_repr(value)}")
    if origin is typing.Literal:
        if value not in args:
            _fail(path, f"expected one of {', '.join(map(repr, args))}; got {short_repr(value)}")
        return value
    if dataclasses.is_dataclass(hint):
        return build(hint, value, path)
    if origin is list or hint is list:
        if not isinstance(value, list):
            _fail(path, f"expected a list; got {short_repr(value)}")
        return [_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)] if args else value
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            _fail(path, f"expected a mapping; got {short_repr(value)}")
        return {k: _coerce(args[1], v, f"{path}.{k}") for k, v in value.items()} if args else value
    if hint is Any or not isinstance(hint, type):
        return value
    if issubclass(hint, enum.Enum):
        try:
            hint(value)
        except ValueError:
            _fail(path, f"expected one of {', '.join(str(m.value) for m in hint)}; got {short_repr(value)}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        # YAML 1.1 reads `1e-6` as a string; HfArgumentParser would call float() on it.
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            _fail(path, f"expected float; got {short_repr(value)}")
        return number
    if hint is bool and not isinstance(value, bool):
        _fail(path, f"expected true or false; got {short_repr(value)}")
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        _fail(path, f"expected {hint.__name__}; got {short_repr(value)}")
    return value


def _name(hint: Any) -> str:
    return " or ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(hint) if a is not type(None))


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
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # `!!python/name:...`, `[1,`: taken as the string it is


def _set(raw: dict, dotted: str, value: Any) -> None:
    node = raw
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise ValueError(f"override --{dotted}: {part} is not a block")
    node[last] = value


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read a recipe YAML, apply dotted overrides, validate cftrain blocks and the TRL trainer block."""
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"recipe {path}: expected a mapping of blocks (method, model, output_dir, ...)")
    for key, value in (overrides or {}).items():
        _set(raw, key, value)
    recipe = build(Recipe, raw, "")
    trainer_config(recipe, hardware=False)  # validate the trainer block now, before any model loads
    return recipe


def check_run(recipe: Recipe, hardware: bool = True) -> None:
    """Everything `cftrain train` can check before it writes anything; `--dry-run` runs it with hardware=False.

    The TRL config builds (on this machine's hardware with `hardware`), the model and any PPO value model resolve,
    and the data files exist. ValueError names what is wrong.
    """
    from cftrain.models import check_model

    trainer_config(recipe, hardware=hardware)
    if hardware and recipe.trainer.get("use_vllm") and importlib.util.find_spec("vllm") is None:
        # TRL would only find out in GRPOTrainer.__init__, after the data and the model are built.
        raise ValueError(
            "trainer.use_vllm: vLLM is not installed (pip install -e '.[vllm]', GPU only); "
            "--trainer.use_vllm false generates with transformers"
        )
    check_model(recipe.model.name_or_path, "model.name_or_path")
    if recipe.method == "ppo" and recipe.ppo.get("value_model"):
        check_model(recipe.ppo["value_model"], "ppo.value_model")
    for name, path in (("data.train_path", recipe.data.train_path), ("data.test_path", recipe.data.test_path)):
        if path and not Path(path).is_file():
            raise ValueError(f"{name} {path}: no such file")
    if not recipe.data.train and not recipe.data.train_path:
        raise ValueError("data: no training records; set data.train or data.train_path")


def recipe_dict(recipe: Recipe) -> dict:
    return dataclasses.asdict(recipe)


def save_recipe(recipe: Recipe, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(recipe_dict(recipe), sort_keys=False))


# ---------------------------------------------------------------- TRL configs

# Fields cftrain sets itself from other blocks; setting them in `trainer:` would be silently overwritten.
_OWNED = {"output_dir": "output_dir", "seed": "seed", "report_to": "logging.wandb", "reward_weights": "rewards"}


# Counts TRL accepts silently when they are zero or negative, and then fails on (or divides by) during training.
_POSITIVE = ("per_device_train_batch_size", "gradient_accumulation_steps", "num_generations", "max_completion_length",
             "logging_steps", "num_train_epochs", "steps_per_generation", "num_iterations", "max_length")  # fmt: skip


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _trainer_values(cls: type, trainer: dict[str, Any]) -> dict[str, Any]:
    """`trainer:` checked field by field against the annotations of the TRL config class `cls`."""
    allowed = {f.name for f in dataclasses.fields(cls) if f.init}
    values = {}
    for key, value in trainer.items():
        if key in _OWNED:
            raise ValueError(f"trainer.{key}: set it with `{_OWNED[key]}` in the recipe, not in trainer")
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; see the fields of trl.{cls.__name__}"
            raise ValueError(f"trainer.{key}: not a field of trl.{cls.__name__}{hint}")
        value = _coerce(_hints(cls).get(key, Any), value, f"trainer.{key}")
        if key in _POSITIVE and isinstance(value, int | float) and value <= 0:
            raise ValueError(f"trainer.{key} must be > 0; got {value}")
        if key == "max_steps" and value < 1 and value != -1:
            raise ValueError(f"trainer.max_steps must be > 0 (or -1: train num_train_epochs); got {value}")
        if key == "learning_rate" and not 0 <= value < math.inf:
            raise ValueError(f"trainer.learning_rate must be >= 0; got {value}")
        values[key] = value
    return values


def trainer_config(recipe: Recipe, hardware: bool = True):
    """The TRL config dataclass for the recipe's method, built from `trainer:` (PPOSettings for ppo).

    With `hardware=False` the fields are validated without checking this machine can run them (a bf16 GPU
    recipe still parses on a CPU laptop); training uses `hardware=True`.
    """
    method = METHODS[recipe.method]
    if method.config is None:
        return build(PPOSettings, recipe.ppo, "ppo")
    import trl

    cls = getattr(trl, method.config)
    trainer = _trainer_values(cls, recipe.trainer)
    kwargs = {
        "output_dir": recipe.output_dir,
        "seed": recipe.seed,
        "report_to": ["wandb"] if recipe.logging.wandb and recipe.logging.mode != "disabled" else [],
    }
    if method.rewards:
        kwargs["reward_weights"] = list(recipe.rewards.values())
    if not hardware:
        kwargs.update(bf16=False, fp16=False)
        if method.rewards:
            kwargs["use_vllm"] = False
    elif _on_cpu(trainer):
        kwargs.update(_cpu_defaults(trainer))
    try:
        with warnings.catch_warnings():  # transformers' notice, for every TRL config, that TRL's default is renamed
            warnings.filterwarnings("ignore", "`gradient_checkpointing` is deprecated", FutureWarning)
            return cls(**kwargs, **{k: v for k, v in trainer.items() if k not in kwargs})
    except (TypeError, ValueError, ArithmeticError, KeyError, AttributeError) as e:
        # TRL's __post_init__ checks combinations of fields; name the field that, left out, lets the config build.
        culprit = next(
            (k for k in trainer if _builds(cls, {**kwargs, **{j: trainer[j] for j in trainer if j != k}})), None
        )
        which = f" (trainer.{culprit}={short_repr(trainer[culprit])})" if culprit else ""
        message = " ".join(str(e).split()) or type(e).__name__
        raise ValueError(f"trainer: trl.{cls.__name__} rejected the values{which}: {message}") from None


def _on_cpu(trainer: dict[str, Any]) -> bool:
    import torch

    return bool(trainer.get("use_cpu")) or not torch.cuda.is_available()


def _cpu_defaults(trainer: dict[str, Any]) -> dict[str, Any]:
    """TRL's GPU defaults that a CPU run pays for without getting anything back, unless `trainer:` sets them.

    - `bf16` (TRL: true) autocasts every matmul to bfloat16. The model is float32 on CPU (`model.dtype: auto`), and
      on a CPU without native bf16 (AVX2 only) each autocast matmul is emulated: the reported 12x slower SFT step.
    - `activation_checkpointing` (TRL: true, as `gradient_checkpointing`) saves GPU memory by running every layer's
      forward again in the backward pass: on CPU a third more compute for memory that is not short.
    """
    defaults = {}
    if "bf16" not in trainer and not trainer.get("fp16"):
        defaults["bf16"] = False
    if "gradient_checkpointing" not in trainer and "activation_checkpointing" not in trainer:
        defaults["activation_checkpointing"] = False
    return defaults


def _builds(cls: type, kwargs: dict[str, Any]) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(**kwargs)
    except Exception:  # noqa: BLE001 - only probing which field TRL objects to
        return False
    return True
