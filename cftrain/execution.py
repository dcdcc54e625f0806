"""Compile and run generated programs under an in-process sandbox. It knows programs, not records: what a record
means (its consistent hidden values, its answer) is computed from these runs in `cftrain.problems.truth`.

What is protected, and how:
- Source limits: at most MAX_SOURCE_CHARS characters (checked before parsing), then at most MAX_NODES AST
  nodes and MAX_DEPTH levels of nesting (checked by an iterative walk right after parsing, before anything
  recursive touches the tree). Any exception from the parser, including its RecursionError or MemoryError
  on pathological nesting, is an UnsafeProgram.
- An AST allow-list: exactly one top-level function with plain positional parameters (no nested functions,
  classes, lambdas or comprehensions), built from int constants, names, `+ - * // %`, unary `- + not`,
  comparisons, `and`/`or`, conditional expressions, if/while/for, single-name assignments and return. No
  `**`, attributes, subscripts, strings, imports, keyword or starred arguments, walrus, try/with/global/yield.
  Builtins are empty; the only calls are `abs(a)`, `min(a, b, ...)`, `max(a, b, ...)` (two or more
  arguments, so never over an iterable) and `range(...)`, which may only be the iterable of a `for` loop.
- Names: none may start with `_` (this keeps the injected helpers and counters out of reach). `abs`, `min`,
  `max` and `range` may appear only as the name being called, and the function's own name not at all in
  its body; neither can be a parameter, an assignment target or a loop variable. So nothing can shadow a
  helper or a builtin, and nothing can recurse.
- One step budget per top-level call: every loop iteration and every call (to `abs`, `min`, `max` or
  `range`) is one step, MAX_STEPS in all. The counter is a hidden local of the function, which the program
  cannot name, and since the function can call nothing but those builtins, it is one budget per call.
- A magnitude cap of +-MAX_ABS on every constant (at load time), every parameter (on entry), every
  assignment and augmented assignment inside loops or not (a copy of a bare name or constant is bounded
  already), the start and stop of every `range`, and the return value, which must also be an int: not a
  bool or None, and falling off the end of the function is an error. A `range` has at most MAX_STEPS items.
- A CPU-time guard: from step _FIRST_CLOCK on, every _CLOCK_EVERY steps, the calling thread's CPU time is
  compared with MAX_SECONDS counted from that first check. Thread CPU time rather than wall time, so whether
  a legitimate program passes never depends on machine load and generated records stay reproducible.
- Every run-time failure (the caps, ZeroDivisionError, TypeError, NameError, bad arguments, any Exception)
  surfaces from `Program.table` and `Program.__call__` as one ExecutionError.

What is not protected: this is not an OS sandbox. Programs run in-process, in the caller's interpreter and
thread, with no separate memory limit or process isolation; memory and time are bounded only through the
caps above (within one statement an expression can still build an intermediate int of roughly 41 bits per
AST node before the assignment is checked). It is meant for generated programs and for checking programs
from untrusted records, not for running arbitrary code next to secrets.
"""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NoReturn

from cftrain.structure import structure_of

MAX_STEPS = 10_000
MAX_ABS = 10**12
# About 4x the largest generated program (3,099 characters, 738 nodes, depth 15), so config knobs have room.
MAX_SOURCE_CHARS = 12_000
MAX_NODES = 3_000
MAX_DEPTH = 100
MAX_SECONDS = 0.5
# The CPU clock (one read ~0.2 us, a loop step ~0.1 us) is first read after _FIRST_CLOCK steps, so the short
# loops of generated programs never pay for it, then every _CLOCK_EVERY steps.
_FIRST_CLOCK = 64
_CLOCK_EVERY = 32

_ALLOWED_NODES = frozenset({
    ast.arguments, ast.arg, ast.Return, ast.Assign, ast.AugAssign,
    ast.If, ast.While, ast.For, ast.Expr, ast.Pass, ast.Name, ast.Load, ast.Store, ast.Constant,
    ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Call,
    ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod, ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
})  # fmt: skip
_ALLOWED_CALLS = frozenset({"abs", "min", "max", "range"})
_ARITY = {"abs": (1, 1), "min": (2, MAX_NODES), "max": (2, MAX_NODES), "range": (1, 3)}


class UnsafeProgram(ValueError):
    """The source uses something outside the allow-list or exceeds the source limits."""


class ExecutionError(RuntimeError):
    """A program failed at run time: step, magnitude or time cap, a bad operation, or a non-int result."""


def _limit(what: str) -> NoReturn:
    raise ExecutionError(f"{what} limit exceeded")


def _range(*args: int) -> range:
    r = range(*args)
    # Every item lies between start and stop, so bounding those bounds the loop variable.
    if not (-MAX_ABS <= r.start <= MAX_ABS and -MAX_ABS <= r.stop <= MAX_ABS):
        _limit("magnitude")
    if len(r) > MAX_STEPS:
        _limit("range")
    return r


def _guard(steps: int, deadline: float) -> tuple[int, float]:
    """Called by the instrumented code when `steps` passes its next check point; returns the next one."""
    if steps > MAX_STEPS:
        _limit("step")
    now = time.thread_time()
    if not deadline:  # the call's first check: start its clock
        deadline = now + MAX_SECONDS
    elif now > deadline:
        _limit("time")
    return min(steps + _CLOCK_EVERY, MAX_STEPS), deadline


def _bound(value: int) -> None:
    if not -MAX_ABS <= value <= MAX_ABS:
        _limit("magnitude")


def _check_result(value: object) -> int:
    if type(value) is not int:  # bools from comparisons, and None, are not answers
        raise ExecutionError(f"returned {type(value).__name__}, not int")
    if not -MAX_ABS <= value <= MAX_ABS:
        _limit("magnitude")
    return value


def check_source(source: str, entry: str) -> ast.Module:
    """Parse `source`, enforce the source limits and the allow-list; return the tree. Raises UnsafeProgram."""
    return _check(source, entry)[0]


def _check(source: str, entry: str, slots: bool = False) -> tuple[ast.Module, dict[int, int], bool]:
    """check_source, plus what the instrumenter needs: calls per statement (by id) and whether there are loops.

    `slots`: the source is a template (see _template), whose constant slots are read-only names `__k0`, `__k1`,
    ...; each stands where the checked program it came from had an int literal (checked there, and per program).
    """
    if not isinstance(source, str) or len(source) > MAX_SOURCE_CHARS:
        raise UnsafeProgram(f"source must be a str of at most {MAX_SOURCE_CHARS} characters")
    try:
        tree = _parse_lines(source) or ast.parse(source)
    except Exception as e:  # noqa: BLE001 - SyntaxError, ValueError (NUL), RecursionError/MemoryError (nesting)
        raise UnsafeProgram(f"cannot parse: {type(e).__name__}: {e}") from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef) or tree.body[0].name != entry:
        raise UnsafeProgram(f"source must be exactly one function named {entry!r}")
    fn = tree.body[0]
    args = fn.args
    if fn.decorator_list or fn.returns or getattr(fn, "type_params", None):
        raise UnsafeProgram("decorators, annotations and type parameters are not allowed")
    if args.vararg or args.kwarg or args.defaults or args.kwonlyargs or args.posonlyargs:
        raise UnsafeProgram("only plain positional parameters are allowed (no defaults, *args, keyword-only)")
    if entry.startswith("_") or entry in _ALLOWED_CALLS:
        raise UnsafeProgram(f"the function may not be named {entry!r}")
    reserved = _ALLOWED_CALLS | {entry}
    calls: dict[int, int] = {}  # id(statement) -> number of calls in its own expressions
    callees: set[int] = set()  # ids of the Name nodes that are call targets
    loop_ranges: set[int] = set()  # ids of the range(...) calls that are a for loop's iterable
    has_loop = False
    count = 0
    # Iterative pre-order walk (parents before children), so depth is tracked without recursion.
    stack: list[tuple[ast.AST, int, ast.AST]] = [(node, 1, node) for node in (args, *fn.body)]
    while stack:
        node, depth, owner = stack.pop()
        count += 1
        if count > MAX_NODES or depth > MAX_DEPTH:
            raise UnsafeProgram(f"program exceeds {MAX_NODES} AST nodes or nesting depth {MAX_DEPTH}")
        kind = type(node)
        if kind not in _ALLOWED_NODES:
            raise UnsafeProgram(f"{kind.__name__} is not allowed")
        if kind is ast.Name:
            if slots and _SLOT.fullmatch(node.id) and type(node.ctx) is ast.Load and id(node) not in callees:
                pass  # a constant's slot, read like a constant
            elif node.id.startswith("_"):
                raise UnsafeProgram(f"name {node.id!r} may not start with '_'")
            if node.id in reserved and id(node) not in callees:
                raise UnsafeProgram(f"{node.id!r} may only be called, never assigned or referenced")
            # A Name's one child, its context, would be popped right next: check it here, exactly as the loop would.
            count += 1
            if count > MAX_NODES or depth + 1 > MAX_DEPTH:
                raise UnsafeProgram(f"program exceeds {MAX_NODES} AST nodes or nesting depth {MAX_DEPTH}")
            if type(node.ctx) not in _ALLOWED_NODES:
                raise UnsafeProgram(f"{type(node.ctx).__name__} is not allowed")
            continue
        elif kind is ast.arg:
            if node.arg.startswith("_") or node.arg in reserved or node.annotation:
                raise UnsafeProgram(f"parameter {node.arg!r} is not allowed")
        elif kind is ast.Constant:
            if type(node.value) is not int or not -MAX_ABS <= node.value <= MAX_ABS:
                raise UnsafeProgram(f"constant {node.value!r} is not an int within +-{MAX_ABS}")
        elif kind is ast.Call:
            name = node.func.id if type(node.func) is ast.Name else None
            if name not in _ALLOWED_CALLS or node.keywords:
                raise UnsafeProgram(f"only calls to {sorted(_ALLOWED_CALLS)}, without keywords, are allowed")
            low, high = _ARITY[name]
            if not low <= len(node.args) <= high or (name == "range" and id(node) not in loop_ranges):
                raise UnsafeProgram(f"{name} takes {low}..{high} arguments; range only as `for name in range(...)`")
            callees.add(id(node.func))
            calls[id(owner)] = calls.get(id(owner), 0) + 1
        elif kind is ast.For:
            it = node.iter
            if not (type(node.target) is ast.Name and type(it) is ast.Call and getattr(it.func, "id", "") == "range"):
                raise UnsafeProgram("for loops must be `for name in range(...)`")
            loop_ranges.add(id(it))
            has_loop = True
        elif kind is ast.While:
            has_loop = True
        elif kind is ast.Assign:
            if len(node.targets) != 1 or type(node.targets[0]) is not ast.Name:
                raise UnsafeProgram("only single plain names can be assigned")
        elif kind is ast.AugAssign:
            if type(node.target) is not ast.Name:
                raise UnsafeProgram("only single plain names can be assigned")
        # The children of ast.iter_child_nodes, in its order, without its two generators per node (this loop is
        # most of the cost of checking a program). Only allowed kinds get here; _fields lists every field.
        depth += 1
        for attr in node._fields:
            value = getattr(node, attr, None)
            if type(value) is list:
                for child in value:
                    if isinstance(child, ast.AST):
                        stack.append((child, depth, child if isinstance(child, ast.stmt) else owner))
            elif isinstance(value, ast.AST):
                stack.append((value, depth, value if isinstance(value, ast.stmt) else owner))
    return tree, calls, has_loop


# Instrumentation. Inserted statements come from ast.parse, so they carry locations, and are shared between
# places and programs: compile() only reads the tree, and nothing mutates these templates.
@lru_cache(maxsize=64)
def _tick(steps: int) -> tuple[ast.stmt, ...]:
    source = f"__steps += {steps}\nif __steps > __check_at: __check_at, __deadline = __guard(__steps, __deadline)"
    return tuple(ast.parse(source).body)


@lru_cache(maxsize=1024)
def _bounded(name: str) -> ast.stmt:
    # A call, not an inline `if not -MAX_ABS <= name <= MAX_ABS`: as fast to run, and it halves the time to compile
    # a generated program (each inline test adds branches to the code the compiler optimises).
    return ast.parse(f"__bound({name})").body[0]


_PROLOGUE = tuple(ast.parse(f"__steps = 0\n__check_at = {_FIRST_CLOCK}\n__deadline = 0.0").body)
_FELL_OFF = ast.parse("__check(None)").body[0]  # reached only when the body ends without `return`


def _checked(value: ast.expr | None, at: ast.stmt) -> ast.Call:
    value = value or ast.copy_location(ast.Constant(None), at)
    func = ast.copy_location(ast.Name("__check", ast.Load()), value)
    return ast.copy_location(ast.Call(func, [value], []), value)


def _replace(node: ast.AST, **fields: object) -> ast.AST:
    """A shallow copy of `node` with `fields` replaced (the checked tree itself is never changed)."""
    return ast.copy_location(type(node)(**{name: getattr(node, name, None) for name in node._fields} | fields), node)


def _instrument(stmts: list[ast.stmt], calls: dict[int, int]) -> list[ast.stmt]:
    """Add step ticks (loop bodies, statements with calls), magnitude checks after assignments, checked returns.

    Returns new statements: an instrumented compound statement or return is a copy, so the checked tree stays as
    parsed (its structure hash is computed from it later, and only when asked for).
    """
    out: list[ast.stmt] = []
    for node in stmts:
        n_calls = calls.get(id(node), 0)
        if isinstance(node, ast.If | ast.While | ast.For):
            body = _instrument(node.body, calls)
            if not isinstance(node, ast.If):
                # A while test's calls run again before every iteration; a for's iterable runs once.
                body[:0] = _tick(1 + n_calls if isinstance(node, ast.While) else 1)
            node = _replace(node, body=body, orelse=_instrument(node.orelse, calls))
        elif isinstance(node, ast.Return):
            node = _replace(node, value=_checked(node.value, node))
        if n_calls:
            out += _tick(n_calls)
        out.append(node)
        if isinstance(node, ast.AugAssign):
            out.append(_bounded(node.target.id))
        elif isinstance(node, ast.Assign) and not isinstance(node.value, ast.Name | ast.Constant):
            # A copied name or constant is already bounded (parameters on entry, constants at load time).
            out.append(_bounded(node.targets[0].id))
    return out


@dataclass(frozen=True)
class Program:
    """A checked, compiled program. Call it with keyword arguments; it returns an int or raises ExecutionError.

    `fn` is the raw instrumented function: call the program or `table`, which turn every failure into
    ExecutionError.
    """

    source: str
    entry: str
    params: tuple[str, ...]
    fn: Callable[..., int]
    # The checked tree until `structure` is first read, then its hash: most generated candidates fail a filter
    # and never need one.
    _structure: ast.Module | str = field(repr=False, compare=False)

    @property
    def structure(self) -> str:
        """The canonical structure hash (cftrain.structure.structure_of), computed on first use."""
        if not isinstance(self._structure, str):
            object.__setattr__(self, "_structure", structure_of(self._structure))  # frozen: a one-time fill-in
        return self._structure

    def __call__(self, **kwargs: int) -> int:
        return self.table(kwargs, [{}])[0]

    def table(self, inputs: Mapping[str, int], latents: list[dict[str, int]]) -> list[int]:
        """Outputs for `inputs` under each hidden assignment, in order. Raises ExecutionError if any run fails."""
        fn = self.fn
        try:
            return [fn(**inputs, **latent) for latent in latents]
        except ExecutionError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure of the program (or bad arguments) is one error type
            raise ExecutionError(f"{type(e).__name__}: {e}") from None


@lru_cache(maxsize=4096)
def load_program(source: str, entry: str = "f") -> Program:
    """Check `source` against the limits and allow-list, instrument it, and compile it once (cached by source).

    A program that equals an earlier one up to its int literals reuses that one's checked code (see _template).

    >>> load_program("def f(x, r):\\n    return (x * r) % 5")(x=3, r=4)
    2
    """
    template = _template(source) if isinstance(source, str) and len(source) <= MAX_SOURCE_CHARS else None
    if template is None:
        return _compile(source, entry)[0]
    key, values = template
    cached = _TEMPLATES.get((key, entry))
    if cached and max(values, default=0) <= MAX_ABS:  # literals are >= 0: a minus sign is a unary operator
        make, params, structure = cached
        return Program(source, entry, params, make(*values), structure)
    program, tree = _compile(source, entry)  # a new shape, or a literal out of range: the full check decides
    if len(_TEMPLATES) >= _MAX_TEMPLATES:
        _TEMPLATES.clear()
    if (key, entry) not in _TEMPLATES:
        _TEMPLATES[key, entry] = None  # seen once: most shapes never come back, so build the template on the 2nd
    elif cached is None:
        _TEMPLATES[key, entry] = _build_template(key, entry, len(values), program.params, program.structure)
    return program


def clear_caches() -> None:
    """Forget every compiled program and template, and the caches registered with `on_clear` (for benchmarks that
    want a cold start)."""
    load_program.cache_clear()
    _TEMPLATES.clear()
    _LINES.clear()
    for clear in _CLEARERS:
        clear()


_CLEARERS: list[Callable[[], None]] = []


def on_clear(clear: Callable[[], None]) -> None:
    """Have `clear_caches` also call `clear` (a generator's own cache of compiled templates)."""
    _CLEARERS.append(clear)


def _compile(source: str, entry: str) -> tuple[Program, ast.Module]:
    """The full path: check, instrument and compile one program; also returns its checked tree (unchanged)."""
    tree, calls, has_loop = _check(source, entry)
    code, params = _instrumented(tree, calls, has_loop)
    scope = _scope()
    _exec(code, entry, scope)
    return Program(source, entry, params, scope[entry], tree), tree


def _instrumented(tree: ast.Module, calls: dict[int, int], has_loop: bool) -> tuple[ast.Module, tuple[str, ...]]:
    """An instrumented copy of the checked module `tree` (which is left as it is), and the function's parameters."""
    fn = tree.body[0]
    params = tuple(a.arg for a in fn.args.args)
    body = [_bounded(p) for p in params]
    if has_loop or calls:  # straight-line code without calls never ticks: no counter to set up
        body += _PROLOGUE
    fn = _replace(fn, body=[*body, *_instrument(fn.body, calls), _FELL_OFF])
    return _replace(tree, body=[fn]), params


def check_row(values: list) -> list[int]:
    """The sandbox's return check on a table's outputs in one pass: `values` if they are ints within +-MAX_ABS
    (bools and None refused), else ExecutionError."""
    if {*map(type, values)} - _INT or values and (min(values) < -MAX_ABS or max(values) > MAX_ABS):
        for value in values:
            _check_result(value)
    return values


_INT = frozenset({int})


def _scope() -> dict:
    return {
        "__builtins__": {},
        "abs": abs,
        "min": min,
        "max": max,
        "range": _range,
        "__bound": _bound,
        "__check": _check_result,
        "__check_row": check_row,
        "__guard": _guard,
    }


def _exec(tree: ast.Module, entry: str, scope: dict) -> None:
    try:
        code = compile(tree, f"<cftrain:{entry}>", "exec")
    except Exception as e:  # noqa: BLE001 - the checks above should make this unreachable; stay typed
        raise UnsafeProgram(f"cannot compile: {type(e).__name__}: {e}") from None
    exec(code, scope)  # noqa: S102 - source passed the checks above


# Program templates. Generated programs of one shape differ only in their int literals, so a program that equals
# an already checked one up to its literals reuses that one's instrumented code: the template is compiled once,
# inside `def __make(__k0, __k1, ...)`, and each program gets `__make(*its literals)` (closure variables; the
# program cannot name or assign them, as names starting with `_` are refused). This is sound only where a literal
# is surely a whole int token: an ASCII source without quotes, comments or backslashes (so no string, comment or
# line continuation hides a digit, and no non-ASCII identifier character can touch one), each literal a plain
# decimal not glued to a name, a dot or a letter. Anything else takes the full path. Replacing an int token by a
# name token leaves the parse the same except where a name is allowed and a number is not (assignment targets,
# parameters, call targets): the template's own check refuses the slot names there. Every program still gets
# the checks that depend on its text: the length limit (before anything), and the magnitude cap on each literal;
# the allow-list, node and depth limits depend only on the shape and held for the checked program the template
# came from (a slot is a Name with a Load child where the program had a Constant, so the template's own node
# count and depth are a little stricter; if they fail, there is no template and every program takes the full
# path). The structure hash is also reused: structure_of abstracts constants, and the template keys on which
# literals are equal (equal values share a slot) and keeps 0 and 1 as written, which is all of the values that
# it looks at (it compares constants for equality when merging `a < b or a == b` and removing dead branches).
_SLOT = re.compile(r"__k[0-9]+")
_LITERAL = re.compile(r"(?<![\w.])[0-9][\w.]*", re.ASCII)
_KEPT = ("0", "1")
_MAX_TEMPLATES = 4096
_TEMPLATES: dict[tuple[str, str], tuple[Callable[..., Callable[..., int]], tuple[str, ...], str] | None] = {}


def _template(source: str) -> tuple[str, list[int]] | None:
    """`source` with each int literal other than 0 and 1 replaced by a slot `#j` (equal literals share one) and
    the literals' values in slot order; None where that would not be sound (see above).

    >>> _template("def f(x, r):\\n    return (x + 12) % 7 + 12 * r - 1")
    ('def f(x, r):\\n    return (x + #0) % #1 + #0 * r - 1', [12, 7])
    """
    if not source.isascii() or "#" in source or "'" in source or '"' in source or "\\" in source:
        return None
    slots: dict[str, int] = {}
    parts = []
    last = 0
    for match in _LITERAL.finditer(source):
        text = match.group()
        if not text.isdigit() or (text[0] == "0" and len(text) > 1) or len(text) > 13:
            return None  # 1e3, 0x1f, 1_000, 1.5, 5if, 007, or beyond MAX_ABS anyway
        if text in _KEPT:
            continue
        parts += (source[last : match.start()], f"#{slots.setdefault(text, len(slots))}")
        last = match.end()
    parts.append(source[last:])
    return "".join(parts), [int(text) for text in slots]


def _build_template(key: str, entry: str, n_slots: int, params: tuple[str, ...], structure: str) -> tuple | None:
    """Check, instrument and compile the template `key` (from a program that passed the full check)."""
    try:
        tree, calls, has_loop = _check(key.replace("#", "__k"), entry, slots=True)
    except UnsafeProgram:  # e.g. the slots' Load nodes took it over a limit: keep the full path
        return None
    tree, template_params = _instrumented(tree, calls, has_loop)
    if template_params != params:
        return None
    slots = ", ".join(f"__k{j}" for j in range(n_slots))
    maker = ast.parse(f"def __make({slots}):\n    return {entry}").body[0]
    maker.body.insert(0, tree.body[0])
    tree.body = [maker]
    scope = _scope()
    _exec(tree, entry, scope)
    return scope["__make"], params, structure


def check_template(key: str, entry: str) -> ast.Module:
    """Check a generator's template: `key` is a program with its int literals written as slots `#0`, `#1`, ... (one
    per literal, as in _template); it must pass the same checks as a program. Returns its tree, where slot j is the
    name `__kj` (for structure.normal_form(tree, slots=True) and tabulated_template). Raises UnsafeProgram."""
    return _check(key.replace("#", "__k"), entry, slots=True)[0]


def _branching(stmts: list[ast.stmt]) -> bool:
    """Whether the statements hold a loop or a return (at any depth): what a one-pass table cannot run."""
    for node in stmts:
        if isinstance(node, ast.While | ast.For | ast.Return) or (
            isinstance(node, ast.If) and (_branching(node.body) or _branching(node.orelse))
        ):
            return True
    return False


def tabulated_template(
    tree: ast.Module, entry: str, n_slots: int, latent: str, checked: bool = True
) -> Callable[..., Callable[..., list[int]]]:
    """Compile a checked template (check_template) once. Returns `make`;
    `make(*values)` gives `table` for the program with those literals: `table(*inputs, values_of_latent)` runs the
    program's statements once per value of the hidden parameter `latent`, in one call, and returns the outputs in
    order (a program over its whole hidden domain in one pass).

    The table has the sandbox's return check (ints within +-MAX_ABS, ExecutionError otherwise), unless `checked`
    is False: then the caller runs check_row on each row before any of it is used as a result (if_else checks the
    two rows an item shows, and only looks at the others to choose). It has no step or per-assignment caps, so it
    is only for loop-free templates that never assign a parameter (ValueError otherwise) whose caller bounds the
    values (see IfElseConfig): a loop-free program takes a bounded number of steps. tests/test_if_else_pool.py
    checks tables against load_program on the programs' text. The tree is not changed.
    """
    fn = tree.body[0]
    params = [a.arg for a in fn.args.args]
    last = fn.body[-1]
    if (
        _branching(fn.body[:-1])
        or latent not in params
        or _assigned(fn.body) & set(params)  # the statements run again per latent: the inputs must stay as given
        or not isinstance(last, ast.Return)
        or last.value is None
    ):
        raise ValueError(
            f"a tabulated template must be loop-free, take {latent!r}, never assign a parameter, and end in its "
            "only return"
        )
    make = _maker(n_slots, "".join(f"{p}, " for p in params if p != latent), latent, checked).body[0]
    table = make.body[0]
    loop = table.body[2]
    push = loop.body[0]  # __push(<the returned expression>), after the program's other statements
    push = _replace(push, value=_replace(push.value, args=[last.value]))
    loop = _replace(loop, body=[*fn.body[:-1], push])
    table = _replace(table, body=[*table.body[:2], loop, *table.body[3:]])
    scope = _scope()
    _exec(ast.Module([_replace(make, body=[table, *make.body[1:]])], []), entry, scope)
    return scope["__make"]


def _assigned(stmts: list[ast.stmt]) -> set[str]:
    """The names checked statements (and the ifs among them, at any depth) assign to: every target is one name."""
    names: set[str] = set()
    for node in stmts:
        if isinstance(node, ast.If):
            names |= _assigned(node.body) | _assigned(node.orelse)
        elif isinstance(node, ast.Assign | ast.AugAssign):
            names.add((node.targets[0] if isinstance(node, ast.Assign) else node.target).id)
    return names


@lru_cache(maxsize=64)
def _maker(n_slots: int, inputs: str, latent: str, checked: bool) -> ast.Module:
    """The frame tabulated_template fills in, parsed once per signature (shared: only copies are changed)."""
    slots = ", ".join(f"__k{j}" for j in range(n_slots))
    out = "__check_row(__out)" if checked else "__out"
    return ast.parse(
        f"def __make({slots}):\n    def __table({inputs}__values):\n        __out = []\n"
        f"        __push = __out.append\n        for {latent} in __values:\n            __push(0)\n"
        f"        return {out}\n    return __table"
    )


# Parsing line by line. Generated programs share most of their lines (a few hundred distinct lines make thousands
# of programs), and ast.parse is the largest cost of loading one. So a source of the plainest form is parsed one
# line at a time, each distinct line once (cached), and the tree assembled from those: a `def NAME(PARAMS):`
# header, then lines indented by 4 spaces per level, each an `if E:`, `elif E:`, `else:` or one simple statement
# (assignment, augmented assignment, return, expression, pass). Anything else (other compound statements, blank
# lines, tabs, `;`, or a line that does not parse alone) takes ast.parse. This is sound because such a source
# has no strings, comments or line continuations (the same characters are refused as for templates), so a
# construct spanning lines needs an open bracket, and a line with one does not parse alone. The tree is the one
# ast.parse gives, up to source positions (tests/test_templates.py compares them), and it is what the checks
# walk and what is compiled, so it is checked exactly like a parsed one. Cached nodes are shared between
# programs: nothing changes a checked tree (instrumentation copies what it changes). A simple statement that
# occurs twice in one program is parsed afresh the second time, since the checker counts calls per statement
# object.
_LINES: dict[tuple[str, str], ast.AST | None] = {}
_MAX_LINES = 16384
_DEF = re.compile(r"def ([A-Za-z]\w*)\(((?:[A-Za-z]\w*)(?:, [A-Za-z]\w*)*)?\):", re.ASCII)
_SIMPLE = (ast.Assign, ast.AugAssign, ast.Return, ast.Expr, ast.Pass)


def _line(text: str, mode: str) -> ast.AST | None:
    """The simple statement (mode "exec"), expression ("eval") or function header ("def") that `text` alone
    parses to; None if it is not one."""
    key = (text, mode)
    if key not in _LINES:
        if len(_LINES) >= _MAX_LINES:
            _LINES.clear()
        _LINES[key] = _parse_one(text, mode)
    return _LINES[key]


def _parse_one(text: str, mode: str) -> ast.AST | None:
    try:
        tree = ast.parse(text, mode="eval" if mode == "eval" else "exec")
    except Exception:  # noqa: BLE001 - not a line of the plain form: the caller falls back to ast.parse
        return None
    if mode == "eval":
        return tree.body
    kinds = ast.FunctionDef if mode == "def" else _SIMPLE
    return tree.body[0] if len(tree.body) == 1 and isinstance(tree.body[0], kinds) else None


def _parse_lines(source: str) -> ast.Module | None:
    """The tree of `source` if it has the plain form described above, else None (see the comment above)."""
    if not source.isascii() or any(c in source for c in "#'\"\\;\t\r\f\v\x00"):
        return None
    lines = source.split("\n")
    head = _DEF.fullmatch(lines[0])
    if head is None or len(lines) < 2:
        return None
    header = _line(f"{lines[0]}\n    pass", "def")
    root: list[ast.stmt] = []
    blocks: list[tuple[int, list[ast.stmt]]] = [(4, root)]  # open blocks, innermost last: (indentation, body)
    chains: dict[int, ast.If] = {}  # indentation -> the `if`/`elif` an `elif`/`else` there would continue
    opened: list[ast.stmt] | None = None  # the body a header just opened: the next line must start it
    seen: set[str] = set()
    for number, line in enumerate(lines[1:], 2):
        text = line.lstrip(" ")
        indent = len(line) - len(text)
        if not text or indent % 4 or text != text.rstrip():
            return None
        if opened is not None:
            if indent != blocks[-1][0] + 4:
                return None
            blocks.append((indent, opened))
            opened = None
        else:
            while blocks and blocks[-1][0] > indent:
                blocks.pop()
            if not blocks or blocks[-1][0] != indent:
                return None
        for deeper in [level for level in chains if level > indent]:
            del chains[deeper]
        where = dict(lineno=number, col_offset=indent, end_lineno=number, end_col_offset=len(line))
        if text == "else:":
            target = chains.pop(indent, None)
            if target is None:
                return None
            opened = target.orelse
        elif text.endswith(":"):
            keyword, _, test = text[:-1].partition(" ")
            expr = _line(test, "eval") if keyword in ("if", "elif") else None
            if expr is None:
                return None
            node = ast.If(expr, [], [], **where)
            if keyword == "elif":
                target = chains.get(indent)
                if target is None:
                    return None
                target.orelse = [node]
            else:
                blocks[-1][1].append(node)
            chains[indent] = node
            opened = node.body
        else:
            node = _line(text, "exec") if text not in seen else _parse_one(text, "exec")
            if node is None:
                return None
            seen.add(text)
            blocks[-1][1].append(node)
            chains.pop(indent, None)
    if opened is not None or header is None:
        return None
    fn = _replace(header, body=root)
    return ast.Module([fn], [])


def structure_hash(source: str, entry: str = "f") -> str:
    """Hash of the program's AST with integer constants and names abstracted: same shape -> same hash.

    >>> structure_hash("def f(x, r):\\n    return x + 3") == structure_hash("def f(x, r):\\n    return x + 7")
    True
    """
    return load_program(source, entry).structure
