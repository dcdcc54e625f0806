"""What `cftrain eval --model M [--adapter A]` evaluates, and where its results go by default.

`resolve_target` reads a model name, a model folder, or a checkpoint folder (an adapter with the run's recipe.yaml,
found by `models.find_recipe`; its base by `models.adapter_base`) into the base model, the adapter, the tokenizer
source and the recipe's prompt format; `default_out` names the output folder next to a run's checkpoint. Light: no
torch or transformers import (the CLI calls `default_out` before anything loads).

Tests: `pytest tests/test_evaluate.py`.
"""

from __future__ import annotations

from pathlib import Path

from cftrain.data import slug
from cftrain.models import adapter_base, find_recipe
from cftrain.yamlfile import read_yaml


def resolve_target(model: str, adapter: str | None = None) -> dict:
    """What `model`/`adapter` mean: base model, adapter folder, tokenizer source, recipe (if any).

    `model` may be a Hub id, a `cftrain:` name, a local model folder (a merged or fully fine-tuned checkpoint), or a
    folder holding an adapter (`adapter_config.json`, e.g. `<run>/final`): then the base model comes from the
    recipe next to it, else from the adapter's config (`models.adapter_base`).
    """
    if adapter is None and (Path(model) / "adapter_config.json").is_file():
        model, adapter = None, model
    if adapter is not None and not (Path(adapter) / "adapter_config.json").is_file():
        raise ValueError(f"--adapter {adapter}: no adapter_config.json in that folder")
    recipe_path = find_recipe(adapter or model) if adapter or Path(model).is_dir() else None
    recipe = read_yaml(recipe_path) if recipe_path else {}
    if not isinstance(recipe, dict):
        raise ValueError(f"{recipe_path}: not a recipe (expected a mapping)")
    base = model if model is not None else adapter_base(adapter)
    model_block = recipe.get("model") or {}
    has_tokenizer = adapter is not None and (Path(adapter) / "tokenizer_config.json").is_file()
    gguf_file = model_block.get("gguf_file") if base == model_block.get("name_or_path") else None
    return {
        "base": base,
        "adapter": adapter,
        "tokenizer": adapter if has_tokenizer else base,
        "tokenizer_gguf_file": None if has_tokenizer else gguf_file,
        "recipe": str(recipe_path) if recipe_path else None,
        "prompt": recipe.get("prompt"),
        "dtype": model_block.get("dtype", "auto"),
        "gguf_file": gguf_file,
    }


def default_out(model: str, adapter: str | None = None) -> Path:
    """`<run>/eval` for `<run>/final`, `<run>/eval-checkpoint-N` for a checkpoint, else `evals/<model name>`."""
    folder = Path(adapter or model)
    if folder.name == "final" or folder.name.startswith("checkpoint-"):
        return folder.parent / ("eval" if folder.name == "final" else f"eval-{folder.name}")
    return Path("evals") / slug(str(adapter or model))
