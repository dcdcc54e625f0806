"""Hostile programs against the sandbox: each is rejected at load time or fails fast at run time.

Every case states which of the two must happen, so a check that silently stops working fails here. Run:
pytest tests/test_sandbox.py
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from cftrain import execution
from cftrain.execution import MAX_ABS, MAX_STEPS, ExecutionError, UnsafeProgram, load_program
from cftrain.problems.truth import consistent_latents

UNSAFE, ERROR = "unsafe", "error"


def fn(*lines: str, params: str = "x, r") -> str:
    return f"def f({params}):\n" + "\n".join(f"    {line}" for line in lines)


def loop(*body: str, head: str = "while 1:") -> str:
    return fn(head, *(f"    {line}" for line in body), "return 0")


def product(n: int) -> str:
    """`x` multiplied n times as a balanced tree, which stays under the nesting limit."""
    return "x" if n == 1 else f"({product(n // 2)} * {product(n - n // 2)})"


HOSTILE = [
    # Replacing the injected helpers, by any route.
    ("nested def __limit", fn("def __limit(w):", "    return 0", "while 1:", "    pass", "return 0"), UNSAFE),
    ("nested def check", fn("def check(v):", "    return v", "return check(x)"), UNSAFE),
    ("nested def max recursion", fn("def max(n):", "    return max(n) + max(n)", "return max(x)"), UNSAFE),
    ("assign helper name", fn("__check = abs", "return x"), UNSAFE),
    ("reset step counter", loop("__steps = 0"), UNSAFE),
    ("helper as parameter", fn("return x", params="x, __limit"), UNSAFE),
    ("underscore parameter", fn("return x", params="x, _r"), UNSAFE),
    ("helper as loop variable", fn("for __steps in range(3):", "    x = 1", "return x"), UNSAFE),
    # Shadowing or misusing the allowed builtins and the function itself.
    ("assign builtin", fn("max = 3", "return x"), UNSAFE),
    ("augassign builtin", fn("abs += 1", "return x"), UNSAFE),
    ("builtin as parameter", fn("return abs(x)", params="x, abs"), UNSAFE),
    ("builtin as loop variable", fn("for range in range(3):", "    x = 1", "return x"), UNSAFE),
    ("builtin as a value", fn("g = max", "return x"), UNSAFE),
    ("assign own name", fn("f = 3", "return x"), UNSAFE),
    ("reference own name", fn("return f"), UNSAFE),
    ("recursion", fn("return f(x, r) + f(x, r)"), UNSAFE),
    ("own name as parameter", fn("return x", params="x, f"), UNSAFE),
    # Unbounded time.
    ("while 1 pass", loop("pass"), ERROR),
    ("counting up forever", fn("while x >= 0:", "    x = x + 1", "return x"), ERROR),
    ("nested loops", loop("for j in range(10000):", "    x = 1", head="for i in range(10000):"), ERROR),
    ("abs calls count as steps", loop("x = abs(r) + abs(r) - abs(r)", head="for i in range(3000):"), ERROR),
    ("while test calls count", fn("while abs(x) >= 0:", "    pass", "return 0"), ERROR),
    # Big ints built inside a condition are never assigned: only the CPU clock stops this (at MAX_SECONDS).
    (
        "slow steps",
        fn("for i in range(9000):", f"    if {product(460)} // {product(230)} > 0:", "        r = i", "return 0"),
        ERROR,
    ),
    ("min over a range", fn("return min(range(10000))"), UNSAFE),
    ("max over range in loop", loop("x = max(range(10000))", head="for i in range(10000):"), UNSAFE),
    ("max of empty range", fn("return max(range(0))"), UNSAFE),
    ("min of one int", fn("return min(x)"), UNSAFE),
    ("abs of two", fn("return abs(x, r)"), UNSAFE),
    ("range outside a for", fn("y = range(10)", "return 0"), UNSAFE),
    ("huge range", fn("for i in range(10000 * 10000 * 10000):", "    x = 1", "return x"), ERROR),
    ("huge range start", fn("for i in range(x * x * x, x * x * x + 2):", "    r = i", "return r"), ERROR),
    # Unbounded size.
    ("squaring in a loop", loop("x = x * x"), ERROR),
    ("augmented squaring", loop("x *= x"), ERROR),
    ("straight-line squaring x40", fn(*["x = x * x"] * 40, "return 0"), ERROR),
    ("straight-line growth in r", fn(*["r = r * x * x * x"] * 40, "return 0"), ERROR),
    ("squaring in a loop test only", loop("pass", head="while x * x * x * x * x * x * x * x > 0:"), ERROR),
    ("huge return", fn("return x * x * x * x * x * x * x * x * x * x * x"), ERROR),
    ("huge constant", fn("return 10000000000000000000000"), UNSAFE),
    # Oversized or pathological sources.
    ("200k-term expression", fn("return " + "x + " * 200_000 + "x"), UNSAFE),
    ("7k unary minus", fn("return " + "-" * 7000 + "x"), UNSAFE),
    ("2k unary minus", fn("return " + "-" * 2000 + "x"), UNSAFE),
    ("deep parentheses", fn("return " + "(" * 300 + "x" + ")" * 300), UNSAFE),
    ("deep conditional expression", fn("return " + "x if r else " * 150 + "x"), UNSAFE),
    ("deep not", fn("return 1 + (" + "not " * 150 + "x)"), UNSAFE),
    ("long source", fn(*["x = x + 1"] * 2000, "return x"), UNSAFE),
    ("many nodes", "def f(x, r):\n" + " y=x+r+x+r+x+r+x+r+x+r\n" * 300 + " return y", UNSAFE),
    ("NUL byte", fn("return x\0"), UNSAFE),
    # Run-time errors of other types must surface as ExecutionError.
    ("division by zero", fn("return x // (r - r)"), ERROR),
    ("modulo by zero", fn("return x % (r - r)"), ERROR),
    ("return None", fn("x = 1", "return"), ERROR),
    ("fall off the end", fn("x = 1"), ERROR),
    ("return bool", fn("return x < r"), ERROR),
    ("return not", fn("return not x"), ERROR),
    ("unbound name", fn("if x < 0:", "    y = 1", "return y"), ERROR),
    ("undefined global", fn("return undefined_name"), ERROR),
    # Syntax outside the allow-list.
    ("bool constant", fn("return True + 1"), UNSAFE),
    ("None constant", fn("return None"), UNSAFE),
    ("float constant", fn("return 1.5"), UNSAFE),
    ("complex constant", fn("return 1j"), UNSAFE),
    ("string", fn("return 'a'"), UNSAFE),
    ("f-string", fn("return f'{x}'"), UNSAFE),
    ("bytes", fn("return b'a'"), UNSAFE),
    ("ellipsis", fn("return ..."), UNSAFE),
    ("attribute", fn("return x.real"), UNSAFE),
    ("dunder attribute", fn("return x.__class__"), UNSAFE),
    ("subscript", fn("return [x][0]"), UNSAFE),
    ("list", fn("y = [x]", "return x"), UNSAFE),
    ("tuple assignment", fn("x, r = r, x", "return x"), UNSAFE),
    ("chained assignment", fn("x = r = 1", "return x"), UNSAFE),
    ("annotated assignment", fn("y: int = 1", "return y"), UNSAFE),
    ("lambda", fn("return (lambda: 1)()"), UNSAFE),
    ("import", fn("import os", "return 1"), UNSAFE),
    ("from import", fn("from os import path", "return 1"), UNSAFE),
    ("list comprehension", fn("y = [i for i in range(3)]", "return 1"), UNSAFE),
    ("generator expression", fn("return max(i for i in range(3))"), UNSAFE),
    ("walrus", fn("return (y := x)"), UNSAFE),
    ("try", fn("try:", "    x = 1", "except:", "    x = 2", "return x"), UNSAFE),
    ("raise", fn("raise x"), UNSAFE),
    ("assert", fn("assert x", "return x"), UNSAFE),
    ("with", fn("with x:", "    pass", "return x"), UNSAFE),
    ("global", fn("global abs", "return x"), UNSAFE),
    ("nonlocal", fn("nonlocal x", "return x"), UNSAFE),
    ("del", fn("del x", "return r"), UNSAFE),
    ("yield", fn("yield x"), UNSAFE),
    ("await", fn("await x", "return x"), UNSAFE),
    ("async def", "async def f(x, r):\n    return x", UNSAFE),
    ("class", fn("class A:", "    pass", "return x"), UNSAFE),
    ("break", loop("break"), UNSAFE),
    ("match", fn("match x:", "    case 1:", "        return 1", "return 0"), UNSAFE),
    ("keyword argument", fn("return max(x, r, key=abs)"), UNSAFE),
    ("starred argument", fn("return max(*range(3))"), UNSAFE),
    ("double-starred argument", fn("return max(**x)"), UNSAFE),
    ("power", fn("return x ** r"), UNSAFE),
    ("power assign", fn("x **= r", "return x"), UNSAFE),
    ("left shift", fn("return x << 100000"), UNSAFE),
    ("true division", fn("return x / r"), UNSAFE),
    ("bitwise not", fn("return ~x"), UNSAFE),
    ("print", fn("print(x)", "return x"), UNSAFE),
    ("eval", fn("return eval('1')"), UNSAFE),
    ("dunder import", fn("return __import__('os')"), UNSAFE),
    ("call of a call", fn("return abs(x)(r)"), UNSAFE),
    ("for over a list", fn("for i in [1, 2]:", "    x = i", "return x"), UNSAFE),
    ("for with tuple target", fn("for i, j in range(3):", "    x = i", "return x"), UNSAFE),
    ("decorator", "@abs\ndef f(x, r):\n    return x", UNSAFE),
    ("default argument", fn("return x", params="x, r=max(1, 2)"), UNSAFE),
    ("annotation", fn("return x", params="x: abs(1), r"), UNSAFE),
    ("keyword-only parameter", fn("return x", params="x, *, r"), UNSAFE),
    ("positional-only parameter", fn("return x", params="x, /, r"), UNSAFE),
    ("varargs", fn("return x", params="x, *r"), UNSAFE),
    ("second function", fn("return x") + "\ndef g():\n    return 1", UNSAFE),
    ("module statement", "x = 1", UNSAFE),
    ("syntax error", "def f(x, r:", UNSAFE),
]


def _attack(source: str) -> str:
    """Load and call `source`; return what happened: 'unsafe', 'error', or the value it returned."""
    try:
        program = load_program(source)
    except UnsafeProgram:
        return UNSAFE
    try:
        return repr(program(x=10**6, r=3))
    except ExecutionError:
        return ERROR


@pytest.mark.parametrize("name, source, expected", HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_program_is_rejected_or_fails_fast(name, source, expected):
    start = time.process_time()
    outcome = _attack(source)
    elapsed = time.process_time() - start
    assert outcome == expected, name
    assert elapsed < 1.0, f"{name} took {elapsed:.2f} s of CPU"


def test_hostile_programs_stay_under_1gb_peak_rss():
    # In a fresh process: this one's peak already holds whatever earlier tests loaded (models, datasets). Its peak
    # is VmHWM, the high-water mark of the exec'd image: ru_maxrss would include the forked copy of pytest.
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import test_sandbox as t\n"
        "for _, source, expected in t.HOSTILE:\n"
        "    t.load_program.cache_clear()\n"
        "    assert t._attack(source) == expected, source\n"
        "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')))\n"  # KB
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    peak_kb = int(done.stdout.split()[-1])
    assert peak_kb < 1024 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"


def test_non_string_source_and_reserved_function_names():
    with pytest.raises(UnsafeProgram):
        load_program(b"def f(x):\n    return x")
    for name in ("abs", "max", "range", "_f", "__check"):
        with pytest.raises(UnsafeProgram):
            load_program(f"def {name}(x):\n    return x", name)


def test_huge_or_wrong_arguments_are_execution_errors():
    program = load_program(fn("return x % 7"))
    assert program(x=MAX_ABS, r=0) == MAX_ABS % 7
    for bad in ({"x": MAX_ABS + 1, "r": 0}, {"x": 10**5000, "r": 0}, {"x": "a", "r": 0}, {"x": 1}):
        with pytest.raises(ExecutionError):
            program(**bad)


def test_one_step_budget_per_top_level_call():
    # 1 call to range + n iterations + 2 abs calls per iteration must fit in MAX_STEPS.
    program = load_program(fn("t = 0", "for i in range(x):", "    t = t + abs(i) - abs(r)", "return t"))
    fits = (MAX_STEPS - 1) // 3
    assert program(x=fits, r=0) == sum(range(fits))
    assert program(x=fits, r=0) == sum(range(fits)), "the budget is fresh for each top-level call"
    with pytest.raises(ExecutionError, match="step"):
        program(x=fits + 1, r=0)


def test_cpu_time_guard(monkeypatch):
    # Within the step budget but slow per step: only the clock can stop it.
    heavy = "q = " + " + ".join(["x * r * x"] * 60)
    program = load_program(loop(heavy, head="for i in range(9000):"))
    start = time.process_time()
    assert program(x=3, r=2) == 0
    unguarded = time.process_time() - start
    monkeypatch.setattr(execution, "MAX_SECONDS", unguarded / 10)
    with pytest.raises(ExecutionError, match="time"):
        program(x=3, r=2)


def test_failing_hidden_value_counts_as_inconsistent():
    program = load_program(fn("return x // (r - 3)"))
    # r = 3 divides by zero: it is skipped, not raised.
    assert consistent_latents(program, {"r": [1, 5]}, {"x": 6}, 6) == [{"r": 4}]
    assert consistent_latents(program, {"r": [3, 3]}, {"x": 6}, 6) == []
