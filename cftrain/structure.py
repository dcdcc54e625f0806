"""The structure of a program: a canonical hash of its AST, so "held out" means new in meaning, not in spelling.

Train and test files never share a structure (see `cftrain.problems.base.structure_split`), and every overlap
check (build-data's manifest, `cftrain data-card --against`) compares these hashes.

What counts as the same structure. Two checked programs hash equal when their normal forms are equal; the
normal form is built from the AST by these rewrites, each one an identity on integers:

- Names and constants are abstracted. Parameters become p0, p1, ... by their position (so *which* input an
  expression uses still matters), other names v0, v1, ... by first appearance in the normal form, integer
  constants all become one symbol (`x + 3` and `x + 7` are one structure). The function's name is dropped.
- Commutative operands are sorted by a key that abstracts names and constants (so the order does not depend on
  spelling or renaming): `+` and `*` chains are flattened and sorted (`x + r * 9` = `r * 7 + x`), as are the
  arguments of `min`/`max` (nested calls flattened) and the two sides of `==`/`!=`.
- `x += e` is `x = x + e` (any operator).
- Comparisons: `a > b` is `b < a`, `a >= b` is `b <= a`, a chain `a < b < c` is `a < b and b < c`,
  `not (a < b)` is `b <= a` (and `not ==` is `!=`), `a < b or a == b` is `a <= b` (same a and b, constants
  compared by value before they are abstracted).
- In a condition (the test of `if`, `while` or a conditional expression, and under `not`, `and`, `or` there)
  `and`/`or` operands are flattened, deduplicated and sorted: only truth matters there. Elsewhere `a and b`
  returns an operand, so its order is kept.
- `if t: A else: B` and `if not t: B else: A` (with `not t` normalised as above) are one form: the smaller of
  the two is kept; likewise for `A if t else B`.
- Dead code: an `if` whose two branches are equal after these rewrites (constants compared by value) is its
  branch (`if x < 3: y = r + x` `else: y = x + r` is `y = x + r`), a conditional expression likewise; `pass` is
  dropped, and so are statements after a `return` in the same block. This runs bottom-up, so a dead `elif`
  collapses into its `else`.
- `range(n)` is `range(0, n)`; a unary `+` is dropped; `-` applied to a literal is a (negative) constant.

What does not count. This is a syntactic normal form, not program equivalence (which is undecidable):
programs equal as functions can still hash apart, e.g. `x < 4` vs `x <= 3` (constants are abstracted, so
`x < c` and `x <= c` stay distinct on purpose), `x * 2` vs `x + x`, `x - r` vs `-(r - x)`, distributivity,
branches unreachable because of earlier conditions, a loop that never runs, or equal branches spelled with
different variables. And two programs can hash equal while differing in ways the rewrites treat as
irrelevant: only their constants, an error that a dead condition or a reordered short-circuit would have
raised (a condition like `x == 0 or 10 // x > 1` is treated as pure), or the step count of a dropped
condition. Local names first seen inside two operands that tie under the abstract key are numbered in
spelling order; generated programs never hit this (their locals are assigned before use).
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Callable, Sequence

# `and`/`or` are the condition forms (only truth matters); `and.` and `or.` keep their order (they return an operand).
_COMMUTATIVE = frozenset({"+", "*", "min", "max", "==", "!=", "and", "or"})
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%"}
_CMPOPS = {ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!=", ast.Gt: ">", ast.GtE: ">="}
# `a > b` is written `b < a`, `a >= b` is `b <= a`: (canonical operator, whether the sides swap).
_FLIP = {">": ("<", True), ">=": ("<=", True)}


class _Node:
    """One node of the normal form: `kind` plus children; leaves (`name`, `const`) carry a value instead.

    `abstract` (names and constants abstracted) orders commutative operands; `raw` (names and values kept) tells
    equal subtrees apart, for dead-branch removal, `<`/`==` merging and ties.
    """

    __slots__ = ("kind", "kids", "value", "abstract", "raw")

    def __init__(self, kind: str, kids: Sequence[_Node] = (), value: object = None, abstract: str = "", raw: str = ""):
        kids = tuple(kids)
        self.kind, self.kids, self.value = kind, kids, value
        # List comprehensions, not generators: join is the hot spot of hashing a program.
        self.abstract = abstract or f"{kind}({','.join([k.abstract for k in kids])})"
        self.raw = raw or f"{kind}({','.join([k.raw for k in kids])})"

    def key(self) -> tuple[str, str]:
        return self.abstract, self.raw


def _sorted(kind: str, kids: Sequence[_Node]) -> _Node:
    return _Node(kind, sorted(kids, key=_Node.key))


def _flatten(kind: str, kids: Sequence[_Node]) -> list[_Node]:
    return [grand for kid in kids for grand in (kid.kids if kid.kind == kind else (kid,))]


def _compare(op: str, left: _Node, right: _Node) -> _Node:
    op, swap = _FLIP.get(op, (op, False))
    if swap:
        left, right = right, left
    return _sorted(op, (left, right)) if op in _COMMUTATIVE else _Node(op, (left, right))


def _negate(test: _Node) -> _Node:
    """`not test` in normal form; an involution on normal forms (negating twice gives `test` back)."""
    if test.kind == "<":
        return _Node("<=", test.kids[::-1])
    if test.kind == "<=":
        return _Node("<", test.kids[::-1])
    if test.kind in ("==", "!="):
        return _Node("!=" if test.kind == "==" else "==", test.kids)
    if test.kind == "not":
        return test.kids[0]
    return _Node("not", (test,))


def _boolop(kind: str, kids: Sequence[_Node]) -> _Node:
    """`and`/`or` in a condition: flattened, deduplicated, `a < b or a == b` merged to `a <= b`, sorted."""
    unique = {kid.raw: kid for kid in _flatten(kind, kids)}
    if kind == "or":
        for eq in [k for k in unique.values() if k.kind == "=="]:
            sides = sorted(k.raw for k in eq.kids)
            less = next((k for k in unique.values() if k.kind == "<" and sorted(s.raw for s in k.kids) == sides), None)
            if less is not None and eq.raw in unique:
                del unique[eq.raw], unique[less.raw]
                merged = _Node("<=", less.kids)
                unique[merged.raw] = merged
    kids = list(unique.values())
    return kids[0] if len(kids) == 1 else _sorted(kind, kids)


def _choose(kind: str, test: _Node, then: _Node, other: _Node) -> _Node:
    """`if test then else other` or its mirror `if not test other else then`, whichever is smaller; a dead
    condition (both branches equal) is its branch."""
    if then.raw == other.raw:
        return then
    plain = _Node(kind, (test, then, other))
    mirror = _Node(kind, (_negate(test), other, then))
    return min(plain, mirror, key=_Node.key)


class _Canon:
    def __init__(self, params: Sequence[str], slots: bool = False) -> None:
        self.params = {name: i for i, name in enumerate(params)}
        self.slots = slots

    def name(self, name: str) -> _Node:
        if self.slots and name.startswith("__k"):  # a template's constant slot: a constant unequal to any other
            return _Node("const", value=name, abstract="c", raw=name)
        abstract = f"p{self.params[name]}" if name in self.params else "v"
        return _Node("name", value=name, abstract=abstract, raw=f"n:{name}")

    def expr(self, node: ast.expr, cond: bool = False) -> _Node:
        """The normal form of an expression; `cond`: only its truth matters (a test, or under not/and/or there)."""
        if isinstance(node, ast.Constant):
            return _Node("const", value=node.value, abstract="c", raw=repr(node.value))
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.UnaryOp):
            operand = self.expr(node.operand, isinstance(node.op, ast.Not))  # `not e` reads only the truth of e
            if isinstance(node.op, ast.UAdd):
                return operand
            if isinstance(node.op, ast.Not):
                return _negate(operand)
            if operand.kind == "const" and type(operand.value) is int:
                return _Node("const", value=-operand.value, abstract="c", raw=repr(-operand.value))
            return _Node("neg", (operand,))
        if isinstance(node, ast.BinOp):
            return self.binop(_BINOPS[type(node.op)], self.expr(node.left), self.expr(node.right))
        if isinstance(node, ast.BoolOp):
            kind = "and" if isinstance(node.op, ast.And) else "or"
            kids = [self.expr(value, cond) for value in node.values]
            return _boolop(kind, kids) if cond else _Node(f"{kind}.", kids)
        if isinstance(node, ast.Compare):
            sides = [self.expr(e) for e in (node.left, *node.comparators)]
            pairs = [_compare(_CMPOPS[type(op)], a, b) for op, a, b in zip(node.ops, sides, sides[1:])]
            if len(pairs) == 1:
                return pairs[0]
            return _boolop("and", pairs)  # the pairs are bools, so their order never matters
        if isinstance(node, ast.IfExp):
            return _choose("ifexp", self.expr(node.test, True), self.expr(node.body), self.expr(node.orelse))
        if isinstance(node, ast.Call):
            func = node.func.id  # the sandbox allows only abs, min, max, range, called by name
            args = [self.expr(a) for a in node.args]
            if func in ("min", "max"):
                return _sorted(func, _flatten(func, args))
            return _Node(func, args)
        raise TypeError(f"unexpected node {type(node).__name__}")  # the sandbox's allow-list keeps this unreachable

    def binop(self, op: str, left: _Node, right: _Node) -> _Node:
        if op in _COMMUTATIVE:
            return _sorted(op, _flatten(op, (left, right)))
        return _Node(op, (left, right))

    def block(self, stmts: list[ast.stmt]) -> _Node:
        out: list[_Node] = []
        for stmt in stmts:
            node = self.stmt(stmt)
            out += node.kids if node.kind == "block" else [node] if node.kind != "pass" else []
            if out and out[-1].kind == "return":
                break  # the rest of the block never runs
        return _Node("block", out)

    def stmt(self, node: ast.stmt) -> _Node:
        if isinstance(node, ast.Assign):
            return _Node("=", (self.expr(node.value), self.name(node.targets[0].id)))
        if isinstance(node, ast.AugAssign):
            value = self.binop(_BINOPS[type(node.op)], self.name(node.target.id), self.expr(node.value))
            return _Node("=", (value, self.name(node.target.id)))
        if isinstance(node, ast.Return):
            return _Node("return", [self.expr(node.value)] if node.value is not None else [])
        if isinstance(node, ast.If):
            test, then, other = self.expr(node.test, True), self.block(node.body), self.block(node.orelse)
            chosen = _choose("if", test, then, other)
            return _Node("pass") if chosen.kind == "block" and not chosen.kids else chosen
        if isinstance(node, ast.While):
            return _Node("while", (self.expr(node.test, True), self.block(node.body), self.block(node.orelse)))
        if isinstance(node, ast.For):
            args = [self.expr(a) for a in node.iter.args]
            if len(args) == 1:
                args.insert(0, _Node("const", value=0, abstract="c", raw="0"))
            loop = _Node("range", args)
            return _Node("for", (self.name(node.target.id), loop, self.block(node.body), self.block(node.orelse)))
        if isinstance(node, ast.Expr):
            return _Node("expr", (self.expr(node.value),))
        if isinstance(node, ast.Pass):
            return _Node("pass")
        raise TypeError(f"unexpected statement {type(node).__name__}")


def _render(node: _Node, label: Callable[[str], str]) -> str:
    """The final text: names labelled, constants abstracted, commutative operands sorted by that text."""
    if node.kind == "name":
        return label(node.value)
    if node.kind == "const":
        return "c"
    kids = [_render(k, label) for k in node.kids]
    if node.kind in _COMMUTATIVE:
        kids.sort()
    return f"{node.kind}({','.join(kids)})"


def _names_in_order(node: _Node, params: set[str], seen: dict[str, str]) -> dict[str, str]:
    stack = [node]
    while stack:
        node = stack.pop()
        if node.kind == "name" and node.value not in params:
            seen.setdefault(node.value, f"v{len(seen)}")
        stack.extend(reversed(node.kids))
    return seen


def normal_form(tree: ast.Module, slots: bool = False) -> str:
    """The normal form of a checked program's tree as text (see the module docstring). `slots`: the tree is a
    template (execution.check_template) whose names `__k0`, `__k1`, ... are constants, each unequal to the others:
    its normal form is that of its programs whose constants the rewrites never find equal.

    >>> src = "def f(x, r):\\n    if x > 3:\\n        y = r * 7 + x\\n    else:\\n        y = x + 7 * r\\n    return y"
    >>> normal_form(ast.parse(src))
    'block(=(+(*(c,p1),p0),v0),return(v0))'
    """
    fn = tree.body[0]
    params = [a.arg for a in fn.args.args]
    body = _Canon(params, slots).block(fn.body)
    positions = {name: f"p{i}" for i, name in enumerate(params)}
    locals_ = _names_in_order(body, set(positions), {})
    return _render(body, lambda name: positions.get(name) or locals_[name])


def structure_of(tree: ast.Module) -> str:
    """A 16-hex-digit hash of the normal form of the checked program `tree` (pure: the tree is not changed).

    >>> same = [structure_of(ast.parse(f"def f(x, r):\\n    return {e}")) for e in ("x + r * 9", "7 * r + x")]
    >>> same[0] == same[1]
    True
    """
    return digest(normal_form(tree))


def digest(form: str) -> str:
    """The structure hash of a normal form (what structure_of returns for a tree of that form)."""
    return hashlib.sha1(form.encode()).hexdigest()[:16]
