"""The sandbox: each test attacks one property. Run: pytest tests/test_execution.py"""

import pytest

from cftrain.execution import (
    MAX_ABS,
    MAX_DEPTH,
    MAX_SOURCE_CHARS,
    ExecutionError,
    UnsafeProgram,
    check_source,
    load_program,
    structure_hash,
)
from cftrain.problems.truth import consistent_latents, solve

DESIGN_EXAMPLE = """def f(x, r):
    if x < 3 or x >= 9:
        result = x + r if r >= 4 else r + x
    elif r >= 4:
        result = x * 8 * r
    else:
        result = r + x
    return (result * 7 - r) % 18"""


def _record(variant, **extra):
    return {
        "program": DESIGN_EXAMPLE,
        "entry": "f",
        "variant": variant,
        "latent_domain": {"r": [1, 10]},
        "observation": {"inputs": {"x": 0}, "output": 12},
        "intervention": {"x": 5},
        "revealed": {},
        **extra,
    }


def test_design_md_worked_example():
    assert solve(_record("abduction")) == [2, 5, 8]
    assert solve(_record("counterfactual")) == [0, 9, 11]
    assert solve(_record("interventional", revealed={"r": 2})) == [11]
    # Ignoring the observation gives a different set: abduction is necessary here.
    program = load_program(DESIGN_EXAMPLE)
    assert sorted({program(x=5, r=r) for r in range(1, 11)}) == [0, 5, 9, 11, 17]


def test_paper_example_without_abduction_need():
    program = load_program(DESIGN_EXAMPLE)
    consistent = consistent_latents(program, {"r": [1, 10]}, {"x": 5}, 0)
    assert sorted({program(x=2, r=c["r"]) for c in consistent}) == sorted({program(x=2, r=r) for r in range(1, 11)})


@pytest.mark.parametrize(
    "source",
    [
        "def f(x, r):\n    import os\n    return 1",
        "def f(x, r):\n    return open('x')",
        "def f(x, r):\n    return x.real",
        "def f(x, r):\n    return [x][0]",
        "def f(x, r):\n    return x ** r",
        "def f(x, r):\n    return 'a'",
        "def f(x, r):\n    return 1.5",
        "def f(x, r):\n    return __import__('os')",
        "def f(x, r):\n    return (lambda: 1)()",
        "def f(x, r):\n    return eval('1')",
        "def f(x, r):\n    for i in [1, 2]:\n        x = i\n    return x",
        "def f(x, r):\n    for i in x.y():\n        x = i\n    return x",
        "def f(x, r):\n    _a = 1\n    return _a",
        "def f(x, r):\n    a = b = 1\n    return a",
        "def g(x, r):\n    return 1",
        "def f(x, r):\n    return 1\ndef h():\n    return 2",
        "x = 1",
        "def f(x, r:",
    ],
)
def test_allow_list_rejects(source):
    with pytest.raises(UnsafeProgram):
        load_program(source)


def test_infinite_loop_hits_step_cap():
    program = load_program("def f(x, r):\n    while x >= 0:\n        x = x + 1\n    return x")
    with pytest.raises(ExecutionError, match="step"):
        program(x=0, r=1)


def test_huge_range_is_capped():
    program = load_program("def f(x, r):\n    t = 0\n    for i in range(x):\n        t += 1\n    return t")
    assert program(x=10, r=0) == 10
    with pytest.raises(ExecutionError, match="range"):
        program(x=10**9, r=0)


def test_magnitude_cap_in_loops_and_returns():
    doubling = load_program("def f(x, r):\n    for i in range(200):\n        x = x * 2\n    return x")
    with pytest.raises(ExecutionError, match="magnitude"):
        doubling(x=1, r=0)
    big = load_program("def f(x, r):\n    return x * x * x")
    with pytest.raises(ExecutionError, match="magnitude"):
        big(x=MAX_ABS, r=0)


def test_magnitude_cap_on_straight_line_assignments():
    square = load_program("def f(x, r):\n    y = x * x\n    return y % 7")
    assert square(x=10**6, r=0) == 10**12 % 7
    with pytest.raises(ExecutionError, match="magnitude"):
        square(x=10**6 + 1, r=0)


def test_source_limits_are_exact():
    head = "def f(x, r):\n    return x  #"
    assert load_program(head + "a" * (MAX_SOURCE_CHARS - len(head)))(x=1, r=0) == 1
    with pytest.raises(UnsafeProgram, match="characters"):
        load_program(head + "a" * (MAX_SOURCE_CHARS - len(head) + 1))
    # Return (depth 1) > k nested unary minus > Name > Load: depth k + 3.
    assert abs(load_program("def f(x, r):\n    return " + "-" * (MAX_DEPTH - 3) + "x")(x=1, r=0)) == 1
    with pytest.raises(UnsafeProgram, match="depth"):
        load_program("def f(x, r):\n    return " + "-" * (MAX_DEPTH - 2) + "x")


@pytest.mark.parametrize(
    "source, error",
    [
        ("def f(x, r):\n    return x // r", "ZeroDivisionError"),
        ("def f(x, r):\n    return x < r", "bool"),
        ("def f(x, r):\n    if x > 0:\n        y = 1\n    return y", "NameError|UnboundLocalError"),
    ],
)
def test_runtime_errors_become_execution_errors(source, error):
    with pytest.raises(ExecutionError, match=error):
        load_program(source)(x=0, r=0)


def test_wrong_arguments_are_execution_errors():
    with pytest.raises(ExecutionError):
        load_program("def f(x, r):\n    return x")(x=1)


def test_no_builtins_reachable():
    tree = check_source("def f(x, r):\n    return min(x, r) + max(x, r) + abs(x)", "f")
    assert tree.body[0].name == "f"
    assert load_program("def f(x, r):\n    return min(x, r) + max(x, r) + abs(-x)")(x=2, r=5) == 9


def test_structure_hash_abstracts_constants_only():
    a = structure_hash("def f(x, r):\n    return (x + 3) % 7")
    assert a == structure_hash("def f(x, r):\n    return (x + 11) % 5")
    assert a != structure_hash("def f(x, r):\n    return (x - 3) % 7")
    assert a == structure_hash("def f(y, s):\n    return (y + 3) % 7"), "names are abstracted"
    assert a != structure_hash("def f(x, r):\n    return (r + 3) % 7"), "which parameter is used still matters"


def test_unknown_variant():
    with pytest.raises(ValueError, match="variant"):
        solve(_record("nonsense"))
