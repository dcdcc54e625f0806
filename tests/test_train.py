"""A few real SFT / GRPO / RLOO steps on the embedded micro model: the LoRA weights change, metrics are logged,
and the saved adapter loads in plain transformers + peft. Run: pytest tests/test_train.py"""

import json
import subprocess
import sys

import pytest
from conftest import subprocess_env

from cftrain.recipes import Recipe, build

# Every test here trains a model: the `train` tier (`pytest -m "not train"` skips it).
pytestmark = pytest.mark.train

MICRO = {"name_or_path": "cftrain:micro"}
DATA = {"train": [{"family": "if_else", "n": 8, "variants": ["counterfactual"], "knobs": {"depth": 0}}]}


def make(tmp_path, method, trainer, **extra) -> Recipe:
    raw = {"method": method, "model": MICRO, "output_dir": str(tmp_path / method), "data": DATA,
           "lora": {"r": 4, "alpha": 8, "dropout": 0.0}, "trainer": {"use_cpu": True, "logging_steps": 1, **trainer},
           "logging": {"wandb": False}, **extra}  # fmt: skip
    return build(Recipe, raw, "")


def lora_b_norm(folder) -> float:
    from safetensors.torch import load_file

    weights = load_file(str(folder / "adapter_model.safetensors"))
    return sum(float(w.abs().sum()) for k, w in weights.items() if "lora_B" in k)


def metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_sft_steps_change_lora_and_load_in_plain_peft(tmp_path):
    from cftrain.sft import main

    recipe = make(tmp_path, "sft", {"max_steps": 3, "per_device_train_batch_size": 4, "learning_rate": 1e-2,
                                    "save_steps": 2, "max_length": 512},
                  eval={"every_steps": 2, "suites": ["id", "while"], "n": 1, "max_new_tokens": 8})  # fmt: skip
    final = main(recipe)
    assert lora_b_norm(final) > 0, "LoRA B starts at zero: training must move it"
    logs = metrics(final.parent)
    assert logs[0]["event"] == "start" and logs[0]["world_size"] == 1
    assert any("loss" in line for line in logs)
    # The eval hook ran at step 2 and at the end, scoring per family x variant through cftrain.evaluate.
    hooked = [line for line in logs if "eval/if_else/counterfactual/em" in line]
    assert [line["step"] for line in hooked] == [2, 3] and "eval/while/interventional/em" in hooked[0]
    assert (final.parent / "checkpoint-2" / "recipe.yaml").exists()
    assert (final.parent / "data" / "manifest.json").exists()
    # The checkpoint loads with no cftrain import at all.
    code = (
        "import sys, torch; from transformers import AutoModelForCausalLM, AutoTokenizer; from peft import PeftModel; "
        "import json; cfg = json.load(open(sys.argv[1] + '/adapter_config.json')); "
        "base = AutoModelForCausalLM.from_pretrained(cfg['base_model_name_or_path']); "
        "model = PeftModel.from_pretrained(base, sys.argv[1]); tok = AutoTokenizer.from_pretrained(sys.argv[1]); "
        "out = model.generate(**tok('def f(x, r):', return_tensors='pt'), max_new_tokens=3); "
        "assert 'cftrain' not in sys.modules; print(out.shape[1])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(final)], capture_output=True, text=True, env=subprocess_env(), cwd="/"
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("method", ["grpo", "rloo"])
def test_rl_steps_change_lora_and_log_rewards(tmp_path, method):
    from cftrain.grpo import main

    trainer = {"max_steps": 2, "per_device_train_batch_size": 4, "num_generations": 4, "max_completion_length": 12,
               "learning_rate": 1e-2, "save_steps": 2, "beta": 0.0}  # fmt: skip
    recipe = make(tmp_path, method, trainer, rewards={"answer": 1.0, "train_rewards:length_reward": 1.0},
                  dynamic_sampling=True)  # fmt: skip
    final = main(recipe)
    assert lora_b_norm(final) > 0
    logs = [line for line in metrics(final.parent) if "reward" in line]
    assert logs and "rewards/length_reward/mean" in logs[-1]
    assert "dynamic_sampling/dropped_frac" in logs[-1]
