"""Slow tier: real multi-process runs on CPU. `accelerate launch --multi_gpu --num_processes 2` (gloo) and DeepSpeed
ZeRO-2 both start two processes here; a run killed with SIGKILL resumes from its last checkpoint; W&B writes an
offline run. Run: pytest -m slow tests/test_scale.py (a few minutes; DeepSpeed compiles its CPU ops once)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, subprocess_env, write_recipe

pytestmark = [pytest.mark.slow, pytest.mark.train]


def recipe(tmp_path, max_steps=2, save_steps=2, wandb=True) -> dict:
    return {
        "method": "grpo",
        "model": {"name_or_path": "cftrain:micro"},
        "output_dir": str(tmp_path / "run"),
        "data": {"train": [{"family": "if_else", "n": 64, "variants": ["counterfactual"], "knobs": {"depth": 0}}]},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "rewards": {"answer": 1.0, "train_rewards:length_reward": 1.0},
        "trainer": {
            "max_steps": max_steps,
            "per_device_train_batch_size": 4,
            "num_generations": 4,
            "max_completion_length": 12,
            "learning_rate": 1e-2,
            "save_steps": save_steps,
            "logging_steps": 1,
            "use_cpu": True,
        },  # fmt: skip
        "logging": {"wandb": wandb},
    }


def starts(run_dir) -> list[dict]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x for x in lines if x.get("event") == "start"]


def launch(*args, **kwargs):
    return subprocess.run([*args], capture_output=True, text=True, env=subprocess_env(), cwd=ROOT, **kwargs)


def test_two_process_ddp_and_wandb_offline(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", recipe(tmp_path))
    done = launch("accelerate", "launch", "--multi_gpu", "--num_processes", "2", "-m", "cftrain", "train", str(path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert starts(tmp_path / "run")[0]["world_size"] == 2
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert runs and list(runs[0].glob("*.wandb")), "W&B offline run files were not written"
    assert (tmp_path / "run" / "final" / "adapter_model.safetensors").exists()


def test_deepspeed_zero2_on_cpu(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", recipe(tmp_path, wandb=False))
    config = ROOT / "recipes" / "accelerate" / "zero2.yaml"
    done = launch("accelerate", "launch", "--config_file", str(config), "--num_processes", "2", "--mixed_precision",
                  "no", "-m", "cftrain", "train", str(path))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert starts(tmp_path / "run")[0]["world_size"] == 2
    assert list((tmp_path / "run" / "checkpoint-2").glob("global_step*/*optim_states.pt")), "not a ZeRO checkpoint"
    assert (tmp_path / "run" / "final" / "adapter_model.safetensors").exists()


def test_resume_after_sigkill(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", recipe(tmp_path, max_steps=60, save_steps=5, wandb=False))
    cmd = [sys.executable, "-m", "cftrain", "train", str(path)]
    proc = subprocess.Popen(cmd, env=subprocess_env(), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    run = tmp_path / "run"
    deadline = time.time() + 300
    while not (run / "checkpoint-10").exists():
        assert proc.poll() is None, "run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "final").exists()
    saved = max(int(p.parent.name.split("-")[1]) for p in run.glob("checkpoint-*/trainer_state.json"))
    done = launch(*cmd)
    assert done.returncode == 0, done.stderr[-3000:]
    second = starts(run)[-1]
    assert second["resumed_from"].endswith(f"checkpoint-{saved}") and second["step"] == saved
    state = json.loads((run / "checkpoint-60" / "trainer_state.json").read_text())
    assert state["global_step"] == 60
