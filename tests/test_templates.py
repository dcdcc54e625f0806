"""Program templates (cftrain.execution): a program that equals a checked one up to its int literals reuses its
compiled code. Every case here compares the template path with the full path, which must agree exactly.
Run: pytest tests/test_templates.py
"""

import ast
import random
import re

import pytest
from test_sandbox import HOSTILE, _attack

from cftrain import execution
from cftrain.execution import MAX_ABS, ExecutionError, UnsafeProgram, load_program
from cftrain.problems import FAMILIES
from cftrain.problems.truth import latent_space
from cftrain.structure import structure_of


def _via_template(source: str, entry: str = "f"):
    """Load `source` so that the third load comes from its template (the first two build it)."""
    execution.clear_caches()
    for _ in range(2):
        try:
            load_program(source, entry)
        except UnsafeProgram:
            pass
        load_program.cache_clear()  # keep the templates, forget the programs
    template = execution._template(source)
    assert template is None or execution._TEMPLATES.get((template[0], entry)), "no template was built"
    return load_program(source, entry)


def _outputs(program, inputs, latents) -> list:
    out = []
    for values in inputs:
        for latent in latents:
            try:
                out.append(program.table(values, [latent])[0])
            except ExecutionError as e:
                out.append(str(e))
    return out


@pytest.mark.parametrize("name, source, expected", HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_programs_behave_the_same_through_a_template(name, source, expected):
    execution.clear_caches()
    for _ in range(3):
        assert _attack(source) == expected, name
        load_program.cache_clear()


@pytest.mark.parametrize(
    "source",
    [
        "def f(x, r):\n    return x + 1e3",
        "def f(x, r):\n    return x + 0x10",
        "def f(x, r):\n    return x + 1_000",
        "def f(x, r):\n    return x + 1.5",
        "def f(x, r):\n    return 5if x else 6",
        "def f(x, r):\n    return x + 12  # 34",
        "def f(x, r):\n    return len('12')",
        "def f(x, r):\n    return x + \\\n 12",
        "def f(x, r):\n    y\u00b73 = 2\n    return x",
    ],
)
def test_unusual_literals_take_the_full_path(source):
    assert execution._template(source) is None


def test_names_with_digits_are_not_literals():
    key, values = execution._template("def f(x1, r):\n    y2 = x1 * 23 + r - 23 + 0 + 1\n    return y2 % 45")
    assert key == "def f(x1, r):\n    y2 = x1 * #0 + r - #0 + 0 + 1\n    return y2 % #1"
    assert values == [23, 45]


def test_a_template_hit_still_checks_each_literal():
    _via_template("def f(x, r):\n    return x + 5")
    with pytest.raises(UnsafeProgram):
        load_program(f"def f(x, r):\n    return x + {MAX_ABS + 1}")
    assert load_program(f"def f(x, r):\n    return x + {MAX_ABS}")(x=0, r=0) == MAX_ABS


def test_literal_dependent_failures_are_the_same():
    shape = "def f(x, r):\n    y = x * {a}\n    return y // (r - {b})"
    _via_template(shape.format(a=7, b=2))
    for a, b in [(7, 3), (10**11, 5), (9, 4)]:
        source = shape.format(a=a, b=b)
        hit = load_program(source)
        full = execution._compile(source, "f")[0]
        grid = [{"x": x} for x in (0, 5, 10**6)]
        latents = [{"r": r} for r in range(0, 7)]
        assert _outputs(hit, grid, latents) == _outputs(full, grid, latents)


def _sibling(source: str, shift: int) -> str:
    """The same program with every literal >= 2 moved by `shift` (equal literals stay equal)."""
    return re.sub(r"(?<![\w.])[0-9]+(?![\w.])", lambda m: str(int(m[0]) + shift) if int(m[0]) > 1 else m[0], source)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_generated_programs_agree_through_a_template(family):
    fam = FAMILIES[family]
    cfg = fam.config_cls()
    rng = random.Random(7)
    for _ in range(15):
        scenario = fam.sample(rng, cfg)
        _via_template(scenario.program, scenario.entry)
        for shift in (0, 1, 3):
            source = _sibling(scenario.program, shift)
            hit = load_program(source, scenario.entry)
            full = execution._compile(source, scenario.entry)[0]
            assert hit.params == full.params
            assert hit.structure == full.structure == structure_of(ast.parse(source))
            space = latent_space(scenario.latent_domain)
            inputs = [scenario.inputs, {**scenario.inputs, **scenario.intervention}]
            assert _outputs(hit, inputs, space) == _outputs(full, inputs, space)


# Parsing line by line (execution._parse_lines): where it gives a tree, it is ast.parse's, up to positions.
_LINE_CASES = [
    "def f(x, r):\n    if x < 3:\n        y = r + x\n    elif x < 5:\n        y = 2\n    else:\n        y = 3\n    return y",
    "def f(x, r):\n    else:\n        return 1\n    return 2",  # else without if
    "def f(x, r):\n    if x:\n        y = 1\n    else:\n        y = 2\n    elif r:\n        y = 3\n    return y",
    "def f(x, r):\n    if x:\n        y = 1\n    y = 0\n    else:\n        y = 2\n    return y",  # else after a statement
    "def f(x, r):\n    if x: y = 1\n    return y",  # one-line if: not the plain form
    "def f(x, r):\n    y = (x +\n        r)\n    return y",  # a bracket across lines
    "def f(x, r):\n\tif x:\n\t\treturn 1\n\treturn 2",  # tabs
    "def f(x, r):\n    y = min(x, r)\n    y = min(x, r)\n    return y",  # a repeated statement with a call
    "def f(x, r):\n    if x:\n        if r:\n            y = 1\n        else:\n            y = 2\n    else:\n        y = 3\n    return y",
    "def f(x, r):\n    if x:\n        if r:\n            y = 1\n    elif r:\n        y = 2\n    return 0",
    "def f(x, r):\n    if x:\n        if r:\n            y = 1\n        elif x:\n            y = 2\n    else:\n        y = 4\n    return 0",
    "def f(x, r):\n    while x:\n        x = x - 1\n    return x",  # while: ast.parse
    "def f(x, r):\n    if x:\n    return 1",  # a header without a body
    "def f(x, r):\n    if x:\n        return 1\n      return 2",  # odd indentation
    "def f(x, r):\n    return x\n",  # a trailing newline
    "def f(x, r):\n    x = 1; return x",
    "def f(x, r):\n    if (x := 3):\n        return x\n    return r",
    "def f():\n    return 1",
    "def f(x, r):\n    if x == 1:\n        return 1\n    elif x == 2:\n        return 2\n    elif x == 3:\n        return 3\n    return 0",
]


def _same_tree(source: str) -> bool:
    fast = execution._parse_lines(source)
    if fast is None:
        return True
    dump = ast.dump(fast, include_attributes=False)
    return dump == ast.dump(ast.parse(source), include_attributes=False) and bool(compile(fast, "<t>", "exec"))


@pytest.mark.parametrize("source", _LINE_CASES)
def test_line_parse_is_ast_parse(source):
    execution.clear_caches()
    assert _same_tree(source) and _same_tree(source)  # cold, then from the line cache


def _mutant(lines: list[str], i: int, how: int) -> str:
    """Line i dropped, repeated, indented or dedented."""
    m = list(lines)
    if how == 0:
        del m[i]
    elif how == 1:
        m.insert(i, m[i])
    else:
        m[i] = "    " + m[i] if how == 2 else m[i][4:]
    return "\n".join(m)


def test_line_parse_on_generated_programs_and_mutants():
    rng = random.Random(3)
    taken = 0
    for family in FAMILIES.values():
        cfg = family.config_cls()
        for _ in range(60):
            lines = family.sample(rng, cfg).program.split("\n")
            mutants = ["\n".join(lines)]
            for _ in range(4):
                mutants.append(_mutant(lines, rng.randrange(1, len(lines)), rng.randrange(4)))
            for source in mutants:
                assert _same_tree(source), source
                taken += execution._parse_lines(source) is not None
    assert taken >= 180  # the plain families' programs take the line path


def test_line_parse_repeated_statement_counts_its_calls_once_each():
    source = "def f(x, r):\n    y = min(x, r)\n    y = min(x, r)\n    return y"
    tree = execution._parse_lines(source)
    first, second = tree.body[0].body[:2]
    assert first is not second
    _, calls, _ = execution._check(source, "f")
    assert sorted(calls.values()) == [1, 1]
