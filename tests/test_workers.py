"""`generate --workers N`: the same bytes as one process, bad values refused, and no worker outlives a SIGTERM.
Run: pytest tests/test_workers.py
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import subprocess_env, terminate_when

from cftrain.cli import main
from cftrain.problems import FAMILIES, generate


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_workers_give_byte_identical_files(tmp_path):
    digests = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.jsonl"
        argv = ["generate", "--family", "if_else", "--variant", "all", "--n", "70", "--seed", "5", "--out", str(out)]
        assert main([*argv, "--workers", str(workers)]) == 0
        digests.append(_sha(out))
    assert digests[0] == digests[1]


def test_workers_keep_order_with_a_start_offset():
    family = FAMILIES["while"]
    one = list(generate(family, "counterfactual", 40, seed=2, start=7))
    assert list(generate(family, "counterfactual", 40, seed=2, start=7, workers=3)) == one


@pytest.mark.parametrize("workers", [0, -1, 1.5, "2"])
def test_bad_workers_are_a_value_error(workers):
    with pytest.raises(ValueError, match="workers"):
        next(generate(FAMILIES["if_else"], "counterfactual", 2, workers=workers))


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
@pytest.mark.train
def test_sigterm_stops_every_worker_and_leaves_no_file(tmp_path):
    out = tmp_path / "big.jsonl"
    argv = [sys.executable, "-m", "cftrain", "generate", "--family", "if_else", "--n", "200000", "--workers", "2"]
    proc = subprocess.Popen([*argv, "--out", str(out)], env=subprocess_env(), stderr=subprocess.PIPE, text=True)
    workers: set[int] = set()

    def started() -> bool:
        workers.update(_children(proc.pid))
        return len(workers) >= 2

    terminate_when(proc, started, "the workers")
    assert list(tmp_path.iterdir()) == []
    for pid in workers:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        status = Path(f"/proc/{pid}/status").read_text()
        assert "State:\tZ" in status, f"worker {pid} is still running"
