"""`if_else` (train and in-distribution test) and `if_else_long` (OOD: deeper nesting, more branches).

The paper's template: `def f(x, r)` with one hidden integer r, an if/elif/else chain on x whose branches
compute arithmetic on x and r (a branch may nest an `if` on r), and an optional final `% m` that makes
several r consistent with one observation, so answers are sets.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from cftrain.problems.base import Family, FamilyConfig, Scenario, check_probability, render_code
from cftrain.problems.registry import register

# Each template pairs its text with the function it computes, so the generator can see, over the whole domain of
# (x, r), which conditions split the points that reach them and which bodies differ: it emits only live branches.
_Fn = Callable[..., int]
_EXPRS: tuple[tuple[str, _Fn], ...] = (
    ("x + r", lambda x, r, a, t: x + r),
    ("r + x", lambda x, r, a, t: r + x),
    ("x - r", lambda x, r, a, t: x - r),
    ("r - x", lambda x, r, a, t: r - x),
    ("x * r", lambda x, r, a, t: x * r),
    ("x * {a} + r", lambda x, r, a, t: x * a + r),
    ("r * {a} + x", lambda x, r, a, t: r * a + x),
    ("(x + r) * {a}", lambda x, r, a, t: (x + r) * a),
    ("x * {a} - r", lambda x, r, a, t: x * a - r),
    ("x + r * {a}", lambda x, r, a, t: x + r * a),
    ("x * r + {a}", lambda x, r, a, t: x * r + a),
    ("(x + {a}) * r", lambda x, r, a, t: (x + a) * r),
    ("x * {a} * r", lambda x, r, a, t: x * a * r),
    ("r * {a} - x", lambda x, r, a, t: r * a - x),
)
_SIMPLE = _EXPRS[:5]
# Many-to-one in r: several hidden values give one result, so an observation leaves a set of them.
_MANY: tuple[tuple[str, _Fn], ...] = (
    ("x + r // {a}", lambda x, r, a, t: x + r // a),
    ("(x + r) // {a}", lambda x, r, a, t: (x + r) // a),
    ("x * (r % {a})", lambda x, r, a, t: x * (r % a)),
    ("x + r % {a}", lambda x, r, a, t: x + r % a),
    ("max(x, r) + {a}", lambda x, r, a, t: max(x, r) + a),
    ("min(x, r) * {a}", lambda x, r, a, t: min(x, r) * a),
    ("abs(x - r) * {a}", lambda x, r, a, t: abs(x - r) * a),
    ("x + (r > {t}) * {a}", lambda x, r, a, t: x + (r > t) * a),
)
_R_CONDS: tuple[tuple[str, _Fn], ...] = (
    ("r >= {t}", lambda x, r, t, u: r >= t),
    ("r < {t}", lambda x, r, t, u: r < t),
    ("r > {t}", lambda x, r, t, u: r > t),
    ("r <= {t}", lambda x, r, t, u: r <= t),
    ("r % 2 == 0", lambda x, r, t, u: r % 2 == 0),
    ("r % 3 == {u}", lambda x, r, t, u: r % 3 == u),
)
_X_CONDS: tuple[tuple[str, _Fn], ...] = (
    ("x >= {t}", lambda x, r, t, u: x >= t),
    ("x < {t}", lambda x, r, t, u: x < t),
    ("x % 2 == 1", lambda x, r, t, u: x % 2 == 1),
    ("x + r > {t}", lambda x, r, t, u: x + r > t),
    ("x * r < {t}", lambda x, r, t, u: x * r < t),
)
_RETURNS: tuple[tuple[str, _Fn], ...] = (
    ("(result * {a} - r) % {m}", lambda y, x, r, a, m: (y * a - r) % m),
    ("result % {m}", lambda y, x, r, a, m: y % m),
    ("(result + {a}) % {m}", lambda y, x, r, a, m: (y + a) % m),
    ("(result + x * {a}) % {m}", lambda y, x, r, a, m: (y + x * a) % m),
    ("result // {a} + {m}", lambda y, x, r, a, m: y // a + m),
    ("abs(result - {m})", lambda y, x, r, a, m: abs(y - m)),
)
_TRIES = 8  # draws of a condition or body before a branch gives way to a plain assignment


@dataclass
class IfElseConfig(FamilyConfig):
    x_min: int = field(default=0, metadata={"help": "smallest input x"})
    x_max: int = field(default=12, metadata={"help": "largest input x"})
    r_min: int = field(default=1, metadata={"help": "smallest hidden r"})
    r_max: int = field(default=10, metadata={"help": "largest hidden r"})
    min_branches: int = field(default=2, metadata={"help": "fewest if/elif/else branches on x"})
    max_branches: int = field(default=3, metadata={"help": "most if/elif/else branches on x"})
    depth: int = field(default=1, metadata={"help": "how many levels of `if` may nest inside a branch"})
    nest_prob: float = field(default=0.5, metadata={"help": "chance a branch body is a nested if"})
    modulus_prob: float = field(
        default=0.75, metadata={"help": "chance the result is reduced: `% m`, `// a` or `abs(result - m)`"}
    )
    many_prob: float = field(
        default=0.4,
        metadata={"help": "chance a branch body is many-to-one in r (`r // a`, `r % a`, min/max/abs, `r > t`)"},
    )
    m_min: int = field(default=20, metadata={"help": "smallest modulus m"})
    m_max: int = field(default=60, metadata={"help": "largest modulus m"})
    coef_max: int = field(default=9, metadata={"help": "largest constant in expressions"})
    simple: bool = field(
        default=False,
        metadata={"help": "branches compute only x+r, x-r, r-x, x*r (no constants): a tiny-model curriculum"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_range("x", self.x_min, self.x_max, minimum=0)
        self.check_range("r", self.r_min, self.r_max)
        self.check_range("m", self.m_min, self.m_max, minimum=2)
        if not 1 <= self.min_branches <= self.max_branches:
            raise ValueError(f"need 1 <= min_branches <= max_branches; got {self.min_branches}, {self.max_branches}")
        if self.depth < 0 or self.coef_max < 2:
            raise ValueError(f"need depth >= 0 and coef_max >= 2; got {self.depth}, {self.coef_max}")
        for name in ("nest_prob", "modulus_prob", "many_prob"):
            check_probability(name, getattr(self, name))


@dataclass
class IfElseLongConfig(IfElseConfig):
    min_branches: int = field(default=4, metadata={"help": "fewest if/elif/else branches on x"})
    max_branches: int = field(default=6, metadata={"help": "most if/elif/else branches on x"})
    depth: int = field(default=3, metadata={"help": "how many levels of `if` may nest inside a branch"})
    nest_prob: float = field(default=0.7, metadata={"help": "chance a branch body is a nested if"})


class IfElse(Family):
    name = "if_else"
    config_cls = IfElseConfig
    description = "one hidden r, if/elif/else on x with nested ifs on r, optional % m (training family)"

    def sample(self, rng: random.Random, cfg: IfElseConfig) -> Scenario:
        if rng.random() < cfg.modulus_prob:
            text, reduce = rng.choice(_RETURNS)
            a, m = rng.randint(2, cfg.coef_max), rng.randint(cfg.m_min, cfg.m_max)
            last = f"    return {text.format(a=a, m=m)}"

            def out(y: int, x: int, r: int) -> int:
                return reduce(y, x, r, a, m)
        else:
            last = "    return result"

            def out(y: int, x: int, r: int) -> int:
                return y

        def differ(f: _Fn, g: _Fn, points: list[tuple[int, int]]) -> bool:
            return any(out(f(x, r), x, r) != out(g(x, r), x, r) for x, r in points)

        def leaf(reach: list[tuple[int, int]]) -> tuple[list[str], _Fn]:
            pool = _SIMPLE if cfg.simple else _MANY if rng.random() < cfg.many_prob else _EXPRS
            for _ in range(_TRIES):
                text, fn = rng.choice(pool)
                a, t = rng.randint(2, cfg.coef_max), rng.randint(cfg.r_min, max(cfg.r_min, cfg.r_max - 1))
                # A comparison inside the expression must split the hidden values that reach it, or it is dead.
                if "{t}" not in text or len({r > t for _, r in reach}) == 2:
                    break
            else:
                text, fn = _EXPRS[0]
            return [f"result = {text.format(a=a, t=t)}"], lambda x, r: fn(x, r, a, t)

        def body(level: int, reach: list[tuple[int, int]]) -> tuple[list[str], _Fn]:
            """A branch body for the points `reach`: a nested if only where its condition splits them and its two
            bodies give different outputs on both sides (so neither side can be dropped), else an assignment."""
            if level >= cfg.depth or len(reach) < 2 or rng.random() >= cfg.nest_prob:
                return leaf(reach)
            conds = _R_CONDS if level % 2 == 0 else _R_CONDS + _X_CONDS
            for _ in range(_TRIES):
                text, test = rng.choice(conds)
                # Thresholds on r fall strictly inside its range.
                low = cfg.r_min + 1
                t = rng.randint(low, max(low, cfg.r_max - 1)) if text.startswith("r ") else rng.randint(1, 20)
                u = rng.randint(0, 2)
                yes = [(x, r) for x, r in reach if test(x, r, t, u)]
                if 0 < len(yes) < len(reach):
                    break
            else:
                return leaf(reach)
            no = [(x, r) for x, r in reach if not test(x, r, t, u)]
            then_lines, then = body(level + 1, yes)
            for _ in range(_TRIES):
                other_lines, other = body(level + 1, no)
                if differ(then, other, yes) and differ(then, other, no):
                    lines = [f"if {text.format(t=t, u=u)}:", *_indent(then_lines), "else:", *_indent(other_lines)]
                    return lines, _branch(lambda x, r: test(x, r, t, u), then, other)
            return leaf(reach)

        def chain(cuts: list[int], reach: list[tuple[int, int]]) -> tuple[list[tuple[str, list[str]]], _Fn]:
            """The if/elif/else arms on x from the first cut on, as (condition or "", body lines), and their function.
            An arm whose body matches the rest of the chain on either side of its cut is dropped."""
            if not cuts:
                lines, fn = body(0, reach)
                return [("", lines)], fn
            cut, other = cuts[0], rng.randint(cuts[0], cfg.x_max) if rng.random() < 0.2 else None
            if other is None:
                cond, test = f"x < {cut}", lambda x: x < cut
            elif other == cut:
                cond, test = f"x <= {cut}", lambda x: x <= cut
            else:
                cond, test = f"x < {cut} or x == {other}", lambda x: x < cut or x == other
            # The test reads x only: evaluate it once per x value, then split the points by a set lookup.
            passing = set(filter(test, xs))
            yes = [p for p in reach if p[0] in passing]
            if not 0 < len(yes) < len(reach):  # e.g. `x <= 12` with x_max=12: back to the plain cut
                cond, test = f"x < {cut}", lambda x: x < cut
                passing = set(filter(test, xs))
                yes = [p for p in reach if p[0] in passing]
            no = [p for p in reach if p[0] not in passing]
            if not yes or not no:
                return chain(cuts[1:], reach)
            arms, rest = chain(cuts[1:], no)
            for _ in range(_TRIES):
                lines, fn = body(0, yes)
                if differ(fn, rest, yes) and differ(fn, rest, no):
                    return [(cond, lines), *arms], _branch(lambda x, r: test(x), fn, rest)
            return arms, rest

        n = rng.randint(cfg.min_branches, cfg.max_branches)
        cuts = sorted(rng.sample(range(cfg.x_min + 1, cfg.x_max + 1), min(n - 1, cfg.x_max - cfg.x_min)))
        xs = range(cfg.x_min, cfg.x_max + 1)
        points = _points(cfg.x_min, cfg.x_max, cfg.r_min, cfg.r_max)
        arms, _ = chain(cuts, points)
        lines = ["def f(x, r):"]
        if len(arms) == 1:
            lines += _indent(arms[0][1])
        else:
            for i, (cond, arm) in enumerate(arms):
                lines.append(f"    {'else' if not cond else 'if' if i == 0 else 'elif'}{' ' + cond if cond else ''}:")
                lines += _indent(_indent(arm))
        lines.append(last)

        def draw() -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
            x_obs, x_new = rng.sample(range(cfg.x_min, cfg.x_max + 1), 2)
            return {"x": x_obs}, {"r": rng.randint(cfg.r_min, cfg.r_max)}, {"x": x_new}

        inputs, truth, intervention = draw()
        return Scenario(
            program="\n".join(lines),
            latent_domain={"r": (cfg.r_min, cfg.r_max)},
            inputs=inputs,
            truth=truth,
            intervention=intervention,
            redraw=draw,
            meta={"branches": len(arms), "modulus": last != "    return result"},
            check_branches=False,  # built live above: no if can be dropped on the domain of (x, r)
        )

    def render(self, scenario: Scenario, variant: str, output: int) -> str:
        return render_code(scenario, variant, output)


class IfElseLong(IfElse):
    name = "if_else_long"
    config_cls = IfElseLongConfig
    description = "OOD surface: if_else with 4-6 branches and up to 3 nested levels"


register(IfElse())
register(IfElseLong())


@lru_cache(maxsize=16)
def _points(x_min: int, x_max: int, r_min: int, r_max: int) -> tuple[tuple[int, int], ...]:
    """Every (x, r) of the domain, x-major: built once per range (a tuple, so the shared copy cannot change)."""
    return tuple((x, r) for x in range(x_min, x_max + 1) for r in range(r_min, r_max + 1))


def _branch(test: _Fn, then: _Fn, other: _Fn) -> _Fn:
    return lambda x, r: then(x, r) if test(x, r) else other(x, r)


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]
