"""`cftrain report`: report.md and PNGs from small hand-written eval folders and a run's metrics.jsonl, the numbers
copied verbatim from the metrics files, and one-line errors (exit 2) on folders that hold no metrics.

Offline and fast: `python -m pytest tests/test_report.py -q`.
"""

import json
import subprocess
import sys

import pytest

from cftrain.cli import main
from cftrain.report import load_entry, write_report

# Exact match (%) per model, family: counterfactual, interventional. Shaped on the paper's 7B results.
EM = {
    "base": {"if_else": (13.9, 40.0), "while": (3.3, 30.0), "multi_r": (17.9, 50.0), "math_word": (39.0, 60.0)},
    "SFT": {"if_else": (59.0, 80.0), "while": (2.1, 35.0), "multi_r": (23.3, 55.0), "math_word": (12.9, 40.0)},
    "GRPO": {"if_else": (67.8, 85.0), "while": (8.1, 40.0), "multi_r": (36.3, 62.0), "math_word": (46.3, 70.0)},
}
CONSTANT = {"if_else": 0.05, "while": 0.04, "multi_r": 0.03, "math_word": 0.02}


def fake_metrics(em: dict[str, tuple[float, float]], scale: float = 1.0) -> dict[str, float]:
    """Metric keys as cftrain.evaluate writes them, with hand-chosen values (fractions, not %)."""
    m = {}
    for family, (cf, iv) in em.items():
        for variant, value in (("counterfactual", cf / 100), ("interventional", iv / 100)):
            p = f"{family}/{variant}"
            m |= {f"{p}/em": value, f"{p}/f1": min(1.0, value + 0.1), f"{p}/n": 20, f"{p}/pass@1": value}
            m |= {f"{p}/format": 0.9, f"{p}/len": 120.0, f"{p}/constant_em": CONSTANT[family]}
        m[f"{family}/gap"] = (iv - cf) / 100
        p = f"{family}/counterfactual"
        m |= {f"{p}/abduction": 0.5 * scale, f"{p}/intervention": 0.8, f"{p}/prediction": 0.6 * scale}
        m |= {f"{p}/in_order": 0.4 * scale, f"{p}/right_reason": cf / 100 * 0.8}
        m |= {f"{p}/planning_error": 1 - 0.5 * scale, f"{p}/execution_error": 0.5 * scale}
    for group, fams in (("id", ["if_else"]), ("ood", ["while", "multi_r", "math_word"]), ("all", list(em))):
        for variant, i in (("counterfactual", 0), ("interventional", 1)):
            m[f"{group}/{variant}/em"] = sum(em[f][i] for f in fams) / len(fams) / 100
            m[f"{group}/{variant}/f1"] = m[f"{group}/{variant}/em"] + 0.05
            m[f"{group}/{variant}/n"] = 20 * len(fams)
        m[f"{group}/gap"] = m[f"{group}/interventional/em"] - m[f"{group}/counterfactual/em"]
        m[f"{group}/all/pass@1"] = (m[f"{group}/counterfactual/em"] + m[f"{group}/interventional/em"]) / 2
    return m


def write_eval(folder, name, alignment=False):
    folder.mkdir(parents=True)
    result = {
        "model": f"runs/{name}/final" if name != "base" else "Qwen/Qwen2.5-7B-Instruct",
        "base_model": "Qwen/Qwen2.5-7B-Instruct",
        "adapter": None if name == "base" else f"runs/{name}/final",
        "prompt": {"template": "chat", "system_prompt": None, "scaffold": "none"},
        "generation": {"backend": "transformers", "samples": 1, "temperature": 0.0, "max_new_tokens": 256},
        "metrics": fake_metrics(EM[name], scale={"base": 0.5, "SFT": 0.9, "GRPO": 1.6}[name] / 1.6),
    }
    if alignment:
        ks = {"all": (0.05, 0.22, 0.48), "if_else": (0.08, 0.3, 0.6), "while": (0.01, 0.05, 0.12)}
        pass_k = {f"{g}/all/pass@{k}": v for g, vals in ks.items() for k, v in zip((1, 4, 16), vals)}
        result["alignment"] = {"samples": 16, "temperature": 1.0, "metrics": pass_k}
    (folder / "metrics.json").write_text(json.dumps(result, indent=2))
    return folder


def write_run_log(folder):
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for step in range(1, 41):
        row = {"step": step, "time": 1000.0 + step, "loss": 0.02 / step**0.3, "reward": 0.1 + 0.5 * step / 40}
        if step % 10 == 0:
            for fam, base in (("if_else", 0.15), ("while", 0.03), ("multi_r", 0.18)):
                row[f"eval/{fam}/counterfactual/em"] = base + 0.4 * step / 40 * (1 if fam == "if_else" else 0.4)
                row[f"eval/{fam}/interventional/em"] = base + 0.3 + 0.2 * step / 40
            row["eval/all/all/em"] = 0.25 + 0.2 * step / 40
            row["eval/ood/counterfactual/em"] = 0.1  # an average: left out of the plot
        rows.append(row)
    rows.append({"step": 40, "train_runtime": 12.5, "train_loss": 0.01})  # TRL's closing summary row
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture
def folders(tmp_path):
    base = write_eval(tmp_path / "evals" / "base", "base", alignment=True)
    sft = write_eval(tmp_path / "runs" / "sft" / "eval", "SFT")
    grpo_run = write_run_log(tmp_path / "runs" / "grpo")
    write_eval(grpo_run / "eval", "GRPO")
    return [base, sft.parent, grpo_run]


def test_report_renders_tables_and_plots(folders, tmp_path):
    out = tmp_path / "report"
    assert main(["report", *map(str, folders), "--out", str(out), "--names", "base", "SFT", "GRPO"]) == 0
    text = (out / "report.md").read_text()
    header = (
        "| model | if_else (ID) | ID mean | **while (OOD)** | **multi_r (OOD)** | **math_word (OOD)** | **OOD mean** |"
    )
    assert header in text
    assert "| GRPO | 67.8 / 77.8 | 67.8 / 72.8 | 8.1 / 18.1 |" in text  # numbers copied, not recomputed
    assert "| *constant answer* | 5.0 |  | 4.0 | 3.0 | 2.0 |  |" in text
    assert "| SFT | +21.0 | +21.0 | +32.9 |" in text  # the gap row
    assert "## Reasoning steps in the traces" in text and "right answer + right set" in text
    assert "## Model-task alignment" in text and "| base | if_else | 8.0 | 30.0 | 60.0 |" in text
    assert "## Training curves" in text and "**GRPO**: 41 log rows up to step 40; last reward 0.6, last loss" in text
    for png in ("em_by_family.png", "gap.png", "alignment.png", "curves_GRPO.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"]({png})" in text


def test_default_names_and_run_folder_without_eval(tmp_path):
    log_only = write_run_log(tmp_path / "runs" / "ppo")
    evaluated = write_eval(tmp_path / "runs" / "sft" / "eval", "SFT")
    assert load_entry(evaluated).name == "sft"  # an eval/ folder is named after its run
    path = write_report([log_only, evaluated, tmp_path / "runs" / "sft"], tmp_path / "out")
    text = path.read_text()
    assert "| sft |" in text and "| sft (2) |" in text  # the same folder twice gets two columns
    assert (tmp_path / "out" / "curves_ppo.png").is_file()
    assert not (tmp_path / "out" / "alignment.png").exists()


def test_run_with_id_and_ood_evals_is_merged(tmp_path):
    run = tmp_path / "runs" / "grpo"
    metrics = fake_metrics(EM["GRPO"])
    id_part = {k: v for k, v in metrics.items() if k.startswith(("if_else/", "id/"))}
    ood_part = {k: v for k, v in metrics.items() if not k.startswith(("if_else/", "id/"))}
    for sub, part in (("eval_id", id_part | {"all/all/em": 0.9}), ("eval_ood", ood_part | {"all/all/em": 0.1})):
        (run / sub).mkdir(parents=True)
        (run / sub / "metrics.json").write_text(json.dumps({"metrics": part}))
    entry = load_entry(run)
    assert entry.metrics["if_else/counterfactual/em"] == metrics["if_else/counterfactual/em"]
    assert entry.metrics["while/counterfactual/em"] == metrics["while/counterfactual/em"]
    assert "all/all/em" not in entry.metrics  # each eval's "all" covers only its own families
    text = write_report([run], tmp_path / "out").read_text()
    assert "| grpo | 67.8 / 77.8 | 67.8 / 72.8 | 8.1 / 18.1 |" in text


def _run(*args):
    return subprocess.run([sys.executable, "-m", "cftrain", *args], capture_output=True, text=True)


@pytest.mark.train
def test_errors_are_one_line_exit_2(folders, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        ([str(empty)], f"{empty}: holds no metrics.json, eval*/metrics.json or metrics.jsonl"),
        ([str(tmp_path / "missing")], "not a folder"),
        ([str(folders[0]), "--names", "a", "b"], "--names: got 2 names for 1 folders"),
    ]
    for args, message in cases:
        result = _run("report", *args, "--out", str(tmp_path / "out"))
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "report.md").exists()


def test_reward_panel_draws_each_reward_function(tmp_path, monkeypatch):
    from cftrain import report

    log = [{"step": s, "reward": 0.2 * s, "rewards/answer_reward/mean": 0.1 * s, "rewards/abduction/mean": 0.05 * s,
            "rewards/format_reward/std": 0.0} for s in range(1, 6)]  # fmt: skip
    figures = []
    monkeypatch.setattr(report, "_save", lambda fig, path, *a: figures.append(fig) or path)
    report.plot_curves(report.Entry("grpo", tmp_path, log=log), tmp_path / "c.png")
    labels = [line.get_label() for line in figures[0].axes[0].get_lines()]
    assert labels == ["total (weighted)", "abduction", "answer"]  # a std is not a curve
