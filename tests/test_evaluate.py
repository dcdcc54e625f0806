"""Evaluation and trace analysis: scoring on hand-computed cases, the pass@k estimator, the step detectors on gold
rationales and on hand-made wrong traces, and end-to-end evals of the micro model (plain, PEFT adapter, CLI) whose
metrics.json must recompute exactly from samples.jsonl.

Offline, CPU, a few items with short generations: `python -m pytest tests/test_evaluate.py -q`.
"""

import doctest
import json
import subprocess
import sys

import pytest
import torch
import yaml

import cftrain.evaluate
from cftrain.cli import main
from cftrain.data import Source, read_jsonl, write_jsonl
from cftrain.evaluate import (
    evaluate_records,
    metrics_from_samples,
    pass_at_k,
    pass_ks,
    score_completion,
)
from cftrain.execution import load_program
from cftrain.models import load_model, load_tokenizer, resolve_model
from cftrain.problems.truth import consistent_latents
from cftrain.prompts import PromptConfig, rationale
from cftrain.targets import resolve_target
from cftrain.traces import analyse_trace

# ---------------------------------------------------------------- fixtures

FAMILIES = ("if_else", "if_else_long", "while", "multi_r")


@pytest.fixture(scope="module")
def records():
    """Two if_else items (all variants) and one while item (counterfactual, interventional): 8 records."""
    return [
        *Source("if_else", 2, "all", 0).records("any"),
        *Source("while", 1, ["counterfactual", "interventional"], 0).records("any"),
    ]


@pytest.fixture(scope="module")
def suite(records, tmp_path_factory):
    path = tmp_path_factory.mktemp("suite") / "suite.jsonl"
    write_jsonl(records, path)
    return path


@pytest.fixture(scope="module")
def micro():
    return resolve_model("cftrain:micro")


def record_for(family="if_else", variant="counterfactual", index=0):
    return [r for r in Source(family, index + 1, [variant], 7).records("any")][index]


# ---------------------------------------------------------------- scoring


def test_score_completion_hand_computed():
    rec = {"answer": [3, 11]}
    cases = {
        "<answer>{11, 3}</answer>": (1.0, 1.0, 1.0, [3, 11]),
        "<answer>{3}</answer>": (0.0, 2 * 1 / 3, 1.0, [3]),
        "<answer>{3, 5, 11, 12}</answer>": (0.0, 2 * 2 / 6, 1.0, [3, 5, 11, 12]),
        "I think 3 and 11": (0.0, 0.0, 0.0, None),
        "<answer>{}</answer>": (0.0, 0.0, 1.0, []),
    }
    full = record_for()
    for text, (em, f1, fmt, answer) in cases.items():
        row = score_completion({**full, **rec}, text)
        assert (row["em"], row["f1"], row["format"]) == pytest.approx((em, f1, fmt)), text
        assert row["answer"] == answer and row["gold"] == [3, 11]


def test_pass_at_k_known_values():
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(4, 1, 4) == 1.0 and pass_at_k(16, 3, 16) == 1.0  # k = n and c > 0
    assert pass_at_k(8, 0, 1) == 0.0 and pass_at_k(8, 0, 8) == 0.0
    assert pass_at_k(1, 1, 1) == 1.0 and pass_at_k(1, 0, 1) == 0.0
    assert pass_at_k(1000, 1, 1) == pytest.approx(0.001)  # no overflow for large n
    assert pass_ks(1) == [1] and pass_ks(16) == [1, 2, 4, 8, 16] and pass_ks(6) == [1, 2, 4]
    with pytest.raises(ValueError):
        pass_at_k(2, 3, 1)
    assert doctest.testmod(cftrain.evaluate).failed == 0


def _row(id_, family, variant, em, gold, sample=0, length=10, error=None, abduction=False):
    trace = {"abduction": abduction, "intervention": None, "prediction": None, "in_order": False}
    trace |= {"right_reason": em == 1.0 and abduction, "error": None if em else (error or "planning")}
    return {
        "id": id_, "family": family, "variant": variant, "sample": sample, "em": em, "f1": em, "format": 1.0,
        "len": length, "gold": gold, "trace": trace,
    }  # fmt: skip


def test_metrics_hand_computed():
    rows = [
        _row("a", "if_else", "counterfactual", 1.0, [0], abduction=True),
        _row("b", "if_else", "counterfactual", 0.0, [0], error="execution"),
        _row("c", "if_else", "counterfactual", 0.0, [5]),
        _row("d", "if_else", "interventional", 1.0, [2], length=20),
        _row("e", "if_else", "interventional", 1.0, [3], length=30),
        _row("f", "while", "counterfactual", 0.0, [1]),
    ]
    m = metrics_from_samples(rows)
    assert m["if_else/counterfactual/em"] == pytest.approx(1 / 3)
    assert m["if_else/counterfactual/n"] == 3
    assert m["if_else/counterfactual/constant_em"] == pytest.approx(2 / 3)  # guess {0} for every item
    assert m["if_else/interventional/constant_em"] == pytest.approx(1 / 2)
    assert m["if_else/gap"] == pytest.approx(1 - 1 / 3)
    assert m["if_else/interventional/len"] == 25
    assert m["if_else/counterfactual/right_reason"] == pytest.approx(1 / 3)
    assert m["if_else/counterfactual/planning_error"] == 0.5 and m["if_else/counterfactual/execution_error"] == 0.5
    assert "if_else/interventional/planning_error" not in m  # no wrong answers there
    assert m["all/all/em"] == pytest.approx(3 / 6) and m["all/all/n"] == 6
    assert m["id/all/em"] == pytest.approx(3 / 5) and m["ood/counterfactual/em"] == 0.0
    assert m["all/counterfactual/pass@1"] == m["all/counterfactual/em"]
    assert "while/gap" not in m and "all/all/constant_em" not in m and "all/all/pass@2" not in m


def test_pass_at_k_metrics_over_samples():
    # Item a: 2 of 4 samples right; item b: 0 of 4.
    rows = [_row("a", "if_else", "counterfactual", float(s < 2), [1], sample=s) for s in range(4)]
    rows += [_row("b", "if_else", "counterfactual", 0.0, [2], sample=s) for s in range(4)]
    m = metrics_from_samples(rows)
    assert m["if_else/counterfactual/em"] == 0.25 and m["if_else/counterfactual/n"] == 2
    assert m["if_else/counterfactual/pass@1"] == pytest.approx(0.25)
    assert m["if_else/counterfactual/pass@2"] == pytest.approx((1 - 1 / 6) / 2)  # a: 1 - C(2,2)/C(4,2)
    assert m["if_else/counterfactual/pass@4"] == pytest.approx(0.5)


# ---------------------------------------------------------------- traces


@pytest.mark.parametrize("family", FAMILIES)
def test_gold_rationales_have_every_step(family):
    for record in Source(family, 6, "all", 11).records("any"):
        trace = analyse_trace(record, rationale(record), True)
        applies = record["variant"] != "abduction"
        assert trace == {
            "abduction": True,
            "intervention": True if applies else None,
            "prediction": True if applies else None,
            "in_order": True,
            "right_reason": True,
            "error": None,
        }, (record["id"], rationale(record))


def _cf_record():
    """f(x, r) = (x * r) % 5 style item with a known consistent set, built by hand (schema of docs/records.md)."""
    return {
        "id": "hand/counterfactual/0",
        "family": "if_else",
        "variant": "counterfactual",
        "program": "def f(x, r):\n    return (x * r) % 5",
        "entry": "f",
        "latent_domain": {"r": [1, 10]},
        "observation": {"inputs": {"x": 2}, "output": 4},  # r in {2, 7}
        "intervention": {"x": 3},
        "revealed": {},
        "answer": [1],  # 3*2 % 5 = 1, 3*7 % 5 = 1
    }


def test_free_form_trace():
    rec = _cf_record()
    text = (
        "We know f(2, r) = 4, so 2r mod 5 = 4. Trying values, r must be 2 or 7. "
        "Had x been 3 instead: 3 * 2 = 6, 6 % 5 = 1; 3 * 7 = 21, 21 % 5 = 1. So <answer>{1}</answer>"
    )
    trace = analyse_trace(rec, text, True)
    assert trace["abduction"] and trace["intervention"] and trace["prediction"] and trace["in_order"]
    assert trace["right_reason"]
    # Restating the question first does not break the order: the intervention after the abduction counts.
    text2 = (
        "If x had been 3... first, r ∈ {2, 7} from the observation. Then with x = 3: f(3,2)=1, f(3,7)=1. \\boxed{1}"
    )
    assert analyse_trace(rec, text2, True)["in_order"]


def test_free_form_word_problem_trace():
    rec = next(r for r in Source("math_word", 3, ["counterfactual"], 0).records("any"))
    (size,) = rec["latent_domain"]
    ((players, value),) = rec["intervention"].items()
    program, obs = load_program(rec["program"]), rec["observation"]
    latents = consistent_latents(program, rec["latent_domain"], obs["inputs"], obs["output"])
    consistent = " or ".join(str(latent[size]) for latent in latents)
    text = (
        f"The {size} must be {consistent}. With {value} {players} instead, the total would be "
        f"{' or '.join(map(str, rec['answer']))}. <answer>{{{', '.join(map(str, rec['answer']))}}}</answer>"
    )
    trace = analyse_trace(rec, text, True)
    assert trace["abduction"] and trace["intervention"] and trace["prediction"] and trace["in_order"], text


def test_right_answer_wrong_reason():
    rec = _cf_record()
    trace = analyse_trace(
        rec, "Abduction: consistent r={2}\nIntervention: x=3\nPrediction: f(3,2)=1\n<answer>{1}</answer>", True
    )
    assert not trace["abduction"] and not trace["right_reason"] and trace["prediction"]
    # A guessed answer with no reasoning is right, but not for the right reason.
    assert analyse_trace(rec, "<answer>{1}</answer>", True) == {
        "abduction": False, "intervention": False, "prediction": False, "in_order": False,
        "right_reason": False, "error": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # steps present and ordered, but the consistent set is wrong -> execution
        ("Abduction: consistent r={2}\nIntervention: x=3\nPrediction: f(3,2)=1\n<answer>{1, 4}</answer>", "execution"),
        # right steps, an arithmetic slip in the prediction -> execution
        ("r must be 2 or 7. Had x been 3: 3*2 % 5 = 1 and 3*7 % 5 = 2. <answer>{1, 2}</answer>", "execution"),
        # wrong changed value, still a structured attempt -> execution
        ("consistent r={2, 7}\nIntervention: x=4\nPrediction: f(4,2)=3 f(4,7)=3\n<answer>{3}</answer>", "execution"),
        # no abduction at all: plugs the new x in without inferring r -> planning
        ("Intervention: x=3\nPrediction: f(3,1)=3\n<answer>{3}</answer>", "planning"),
        # intervention before abduction, prediction never made -> planning
        ("Set x = 3. Then r = 2 or r = 7.\n<answer>{2, 7}</answer>", "planning"),
        # abduction only, then an answer -> planning
        ("consistent r={2, 7}\n<answer>{2, 7}</answer>", "planning"),
        # restating the code, no steps -> planning
        ("def f(x, r):\n    return (x * r) % 5\n<answer>{0}</answer>", "planning"),
        ("", "planning"),
    ],
)
def test_wrong_answers_are_planning_or_execution_errors(text, kind):
    trace = analyse_trace(_cf_record(), text, False)
    assert trace["error"] == kind
    assert not trace["right_reason"]


def test_interventional_and_multi_latent_traces():
    rec = record_for("multi_r", "interventional")
    names = sorted(rec["revealed"])
    given = ", ".join(f"{n} = {rec['revealed'][n]}" for n in names)
    (name, value), = rec["intervention"].items()  # fmt: skip
    text = f"With {given} and {name} = {value} the function returns {rec['answer'][0]}. <answer>{{{rec['answer'][0]}}}</answer>"
    trace = analyse_trace(rec, text, True)
    assert trace["abduction"] and trace["intervention"] and trace["prediction"] and trace["in_order"]
    cf = record_for("multi_r", "counterfactual")
    assert analyse_trace(cf, rationale(cf), True)["abduction"]
    assert not analyse_trace(cf, "consistent (r1,r2,r3)=(9,9,9)\n<answer>{0}</answer>", False)["abduction"]


# ---------------------------------------------------------------- end to end on the micro model


@pytest.mark.train
def test_evaluate_records_restores_state_and_batches_like_single(micro, records):
    model, tokenizer = load_model(micro), load_tokenizer(micro)
    with torch.no_grad():  # a random micro model only prints newlines; noise makes greedy outputs differ per prompt
        gen = torch.Generator().manual_seed(0)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5)
    model.train()
    prompt = PromptConfig(template="chat")
    _, single = evaluate_records(model, tokenizer, records, prompt, max_new_tokens=12, batch_size=1)
    metrics, batched = evaluate_records(model, tokenizer, records, prompt, max_new_tokens=12, batch_size=5)
    assert model.training and tokenizer.padding_side == "right"
    assert len({r["completion"] for r in single}) > 1
    assert [r["completion"] for r in single] == [r["completion"] for r in batched]
    assert [r["id"] for r in batched] == [r["id"] for r in records]
    assert all(1 <= r["len"] <= 12 for r in batched)
    assert metrics == metrics_from_samples(batched)
    assert metrics["if_else/counterfactual/n"] == 2 and metrics["while/counterfactual/n"] == 1

    torch.manual_seed(0)
    metrics, rows = evaluate_records(model, tokenizer, records[:3], prompt, max_new_tokens=6, samples=4, batch_size=2)
    assert [r["sample"] for r in rows[:4]] == [0, 1, 2, 3] and len(rows) == 12
    assert {"all/all/pass@1", "all/all/pass@2", "all/all/pass@4"} <= set(metrics)


def _check_eval_folder(out, n_records):
    result = json.loads((out / "metrics.json").read_text())
    rows = read_jsonl(out / "samples.jsonl")
    assert len(rows) == n_records
    assert metrics_from_samples(rows) == result["metrics"]  # exact: same code, same order, floats round-trip
    assert set(result["suites"]) and all(
        len(sha) == 64 for files in result["suites"].values() for sha in files.values()
    )
    return result, rows


@pytest.mark.train
def test_cli_eval_recomputes_from_samples(micro, suite, records, tmp_path):
    out = tmp_path / "eval"
    argv = ["eval", "--model", micro, "--suite", str(suite), "--max-new-tokens", "8", "--batch-size", "4"]
    assert main([*argv, "--out", str(out)]) == 0
    result, rows = _check_eval_folder(out, len(records))
    assert result["prompt"]["template"] == "chat" and result["prompt_source"] == "default"
    assert result["generation"]["temperature"] == 0.0 and result["generation"]["samples"] == 1
    assert rows[0]["prompt"].startswith("<|im_start|>user\n")
    for key in ("if_else/counterfactual/em", "if_else/counterfactual/f1", "if_else/counterfactual/format",
                "if_else/counterfactual/len", "if_else/counterfactual/pass@1", "if_else/counterfactual/constant_em",
                "if_else/gap", "ood/all/em", "all/all/abduction"):  # fmt: skip
        assert key in result["metrics"], key

    # --n and --variants select a stable subset; --alignment adds sampled pass@1/4/16.
    out2 = tmp_path / "eval2"
    argv2 = [*argv, "--n", "1", "--variants", "counterfactual", "--alignment", "--out", str(out2)]
    assert main(argv2) == 0
    result, rows = _check_eval_folder(out2, 2)
    aligned = read_jsonl(out2 / "alignment_samples.jsonl")
    assert len(aligned) == 2 * 16 and metrics_from_samples(aligned) == result["alignment"]["metrics"]
    assert {"all/all/pass@1", "all/all/pass@4", "all/all/pass@16"} <= set(result["alignment"]["metrics"])


@pytest.mark.train
def test_adapter_eval_uses_its_recipe(micro, suite, records, tmp_path):
    from peft import LoraConfig, get_peft_model

    run = tmp_path / "run"
    adapter = run / "final"
    model = get_peft_model(load_model(micro), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    model.save_pretrained(adapter)
    load_tokenizer(micro).save_pretrained(adapter)
    recipe = {"method": "sft", "model": {"name_or_path": "cftrain:micro"}, "output_dir": str(run)}
    recipe["prompt"] = {"template": "plain", "system_prompt": None, "scaffold": "abduct-act-predict"}
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    (adapter / "recipe.yaml").write_text(yaml.safe_dump(recipe))

    target = resolve_target(str(adapter))
    assert target["base"] == "cftrain:micro" and target["adapter"] == str(adapter)
    assert target["tokenizer"] == str(adapter) and target["prompt"]["template"] == "plain"

    argv = ["eval", "--suite", str(suite), "--n", "1", "--max-new-tokens", "6"]
    assert main([*argv, "--model", micro, "--adapter", str(adapter), "--out", str(tmp_path / "a")]) == 0
    # A run's final/ folder alone: base from the recipe, output next to it by default.
    assert main([*argv, "--model", str(adapter)]) == 0
    for out in (tmp_path / "a", run / "eval"):
        result, rows = _check_eval_folder(out, 5)
        assert result["adapter"] == str(adapter) and result["prompt"]["scaffold"] == "abduct-act-predict"
        assert result["prompt_source"].endswith("recipe.yaml")
        assert "<|im_start|>" not in rows[0]["prompt"] and rows[0]["prompt"].endswith("Then give the answer.\n")

    # The PEFT-wrapped model works in evaluate_records too (the training hook's case) and stays in training mode.
    model.train()
    metrics, _ = evaluate_records(model, load_tokenizer(micro), records[:2], PromptConfig(), max_new_tokens=4)
    assert model.training and metrics["all/all/n"] == 2


def _run(*args):
    return subprocess.run([sys.executable, "-m", "cftrain", *args], capture_output=True, text=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "./missing-model"], "./missing-model: no such folder"),
        (["--model", "cftrain:micro", "--suite", "nope"], "unknown suite 'nope'"),
        (["--model", "cftrain:micro", "--n", "0"], "--n must be > 0"),
        (["--model", "cftrain:nope"], "unknown model 'cftrain:nope'"),
    ],
)
@pytest.mark.train
def test_eval_bad_input_is_one_line_exit_2(args, message, suite, tmp_path):
    suites = [] if "--suite" in args else ["--suite", str(suite)]
    result = _run("eval", *args, *suites, "--out", str(tmp_path / "x"))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
