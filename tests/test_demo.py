"""Slow tier: `cftrain demo` end to end at a reduced budget (about 3 minutes here): every stage runs, the report
and its plots are written, and the summary's metrics are well-formed. Run: pytest -m slow tests/test_demo.py"""

import json
import subprocess
import sys

import pytest
from conftest import ROOT, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.train]


def test_demo_at_reduced_budget(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "cftrain", "demo", "--out", str(out), "--minutes", "0.5"],
                          capture_output=True, text=True, env=subprocess_env(), cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| model | ID CF EM %" in done.stdout
    report = (out / "report" / "report.md").read_text()
    assert "if_else" in report and "while" in report
    assert (out / "report" / "em_by_family.png").stat().st_size > 10_000
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["models"]) == {"base", "sft", "grpo"}
    for row in summary["models"].values():
        for key in ("id_cf_em", "id_cf_reasoned", "id_int_em", "ood_cf_em", "ood_int_em"):
            assert 0.0 <= row[key] <= 1.0
    assert summary["models"]["grpo"]["reward_first"] is not None
    assert set(summary["seconds"]) == {"model", "sft", "grpo", "eval", "report"}
    for name in ("sft", "grpo"):
        assert (out / name / "final" / "recipe.yaml").exists()
        assert (
            json.loads((out / name / "eval_id" / "metrics.json").read_text())["metrics"]["if_else/counterfactual/n"]
            > 0
        )
