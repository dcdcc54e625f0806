"""The data card on hand-made records whose numbers are known. Run: pytest tests/test_datacard.py"""

import doctest
import json

import cftrain.datacard
from cftrain.cli import main
from cftrain.data import write_jsonl
from cftrain.datacard import data_card, render_card
from cftrain.problems.records import check_record
from cftrain.problems.truth import solve

MOD = "def f(x, r):\n    return (x + r) % 3"  # r in 0..5: two r per observation, so abduction matters
SAME_MOD = "def f(x, r):\n    return (r + x) % 3"  # the same structure as MOD, spelled otherwise
LINEAR = "def f(x, r):\n    return x * r"


def record(program: str, variant: str, x: int, r: int, x_new: int, index: int) -> dict:
    """A valid record: the answer is computed by execution, as the record gate requires."""
    rec = {
        "id": f"t/{variant}/{index}",
        "family": "if_else",
        "variant": variant,
        "program": program,
        "entry": "f",
        "latent_domain": {"r": [0, 5]},
        "observation": {"inputs": {"x": x}, "output": 0},
        "intervention": {"x": x_new},
        "revealed": {"r": r} if variant == "interventional" else {},
        "answer": [],
        "question": "?",
    }
    from cftrain.execution import load_program

    rec["observation"]["output"] = load_program(program)(x=x, r=r)
    rec["answer"] = solve(rec)
    return check_record(rec, "test")


def cf_records() -> list[dict]:
    return [
        record(MOD, "counterfactual", 0, 1, 1, 0),  # r in {1, 4} -> x=1: {2, 2} -> [2]
        record(MOD, "counterfactual", 0, 2, 1, 1),  # r in {2, 5} -> [0]
        record(MOD, "counterfactual", 0, 0, 3, 2),  # r in {0, 3} -> x=3: [0], the observed output: an echo
        record(LINEAR, "counterfactual", 1, 2, 3, 3),  # r = 2 -> [6]
    ]


def test_known_numbers():
    card = data_card(cf_records())
    (row,) = card["rows"]
    assert [r["answer"] for r in cf_records()] == [[2], [0], [0], [6]]
    assert row["family"] == "if_else" and row["variant"] == "counterfactual"
    assert row["records"] == 4 and row["structures"] == 2
    assert row["set_valued"] == 0.0 and row["mean_answer_size"] == 1.0
    assert row["constant_baseline"] == 0.5  # [0] twice
    assert row["echo_baseline"] == 0.25
    # Ignoring the observation: MOD gives {0, 1, 2} for any x (never an answer here), LINEAR at x=3 gives
    # {0, 3, ..., 15}: the answer [6] differs too, so abduction is needed in all four.
    assert row["abduction_necessary"] == 1.0
    assert row["overlap"] is None and card["overlap"] is None


def test_set_valued_and_abduction_unneeded():
    # r in 0..5 all consistent with x=0 -> output 0 under f = x * r: the answer ignores nothing.
    unneeded = record(LINEAR, "counterfactual", 0, 3, 1, 0)
    assert unneeded["answer"] == [0, 1, 2, 3, 4, 5]
    row = data_card([unneeded])["rows"][0]
    assert row["set_valued"] == 1.0 and row["mean_answer_size"] == 6.0 and row["abduction_necessary"] == 0.0


def test_variants_are_separate_rows_and_interventional_has_no_abduction_share():
    records = [record(MOD, "abduction", 0, 1, 1, 0), record(MOD, "interventional", 0, 1, 1, 0)]
    rows = {r["variant"]: r for r in data_card(records)["rows"]}
    assert rows["abduction"]["mean_answer_size"] == 2.0  # r in {1, 4}
    assert rows["abduction"]["abduction_necessary"] == 1.0  # {1, 4} is not the whole domain 0..5
    assert rows["interventional"]["abduction_necessary"] is None


def test_overlap_uses_the_canonical_structure():
    train = [record(SAME_MOD, "counterfactual", 1, 1, 2, 0)]
    card = data_card(cf_records(), against=train)
    assert card["rows"][0]["overlap"] == 0.75  # the three MOD records share SAME_MOD's structure
    assert card["overlap"] == 0.75
    table = render_card(card)
    assert "| if_else | counterfactual | 4 | 2 | 0.0% | 1.00 | 50.0% | 25.0% | 100.0% | 75.0% |" in table


def test_cli_text_and_json(tmp_path, capsys):
    write_jsonl(cf_records(), tmp_path / "test.jsonl")
    write_jsonl([record(SAME_MOD, "counterfactual", 1, 1, 2, 0)], tmp_path / "train.jsonl")
    assert main(["data-card", str(tmp_path / "test.jsonl"), "--against", str(tmp_path / "train.jsonl")]) == 0
    assert "75.0%" in capsys.readouterr().out
    assert main(["data-card", str(tmp_path / "test.jsonl"), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["records"] == 4 and card["rows"][0]["echo_baseline"] == 0.25


def test_doctests():
    assert doctest.testmod(cftrain.datacard).failed == 0
