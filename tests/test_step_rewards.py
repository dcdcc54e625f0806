"""Step rewards (`abduction`, `abduction_f1`, `prediction`, `steps`): gold rationales score 1 on every family and
variant that has the step, adversarial completions written to farm a step score 0, bad input never raises.

Offline and fast: `python -m pytest tests/test_step_rewards.py -q`.
"""

import doctest
import json
import pickle
import time

import pytest

import cftrain.steps
from cftrain.problems import FAMILIES, generate
from cftrain.prompts import rationale
from cftrain.rewards import REWARDS
from cftrain.steps import MAX_CHARS, step_truth

STEP_REWARDS = ("abduction", "abduction_f1", "prediction", "steps")
# Which variants each step reward is defined for (None elsewhere).
APPLIES = {
    "abduction": {"counterfactual", "abduction"},
    "abduction_f1": {"counterfactual", "abduction"},
    "prediction": {"counterfactual", "interventional"},
    "steps": {"counterfactual", "interventional", "abduction"},
}


def record(variant: str) -> dict:
    """A hand-made record: x=11 gave 1, so r in {3, 6, 9}; at x=8 those worlds give 11, 14, 17."""
    return {
        "program": "def f(x, r):\n    if x > 10 and (x + r) % 3 == 2:\n        return 1\n    return x + r\n",
        "entry": "f",
        "variant": variant,
        "latent_domain": {"r": [1, 10]},
        "observation": {"inputs": {"x": 11}, "output": 1},
        "intervention": {"x": 8},
        "revealed": {"r": 6} if variant == "interventional" else {},
    }


def score(name: str, completion: str, variant: str = "counterfactual") -> float | None:
    return REWARDS[name]([completion], truth=[json.dumps(step_truth(record(variant)))])[0]


def test_truth_of_the_hand_made_record():
    truth = step_truth(record("counterfactual"))
    assert truth["worlds"] == [[3], [6], [9]]
    assert truth["outcomes"] == [11, 14, 17]
    assert step_truth(record("interventional"))["worlds"] == [[6]]
    assert step_truth(record("abduction"))["outcomes"] == []


GOOD = "consistent r={3, 6, 9}\nIntervention: x=8\nPrediction: f(8,3)=11 f(8,6)=14 f(8,9)=17\n<answer>{11, 14, 17}</answer>"


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        "If r = 1, f(11,1) = 12. ... So r must be 3, 6 or 9. Now x = 8: f(8, 3) = 11, f(8, 6) = 14, f(8, 9) = 17.",
        "<think>r ∈ {3, 6, 9}. Set x to 8. f(8,3) -> 11; f(8,6) -> 14; f(8,9) -> 17</think><answer>{11,14,17}</answer>",
        "r = 3 or r = 6 or r = 9\nx := 8\nf(x=8, r=3) = 11, f(x=8, r=6) = 14, f(x=8, r=9) = 17",
        "r={3} wait, also 6 and 9: r={3, 6, 9}\nx=8\nf(8,3)=11 f(8,6)=14 f(8,9)=17",  # one correction is fine
    ],
)
def test_right_reasoning_in_several_forms_scores_one(text):
    assert [score(n, text) for n in STEP_REWARDS] == [1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_gold_rationales_score_one_on_every_family_and_variant(family):
    fam = FAMILIES[family]
    records = list(generate(fam, "all", 4, 0, fam.make_config()))
    truth = [json.dumps(step_truth(r)) for r in records]
    completions = [rationale(r) for r in records]
    for name in STEP_REWARDS:
        scores = REWARDS[name](completions, truth=truth)
        for r, s in zip(records, scores, strict=True):
            assert s == (1.0 if r["variant"] in APPLIES[name] else None), (name, r["id"], s)
    # chat format, and a dict truth instead of its JSON, read the same
    chat = [[{"role": "assistant", "content": c}] for c in completions]
    assert REWARDS["steps"](chat, truth=[step_truth(r) for r in records]) == [1.0] * len(records)


ALL_VALUES = "r ∈ {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}"
SUBSETS = " ".join(f"r ∈ {{{a}, {b}}}." for a in range(1, 11) for b in range(a + 1, 11)) + " r ∈ {3, 6, 9}."
CALLS = "x=8\nf(8,3)=11 f(8,6)=14 f(8,9)=17"
ADVERSARIAL = {
    "list every value": f"consistent {ALL_VALUES}\n{CALLS}",
    "every value as a range": f"consistent r ∈ {{1, ..., 10}}\n{CALLS}",
    "every value, dotted range": f"r in 1..10\n{CALLS}",
    "enumerate subsets, right one last": f"{SUBSETS}\n{CALLS}",
    "several claims, right one last": f"r = {{3}}. r = {{6, 9}}. r = {{3, 6, 9}}\n{CALLS}",
    "repeat claims of different sets": "r={3, 6, 9} r={1} r={3, 6, 9} r={2} r={3, 6, 9}\n" + CALLS,
    "claim then contradict": f"consistent r={{3, 6, 9}}. No: r = 4.\n{CALLS}",
    "claim only after the answer": f"{CALLS}\n<answer>{{11, 14, 17}}</answer> consistent r={{3, 6, 9}}",
    "unicode digits": f"consistent r={{٣, ٦, ٩}}\n{CALLS}",
    "fullwidth digits": f"consistent r={{３, ６, ９}}\n{CALLS}",
    "negative range trick": f"consistent r = 3-9\n{CALLS}",
    "expression": f"consistent r = 3 + 3k\n{CALLS}",
    "hedged with or on a trial": f"if r = 3 or 6 or 9\n{CALLS}",
    "digits glued": f"consistent r = 369\n{CALLS}",
    "huge output": "consistent r={3, 6, 9}\n" + CALLS + " " * MAX_CHARS,
    "no claim": CALLS,
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_abduction_scores_zero(name):
    text = ADVERSARIAL[name]
    assert score("abduction", text) == 0.0
    assert score("steps", text) == 0.0


def test_abduction_claim_inside_think_counts_only_before_the_answer():
    # The steps are read in the reasoning, think blocks included; an answer inside <think> is not the answer.
    assert score("abduction", "<think>consistent r={3, 6, 9}</think><answer>{11}</answer>") == 1.0
    assert score("abduction", "<answer>{11}</answer><think>consistent r={3, 6, 9}</think>") == 0.0
    assert score("abduction", "<think>r={1}</think> consistent r={3, 6, 9}") == 1.0


ADVERSARIAL_PREDICTIONS = {
    "every output for each world": "x=8\n" + " ".join(f"f(8,{r})={y}" for r in (3, 6, 9) for y in range(0, 30)),
    "right outputs, then others": "x=8\nf(8,3)=11 f(8,6)=14 f(8,9)=17 f(8,3)=1 f(8,6)=2 f(8,9)=3",
    "hedged outputs": "x=8\nf(8,3)=11 or 12 f(8,6)=14 or 15 f(8,9)=17 or 18",
    "outputs as an expression": "x=8\nf(8,3)=8+3 f(8,6)=8+6 f(8,9)=8+9",
    "predictions before the change is stated": "f(8,3)=11 f(8,6)=14 f(8,9)=17\nx=8",
    "predictions for every world": "x=8\n" + " ".join(f"f(8,{r})={8 + r}" for r in range(1, 11)),
    "outputs at the observed input": "x=8\nf(11,3)=11 f(11,6)=14 f(11,9)=17",
    "numbers listed after the change": "x=8\n" + " ".join(str(i) for i in range(100)),
    "unicode digits": "x=8\nf(8,3)=١١ f(8,6)=١٤ f(8,9)=١٧",
}


@pytest.mark.parametrize("name", list(ADVERSARIAL_PREDICTIONS))
def test_adversarial_prediction_earns_at_most_a_guess(name):
    text = ADVERSARIAL_PREDICTIONS[name]
    # At best a share: predicting all 10 worlds right is 3 right of 3 + 7 extra worlds = 0.3.
    assert score("prediction", text) <= 0.3
    assert score("steps", f"consistent r={{3, 6, 9}}\n{text}") == 0.0


def test_prediction_is_the_share_of_worlds():
    assert score("prediction", "x=8\nf(8,3)=11 f(8,6)=14") == pytest.approx(2 / 3)
    assert score("prediction", "x=8\nf(8,3)=11 f(8,6)=14 f(8,9)=0") == pytest.approx(2 / 3)
    assert score("prediction", "x=8\nf(8,3)=0 f(8,3)=11 f(8,6)=14 f(8,9)=17") == 1.0  # one correction
    assert score("prediction", "x=8\nf(8,6)=14", "interventional") == 1.0
    assert score("prediction", "x=8\nf(8,6)=14", "abduction") is None


def test_steps_need_the_right_intervention_in_order():
    abduce = "consistent r={3, 6, 9}\n"
    predict = "f(8,3)=11 f(8,6)=14 f(8,9)=17"
    assert score("steps", f"{abduce}x=8\n{predict}") == 1.0
    assert score("steps", f"x=8\n{predict}\n{abduce}") == 0.0  # abduction last (its own reward is still 1)
    assert score("steps", f"{abduce}{predict}") == 0.0  # no intervention stated
    assert score("steps", f"{abduce}x=5\n{predict}") == 0.0  # the wrong one
    assert score("steps", f"{abduce}x=1 x=2 x=8\n{predict}") == 0.0  # every value
    assert score("steps", f"x=8\n{abduce}{predict}") == 0.0  # intervention before abduction
    assert score("steps", f"f(8,3)=11 {abduce}x=8\n{predict}") == 0.0  # a prediction before abduction
    assert score("steps", f"{abduce}x=8\n{predict}", "abduction") == 1.0  # the abduction variant: abduction alone
    assert score("steps", "given r=6\nx=8\nf(8,6)=14", "interventional") == 1.0


def test_variants_without_the_step_are_none():
    assert score("abduction", GOOD, "interventional") is None
    assert score("abduction_f1", GOOD, "interventional") is None
    assert score("abduction", "consistent r={3, 6, 9}", "abduction") == 1.0


def test_abduction_f1_grades_the_last_claim():
    assert score("abduction_f1", "r = {3, 6}") == pytest.approx(0.8)
    assert score("abduction_f1", ALL_VALUES) == pytest.approx(2 * 3 / 13)
    assert score("abduction_f1", SUBSETS) == 0.0


def test_several_hidden_variables():
    rec = {
        "program": "def f(x, r1, r2):\n    return x + r1 * r2\n",
        "entry": "f",
        "variant": "counterfactual",
        "latent_domain": {"r1": [1, 3], "r2": [1, 3]},
        "observation": {"inputs": {"x": 1}, "output": 3},
        "intervention": {"x": 5},
        "revealed": {},
    }
    truth = [json.dumps(step_truth(rec))]  # (r1, r2) in {(1, 2), (2, 1)}

    def reward(name: str, text: str) -> float:
        return REWARDS[name]([text], truth=truth)[0]

    assert reward("steps", "consistent (r1,r2)=(1,2) (2,1)\nx=5\nf(5,1,2)=7 f(5,2,1)=7") == 1.0
    assert reward("abduction", "(r2, r1) ∈ {(2, 1), (1, 2)}") == 1.0  # header in another order
    assert reward("abduction", "(r1,r2)=(1,2) (2,1) (3,3)") == 0.0
    assert reward("abduction", "(r1,r2)=(1,2,3) (2,1)") == 0.0  # wrong arity


@pytest.mark.parametrize(
    "completion",
    ["", None, 42, [], [{}], [{"content": None}], "\x00" * 1000, "r" * 10_000, "r = " + "{" * 5000],
)
def test_malformed_completions_score_zero_and_never_raise(completion):
    truth = [json.dumps(step_truth(record("counterfactual")))]
    for name in STEP_REWARDS:
        assert REWARDS[name]([completion], truth=truth) == [0.0]


def test_missing_truth_column_is_a_clear_error():
    with pytest.raises(ValueError, match="truth"):
        REWARDS["abduction"](["consistent r={3}"])


@pytest.mark.parametrize(
    "text",
    [
        "r = " + "1, " * 30_000,
        "r ∈ {" * 20_000,
        "f(" * 40_000,
        "f(8,3)=" * 12_000,
        "if r = 1 " * 10_000,
        "x=8 " * 20_000,
        "(r1,r2)=" + "(1,2) " * 15_000,
        "r = 3 or " * 10_000,
    ],
    ids=lambda t: t[:12],
)
def test_long_adversarial_text_is_fast(text):
    truth = [json.dumps(step_truth(record("counterfactual")))]
    start = time.perf_counter()
    for name in STEP_REWARDS:
        assert REWARDS[name]([text[:MAX_CHARS]], truth=truth) == [0.0]
    assert time.perf_counter() - start < 2.0


def test_step_rewards_pickle():
    for name in STEP_REWARDS:
        assert pickle.loads(pickle.dumps(REWARDS[name])) is REWARDS[name]


def test_doctests():
    assert doctest.testmod(cftrain.steps).failed == 0
