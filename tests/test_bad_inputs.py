"""Every bad CLI input: exit code 2, exactly one line on stderr, no traceback, and nothing written.

The table runs `cftrain.cli.main` in-process (each case is a (id, argv, setup) row; `{tmp}` in argv is the case's
folder, which is also the working directory). A few cases run as real processes: SIGTERM, a closed stdout.
Run: pytest tests/test_bad_inputs.py
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import subprocess_env, terminate_when, write_recipe

from cftrain.cli import main

RECIPE = {"method": "grpo", "model": {"name_or_path": "cftrain:micro"}, "output_dir": "run",
          "data": {"train": [{"family": "if_else", "n": 4}]},
          "trainer": {"max_steps": 1, "per_device_train_batch_size": 4, "num_generations": 4, "use_cpu": True},
          "logging": {"wandb": False}}  # fmt: skip


# One-to-one branches with no reduction cannot give four consistent answers: no item ever passes the filters.
UNSATISFIABLE = {"min_answer_size": 4, "max_answer_size": 4, "simple": True, "depth": 0, "modulus_prob": 0.0, "set_valued": 0,
                 "max_attempts": 50}  # fmt: skip


def _recipe(tmp: Path, **changes) -> None:
    raw = json.loads(json.dumps(RECIPE))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    write_recipe(tmp / "r.yaml", raw)


def _bomb(tmp: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    (tmp / "r.yaml").write_text("\n".join(lines) + "\nmethod: *a9\n")


def _model(tmp: Path, name: str = "model") -> Path:
    from cftrain.models import resolve_model

    folder = tmp / name
    shutil.copytree(resolve_model("cftrain:micro"), folder)
    return folder


def _truncated(tmp: Path) -> None:
    weights = _model(tmp) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])


def _bad_config(tmp: Path) -> None:
    (_model(tmp) / "config.json").write_text('{"model_type": "llama", ')


def _adapter(tmp: Path, config: dict | str) -> None:
    (tmp / "adapter").mkdir()
    text = config if isinstance(config, str) else json.dumps(config)
    (tmp / "adapter" / "adapter_config.json").write_text(text)


def _metrics(tmp: Path, text: str, name: str = "metrics.json") -> None:
    (tmp / "ev").mkdir()
    (tmp / "ev" / name).write_text(text)


SETUPS = {
    None: lambda tmp: None,
    "file": lambda tmp: (tmp / "file.txt").write_text("x"),
    "recipe": lambda tmp: _recipe(tmp),
    "recipe_lr_fast": lambda tmp: _recipe(tmp, trainer__learning_rate="fast"),
    "recipe_steps_neg": lambda tmp: _recipe(tmp, trainer__max_steps=-5),
    "recipe_gen_0": lambda tmp: _recipe(tmp, trainer__num_generations=0),
    "recipe_batch_0": lambda tmp: _recipe(tmp, trainer__per_device_train_batch_size=0),
    "recipe_sched": lambda tmp: _recipe(tmp, trainer__lr_scheduler_type="bogus"),
    "recipe_bogus_model": lambda tmp: _recipe(tmp, model={"name_or_path": "cftrain:bogus"}),
    "recipe_missing_model": lambda tmp: _recipe(tmp, model={"name_or_path": "./nope/model"}),
    "recipe_hub_model": lambda tmp: _recipe(tmp, model={"name_or_path": "no-such-org/no-such-model"}),
    "recipe_out_file": lambda tmp: (_recipe(tmp, output_dir="file.txt"), (tmp / "file.txt").write_text("x")),
    "recipe_out_under_file": lambda tmp: (_recipe(tmp, output_dir="f/run"), (tmp / "f").write_text("x")),
    "recipe_train_path": lambda tmp: _recipe(tmp, data={"train_path": "missing.jsonl"}),
    "recipe_no_data": lambda tmp: _recipe(tmp, data={}),
    "recipe_knobs": lambda tmp: _recipe(tmp, data={"train": [{"family": "if_else", "n": 4, "knobs": UNSATISFIABLE}]}),
    "recipe_list": lambda tmp: (tmp / "r.yaml").write_text("- method\n- grpo\n"),
    "recipe_yaml": lambda tmp: (tmp / "r.yaml").write_text("method: grpo\nmodel: {name_or_path: [\n"),
    "recipe_tab": lambda tmp: (tmp / "r.yaml").write_text("method: grpo\n\tmodel: x\n"),
    "recipe_cycle": lambda tmp: (tmp / "r.yaml").write_text("method: grpo\ntrainer: &t {a: *t}\n"),
    "recipe_deep": lambda tmp: (tmp / "r.yaml").write_text("method: " + "[" * 60 + "]" * 60 + "\n"),
    "recipe_binary": lambda tmp: (tmp / "r.yaml").write_bytes(b"\xff\xfe\x00method"),
    "bomb": _bomb,
    "dir": lambda tmp: (tmp / "d").mkdir(),
    "truncated": _truncated,
    "bad_config": _bad_config,
    "empty_model": lambda tmp: (tmp / "model").mkdir(),
    "adapter_no_base": lambda tmp: _adapter(tmp, {"peft_type": "LORA", "r": 4}),
    "adapter_wrong_base": lambda tmp: _adapter(tmp, {"peft_type": "LORA", "base_model_name_or_path": "/nope/base"}),
    "adapter_bad_json": lambda tmp: _adapter(tmp, "{nope"),
    "adapter_bad_recipe": lambda tmp: (
        _adapter(tmp, {"peft_type": "LORA"}),
        (tmp / "adapter" / "recipe.yaml").write_text("a: ["),
    ),
    "adapter_and_file": lambda tmp: (SETUPS["adapter_no_base"](tmp), (tmp / "file.txt").write_text("x")),
    "no_adapter": lambda tmp: (tmp / "adapter").mkdir(),
    "metrics_json": lambda tmp: _metrics(tmp, '{"metrics": {"a": 1},\n  oops}'),
    "metrics_list": lambda tmp: _metrics(tmp, "[1, 2]"),
    "metrics_jsonl": lambda tmp: _metrics(tmp, '{"step": 1}\n{bad\n', "metrics.jsonl"),
    "metrics_jsonl_list": lambda tmp: _metrics(tmp, "[1]\n", "metrics.jsonl"),
    "metrics_ok": lambda tmp: _metrics(tmp, '{"metrics": {}}'),
    "metrics_ok_file": lambda tmp: (_metrics(tmp, '{"metrics": {}}'), (tmp / "file.txt").write_text("x")),
    "empty_dir": lambda tmp: (tmp / "ev").mkdir(),
    "empty_jsonl": lambda tmp: (tmp / "e.jsonl").write_text(""),
    "bad_record": lambda tmp: (tmp / "b.jsonl").write_text('{"id": 1}\n'),
}

G = ["generate", "--family", "if_else", "--n", "2"]
GO = [*G, "--out", "{tmp}/x.jsonl"]
D = ["distill", "--teacher", "cftrain:micro", "--n", "2", "--out", "{tmp}/x.jsonl"]
E = ["eval", "--suite", "if_else", "--n", "1", "--variants", "counterfactual"]
EM = [*E, "--model", "cftrain:micro", "--out", "{tmp}/ev_out"]
T = ["train", "{tmp}/r.yaml"]
TD = [*T, "--dry-run"]

CASES = [
    # ---- no or unknown subcommand
    ("none", [], None),
    ("unknown-sub", ["famlies"], None),
    ("top-flag", ["--bogus"], None),
    # ---- families
    ("families-extra", ["families", "extra"], None),
    ("families-flag", ["families", "--bogus"], None),
    # ---- generate
    ("gen-no-family", ["generate", "--n", "2", "--out", "{tmp}/x.jsonl"], None),
    ("gen-no-out", G, None),
    ("gen-n-abc", ["generate", "--family", "if_else", "--n", "abc", "--out", "{tmp}/x.jsonl"], None),
    ("gen-n-0", ["generate", "--family", "if_else", "--n", "0", "--out", "{tmp}/x.jsonl"], None),
    ("gen-n-neg", ["generate", "--family", "if_else", "--n", "-3", "--out", "{tmp}/x.jsonl"], None),
    ("gen-seed-abc", [*GO, "--seed", "abc"], None),
    ("gen-workers-0", [*GO, "--workers", "0"], None),
    ("gen-workers-neg", [*GO, "--workers", "-2"], None),
    ("gen-workers-abc", [*GO, "--workers", "abc"], None),
    ("gen-workers-float", [*GO, "--workers", "1.5"], None),
    ("gen-family", ["generate", "--family", "nope", "--n", "2", "--out", "{tmp}/x.jsonl"], None),
    ("gen-family-empty", ["generate", "--family", "", "--n", "2", "--out", "{tmp}/x.jsonl"], None),
    ("gen-knob", [*GO, "--set", "bogus=1"], None),
    ("gen-knob-syntax", [*GO, "--set", "x_max"], None),
    ("gen-knob-type", [*GO, "--set", "x_max=abc"], None),
    ("gen-knob-range", [*GO, "--set", "r_min=9", "--set", "r_max=2"], None),
    ("gen-structures-0", [*GO, "--set", "structures=0"], None),
    ("gen-knob-too-big", [*GO, "--set", "x_max=100000"], None),
    ("gen-unsatisfiable", [*GO, *(f"--set={k}={v}" for k, v in UNSATISFIABLE.items())], None),
    ("gen-variant", [*GO, "--variant", "nope"], None),
    (
        "gen-variant-family",
        ["generate", "--family", "multi_r", "--n", "2", "--variant", "abduction", "--out", "{tmp}/x.jsonl"],
        None,
    ),  # fmt: skip
    ("gen-out-dir", [*G, "--out", "{tmp}"], None),
    ("gen-out-missing", [*G, "--out", "{tmp}/missing/x.jsonl"], None),
    ("gen-out-under-file", [*G, "--out", "{tmp}/file.txt/x.jsonl"], "file"),
    ("gen-extra", [*GO, "--bogus"], None),
    # ---- build-data
    ("bd-nothing", ["build-data", "--out", "{tmp}/b"], None),
    ("bd-no-out", ["build-data", "--train", "if_else:3"], None),
    ("bd-spec", ["build-data", "--train", "if_else:x", "--out", "{tmp}/b"], None),
    ("bd-spec-parts", ["build-data", "--train", "if_else", "--out", "{tmp}/b"], None),
    ("bd-family", ["build-data", "--train", "nope:3", "--out", "{tmp}/b"], None),
    ("bd-variant", ["build-data", "--train", "if_else:3:nope", "--out", "{tmp}/b"], None),
    ("bd-zero", ["build-data", "--train", "if_else:0", "--out", "{tmp}/b"], None),
    ("bd-test-family", ["build-data", "--train", "if_else:2", "--test", "nope:2", "--out", "{tmp}/b"], None),
    ("bd-out-file", ["build-data", "--train", "if_else:3", "--out", "{tmp}/file.txt"], "file"),
    ("bd-out-under-file", ["build-data", "--train", "if_else:3", "--out", "{tmp}/file.txt/b"], "file"),
    ("bd-recipe-missing", ["build-data", "--recipe", "{tmp}/nope.yaml", "--out", "{tmp}/b"], None),
    ("bd-recipe-dir", ["build-data", "--recipe", "{tmp}/d", "--out", "{tmp}/b"], "dir"),
    ("bd-recipe-yaml", ["build-data", "--recipe", "{tmp}/r.yaml", "--out", "{tmp}/b"], "recipe_yaml"),
    ("bd-recipe-bomb", ["build-data", "--recipe", "{tmp}/r.yaml", "--out", "{tmp}/b"], "bomb"),
    ("bd-recipe-knobs", ["build-data", "--recipe", "{tmp}/r.yaml", "--out", "{tmp}/b"], "recipe_knobs"),
    ("bd-seed", ["build-data", "--train", "if_else:3", "--seed", "x", "--out", "{tmp}/b"], None),
    # ---- data-card
    ("card-no-args", ["data-card"], None),
    ("card-missing", ["data-card", "{tmp}/nope.jsonl"], None),
    ("card-dir", ["data-card", "{tmp}/d"], "dir"),
    ("card-not-jsonl", ["data-card", "{tmp}/file.txt"], "file"),
    ("card-empty", ["data-card", "{tmp}/e.jsonl"], "empty_jsonl"),
    ("card-bad-record", ["data-card", "{tmp}/b.jsonl"], "bad_record"),
    ("card-suite", ["data-card", "nope"], None),
    ("card-against-missing", ["data-card", "math_word", "--against", "{tmp}/nope.jsonl"], None),
    ("card-against-dir", ["data-card", "math_word", "--against", "{tmp}/d"], "dir"),
    ("card-against-suite", ["data-card", "math_word", "--against", "nope"], None),
    # ---- suites
    ("suites-out-file", ["suites", "--out", "{tmp}/file.txt"], "file"),
    ("suites-out-under-file", ["suites", "--out", "{tmp}/file.txt/data"], "file"),
    ("suites-extra", ["suites", "--out", "{tmp}/s", "extra"], None),
    # ---- tiny-model
    ("tiny-size", ["tiny-model", "--out", "{tmp}/m", "--size", "bogus"], None),
    ("tiny-out-file", ["tiny-model", "--out", "{tmp}/file.txt"], "file"),
    ("tiny-out-under-file", ["tiny-model", "--out", "{tmp}/file.txt/m"], "file"),
    ("tiny-no-out", ["tiny-model"], None),
    ("tiny-seed", ["tiny-model", "--out", "{tmp}/m", "--seed", "x"], None),
    # ---- demo
    ("demo-nan", ["demo", "--out", "{tmp}/demo", "--minutes", "nan"], None),
    ("demo-inf", ["demo", "--out", "{tmp}/demo", "--minutes", "inf"], None),
    ("demo-neg", ["demo", "--out", "{tmp}/demo", "--minutes", "-1"], None),
    ("demo-zero", ["demo", "--out", "{tmp}/demo", "--minutes", "0"], None),
    ("demo-abc", ["demo", "--out", "{tmp}/demo", "--minutes", "abc"], None),
    ("demo-out-file", ["demo", "--out", "{tmp}/file.txt", "--minutes", "1"], "file"),
    # ---- merge
    ("merge-no-adapter", ["merge", "--out", "{tmp}/m"], None),
    ("merge-missing", ["merge", "--adapter", "{tmp}/nope", "--out", "{tmp}/m"], None),
    ("merge-not-adapter", ["merge", "--adapter", "{tmp}/adapter", "--out", "{tmp}/m"], "no_adapter"),
    ("merge-no-base", ["merge", "--adapter", "{tmp}/adapter", "--out", "{tmp}/m"], "adapter_no_base"),
    ("merge-wrong-base", ["merge", "--adapter", "{tmp}/adapter", "--out", "{tmp}/m"], "adapter_wrong_base"),
    ("merge-bad-json", ["merge", "--adapter", "{tmp}/adapter", "--out", "{tmp}/m"], "adapter_bad_json"),
    ("merge-bad-recipe", ["merge", "--adapter", "{tmp}/adapter", "--out", "{tmp}/m"], "adapter_bad_recipe"),
    ("merge-out-file", ["merge", "--adapter", "{tmp}/adapter", "--out", "{tmp}/file.txt"], "adapter_and_file"),
    ("merge-dtype", ["merge", "--adapter", "{tmp}/adapter", "--out", "{tmp}/m", "--dtype", "fp8"], "adapter_no_base"),
    # ---- distill
    ("distill-n-0", ["distill", "--teacher", "cftrain:micro", "--n", "0", "--out", "{tmp}/x.jsonl"], None),
    ("distill-samples-0", [*D, "--samples", "0"], None),
    ("distill-temp-nan", [*D, "--temperature", "nan"], None),
    ("distill-tokens-0", [*D, "--max-new-tokens", "0"], None),
    ("distill-family", [*D, "--family", "nope"], None),
    ("distill-knob", [*D, "--set", "bogus=1"], None),
    ("distill-template", [*D, "--template", "alpaca"], None),
    ("distill-teacher", ["distill", "--teacher", "cftrain:bogus", "--n", "2", "--out", "{tmp}/x.jsonl"], None),
    ("distill-teacher-path", ["distill", "--teacher", "./nope", "--n", "2", "--out", "{tmp}/x.jsonl"], None),
    ("distill-refused", ["distill", "--teacher", "http://127.0.0.1:9/v1", "--n", "1", "--out", "{tmp}/x.jsonl"], None),
    ("distill-out-dir", ["distill", "--teacher", "cftrain:micro", "--n", "2", "--out", "{tmp}"], None),
    ("distill-no-out", ["distill", "--teacher", "cftrain:micro", "--n", "2"], None),
    # ---- train
    ("train-missing", ["train", "{tmp}/nope.yaml"], None),
    ("train-dir", ["train", "{tmp}/d"], "dir"),
    ("train-yaml", T, "recipe_yaml"),
    ("train-yaml-tab", T, "recipe_tab"),
    ("train-list", T, "recipe_list"),
    ("train-binary", T, "recipe_binary"),
    ("train-bomb", T, "bomb"),
    ("train-cycle", T, "recipe_cycle"),
    ("train-deep", T, "recipe_deep"),
    ("train-seed-python", [*TD, "--seed", "!!python/name:os.system"], "recipe"),
    ("train-seed-abc", [*TD, "--seed", "abc"], "recipe"),
    ("train-override-syntax", [*TD, "trainer.max_steps", "3"], "recipe"),
    ("train-override-missing", [*TD, "--trainer.max_steps"], "recipe"),
    ("train-override-block", [*TD, "--data.train.x", "3"], "recipe"),
    ("train-override-field", [*TD, "--trainer.learning_rat", "1"], "recipe"),
    ("train-steps-abc", [*TD, "--trainer.max_steps", "abc"], "recipe"),
    ("train-steps-abc-run", [*T, "--trainer.max_steps", "abc"], "recipe"),
    ("train-lr-nan", [*TD, "--trainer.learning_rate", "nan"], "recipe"),
    ("train-lr-fast-dry", TD, "recipe_lr_fast"),
    ("train-lr-fast", T, "recipe_lr_fast"),
    ("train-steps-neg-dry", TD, "recipe_steps_neg"),
    ("train-steps-neg", T, "recipe_steps_neg"),
    ("train-generations-0", T, "recipe_gen_0"),
    ("train-batch-0", TD, "recipe_batch_0"),
    ("train-scheduler", TD, "recipe_sched"),
    ("train-lora-0", [*TD, "--lora.r", "0"], "recipe"),
    ("train-method", [*TD, "--method", "dpo"], "recipe"),
    ("train-model-bogus-dry", TD, "recipe_bogus_model"),
    ("train-model-bogus", T, "recipe_bogus_model"),
    ("train-model-missing", T, "recipe_missing_model"),
    ("train-model-hub-offline", T, "recipe_hub_model"),
    ("train-out-file", T, "recipe_out_file"),
    ("train-out-under-file", TD, "recipe_out_under_file"),
    ("train-train-path", T, "recipe_train_path"),
    ("train-no-data", T, "recipe_no_data"),
    ("train-knobs-dry", TD, "recipe_knobs"),
    ("train-knobs", T, "recipe_knobs"),
    # ---- study (each is refused before any model is built or any folder written)
    ("study-stages", ["study", "--out", "{tmp}/s", "--stages", "sft,nope"], None),
    ("study-budget-zero", ["study", "--out", "{tmp}/s", "--budget-minutes", "0"], None),
    ("study-budget-nan", ["study", "--out", "{tmp}/s", "--budget-minutes", "nan"], None),
    ("study-external-missing", ["study", "--out", "{tmp}/s", "--external", "{tmp}/nope"], None),
    ("study-out-file", ["study", "--out", "{tmp}/file.txt"], "file"),
    # ---- eval
    ("eval-no-model", ["eval"], None),
    ("eval-model-bogus", ["eval", "--model", "cftrain:bogus", "--out", "{tmp}/ev_out"], None),
    ("eval-model-missing", ["eval", "--model", "./nope", "--out", "{tmp}/ev_out"], None),
    ("eval-model-hub", ["eval", "--model", "no-such-org/no-such-model", "--out", "{tmp}/ev_out"], None),
    ("eval-samples-0", [*EM, "--samples", "0"], None),
    ("eval-n-0", [*EM, "--n", "0"], None),
    ("eval-batch-0", [*EM, "--batch-size", "0"], None),
    ("eval-tokens-0", [*EM, "--max-new-tokens", "0"], None),
    ("eval-temp-neg", [*EM, "--temperature", "-1"], None),
    ("eval-temp-nan", [*EM, "--temperature", "nan"], None),
    ("eval-template", [*EM, "--template", "alpaca"], None),
    ("eval-backend", [*EM, "--backend", "tgi"], None),
    ("eval-suite", ["eval", "--model", "cftrain:micro", "--suite", "nope", "--out", "{tmp}/ev_out"], None),
    (
        "eval-suite-file",
        ["eval", "--model", "cftrain:micro", "--suite", "{tmp}/s.jsonl", "--out", "{tmp}/ev_out"],
        None,
    ),  # fmt: skip
    ("eval-out-file", [*E, "--model", "cftrain:micro", "--out", "{tmp}/file.txt"], "file"),
    ("eval-adapter-missing", [*EM, "--adapter", "{tmp}/nope"], None),
    ("eval-adapter-not", [*EM, "--adapter", "{tmp}/adapter"], "no_adapter"),
    ("eval-adapter-no-base", [*E, "--model", "{tmp}/adapter", "--out", "{tmp}/ev_out"], "adapter_no_base"),
    ("eval-adapter-wrong-base", [*E, "--model", "{tmp}/adapter", "--out", "{tmp}/ev_out"], "adapter_wrong_base"),
    ("eval-adapter-bad-json", [*E, "--model", "{tmp}/adapter", "--out", "{tmp}/ev_out"], "adapter_bad_json"),
    ("eval-truncated", [*E, "--model", "{tmp}/model", "--out", "{tmp}/ev_out"], "truncated"),
    ("eval-bad-config", [*E, "--model", "{tmp}/model", "--out", "{tmp}/ev_out"], "bad_config"),
    ("eval-empty-model", [*E, "--model", "{tmp}/model", "--out", "{tmp}/ev_out"], "empty_model"),
    # ---- report
    ("report-no-out", ["report", "{tmp}/ev"], "metrics_ok"),
    ("report-no-dirs", ["report", "--out", "{tmp}/rep"], None),
    ("report-missing", ["report", "{tmp}/nope", "--out", "{tmp}/rep"], None),
    ("report-empty", ["report", "{tmp}/ev", "--out", "{tmp}/rep"], "empty_dir"),
    ("report-json", ["report", "{tmp}/ev", "--out", "{tmp}/rep"], "metrics_json"),
    ("report-json-list", ["report", "{tmp}/ev", "--out", "{tmp}/rep"], "metrics_list"),
    ("report-jsonl", ["report", "{tmp}/ev", "--out", "{tmp}/rep"], "metrics_jsonl"),
    ("report-jsonl-list", ["report", "{tmp}/ev", "--out", "{tmp}/rep"], "metrics_jsonl_list"),
    ("report-names", ["report", "{tmp}/ev", "--out", "{tmp}/rep", "--names", "a", "b"], "metrics_ok"),
    ("report-out-file", ["report", "{tmp}/ev", "--out", "{tmp}/file.txt"], "metrics_ok_file"),
]


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size if p.is_file() else -1 for p in folder.rglob("*")}


@pytest.mark.parametrize("argv, setup", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, capsys, argv, setup):
    monkeypatch.chdir(tmp_path)
    for name in ("WANDB_DIR", "WANDB_MODE", "WANDB_PROJECT"):  # set by a training run's setup
        monkeypatch.setenv(name, os.environ.get(name, "offline" if name == "WANDB_MODE" else str(tmp_path)))
    SETUPS[setup](tmp_path)
    before = _snapshot(tmp_path)
    capsys.readouterr()  # what the setup printed
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert len(err) < 1200, err
    assert _snapshot(tmp_path) == before


def test_the_table_covers_every_subcommand():
    from cftrain.cli import build_parser

    subcommands = set(build_parser()._subparsers._group_actions[0].choices)
    covered = {argv[0] for _, argv, _ in CASES if argv and argv[0] in subcommands}
    assert covered == subcommands
    assert len(CASES) >= 100


def test_alias_bomb_fails_fast(tmp_path):
    _bomb(tmp_path)
    start = time.time()
    assert main(["train", str(tmp_path / "r.yaml")]) == 2
    assert time.time() - start < 5


def test_stale_partial_files_of_killed_writers_are_removed(tmp_path):
    from cftrain.data import write_jsonl

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".x.jsonl.partial-{int(dead.stdout)}-abc"
    stale.write_text("half")
    live = tmp_path / f".x.jsonl.partial-{os.getpid()}-abc"  # a writer that is still running: left alone
    live.write_text("half")
    write_jsonl([{"a": 1}], tmp_path / "x.jsonl")
    assert not stale.exists() and live.exists()


@pytest.mark.train
def test_sigterm_during_generate_leaves_no_temp_file(tmp_path):
    out = tmp_path / "big.jsonl"
    argv = [sys.executable, "-m", "cftrain", "generate", "--family", "if_else", "--n", "200000", "--out", str(out)]
    proc = subprocess.Popen(argv, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    terminate_when(proc, lambda: bool(list(tmp_path.glob(".big.jsonl.partial-*"))), "the writer")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.train
def test_closed_stdout_is_quiet(tmp_path):
    result = subprocess.run(
        f"{sys.executable} -m cftrain families | head -1", shell=True, env=subprocess_env(), capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.stdout.count("\n") == 1
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


@pytest.mark.train
def test_argparse_errors_are_one_line_in_a_process():
    result = subprocess.run(
        [sys.executable, "-m", "cftrain", "generate", "--n", "x"], env=subprocess_env(), capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("cftrain generate: error:")


def test_a_build_into_an_existing_folder_keeps_its_files(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["build-data", "--train", "if_else:3", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "keep.txt").read_text() == "mine" and (tmp_path / "train.jsonl").is_file()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
