"""Generator v3 of if_else / if_else_long: a pool of structures compiled once, tables that run a program over its
whole hidden range in one call. What it must keep from the sandbox-per-program generator: every table equals the
sandbox on the program's text, `meta.structure` is the text's canonical structure, the model's liveness check
agrees with the sandbox's dead-branch probe, and train and test draw disjoint structures from one pool.
Run: pytest tests/test_if_else_pool.py"""

import ast
import random

import pytest

from cftrain import execution
from cftrain.execution import ExecutionError, UnsafeProgram, check_template, load_program, tabulated_template
from cftrain.problems import generate, get_family, if_else
from cftrain.problems.base import dead_branch
from cftrain.problems.truth import latent_space, solve
from cftrain.structure import structure_of

LONG = ("if_else", "if_else_long")


@pytest.mark.parametrize("name", LONG)
def test_tables_equal_the_sandbox_on_every_input(name):
    family = get_family(name)
    cfg = family.config_cls()
    pool = family.pool(cfg)
    rng = random.Random(0)
    rs = range(cfg.r_min, cfg.r_max + 1)
    checked = 0
    for skeleton in pool.skeletons[:48]:
        values = next((v for v in (if_else._draw(rng, cfg, skeleton, pool) for _ in range(8)) if v), None)
        if values is None:
            continue
        table = tabulated_template(skeleton.tree, "f", len(values), "r")(*values)
        program = load_program(if_else._scenario(skeleton, values, cfg, 0, 1, 2).program)
        for x in range(cfg.x_min, cfg.x_max + 1):
            assert table(x, rs) == [program(x=x, r=r) for r in rs], program.source
        checked += 1
    assert checked >= 24


@pytest.mark.parametrize("name", LONG)
def test_records_carry_their_texts_structure_and_reverify(name):
    family = get_family(name)
    cfg = family.config_cls()
    xs = [{"x": x} for x in range(cfg.x_min, cfg.x_max + 1)]
    for r in generate(family, "all", 80, seed=21):
        assert r["meta"]["structure"] == structure_of(ast.parse(r["program"])) == load_program(r["program"]).structure
        assert solve(r) == r["answer"]
        if r["variant"] == "counterfactual":  # the model's liveness check agrees with the sandbox's probe
            assert not dead_branch(r["program"], r["entry"], xs, latent_space(r["latent_domain"])), r["program"]


def test_pool_holds_distinct_structures_and_items_draw_from_it():
    family = get_family("if_else")
    cfg = family.make_config(structures=40)
    pool = family.pool(cfg)
    structures = [s.structure for s in pool.skeletons]
    assert len(structures) == len(set(structures)) == 40
    assert sorted(pool.split["train"] + pool.split["test"]) == pool.split["any"] == list(range(40))
    seen = {r["meta"]["structure"] for r in generate(family, "counterfactual", 300, seed=1, cfg=cfg)}
    assert seen <= set(structures) and len(seen) >= 30  # constants are drawn per item, structures repeat
    # The split knob picks from the same pool: train and test items never share a structure.
    train = {
        r["meta"]["structure"] for r in generate(family, "counterfactual", 100, cfg=family.make_config(split="train"))
    }
    test = {
        r["meta"]["structure"] for r in generate(family, "counterfactual", 100, cfg=family.make_config(split="test"))
    }
    assert train and test and not train & test
    # Programs are new per item even where structures repeat.
    programs = [r["program"] for r in generate(family, "counterfactual", 300, seed=1, cfg=cfg)]
    assert len(set(programs)) >= 290


def test_a_split_with_no_structure_names_the_knob():
    family = get_family("if_else")
    pool = family.pool(family.make_config(structures=1))
    empty = "test" if not pool.split["test"] else "train"
    with pytest.raises(ValueError, match="raise the structures knob"):
        list(generate(family, "counterfactual", 1, cfg=family.make_config(structures=1, split=empty)))


def test_knobs_that_could_reach_the_magnitude_cap_are_refused():
    family = get_family("if_else")
    for knob in ("x_max", "r_max", "m_max", "coef_max"):
        with pytest.raises(ValueError, match=f"{knob} must be within"):
            family.make_config(**{knob: 10_000})


def test_tabulated_templates_refuse_what_one_pass_cannot_run():
    loop = "def f(x, r):\n    while x < #0:\n        x = x + 1\n    return x + r"
    early = "def f(x, r):\n    if x < #0:\n        return r\n    return x"
    no_latent = "def f(x, y):\n    return x + y"
    # The statements run once per r in one call: a reassigned input would carry over from one r to the next.
    reassigned = "def f(x, r):\n    if r < #0:\n        x = x + r\n    return x"
    for key in (loop, early, no_latent, reassigned):
        with pytest.raises(ValueError, match="loop-free"):
            tabulated_template(check_template(key, "f"), "f", 1, "r")
    with pytest.raises(UnsafeProgram):
        check_template("def f(x, r):\n    return x.real + #0", "f")
    with pytest.raises(UnsafeProgram):  # a slot is read like a constant: it cannot be assigned
        check_template("def f(x, r):\n    __k0 = x\n    return r", "f")
    # The return check of the sandbox holds: a bool or an out-of-range value is an error, not an answer.
    table = tabulated_template(check_template("def f(x, r):\n    return x < r + #0", "f"), "f", 1, "r")(0)
    with pytest.raises(ExecutionError):
        table(1, [1, 2])
    big = tabulated_template(check_template("def f(x, r):\n    return x * #0", "f"), "f", 1, "r")(10**12)
    with pytest.raises(ExecutionError):
        big(2, [1])
    # Unchecked tables leave the check to the caller, who runs check_row on each row it uses.
    raw = tabulated_template(check_template("def f(x, r):\n    return x < r + #0", "f"), "f", 1, "r", checked=False)
    row = raw(0)(1, [1, 2])
    assert row == [False, True]
    with pytest.raises(ExecutionError):
        execution.check_row(row)
    assert execution.check_row([3, -4]) == [3, -4]


def test_clear_caches_empties_the_pools():
    family = get_family("if_else")
    family.pool(family.config_cls())
    assert if_else._POOLS
    execution.clear_caches()
    assert not if_else._POOLS and not if_else._BY_CONFIG
