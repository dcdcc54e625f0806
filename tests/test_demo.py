"""Slow tier: `cftrain demo` end to end at a reduced budget (about 3 minutes here): every stage runs, the report
and its plots are written, the summary's metrics are well-formed, and the budget's plan is reported. Run: pytest -m slow tests/test_demo.py"""

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
    # Half a minute cannot hold the full plan on any machine: the demo plans fewer steps, says so, and the summary
    # tells the steps run from the full plan's
    budget = summary["budget"]
    assert budget["minutes"] == 0.5 and budget["reduced"] and budget["machine_gflops"] > 0
    for stage, full in (("sft", 800), ("grpo", 80)):
        assert budget[stage]["steps_full"] == full and 2 <= budget[stage]["steps_run"] < full
        assert budget[stage]["steps_run"] <= budget[stage]["steps_planned"] and budget[stage]["s_per_step"] > 0
    assert "SFT: " in done.stdout and "steps planned (reduced from 800 to fit the budget)" in done.stdout
    assert "a REDUCED plan" in done.stdout
    for name in ("sft", "grpo"):
        assert (out / name / "final" / "recipe.yaml").exists()
        assert (
            json.loads((out / name / "eval_id" / "metrics.json").read_text())["metrics"]["if_else/counterfactual/n"]
            > 0
        )
