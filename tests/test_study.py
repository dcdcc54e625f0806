"""`cftrain study`: its recipes, bad input, the plan from pilot timings, and the bootstrap intervals in the report."""

import json
from pathlib import Path

import pytest

from cftrain.cli import main
from cftrain.recipes import check_run, load_recipe
from cftrain.report import load_entry, write_report
from cftrain.stats import bootstrap_ci, paired_bootstrap
from cftrain.study import (
    EVAL_SIZES,
    RECIPES,
    STAGE_CAP_MINUTES,
    check_external,
    control_steps,
    eval_items,
    fit_eval_sizes,
    half_width,
    parse_stages,
    plan_study,
    train_timing,
)


@pytest.mark.parametrize("name", ["sft", "grpo", "sft_control"])
def test_study_recipes_parse_and_pass_the_run_checks(name):
    recipe = load_recipe(RECIPES / f"{name}.yaml", {"model.name_or_path": "cftrain:smollm2"})
    check_run(recipe, hardware=False)
    assert recipe.prompt.template == "compact" and recipe.lora.enabled
    assert (RECIPES / f"{name}.yaml").read_text().startswith("# cftrain train recipes/smollm2-study/")


@pytest.mark.parametrize(
    "args, says",
    [
        (["--stages", "sft,bogus"], "--stages"),
        (["--budget-minutes", "0"], "--budget-minutes"),
        (["--external", "/nonexistent/external"], "--external"),
    ],
)
def test_study_bad_input_is_one_line_exit_2(args, says, tmp_path, capsys):
    assert main(["study", "--out", str(tmp_path / "s"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err
    assert not (tmp_path / "s").exists()


def test_parse_stages_keeps_pipeline_order():
    assert parse_stages("all") == ["sft", "grpo", "control", "eval", "report"]
    assert parse_stages("report,sft") == ["sft", "report"]
    with pytest.raises(ValueError):
        parse_stages(",")


def test_check_external_names_the_missing_file(tmp_path):
    (tmp_path / "cladder").mkdir()
    (tmp_path / "cladder" / "cladder-det-counterfactual.json").write_text("[]")
    with pytest.raises(ValueError, match="cruxeval/cruxeval.jsonl"):
        check_external(tmp_path)
    (tmp_path / "cruxeval").mkdir()
    (tmp_path / "cruxeval" / "cruxeval.jsonl").write_text("")
    specs = check_external(tmp_path)
    assert set(specs) == {"cladder", "cruxeval-o", "cruxeval-i"} and check_external(None) == {}


def test_plan_from_fake_pilot_timings():
    pilot = {"sft_s_per_step": 10.0, "grpo_s_per_step": 60.0, "eval_items_per_s": 4.0, "pilot_s": 300.0}
    plan = plan_study(pilot, 180, external=True)
    items = eval_items(True)
    # the external suites generate at most half the tokens: 664 of them cost 332 of ours
    assert items["per_model"] == 2 * 200 + 8 * 100 + 332 and items["alignment"] == 32 * 17
    eval_minutes = (4 * items["per_model"] + items["alignment"]) / 4.0 / 60
    train = 180 - eval_minutes - 5
    assert plan["steps"]["sft"] == int(0.25 * train * 60 / 10) and plan["steps"]["grpo"] == int(0.375 * train)
    assert plan["steps"]["control"] == round(0.375 * train * 60 / 10)  # as long as GRPO, at SFT's pace
    assert plan["minutes"]["grpo"] == round(0.375 * train, 1)  # GRPO's own budget: it plans its steps in it
    assert plan["fits"] and plan["total_minutes"] <= 180 and plan["eval_sizes"] == EVAL_SIZES
    # a large budget: each training stage capped at an hour
    big = plan_study(pilot, 10_000, external=False)
    assert big["steps"] == {"sft": STAGE_CAP_MINUTES * 6, "grpo": STAGE_CAP_MINUTES, "control": STAGE_CAP_MINUTES * 6}
    # a budget the eval alone eats: minimum steps, and the plan says it does not fit
    tiny = plan_study(pilot, 1, external=True)
    assert tiny["steps"] == {"sft": 2, "grpo": 2, "control": 2} and not tiny["fits"]
    with pytest.raises(ValueError, match="grpo_s_per_step"):
        plan_study({**pilot, "grpo_s_per_step": 0}, 180, external=True)


def test_eval_sizes_shrink_to_fit_with_floors():
    assert fit_eval_sizes(100.0, 60, external=True) == EVAL_SIZES  # fast: never scaled up
    slow = fit_eval_sizes(0.5, 60, external=True)  # 1,800 generations for 6,672 wanted: about a quarter
    assert slow == {"id": 53, "ood": 26, "external": 53, "cladder": 71, "alignment": 16}
    assert half_width(100) == 9.8 and half_width(400) == 4.9


def test_control_steps_match_grpo_seconds():
    assert control_steps(3600.0, 12.0) == 300
    assert control_steps(1.0, 12.0) == 2  # never fewer than two steps
    with pytest.raises(ValueError):
        control_steps(0.0, 12.0)


def test_train_timing_sums_launches_and_skips_downtime(tmp_path):
    rows = [
        {"step": 0, "time": 100.0, "event": "start"},
        {"step": 1, "time": 130.0, "loss": 1.0},  # 30 s: loading + the first step
        {"step": 2, "time": 140.0, "loss": 1.0},
        {"step": 3, "time": 150.0, "loss": 1.0},
        {"step": 3, "time": 1000.0, "event": "start"},  # resumed after a long interruption
        {"step": 4, "time": 1020.0, "loss": 1.0},
        {"step": 5, "time": 1030.0, "loss": 1.0},
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    timing = train_timing(path)
    assert timing == {"seconds": 80.0, "steps": 5, "s_per_step": 16.0, "steady_s_per_step": 10.0, "cpu_s": None,
                      "cpu_s_per_step": None}  # fmt: skip


def test_train_timing_counts_cpu_seconds_that_a_pause_does_not_inflate(tmp_path):
    # One launch, paused (SIGSTOP) for 1000 s between steps 2 and 3: wall time counts the pause, CPU time does not
    rows = [
        {"step": 0, "time": 100.0, "cpu_s": 50.0, "event": "start"},
        {"step": 1, "time": 110.0, "cpu_s": 70.0, "loss": 1.0},
        {"step": 2, "time": 120.0, "cpu_s": 90.0, "loss": 1.0},
        {"step": 3, "time": 1130.0, "cpu_s": 110.0, "loss": 1.0},
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    timing = train_timing(path)
    assert timing["seconds"] == 1030.0 and timing["cpu_s"] == 60.0 and timing["cpu_s_per_step"] == 20.0


def test_train_timing_leaves_out_steps_a_launch_lost(tmp_path):
    # Killed at step 3 before any checkpoint: the second launch starts again from step 0, so the first launch's
    # 40 s and 40 CPU s trained a model that no longer exists (the study's control was matched on these numbers)
    rows = [
        {"step": 0, "time": 100.0, "cpu_s": 10.0, "event": "start"},
        {"step": 2, "time": 120.0, "cpu_s": 30.0, "loss": 1.0},
        {"step": 3, "time": 140.0, "cpu_s": 50.0, "loss": 1.0},
        {"step": 0, "time": 500.0, "cpu_s": 10.0, "event": "start"},
        {"step": 2, "time": 520.0, "cpu_s": 30.0, "loss": 1.0},
        {"step": 4, "time": 540.0, "cpu_s": 50.0, "loss": 1.0},
        {"step": 2, "time": 900.0, "cpu_s": 5.0, "event": "start"},  # resumed from checkpoint-2: step 4 was lost
        {"step": 4, "time": 930.0, "cpu_s": 35.0, "loss": 1.0},
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    timing = train_timing(path)
    assert timing["seconds"] == 20.0 + 30.0 and timing["cpu_s"] == 20.0 + 30.0 and timing["steps"] == 4


def test_report_curves_keep_only_the_steps_that_made_the_model(tmp_path):
    rows = [{"step": 0, "event": "start"}, {"step": 5, "loss": 9.0}, {"step": 10, "loss": 8.0},
            {"step": 0, "event": "start"}, {"step": 5, "loss": 1.0}]  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    entry = load_entry(tmp_path)
    assert [(r["step"], r["loss"]) for r in entry.log if "loss" in r] == [(5, 1.0)]


def test_bootstrap_ci_on_hand_made_numbers():
    assert bootstrap_ci([1.0] * 50) == (1.0, 1.0)
    assert bootstrap_ci([0.0] * 7) == (0.0, 0.0)
    half = [0.0, 1.0] * 50
    lo, hi = bootstrap_ci(half, seed=3)
    assert (lo, hi) == bootstrap_ci(half, seed=3)  # deterministic for a seed
    assert 0.38 < lo < 0.42 and 0.58 < hi < 0.62  # binomial: 0.5 +- 1.96 * 0.05
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_paired_bootstrap_on_hand_made_numbers():
    a = [0.0, 1.0] * 50
    assert paired_bootstrap(a, a) == (0.0, 0.0, 0.0)
    assert paired_bootstrap(a, [1.0] * 100)[0] == 0.5  # b right wherever a is, and on 50 more items
    d, lo, hi = paired_bootstrap([0.0] * 100, [1.0] * 100)
    assert (d, lo, hi) == (1.0, 1.0, 1.0)
    # a wins 10 items and loses 0: the paired interval excludes 0; unpaired ones of 0.5 vs 0.6 would overlap
    b = [1.0] * 10 + a[10:]
    d, lo, hi = paired_bootstrap(a, b)
    assert d == pytest.approx(0.05) and lo > 0
    with pytest.raises(ValueError, match="pair"):
        paired_bootstrap([1.0], [1.0, 0.0])


def _eval_folder(folder: Path, ems: list[float], cladder: list[float]) -> Path:
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"metrics": {}}))
    rows = [{"id": f"i{k}", "family": "if_else", "variant": "counterfactual", "em": em} for k, em in enumerate(ems)]
    rows += [{"id": f"w{k}", "family": "while", "variant": "interventional", "em": em} for k, em in enumerate(ems)]
    (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    external = [{"id": f"c{k}", "suite": "cladder", "em": em} for k, em in enumerate(cladder)]
    (folder / "external_samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in external))
    return folder


def test_report_shows_intervals_and_paired_differences(tmp_path):
    base = _eval_folder(tmp_path / "base" / "eval_id", [0.0] * 100, [1.0] * 20)
    tuned = _eval_folder(tmp_path / "sft" / "eval_id", [1.0] * 100, [1.0] * 20)
    text = write_report([base.parent, tuned.parent], tmp_path / "report", ["base", "sft"]).read_text()
    assert "## Exact match with 95% intervals" in text
    assert "| if_else/counterfactual | 0.0 [0.0, 0.0] (n=100) | 100.0 [100.0, 100.0] (n=100) |" in text
    assert "| ood/interventional | 0.0 [0.0, 0.0] (n=100) | 100.0 [100.0, 100.0] (n=100) |" in text
    assert "| if_else/counterfactual | +100.0 [+100.0, +100.0] |" in text
    assert "| cladder | +0.0 [+0.0, +0.0] |" in text


def test_report_compares_the_named_pairs(tmp_path, capsys):
    folders = [_eval_folder(tmp_path / n / "eval_id", ems, [1.0] * 20).parent
               for n, ems in (("base", [0.0] * 100), ("grpo", [1.0] * 50 + [0.0] * 50), ("control", [1.0] * 100))]  # fmt: skip
    names = ["base", "grpo", "control"]
    text = write_report(folders, tmp_path / "r", names, [("grpo", "control")]).read_text()
    assert "| suite | grpo − control |" in text and "| if_else/counterfactual | -50.0 [" in text
    assert "grpo − base" not in text
    with pytest.raises(ValueError, match="no model 'sft'"):
        write_report(folders, tmp_path / "r2", names, [("sft", "base")])
    args = ["report", *map(str, folders), "--names", *names, "--out", str(tmp_path / "r3")]
    assert main([*args, "--compare", "grpo-control"]) == 2
    assert "--compare takes A:B" in capsys.readouterr().err and not (tmp_path / "r3").exists()
    assert main([*args, "--compare", "grpo:sft"]) == 2
    assert "no model 'sft'" in capsys.readouterr().err and not (tmp_path / "r3").exists()
    assert main([*args, "--compare", "control:grpo"]) == 0
    assert "| if_else/counterfactual | +50.0 [" in (tmp_path / "r3" / "report.md").read_text()


def test_report_lists_each_evals_generation_settings(tmp_path):
    folder = tmp_path / "sft"
    for name, tokens in (("eval_id", 256), ("eval_cruxeval", 128)):
        _eval_folder(folder / name, [1.0] * 4, [1.0] * 4)
        generation = {"samples": 1, "temperature": 0.0, "max_new_tokens": tokens}
        (folder / name / "metrics.json").write_text(json.dumps({"metrics": {}, "generation": generation}))
    text = write_report([folder], tmp_path / "r", ["sft"]).read_text()
    assert "T=0.0, 256 new tokens<br>1 sample(s), T=0.0, 128 new tokens |" in text


@pytest.mark.slow
def test_study_end_to_end_on_the_micro_model(tmp_path):
    """Every stage on cftrain:micro with the fewest steps and a few eval items; then a rerun skips every stage."""
    from cftrain.study import main as study

    sizes = {"id": 2, "ood": 1, "external": 1, "cladder": 1, "alignment": 1}
    report = study(tmp_path / "s", budget_minutes=0.01, model="cftrain:micro", eval_sizes=sizes)
    state = json.loads((tmp_path / "s" / "study.json").read_text())
    assert set(state["stages"]) == {"sft", "grpo", "control", "eval", "report"}
    assert state["plan"]["steps"]["sft"] == 2 and state["control_steps"] >= 2
    assert "## Exact match with 95% intervals" in report.read_text()
    walls = {k: v["wall_s"] for k, v in state["stages"].items() if k in ("sft", "grpo", "control")}
    study(tmp_path / "s", stages="sft,grpo,control", model="cftrain:micro", eval_sizes=sizes)
    state = json.loads((tmp_path / "s" / "study.json").read_text())
    assert {k: state["stages"][k]["wall_s"] for k in walls} == walls  # skipped: nothing re-recorded
