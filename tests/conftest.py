"""Shared test setup: offline W&B, an isolated cftrain model cache, and small recipe helpers.

The default run (`python -m pytest`) is offline CPU tests; `-m slow` runs multi-process and longer training.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def cftrain_home(tmp_path_factory):
    """Models built by tests go to one session folder unless CFTRAIN_HOME is set (CI sets it to reuse builds)."""
    if "CFTRAIN_HOME" not in os.environ:
        os.environ["CFTRAIN_HOME"] = str(tmp_path_factory.mktemp("cftrain-home"))
    return Path(os.environ["CFTRAIN_HOME"])


def write_recipe(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def subprocess_env() -> dict:
    """Environment for child processes: tests/ importable (test reward functions), offline everything."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), str(ROOT), env.get("PYTHONPATH", "")])
    return env


def terminate_when(proc: subprocess.Popen, started: Callable[[], bool], what: str) -> None:
    """Wait (60 s at most) until `started()`, then SIGTERM `proc`: it must exit 143 without a traceback."""
    deadline = time.time() + 60
    while not started() and time.time() < deadline:
        time.sleep(0.05)
    assert started(), f"{what} never started"
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "Traceback" not in err


sys.path.insert(0, str(Path(__file__).resolve().parent))
