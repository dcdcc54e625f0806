"""cftrain.ppo: the PPO math against hand-computed numbers, the `ppo:` settings' validation, and short runs of `main()`
on the micro model: metrics.jsonl, checkpoint layout, an exact resume, the final adapter in plain peft, the critic
variants (shared base, separate value model, full fine-tuning) and the eval hook. Offline, CPU, ~1 minute in all;
the two-process DDP run is marked slow.

    pytest tests/test_ppo.py
    pytest tests/test_ppo.py -m slow
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, subprocess_env, write_recipe
from safetensors.torch import load_file

from cftrain import ppo
from cftrain.models import resolve_model
from cftrain.recipes import load_recipe, trainer_config

RECIPE = {
    "method": "ppo",
    "model": {"name_or_path": "cftrain:micro"},
    "data": {
        "train": [
            {"family": "if_else", "n": 4, "variants": ["counterfactual"], "knobs": {"max_branches": 2, "depth": 0}}
        ]
    },
    "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
    # A dense reward, so that every update moves the weights; `answer` is required for RL recipes.
    "rewards": {"answer": 1.0, "rewards_for_tests:vowel_fraction_reward": 1.0},
    "ppo": {
        "steps": 2,
        "batch_size": 4,
        "mini_batch_size": 2,
        "ppo_epochs": 2,
        "max_new_tokens": 4,
        "temperature": 1.0,
        "learning_rate": 1e-3,
        "save_steps": 0,
        "use_cpu": True,
    },
    "logging": {"wandb": False},
}
DIAGNOSTICS = {
    "reward", "reward_std", "loss/policy", "loss/value", "clipfrac/policy", "clipfrac/value", "approx_kl", "kl",
    "entropy", "explained_variance", "completion_length", "learning_rate", "kl_coef", "time/rollout", "time/update",
}  # fmt: skip


def make_recipe(tmp_path: Path, name: str = "run", **overrides):
    path = write_recipe(tmp_path / f"{name}.yaml", {**RECIPE, "output_dir": str(tmp_path / name)})
    return load_recipe(path, overrides)


def lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def metrics(run_dir: Path) -> list[dict]:
    """The per-step logs, without the `start` line each launch writes."""
    return [m for m in lines(run_dir) if "event" not in m]


# ---------------------------------------------------------------- math by hand


def test_gae_matches_hand_computation():
    gamma, lam = 0.9, 0.8
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.6, 0.7], [0.5, 0.6, 9.9]])  # 9.9 sits past the end of row 2: ignored
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    advantages, returns = ppo.gae(rewards, values, mask, gamma, lam)
    # row 1: d2 = 1 - 0.7 = 0.3; d1 = 0.9 * 0.7 - 0.6 = 0.03; d0 = 0.9 * 0.6 - 0.5 = 0.04
    #        A2 = 0.3, A1 = 0.03 + 0.72 * 0.3 = 0.246, A0 = 0.04 + 0.72 * 0.246 = 0.21712
    # row 2: d1 = 1 - 0.6 = 0.4 (V past the end is 0); A1 = 0.4, A0 = 0.04 + 0.72 * 0.4 = 0.328
    expected = torch.tensor([[0.21712, 0.246, 0.3], [0.328, 0.4, 0.0]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + values * mask)


def test_gae_with_gamma_and_lambda_one_is_reward_to_go_minus_value():
    rewards = torch.tensor([[0.1, -0.2, 1.0]])
    values = torch.tensor([[0.3, 0.2, 0.1]])
    advantages, returns = ppo.gae(rewards, values, torch.ones(1, 3), 1.0, 1.0)
    torch.testing.assert_close(returns, torch.tensor([[0.9, 0.8, 1.0]]))
    torch.testing.assert_close(advantages, torch.tensor([[0.6, 0.6, 0.9]]))


def test_whiten_uses_only_the_masked_entries():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    # mean 2, unbiased variance ((1 + 0 + 1) / 2) = 1
    torch.testing.assert_close(ppo.whiten(x, mask), torch.tensor([[-1.0, 0.0, 1.0, 0.0]]), atol=1e-6, rtol=0)


def test_whiten_floor_keeps_equal_rewards_from_becoming_unit_noise():
    # Every rollout earned the same reward: what is left of the advantages is the critic's noise (~1e-3 here).
    noise = torch.tensor([[1e-3, -2e-3, 1.5e-3, -0.5e-3]])
    mask = torch.ones_like(noise)
    assert ppo.whiten(noise, mask).abs().max() > 0.9  # no floor: blown up to unit size, a full-size random step
    assert ppo.whiten(noise, mask, std_floor=1.0).abs().max() < 0.01  # the default floor: centred, not amplified
    # A real spread of 0/1 rewards is still centred and only ever scaled down.
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    torch.testing.assert_close(ppo.whiten(rewards, mask, std_floor=1.0), torch.tensor([[0.5, -0.5, -0.5, 0.5]]))


def test_clipped_policy_loss_by_hand():
    old = torch.zeros(1, 3)
    new = torch.log(torch.tensor([[1.5, 0.5, 1.1]]))  # ratios 1.5, 0.5, 1.1
    advantages = torch.tensor([[1.0, 1.0, -1.0]])
    loss, clipfrac, approx_kl = ppo.policy_loss(new, old, advantages, torch.ones(1, 3), clip=0.2)
    # token 1: max(-1.5, -1.2) = -1.2 (clipped); token 2: max(-0.5, -0.8) = -0.5; token 3: max(1.1, 1.1) = 1.1
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 1.1) / 3)
    assert clipfrac.item() == pytest.approx(1 / 3)
    k3 = [(r - 1) - math.log(r) for r in (1.5, 0.5, 1.1)]
    assert approx_kl.item() == pytest.approx(sum(k3) / 3)


def test_clipped_value_loss_by_hand():
    old = torch.tensor([[0.0, 0.0, 5.0]])
    new = torch.tensor([[0.5, -0.1, 9.0]])
    returns = torch.tensor([[1.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])  # the third token is padding
    loss, clipfrac = ppo.value_loss(new, old, returns, mask, clip=0.2)
    # token 1: V clipped to 0.2: max((0.5-1)^2, (0.2-1)^2) = 0.64; token 2: inside the clip: (-0.1-1)^2 = 1.21
    assert loss.item() == pytest.approx(0.5 * (0.64 + 1.21) / 2)
    assert clipfrac.item() == pytest.approx(0.5)


def test_kl_controller_fixed_and_adaptive():
    fixed = ppo.KLController(0.05)
    fixed.update(kl=100.0, n_samples=64)
    assert fixed.value == 0.05
    # Ziegler et al.: beta *= 1 + clip(KL / target - 1, -0.2, 0.2) * n / horizon
    for kl, expected in ((6.6, 0.1 * (1 + 0.1 * 10 / 100)), (9.0, 0.102), (0.0, 0.098), (6.0, 0.1)):
        ctl = ppo.KLController(0.1, target=6.0, horizon=100)
        ctl.update(kl=kl, n_samples=10)
        assert ctl.value == pytest.approx(expected)


def test_prompt_rows_cover_every_row_once_per_epoch_and_depend_only_on_the_step():
    first_epoch = [r for step in (1, 2, 3) for r in ppo.prompt_rows(12, step, 4, seed=0)]
    assert sorted(first_epoch) == list(range(12))
    assert ppo.prompt_rows(12, 5, 4, seed=0) == ppo.prompt_rows(12, 5, 4, seed=0)
    assert ppo.prompt_rows(12, 1, 4, seed=0) != ppo.prompt_rows(12, 1, 4, seed=1)
    assert len(ppo.prompt_rows(5, 2, 4, seed=0)) == 4  # crosses an epoch boundary


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "override, field",
    [
        ({"ppo.batch_size": 0}, "ppo.batch_size"),
        ({"ppo.mini_batch_size": 3}, "ppo.mini_batch_size"),
        ({"ppo.gamma": 1.5}, "ppo.gamma"),
        ({"ppo.cliprange": 0}, "ppo.cliprange"),
        ({"ppo.target_kl": -1.0}, "ppo.target_kl"),
        ({"ppo.temperature": 0.0}, "ppo.temperature"),
        ({"ppo.cliprang": 0.1}, "ppo.cliprang"),  # unknown field: named, with the close match
        ({"ppo.adaptive_kl": "yes"}, "ppo.adaptive_kl"),
    ],
)
def test_settings_errors_name_the_field(tmp_path, override, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        make_recipe(tmp_path, **override)


def test_defaults_and_the_shipped_recipe():
    settings = ppo.PPOSettings()
    assert (settings.gamma, settings.lam, settings.cliprange, settings.cliprange_value) == (1.0, 0.95, 0.2, 0.2)
    assert (settings.vf_coef, settings.kl_coef, settings.ppo_epochs, settings.whiten_advantages) == (
        0.1,
        0.05,
        4,
        True,
    )
    recipe = load_recipe(ROOT / "recipes" / "tiny" / "ppo.yaml")
    assert recipe.method == "ppo" and not recipe.trainer
    assert isinstance(trainer_config(recipe), ppo.PPOSettings)


# ---------------------------------------------------------------- runs on the micro model


@pytest.mark.train
def test_run_logs_checkpoints_and_resumes_exactly(tmp_path):
    # Straight through: 3 steps, a checkpoint at step 2.
    straight = ppo.main(make_recipe(tmp_path, "straight", **{"ppo.steps": 3, "ppo.save_steps": 2}), resume=False)
    logs = metrics(straight.parent)
    assert [m["step"] for m in logs] == [1, 2, 3]
    assert DIAGNOSTICS <= set(logs[0]) and "rewards/vowel_fraction_reward/mean" in logs[0]
    assert all(math.isfinite(v) for m in logs for v in m.values())
    assert logs[-1]["kl"] != 0.0  # the policy moved away from the reference

    checkpoint = straight.parent / "checkpoint-2"
    for name in ("adapter_model.safetensors", "adapter_config.json", "critic/adapter_model.safetensors",
                 "value_head.safetensors", "optimizer.bin", "random_states_0.pkl", "trainer_state.json",
                 "tokenizer.json", "recipe.yaml"):  # fmt: skip
        assert (checkpoint / name).is_file(), name
    assert json.loads((checkpoint / "trainer_state.json").read_text()) == {"step": 2, "kl_coef": 0.05}
    saved = load_file(checkpoint / "model.safetensors")
    assert saved and all("lora_" in k or k.startswith("value_head.") for k in saved)  # never the frozen base
    assert not (straight / "critic").exists() and (straight / "recipe.yaml").is_file()

    # Interrupted after the checkpoint at step 2, then resumed to step 3: the same step 3, the same final weights.
    recipe = make_recipe(tmp_path, "resumed", **{"ppo.steps": 2, "ppo.save_steps": 2})
    ppo.main(recipe, resume=False)
    resumed = ppo.main(make_recipe(tmp_path, "resumed", **{"ppo.steps": 3, "ppo.save_steps": 2}), resume=True)
    resumed_logs = metrics(resumed.parent)
    assert [m["step"] for m in resumed_logs] == [1, 2, 3]
    start = [m for m in lines(resumed.parent) if m.get("event") == "start"][-1]
    assert start["step"] == 2 and start["resumed_from"].endswith("checkpoint-2") and start["world_size"] == 1
    assert resumed_logs[2]["reward"] == logs[2]["reward"]
    a, b = load_file(straight / "adapter_model.safetensors"), load_file(resumed / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.train
def test_final_adapter_loads_in_plain_peft(tmp_path):
    final = ppo.main(make_recipe(tmp_path), resume=False)
    code = (
        "import sys, torch\n"
        "from transformers import AutoModelForCausalLM\n"
        "from peft import PeftModel\n"
        "base = AutoModelForCausalLM.from_pretrained(sys.argv[1])\n"
        "ids = torch.tensor([[5, 6, 7, 8]])\n"
        "before = base(ids).logits\n"
        "model = PeftModel.from_pretrained(base, sys.argv[2])\n"
        "assert 'cftrain' not in sys.modules\n"
        "assert model.active_adapter == 'default'\n"
        "print(float((model(ids).logits - before).abs().max()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, resolve_model("cftrain:micro"), str(final)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": ""},  # not even tests/ importable
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.split()[-1]) > 0  # the trained adapter changes the logits


@pytest.mark.parametrize(
    "overrides",
    [{"ppo.value_model": "cftrain:micro"}, {"lora.enabled": False}],
    ids=["separate-value-model", "full-fine-tuning"],
)
@pytest.mark.train
def test_critic_variants_train(tmp_path, overrides):
    final = ppo.main(make_recipe(tmp_path, **{"ppo.steps": 1, "ppo.save_steps": 1, **overrides}), resume=False)
    checkpoint = final.parent / "checkpoint-1"
    assert load_file(checkpoint / "value_head.safetensors")["weight"].abs().sum() > 0  # the critic learned
    assert (checkpoint / "critic" / "config.json" if "lora.enabled" in overrides else checkpoint / "critic").exists()
    assert math.isfinite(metrics(final.parent)[0]["loss/value"])


@pytest.mark.train
def test_eval_hook_and_early_stopping(tmp_path, monkeypatch):
    calls = []

    class FakeHook:
        def __init__(self, settings, prompt):
            pass

        def run(self, model, tokenizer, step):
            calls.append((step, model.active_adapter))
            return {"eval/if_else/counterfactual/em": 0.5}

    monkeypatch.setattr(ppo, "EvalHook", FakeHook)
    recipe = make_recipe(tmp_path, **{"ppo.steps": 3, "ppo.target_kl": 1e-12, "eval.every_steps": 2})
    final = ppo.main(recipe, resume=False)
    assert calls == [(2, "default"), (3, "default")]  # every 2 steps, and at the end
    logs = metrics(final.parent)
    assert [m["step"] for m in logs if "eval/if_else/counterfactual/em" in m] == [2, 3]
    assert all(m["ppo_epochs"] == 1 for m in logs if "ppo_epochs" in m)  # stopped after the first mini-batch


def launch(tmp_path: Path, name: str, steps: int, *args: str) -> Path:
    """`cftrain train` of RECIPE under `accelerate launch ARGS`, to `steps` with a checkpoint every 2 steps."""
    path = write_recipe(tmp_path / f"{name}.yaml", {**RECIPE, "output_dir": str(tmp_path / name)})
    cmd = ["accelerate", "launch", *args, "-m", "cftrain", "train", str(path), "--ppo.steps", str(steps)]
    done = subprocess.run([*cmd, "--ppo.save_steps", "2"], capture_output=True, text=True, env=subprocess_env(),
                          cwd=ROOT, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path / name


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["--multi_gpu", "--num_processes", "2"],  # DDP over gloo on CPU
        [
            "--config_file",
            str(ROOT / "recipes/accelerate/zero2.yaml"),
            "--num_processes",
            "2",
            "--mixed_precision",
            "no",
        ],
    ],
    ids=["ddp", "deepspeed-zero2"],
)
@pytest.mark.train
def test_two_processes_shard_checkpoint_and_resume_exactly(tmp_path, args):
    straight = launch(tmp_path, "straight", 3, *args, "--main_process_port", "29517")
    assert [m["world_size"] for m in lines(straight) if m.get("event") == "start"] == [2]
    assert (straight / "checkpoint-2" / "random_states_1.pkl").is_file()  # both processes saved their RNG
    launch(tmp_path, "resumed", 2, *args, "--main_process_port", "29518")
    resumed = launch(tmp_path, "resumed", 3, *args, "--main_process_port", "29519")
    assert [m["step"] for m in metrics(resumed)] == [1, 2, 3]
    assert metrics(resumed)[2]["reward"] == metrics(straight)[2]["reward"]
    a, b = (load_file(d / "final" / "adapter_model.safetensors") for d in (straight, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)
