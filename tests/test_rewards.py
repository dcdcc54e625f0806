"""Answer parsing and reward functions: hand-written cases, adversarial inputs, hypothesis properties, doctests.

Offline and fast: `python -m pytest tests/test_rewards.py -q`. Speed is measured by scripts/bench_rewards.py, not here.
"""

import doctest
import json
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cftrain.rewards
from cftrain.rewards import (
    REWARDS,
    answer_reward,
    completion_text,
    exact_match,
    f1_reward,
    format_reward,
    parse_answer,
    set_f1,
)

# The `truth` column the step rewards read (cftrain.steps.step_truth): r in {3, 6}; at x=8 both give 7.
TRUTH = json.dumps(
    {
        "variant": "counterfactual",
        "entry": "f",
        "params": ["x", "r"],
        "latents": ["r"],
        "worlds": [[3], [6]],
        "new_inputs": {"x": 8},
        "intervention": {"x": 8},
        "outcomes": [7, 7],
    }
)


def short_id(value) -> str:
    """A short test id for a long parameter (the default id repeats the whole value)."""
    text = repr(value)
    return text if len(text) <= 30 else f"{text[:24]}...({len(text)})"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>{3, 7, 12}</answer>", {3, 7, 12}),
        ("<answer>12,7,3</answer>", {3, 7, 12}),
        ("<answer>  [ 7 ; 3 ;12 ] </answer>", {3, 7, 12}),
        ("<answer>(3 7 12)</answer>", {3, 7, 12}),
        ("<answer>3 or 7 and 12</answer>", {3, 7, 12}),
        ("<answer>{3, 3, 7, 7}</answer>", {3, 7}),
        ("<answer>\n{3,\n 7}\n</answer>", {3, 7}),
        ("<answer>{-3, 0, -12}</answer>", {-3, 0, -12}),
        ("<answer>007</answer>", {7}),
        ("<answer>{}</answer>", set()),
        ("<answer></answer>", set()),
        ("<answer>$\\{1, 2\\}$</answer>", {1, 2}),
    ],
)
def test_set_syntax_does_not_matter(text, expected):
    assert parse_answer(text) == frozenset(expected)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("r = 3", {3}),
        ("x=-3", {-3}),
        ("The answer is {1, 2}.", {1, 2}),
        ("**Answer:** {1, 2}", {1, 2}),
        ("f(5, r) = {0, 9, 11}", {0, 9, 11}),
        ("r ∈ {2, 5, 8}", {2, 5, 8}),
        ("it is either 3 or 4", {3, 4}),
        ("\\boxed{1, 2}", {1, 2}),
        # Prose touching the numbers is an expression, not a set.
        ("3-5", None),
        ("3 - 5", None),
        ("x-1", None),
        ("2.5", None),
        (">= 3", None),
        ("x != 3", None),
        ("≥ 3", None),
        ("x2", None),
        ("{1, 2} is the answer", None),
        ("no idea", None),
        ("r =", None),
        ("٣", None),
        ("x = ٣", None),
    ],
)
def test_prose_rule(content, expected):
    assert parse_answer(f"<answer>{content}</answer>") == (None if expected is None else frozenset(expected))


def test_last_answer_wins():
    assert parse_answer("<answer>{1}</answer> wait, no <answer>{2}</answer>") == {2}
    assert parse_answer("<answer>{1}</answer> and then <answer>{2}") == {1}
    assert parse_answer("<answer>{1} <answer>{2}</answer>") == {2}
    assert parse_answer("<answer>{1}</answer> \\boxed{2}") == {1}


def test_boxed_fallback():
    assert parse_answer("so \\boxed{\\{1, 2\\}}") == {1, 2}
    assert parse_answer("\\boxed{{1,2}}") == {1, 2}
    assert parse_answer("\\boxed{1} then \\boxed{\\left\\{ 3, 4 \\right\\}}") == {3, 4}
    assert parse_answer("\\boxed{1} then \\boxed{2") is None
    assert parse_answer("</answer> \\boxed{5}") == {5}


def test_no_answer():
    assert parse_answer("") is None
    assert parse_answer("the answer is 3") is None
    assert parse_answer("</answer><answer>") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>maybe {1}</think> <answer>{2}</answer>", {2}),
        ("<think><answer>{1}</answer></think>", None),
        ("<think><answer>{1}</answer></think> so \\boxed{3}", {3}),
        ("<answer>{1}</answer> <think>no, <answer>{2}</answer></think>", {1}),
        ("<answer>{1}</answer> <think>never closed <answer>{2}</answer>", {1}),
        ("<think>never closed <answer>{2}</answer>", None),
        ("opened in the prompt: <answer>{2}</answer></think> <answer>{5}</answer>", {5}),
        ("opened in the prompt: <answer>{2}</answer></think>", None),
        ("<think>a</think><answer>{1<think>x</think>2}</answer>", {1, 2}),
        ("<think>a<think>b</think> c</think> <answer>{4}</answer>", {4}),
        ("</think>", None),
    ],
    ids=short_id,
)
def test_answers_inside_think_do_not_count(text, expected):
    assert parse_answer(text) == (None if expected is None else frozenset(expected))
    gold = [[1]] if expected is None else [sorted(expected)]
    assert answer_reward([text], gold) == [float(expected is not None)]


@pytest.mark.parametrize(
    "completion",
    [[], [{}], [{"role": "assistant"}], [{"role": "assistant", "content": None}], [{"content": 3}], ["x"], None, 3],
    ids=short_id,
)
def test_malformed_completions_score_zero(completion):
    assert completion_text(completion) == ""
    for func in REWARDS.values():
        assert func([completion], answer=[[1]], truth=[TRUTH]) == [0.0]


def test_chat_completions():
    chat = [{"role": "assistant", "content": "<answer>{1, 2}</answer>"}]
    assert completion_text(chat) == "<answer>{1, 2}</answer>"
    assert answer_reward([chat, "<answer>{1, 2}</answer>"], [[1, 2], [2, 1]]) == [1.0, 1.0]


@pytest.mark.parametrize(
    "text",
    [
        "1" * 1_000_000,
        "<answer>" + "1" * 1_000_000 + "</answer>",
        "<answer>" + "9" * 10_000 + "</answer>",
        "<answer>{1, " + "9" * 19 + "}</answer>",
        "<answer>" * 100_000,
        "</answer>" * 100_000,
        "<answer><answer>1</answer></answer>",
        "\\boxed{" + "{" * 100_000,
        "\\boxed{" + "{}" * 100_000,
        "\\boxed{" * 100_000,
        "<answer>1\x002</answer>",
        "<answer>\x00</answer>\x00",
        "<answer>\ud800</answer>",
        "<answer>" + "1 " * 500_000 + "</answer>",
        "<think>" * 100_000 + "<answer>1</answer>",
        "<think></think>" * 100_000 + "<think><answer>1</answer>",
    ],
    ids=short_id,
)
def test_adversarial_inputs_read_as_none(text):
    assert parse_answer(text) is None
    assert answer_reward([text], [[1]]) == f1_reward([text], [[1]]) == format_reward([text]) == [0.0]


def test_long_numbers():
    assert parse_answer("<answer>" + "0" * 5_000 + "42</answer>") == {42}
    assert parse_answer("<answer>-" + "9" * 18 + "</answer>") == {-(10**18 - 1)}


def test_scores():
    assert exact_match(frozenset({1, 2}), [2, 1, 1]) == 1.0
    assert exact_match(frozenset(), []) == 1.0
    assert exact_match(None, []) == 0.0
    assert set_f1(frozenset({1, 2}), [2, 3]) == 0.5
    assert set_f1(frozenset(), []) == 1.0
    assert set_f1(frozenset(), [1]) == 0.0
    assert set_f1(None, [1]) == 0.0


def test_format_reward():
    good = ["<answer>{1}</answer>", "<think>r is 2</think>\nso <answer>r = 1</answer>", "I think <answer>1</answer>."]
    bad = [
        "no tags",
        "<answer>1</answer><answer>1</answer>",
        "</answer>1<answer>",
        "<answer>3-5</answer>",
        "<think>a</think><think>b</think><answer>1</answer>",
        "<answer>1</answer><think>late</think>",
        "<think>never closed <answer>1</answer>",
        "\\boxed{1}",
    ]
    assert format_reward(good) == [1.0] * len(good)
    assert format_reward(bad) == [0.0] * len(bad)


def test_trl_call_signature():
    completions = [[{"role": "assistant", "content": "<answer>{3, 7}</answer>"}]] * 2
    columns = {
        "answer": [[3, 7], [3, 8]],
        "family": ["if_else"] * 2,
        "truth": [TRUTH] * 2,
        "trainer_state": None,
        "log_extra": print,
    }
    for name, func in REWARDS.items():
        rewards = func(prompts=["p", "p"], completions=completions, completion_ids=[[1], [1]], **columns)
        assert len(rewards) == 2, name
    assert REWARDS["answer"](completions=completions, **columns) == [1.0, 0.0]


@pytest.mark.parametrize("func", list(REWARDS.values()))
def test_rewards_pickle(func):
    assert pickle.loads(pickle.dumps(func)) is func


def test_doctests():
    assert doctest.testmod(cftrain.rewards).failed == 0


# Hypothesis: renderings of a set that the rules promise to read back.
ints = st.integers(-(10**18) + 1, 10**18 - 1)
braces = st.sampled_from([("", ""), ("{", "}"), ("[", "]"), ("(", ")"), ("\\{", "\\}"), ("$\\{", "\\}$")])
separators = st.sampled_from([",", ", ", ";", " ; ", " ", "\n", " or ", " and ", ", and "])
prefixes = st.sampled_from(["", "r = ", "Answer: ", "**Answer:** ", "The answer is ", "f(5, r) = ", "x ∈ "])
wrappers = st.sampled_from(["<answer>{}</answer>", "<think>{{9}}</think>\n<answer>{}</answer>.", "\\boxed{{{}}}"])


@given(
    st.lists(ints, min_size=1, max_size=40),
    braces,
    separators,
    prefixes,
    wrappers,
    st.text(max_size=50),
    st.booleans(),
)
def test_any_rendering_is_recovered(values, brace, separator, prefix, wrapper, reasoning, chat):
    body = prefix + brace[0] + separator.join(map(str, values)) + brace[1]
    text = reasoning.replace("<", "").replace("\\", "") + " " + wrapper.format(body)
    completion = [{"role": "assistant", "content": text}] if chat else text
    assert parse_answer(completion_text(completion)) == frozenset(values)
    assert answer_reward([completion], [sorted(set(values))]) == [1.0]


nasty = st.lists(
    st.sampled_from(["<answer>", "</answer>", "<think>", "</think>", "\\boxed{", "{", "}", "-", "1", "9" * 30, " or "])
    | st.text(max_size=5),
    max_size=30,
).map("".join)


@given(st.text() | nasty, st.lists(ints, max_size=5))
def test_never_raises(text, gold):
    parsed = parse_answer(text)
    assert parsed is None or all(isinstance(v, int) for v in parsed)
    for func in REWARDS.values():
        assert 0.0 <= func([text], answer=[gold], truth=[TRUTH])[0] <= 1.0


@given(st.none() | st.frozensets(ints, max_size=8), st.lists(st.integers(-5, 5), max_size=8))
def test_f1_bounds(pred, gold):
    f1 = set_f1(pred, gold)
    assert 0.0 <= f1 <= 1.0
    assert (exact_match(pred, gold) == 1.0) == (f1 == 1.0)
