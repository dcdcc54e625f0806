"""The canonical structure hash: one meaning under the documented rewrites, one hash.

Run: pytest tests/test_structure.py
"""

import ast
import doctest

import pytest

import cftrain.structure
from cftrain.problems import get_family
from cftrain.problems.base import structure_split
from cftrain.structure import normal_form, structure_of


def program(body: str, params: str = "x, r") -> str:
    return f"def f({params}):\n" + "\n".join("    " + line for line in body.strip("\n").splitlines())


def h(body: str, params: str = "x, r") -> str:
    return structure_of(ast.parse(program(body, params)))


SAME = [
    ("commutative", "return x + r * 9", "return r * 7 + x"),
    ("flattened", "return (x + r) + 3", "return x + (3 + r)"),
    ("product", "return x * 3 * r", "return r * (x * 5)"),
    ("augmented", "y = x\ny += r\nreturn y", "y = x\ny = y + r\nreturn y"),
    ("augmented-commuted", "y = x\ny *= r\nreturn y", "y = x\ny = r * y\nreturn y"),
    ("greater", "return 1 if x > 5 else 2", "return 1 if 5 < x else 2"),
    ("greater-equal", "return 1 if x >= 5 else 2", "return 1 if 5 <= x else 2"),
    ("less-or-equal", "if x < 3 or x == 3:\n    return r\nreturn x", "if x <= 3:\n    return r\nreturn x"),
    ("equal-sides", "if x == r:\n    return r\nreturn x", "if r == x:\n    return r\nreturn x"),
    ("renamed", "total = x * 2\nout = total + r\nreturn out", "a = x * 5\nb = r + a\nreturn b"),
    ("renamed-params", "return (x + 3) % 7", ("return (y + 11) % 5", "y, s")),
    ("dead-if", "if x < 3:\n    result = r + x\nelse:\n    result = x + r\nreturn result",
     "result = x + r\nreturn result"),
    ("dead-elif", "if x < 3:\n    y = r\nelif x < 6:\n    y = x\nelse:\n    y = x\nreturn y",
     "if x < 3:\n    y = r\nelse:\n    y = x\nreturn y"),
    ("dead-ifexp", "return x + r if x < 3 else r + x", "return r + x"),
    ("mirrored-if", "if x < 3:\n    y = r\nelse:\n    y = x\nreturn y",
     "if x >= 3:\n    y = x\nelse:\n    y = r\nreturn y"),
    ("not", "if not x < 3:\n    return r\nreturn x", "if x >= 3:\n    return r\nreturn x"),
    ("and-sorted", "if x < 3 and r == 2:\n    return r\nreturn x", "if 2 == r and 3 > x:\n    return r\nreturn x"),
    ("min-flattened", "return min(x, min(r, 3))", "return min(3, r, x)"),
    ("chain", "if 1 < x < 5:\n    return r\nreturn x", "if x < 5 and x > 1:\n    return r\nreturn x"),
    ("unreachable", "return x\nx = r", "return x"),
    ("pass", "if x < 3:\n    y = r\nelse:\n    pass\nreturn r", "if x < 3:\n    y = r\nreturn r"),
    ("range", "t = 0\nfor i in range(x):\n    t += i\nreturn t",
     "t = 0\nfor j in range(0, x):\n    t = j + t\nreturn t"),
]  # fmt: skip

DIFFERENT = [
    ("sub", "return x - r", "return r - x"),
    ("floordiv", "return x // r", "return r // x"),
    ("mod", "return x % r", "return r % x"),
    ("strict", "if x < 3:\n    return r\nreturn x", "if x <= 3:\n    return r\nreturn x"),
    ("which-param", "return (x + 3) % 7", "return (r + 3) % 7"),
    ("branches-swapped", "if x < 3:\n    y = r\nelse:\n    y = x\nreturn y",
     "if x < 3:\n    y = x\nelse:\n    y = r\nreturn y"),
    ("control-flow", "y = 0\nwhile y < x:\n    y += r\nreturn y", "y = 0\nif y < x:\n    y += r\nreturn y"),
    ("for-vs-while", "y = 0\nfor i in range(x):\n    y += r\nreturn y", "y = 0\nwhile y < x:\n    y += r\nreturn y"),
    ("or-other-constant", "if x < 3 or x == 5:\n    return r\nreturn x", "if x <= 3:\n    return r\nreturn x"),
    ("live-if", "if x < 3:\n    y = x + r\nelse:\n    y = x - r\nreturn y", "y = x + r\nreturn y"),
    ("different-variables", "a = x\nb = r\nreturn a - b", "a = x\nb = r\nreturn b - a"),
    ("value-and", "return x and r", "return r and x"),
]  # fmt: skip


def _pair(a, b):
    a = a if isinstance(a, tuple) else (a, "x, r")
    b = b if isinstance(b, tuple) else (b, "x, r")
    return h(*a), h(*b)


@pytest.mark.parametrize("a, b", [c[1:] for c in SAME], ids=[c[0] for c in SAME])
def test_same_meaning_hashes_equal(a, b):
    left, right = _pair(a, b)
    assert left == right


@pytest.mark.parametrize("a, b", [c[1:] for c in DIFFERENT], ids=[c[0] for c in DIFFERENT])
def test_different_meaning_hashes_differ(a, b):
    left, right = _pair(a, b)
    assert left != right


def test_pure_and_deterministic():
    tree = ast.parse(program("if x > 3:\n    y = r * 2 + x\nelse:\n    y = x\ny += 1\nreturn y % 7"))
    before = ast.dump(tree)
    assert structure_of(tree) == structure_of(tree)
    assert ast.dump(tree) == before, "the tree the sandbox compiles next must not change"
    assert len(structure_of(tree)) == 16 and int(structure_of(tree), 16) >= 0  # structure_split parses it


def test_normal_form_is_readable():
    assert normal_form(ast.parse(program("return r * 7 + x"))) == "block(return(+(*(c,p1),p0)))"


def test_renaming_invariant_on_generated_programs():
    """Renaming every local of generated programs (loops, several locals) never changes the hash."""
    import random

    for name in ("if_else_long", "while", "multi_r"):
        family = get_family(name)
        rng = random.Random(0)
        for _ in range(30):
            source = family.sample(rng, family.config_cls()).program
            tree = ast.parse(source)
            params = {a.arg for a in tree.body[0].args.args}
            local = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - params - {"min", "max", "abs"})
            renamed = ast.parse(source)
            mapping = {old: f"zz{i}" for i, old in enumerate(reversed(local))}
            for node in ast.walk(renamed):
                if isinstance(node, ast.Name) and node.id in mapping:
                    node.id = mapping[node.id]
            assert structure_of(renamed) == structure_of(tree), source


def test_split_buckets_by_meaning():
    """Two spellings of one meaning always land in the same split."""
    a, b = h("result = x + r * 9\nreturn result"), h("result = r * 2 + x\nreturn result")
    assert structure_split(a) == structure_split(b)


def test_doctests():
    assert doctest.testmod(cftrain.structure).failed == 0
