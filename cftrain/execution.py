"""Compile and run generated programs safely, and compute gold answers by execution.

What is protected: a program runs only if its source passes an AST allow-list (integer constants, names,
arithmetic without `**`, comparisons, boolean ops, if/while/for-over-range, assignments, return, and calls
to `abs`, `min`, `max`, `range` only). Every loop is instrumented with a step counter, `range` is capped,
and integers are capped in magnitude, so a program cannot loop forever or build huge numbers. Builtins are
empty: no imports, attributes, subscripts, strings, lambdas or comprehensions can appear.

What is not protected: this is not an OS sandbox. It runs trusted *generated* code in-process; it is not
meant for arbitrary user code (no memory or wall-clock limit beyond the step and magnitude caps).
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

MAX_STEPS = 10_000
MAX_ABS = 10**12

_ALLOWED_NODES = (
    ast.Module, ast.FunctionDef, ast.arguments, ast.arg, ast.Return, ast.Assign, ast.AugAssign,
    ast.If, ast.While, ast.For, ast.Expr, ast.Pass, ast.Name, ast.Load, ast.Store, ast.Constant,
    ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Call,
    ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod, ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
)  # fmt: skip
_ALLOWED_CALLS = frozenset({"abs", "min", "max", "range"})


class UnsafeProgram(ValueError):
    """The source uses something outside the allow-list."""


class ExecutionError(RuntimeError):
    """A program failed at run time: step cap, magnitude cap, division by zero, or a non-int result."""


def _limit(what: str) -> None:
    raise ExecutionError(f"{what} limit exceeded")


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_STEPS:
        _limit("range")
    return r


def check_source(source: str, entry: str) -> ast.Module:
    """Parse `source` and enforce the allow-list; return the tree. Raises UnsafeProgram."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise UnsafeProgram(f"syntax error: {e}") from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef) or tree.body[0].name != entry:
        raise UnsafeProgram(f"source must be exactly one function named {entry!r}")
    fn = tree.body[0]
    if fn.decorator_list or fn.returns or fn.args.vararg or fn.args.kwarg or fn.args.defaults:
        raise UnsafeProgram("decorators, annotations, defaults and *args are not allowed")
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise UnsafeProgram(f"{type(node).__name__} is not allowed")
        if isinstance(node, ast.Constant) and type(node.value) is not int:
            raise UnsafeProgram(f"constant {node.value!r} is not an int")
        if isinstance(node, ast.Name | ast.arg):
            name = node.id if isinstance(node, ast.Name) else node.arg
            if name.startswith("_"):
                raise UnsafeProgram(f"name {name!r} may not start with '_'")
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in _ALLOWED_CALLS) or node.keywords:
                raise UnsafeProgram(f"only calls to {sorted(_ALLOWED_CALLS)} are allowed")
        if isinstance(node, ast.For):
            it = node.iter
            is_range = isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
            if not (isinstance(node.target, ast.Name) and is_range):
                raise UnsafeProgram("for loops must be `for name in range(...)`")
    return tree


class _Instrument(ast.NodeTransformer):
    """Count loop iterations and cap magnitudes of assigned values inside loops.

    Straight-line code without `**` cannot build a huge int from bounded inputs, so only assignments inside
    loops (where values can compound) are checked; every return value is checked.
    """

    loop_depth = 0

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        node.body.insert(0, ast.parse("__steps = 0").body[0])
        return node

    def _tick(self, node: ast.While | ast.For) -> ast.AST:
        self.loop_depth += 1
        self.generic_visit(node)
        self.loop_depth -= 1
        tick = ast.parse(f"__steps += 1\nif __steps > {MAX_STEPS}: __limit('step')").body
        node.body[:0] = tick
        return node

    visit_While = visit_For = _tick

    def visit_Return(self, node: ast.Return) -> ast.Return:
        check = ast.parse("__check(0)", mode="eval").body
        check.args = [node.value]
        node.value = check
        return node

    def _checked(self, node: ast.Assign | ast.AugAssign) -> ast.AST | list[ast.AST]:
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        if not isinstance(target, ast.Name) or (isinstance(node, ast.Assign) and len(node.targets) != 1):
            raise UnsafeProgram("only single plain names can be assigned")
        if not self.loop_depth:
            return node
        check = ast.parse(f"if not -{MAX_ABS} <= {target.id} <= {MAX_ABS}: __limit('magnitude')").body[0]
        return [node, check]

    visit_Assign = visit_AugAssign = _checked


def _check_result(value: object) -> int:
    if type(value) is not int:  # bools from comparisons are not answers
        raise ExecutionError(f"returned {type(value).__name__}, not int")
    if not -MAX_ABS <= value <= MAX_ABS:
        _limit("magnitude")
    return value


@dataclass(frozen=True)
class Program:
    """A checked, compiled program. Call it with keyword arguments; it returns an int or raises ExecutionError."""

    source: str
    entry: str
    params: tuple[str, ...]
    structure: str
    fn: Callable[..., int]

    def __call__(self, **kwargs: int) -> int:
        return self.table(kwargs, [{}])[0]

    def table(self, inputs: Mapping[str, int], latents: list[dict[str, int]]) -> list[int]:
        """Outputs for `inputs` under each hidden assignment, in order. Raises ExecutionError if any run fails."""
        fn = self.fn
        try:
            return [fn(**inputs, **latent) for latent in latents]
        except ExecutionError:
            raise
        except (ArithmeticError, TypeError, NameError, RecursionError) as e:
            raise ExecutionError(f"{type(e).__name__}: {e}") from None


@lru_cache(maxsize=4096)
def load_program(source: str, entry: str = "f") -> Program:
    """Check `source` against the allow-list, instrument it, and compile it once (cached by source).

    >>> load_program("def f(x, r):\\n    return (x * r) % 5")(x=3, r=4)
    2
    """
    tree = check_source(source, entry)
    params = tuple(a.arg for a in tree.body[0].args.args)
    structure = _structure(tree)
    # Every node the instrumenter adds comes from ast.parse, so all have locations: no fix_missing_locations.
    tree = _Instrument().visit(tree)
    scope: dict = {
        "__builtins__": {},
        "abs": abs,
        "min": min,
        "max": max,
        "range": _range,
        "__limit": _limit,
        "__check": _check_result,
    }
    exec(compile(tree, f"<cftrain:{entry}>", "exec"), scope)  # noqa: S102 - source passed check_source
    return Program(source, entry, params, structure, scope[entry])


def _structure(tree: ast.Module) -> str:
    # Constants and names are abstracted: names become v0, v1, ... in order of first appearance, so renaming a
    # variable (or a word problem's noun) does not make a "new" structure.
    names: dict[str, str] = {}

    def canonical(match: re.Match) -> str:
        name = match.group(2)
        if name not in _ALLOWED_CALLS:
            name = names.setdefault(name, f"v{len(names)}")
        return f"{match.group(1)}'{name}'"

    dumped = _NAME.sub(canonical, ast.dump(tree))
    return hashlib.sha1(_CONSTANT.sub("Constant(0)", dumped).encode()).hexdigest()[:16]


_CONSTANT = re.compile(r"Constant\(value=-?\d+\)")
_NAME = re.compile(r"((?:id|arg|name)=)'(\w+)'")


def structure_hash(source: str, entry: str = "f") -> str:
    """Hash of the program's AST with integer constants and names abstracted: same shape -> same hash.

    >>> structure_hash("def f(x, r):\n    return x + 3") == structure_hash("def f(x, r):\n    return x + 7")
    True
    """
    return load_program(source, entry).structure


def latent_space(latent_domain: Mapping[str, list[int] | tuple[int, int]]) -> list[dict[str, int]]:
    """Every assignment of the hidden variables, in a fixed order."""
    names = sorted(latent_domain)
    ranges = [range(latent_domain[n][0], latent_domain[n][1] + 1) for n in names]
    return [dict(zip(names, values)) for values in itertools.product(*ranges)]


def consistent_latents(
    program: Program, latent_domain: Mapping, inputs: Mapping[str, int], output: int
) -> list[dict[str, int]]:
    """L* = hidden assignments under which the program maps `inputs` to `output`. Errors count as inconsistent."""
    found = []
    for latent in latent_space(latent_domain):
        try:
            if program.table(inputs, [latent])[0] == output:
                found.append(latent)
        except ExecutionError:
            continue
    return found


def outcomes(program: Program, inputs: Mapping[str, int], latents: list[dict[str, int]]) -> list[int]:
    """Sorted set of outputs for `inputs` under each hidden assignment. Raises ExecutionError if any fails."""
    return sorted(set(program.table(inputs, latents)))


def solve(record: Mapping) -> list[int]:
    """The gold answer of a record, recomputed from its program exactly as DESIGN.md defines it."""
    program = load_program(record["program"], record["entry"])
    obs = record["observation"]
    variant = record["variant"]
    new_inputs = {**obs["inputs"], **record["intervention"]}
    if variant == "interventional":
        return outcomes(program, new_inputs, [record["revealed"]])
    latents = consistent_latents(program, record["latent_domain"], obs["inputs"], obs["output"])
    if variant == "abduction":
        (name,) = record["latent_domain"]
        return sorted({latent[name] for latent in latents})
    if variant == "counterfactual":
        return outcomes(program, new_inputs, latents)
    raise ValueError(f"variant must be one of counterfactual, interventional, abduction; got {variant!r}")
