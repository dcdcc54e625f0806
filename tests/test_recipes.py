"""Recipes: every shipped recipe parses; bad fields fail before any model loads, naming the field and what is
allowed, with exit code 2 and no traceback. Run: pytest tests/test_recipes.py"""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, write_recipe

from cftrain.recipes import Recipe, build, load_recipe, parse_overrides, trainer_config

SHIPPED = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if p.parent.name != "accelerate")
BASE = {"method": "grpo", "model": {"name_or_path": "cftrain:micro"}, "output_dir": "runs/x",
        "data": {"train": [{"family": "if_else", "n": 4}]}}  # fmt: skip


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_recipe_parses_and_documents_its_launch_command(path):
    recipe = load_recipe(path)
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and ("cftrain train" in first or "accelerate launch" in first)
    assert str(path.relative_to(ROOT)) in first
    assert recipe.model.name_or_path


def test_accelerate_configs_exist():
    names = {p.name for p in (ROOT / "recipes" / "accelerate").glob("*.yaml")}
    assert {"single.yaml", "ddp.yaml", "zero2.yaml", "zero3.yaml", "multinode.yaml"} <= names


@pytest.mark.parametrize(
    "change, message",
    [
        ({"methd": "grpo"}, "methd: unknown field (did you mean 'method'?)"),
        ({"method": "dpo"}, "method must be one of sft, grpo, rloo, ppo; got 'dpo'"),
        ({"lora": {"rank": 8}}, "lora.rank: unknown field"),
        ({"lora": {"r": "eight"}}, "lora.r: expected int; got 'eight'"),
        ({"model": {"name_or_path": "m", "dtype": "fp8"}}, "model.dtype must be one of auto, float32"),
        ({"trainer": {"learning_rat": 1e-5}}, "trainer.learning_rat: not a field of trl.GRPOConfig; did you mean"),
        ({"trainer": {"output_dir": "x"}}, "trainer.output_dir: set it with `output_dir`"),
        ({"trainer": {"num_generations": 1}}, "trainer: trl.GRPOConfig rejected the values"),
        ({"rewards": {"accuracy": 1.0}}, "unknown reward 'accuracy'; rewards: answer, f1, format, abduction"),
        ({"rewards": {"format": 1.0}}, "rewards must include `answer`"),
        ({"data": {"train": [{"family": "loops", "n": 3}]}}, "unknown family 'loops'"),
        ({"data": {"train": [{"family": "if_else", "n": 3, "knobs": {"x_mx": 3}}]}}, "unknown knob 'x_mx'"),
        ({"prompt": {"template": "alpaca"}}, "prompt.template must be one of plain, chat"),
        ({"eval": {"every_steps": "often"}}, "eval.every_steps: expected int"),
        ({"model": None}, "model: expected a mapping"),
    ],
)
def test_bad_fields_are_named(tmp_path, change, message):
    path = write_recipe(tmp_path / "r.yaml", {**BASE, **change})
    with pytest.raises(ValueError) as e:
        load_recipe(path)
    assert message in str(e.value)


def test_missing_model_is_named(tmp_path):
    raw = {k: v for k, v in BASE.items() if k != "model"}
    with pytest.raises(ValueError, match="missing required field.*model"):
        load_recipe(write_recipe(tmp_path / "r.yaml", raw))


def test_overrides(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", BASE)
    overrides = parse_overrides(
        ["--trainer.learning_rate", "1e-6", "--lora.r=8", "--prompt.scaffold", "abduct-act-predict"]
    )
    recipe = load_recipe(path, overrides)
    assert (
        recipe.trainer["learning_rate"] == 1e-6
        and recipe.lora.r == 8
        and recipe.prompt.scaffold == "abduct-act-predict"
    )
    with pytest.raises(ValueError, match="missing value"):
        parse_overrides(["--lora.r"])


@pytest.mark.train
def test_cli_exit_2_without_traceback_and_dry_run(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", BASE)
    run = [sys.executable, "-m", "cftrain", "train", str(path)]
    bad = subprocess.run([*run, "--trainer.learning_rat", "1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("cftrain train: error: trainer.learning_rat")
    dry = subprocess.run([*run, "--dry-run", "--seed", "3"], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "seed: 3" in dry.stdout and "if_else/counterfactual: 4" in dry.stdout
    assert not Path("runs/x").exists()
    missing = subprocess.run(
        [sys.executable, "-m", "cftrain", "train", str(tmp_path / "nope.yaml")], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_cpu_runs_turn_off_trl_gpu_defaults_unless_the_recipe_sets_them(tmp_path):
    # TRL defaults to bf16 autocast and activation checkpointing; on CPU both cost time and buy nothing here.
    base = {"method": "sft", "model": {"name_or_path": "cftrain:micro"}, "output_dir": str(tmp_path)}
    args = trainer_config(build(Recipe, {**base, "trainer": {"use_cpu": True}}, ""))
    assert args.bf16 is False and args.activation_checkpointing is False and args.gradient_checkpointing is False
    explicit = {"use_cpu": True, "bf16": True, "gradient_checkpointing": True}
    args = trainer_config(build(Recipe, {**base, "trainer": explicit}, ""))
    assert args.bf16 is True and args.activation_checkpointing is True


def test_use_vllm_without_vllm_is_a_one_line_error_before_the_run(tmp_path):
    import importlib.util

    from cftrain.recipes import check_run

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    raw = {"method": "grpo", "model": {"name_or_path": "cftrain:micro"}, "output_dir": str(tmp_path),
           "data": {"train": [{"family": "if_else", "n": 2}]}, "trainer": {"use_vllm": True}}  # fmt: skip
    recipe = build(Recipe, raw, "")
    check_run(recipe, hardware=False)  # a GPU recipe still validates on a laptop (--dry-run)
    with pytest.raises(ValueError, match=r"^trainer.use_vllm: vLLM is not installed"):
        check_run(recipe)
