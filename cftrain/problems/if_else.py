"""`if_else` (train and in-distribution test) and `if_else_long` (OOD: deeper nesting, more branches).

The paper's template: `def f(x, r)` with one hidden integer r, an if/elif/else chain on x whose branches
compute arithmetic on x and r (a branch may nest an `if` on r), and an optional final reduction (`% m`, `// a`,
`abs(result - m)`) that makes several r consistent with one observation, so answers are sets.

Generator v3 draws from a finite pool of program structures. The pool is fixed by the structure knobs (not by
the seed, the split or the answer knobs): `structures` skeletons with distinct canonical structure hashes
(cftrain.structure), each a program whose int literals are slots. Every item picks one and draws all of its
constants afresh, so programs are new per item while structures repeat; train and test still never share one
(each structure falls in one split bucket). A skeleton is compiled once (execution.tabulated_template, the
sandbox's checks on its text) into a function that runs the program over the whole hidden range in one call: the
answers are still computed by executing the program. The generator also pairs each template with the function
it computes (the model below), to check, before anything runs, that every `if` is live: its condition splits the
points of (x, r) that reach it and its two bodies give different outputs on both sides.
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from functools import cache, lru_cache
from typing import Any

from cftrain import execution
from cftrain.problems.base import (
    Checked,
    Family,
    FamilyConfig,
    Scenario,
    check_probability,
    check_rows,
    knob_values,
    render_code,
    structure_split,
)
from cftrain.problems.registry import register
from cftrain.structure import digest, normal_form

_Fn = Callable[..., int]
# Branch bodies (the value of `result`); no two are one canonical structure (so `r + x` is absent).
_EXPRS = (
    "x + r", "x - r", "r - x", "x * r", "x * {a} + r", "(x + r) * {a}", "x * {a} - r", "x + r * {a}",
    "x * r + {a}", "(x + {a}) * r", "x * {a} * r", "r * {a} - x",
)  # fmt: skip
_SIMPLE = _EXPRS[:4]
# Many-to-one in r: several hidden values give one result, so an observation leaves a set of them.
_MANY = (
    "x + r // {a}", "(x + r) // {a}", "x * (r % {a})", "x + r % {a}", "max(x, r) + {a}", "min(x, r) * {a}",
    "abs(x - r) * {a}", "x + (r > {t}) * {a}",
)  # fmt: skip
_R_CONDS = ("r >= {t}", "r < {t}", "r > {t}", "r <= {t}", "r % 2 == 0", "r % 3 == {u}")
_X_CONDS = ("x >= {t}", "x < {t}", "x % 2 == 1", "x + r > {t}", "x * r < {t}")
# The reductions of `result` in the final return.
_RETURNS = (
    "(result * {a} - r) % {m}", "result % {m}", "(result + {a}) % {m}", "(result + x * {a}) % {m}",
    "result // {a} + {m}", "abs(result - {m})",
)  # fmt: skip


@cache
def _function(text: str, reduce: str = "result") -> Callable[..., _Fn]:
    """The generator's model of a body or condition, compiled from the very text the program shows:
    `make(a, t, u, ra, rm)` gives `fn(x, r)` for `text` with its constants a, t, u, reduced by the return `reduce`
    (whose constants are ra, rm). Only the liveness check uses it; answers come from running the program. Compiled
    once per process, like code (a fixed set of texts; execution.clear_caches leaves it)."""
    body = reduce.format(a="ra", m="rm").replace("result", f"({text.format(a='a', t='t', u='u')})")
    scope = {"__builtins__": {}, "abs": abs, "min": min, "max": max}
    return eval(f"lambda a, t, u, ra, rm: lambda x, r: {body}", scope)  # noqa: S307 - the generator's own templates


@cache
def _splitter(text: str) -> Callable[[int, int, Sequence[tuple[int, int]]], tuple[list, list]]:
    """`split(t, u, points)`: the points where the condition `text` (constants t, u) holds, and the rest, in order
    (the liveness check's model of an `if`, evaluated inline: no call per point). Compiled once per text."""
    cond = text.format(t="t", u="u")
    return eval(  # noqa: S307 - the generator's own templates
        f"lambda t, u, pts: ([(x, r) for x, r in pts if {cond}], [(x, r) for x, r in pts if not ({cond})])",
        {"__builtins__": {}},
    )


# Every range knob stays within +-_LIMIT, so no generated program comes near the sandbox's magnitude cap (the
# largest intermediate value is about _LIMIT**4 = 6e10 < MAX_ABS): the one-pass tables need no per-step caps.
_LIMIT = 500


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
    m_max: int = field(default=99, metadata={"help": "largest modulus m"})
    coef_max: int = field(default=9, metadata={"help": "largest constant in expressions"})
    simple: bool = field(
        default=False,
        metadata={"help": "branches compute only x+r, x-r, r-x, x*r (no constants): a tiny-model curriculum"},
    )
    structures: int = field(
        default=128,
        metadata={
            "help": "size of the pool of program structures items draw from (fixed by the structure knobs; "
            "constants are drawn per item); fewer if the knobs admit fewer"
        },
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
        for name in ("x_max", "r_min", "r_max", "m_max", "coef_max"):
            if abs(getattr(self, name)) > _LIMIT:
                raise ValueError(f"{name} must be within +-{_LIMIT}; got {getattr(self, name)}")
        if self.structures < 1:
            raise ValueError(f"structures must be >= 1; got {self.structures}")
        for name in ("nest_prob", "modulus_prob", "many_prob"):
            check_probability(name, getattr(self, name))


@dataclass
class IfElseLongConfig(IfElseConfig):
    min_branches: int = field(default=4, metadata={"help": "fewest if/elif/else branches on x"})
    max_branches: int = field(default=6, metadata={"help": "most if/elif/else branches on x"})
    depth: int = field(default=3, metadata={"help": "how many levels of `if` may nest inside a branch"})
    nest_prob: float = field(default=0.7, metadata={"help": "chance a branch body is a nested if"})


# The knobs that do not change which structures the pool holds: one pool serves the train and the test split.
_NOT_STRUCTURAL = frozenset(f.name for f in fields(FamilyConfig))


@dataclass(frozen=True)
class _Skeleton:
    """One structure: the program with its literals as slots #0, #1, ... (`key`), how each slot's value is drawn
    (`slots`), and the shape the liveness check walks (`shape`)."""

    key: str
    text: str  # key with slot j written {j}: the program is text.format(*values)
    slots: tuple[str, ...]
    shape: tuple
    branches: int
    modulus: bool
    structure: str
    tree: ast.Module  # the checked template, compiled when an item first draws this skeleton


@dataclass
class _Pool:
    skeletons: list[_Skeleton]
    split: dict[str, list[int]]  # "train"/"test"/"any" -> indices of the skeletons there
    # Shared by the views IfElse.pool makes per config object: compiled tables by skeleton index, each slot kind's
    # value range and the splits of points by condition seen so far; per view: the knob values for meta.
    makers: dict[int, Callable] = field(default_factory=dict)
    knobs: dict[str, Any] = field(default_factory=dict)
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    splits: dict[tuple, tuple[list, list]] = field(default_factory=dict)
    drawers: dict[str, Callable] = field(default_factory=dict)  # skeleton key -> its _drawer


_POOLS: dict[tuple, _Pool] = {}
# Config objects seen, by identity, with their pool: computing a pool's key per attempt would cost more than the
# attempt. The config is kept alive here, so its id is not reused while cached; generation never changes a config.
_BY_CONFIG: dict[int, tuple[IfElseConfig, _Pool]] = {}
execution.on_clear(_POOLS.clear)
execution.on_clear(_BY_CONFIG.clear)
_SLOT = re.compile(r"#([0-9]+)")


class IfElse(Family):
    name = "if_else"
    config_cls = IfElseConfig
    description = "one hidden r, if/elif/else on x with nested ifs on r, optional % m (training family)"

    def pool(self, cfg: IfElseConfig) -> _Pool:
        """The structures this config's items draw from (built once per structure knobs)."""
        cached = _BY_CONFIG.get(id(cfg))
        if cached is not None and cached[0] is cfg:
            return cached[1]
        structural = tuple((f.name, getattr(cfg, f.name)) for f in fields(cfg) if f.name not in _NOT_STRUCTURAL)
        pool = _POOLS.get((self.name, structural))
        if pool is None:
            pool = _POOLS[self.name, structural] = _build_pool(self.name, cfg, structural)
        if len(_BY_CONFIG) > 64:
            _BY_CONFIG.clear()
        _BY_CONFIG[id(cfg)] = (
            cfg,
            _Pool(pool.skeletons, pool.split, pool.makers, knob_values(cfg), pool.ranges, pool.splits, pool.drawers),
        )
        return _BY_CONFIG[id(cfg)][1]

    def prepare(self, cfg: IfElseConfig) -> None:
        pool = self.pool(cfg)
        for index in pool.split[cfg.split]:
            _table_maker(pool, index)

    def _program(self, rng: random.Random, cfg: IfElseConfig) -> tuple[_Pool, int, list[int]] | str:
        """Pick a structure of cfg's split and draw its constants: (pool, skeleton index, values), or the reason
        the draw has a dead `if`."""
        pool = self.pool(cfg)
        choices = pool.split[cfg.split]
        if not choices:
            raise ValueError(
                f"family {self.name}: none of its {len(pool.skeletons)} program structures falls in split "
                f"{cfg.split}; raise the structures knob (now {cfg.structures}) or widen the structure knobs"
            )
        index = choices[rng.randrange(len(choices))]
        skeleton = pool.skeletons[index]
        values = _draw(rng, cfg, skeleton, pool)
        if values is None:
            return "dead-branch"
        return pool, index, values

    def attempt(self, rng: random.Random, cfg: IfElseConfig, want_set: bool) -> Checked | str:
        drawn = self._program(rng, cfg)
        if isinstance(drawn, str):
            return drawn
        pool, index, values = drawn
        table = (pool.makers.get(index) or _table_maker(pool, index))(*values)
        rs = range(cfg.r_min, cfg.r_max + 1)
        rows: dict[int, list[int]] = {}
        shared: dict[int, list[int]] = {}  # x -> indices of the hidden values whose output another one shares
        first = ""
        x_min, span = cfg.x_min, cfg.x_max - cfg.x_min + 1
        random_ = rng.random
        for _ in range(_OBSERVATIONS):  # one program, several observations: its table is computed once per x
            x_obs = x_min + int(random_() * span)  # two different x, as _two draws them
            x_new = x_min + int(random_() * (span - 1))
            x_new += x_new >= x_obs
            if x_obs not in rows:
                rows[x_obs] = table(x_obs, rs)
            if want_set:
                # Only an output that two hidden values share (and not all of them) can leave a set: draw among those.
                if x_obs not in shared:
                    row = rows[x_obs]
                    distinct = len(set(row))
                    shared[x_obs] = (
                        [i for i, y in enumerate(row) if row.count(y) > 1] if 1 < distinct < len(row) else []
                    )
                indices = shared[x_obs]
                if not indices:
                    first = first or "not-set-valued"
                    continue
                truth = indices[_randint(rng, 0, len(indices) - 1)]
            else:
                truth = _randint(rng, 0, len(rs) - 1)
            if x_new not in rows:
                rows[x_new] = table(x_new, rs)
            result = check_rows(rows[x_obs], rows[x_new], truth, cfg, want_set)
            if isinstance(result, str):
                first = first or result
                continue
            output, consistent, counterfactual, interventional = result
            if 0 <= interventional[0] < _SMALL and rng.random() >= 0.5 + 0.5 * interventional[0] / _SMALL:
                first = first or "small-answer"
                continue
            # The rows were computed unchecked (execution.tabulated_template): the two the item shows get the
            # sandbox's return check now (ints within bounds; an error here is a generator bug, so it is raised).
            execution.check_row(rows[x_obs])
            execution.check_row(rows[x_new])
            skeleton = pool.skeletons[index]
            scenario = _scenario(skeleton, values, cfg, x_obs, rs[truth], x_new)
            worlds = [{"r": rs[i]} for i in consistent]
            return Checked(scenario, output, worlds, counterfactual, interventional, skeleton.structure, pool.knobs)
        return first

    def sample(self, rng: random.Random, cfg: IfElseConfig) -> Scenario:
        """One live program with one observation (what `attempt` checks, for the generic `check_scenario`)."""
        for _ in range(cfg.max_attempts):
            drawn = self._program(rng, cfg)
            if not isinstance(drawn, str):
                pool, index, values = drawn
                x_obs, x_new = _two(rng, cfg.x_min, cfg.x_max)
                return _scenario(pool.skeletons[index], values, cfg, x_obs, _randint(rng, cfg.r_min, cfg.r_max), x_new)
        raise ValueError(f"family {self.name}: no live program in max_attempts={cfg.max_attempts}")

    def render(self, scenario: Scenario, variant: str, output: int) -> str:
        return render_code(scenario, variant, output)


class IfElseLong(IfElse):
    name = "if_else_long"
    config_cls = IfElseLongConfig
    description = "OOD surface: if_else with 4-6 branches and up to 3 nested levels"


register(IfElse())
register(IfElseLong())


def _table_maker(pool: _Pool, index: int) -> Callable[..., Callable[..., list[int]]]:
    """The compiled table of skeleton `index`, compiled on first use."""
    if index not in pool.makers:
        skeleton = pool.skeletons[index]
        pool.makers[index] = execution.tabulated_template(skeleton.tree, "f", len(skeleton.slots), "r", checked=False)
    return pool.makers[index]


def _scenario(skeleton: _Skeleton, values: list[int], cfg: IfElseConfig, x_obs: int, r: int, x_new: int) -> Scenario:
    program = skeleton.text.format(*values)
    return Scenario(
        program=program,
        latent_domain={"r": (cfg.r_min, cfg.r_max)},
        inputs={"x": x_obs},
        truth={"r": r},
        intervention={"x": x_new},
        meta={"branches": skeleton.branches, "modulus": skeleton.modulus},
        check_branches=False,  # every if was checked live on the domain of (x, r) by _draw
        params=("x", "r"),
    )


def _build_pool(name: str, cfg: IfElseConfig, structural: tuple) -> _Pool:
    """`cfg.structures` skeletons with distinct structures, drawn from a generator seeded by the structure knobs
    (up to 20 draws per place: a config whose knobs admit fewer structures gets a smaller pool). A skeleton is kept
    only if one of _VIABLE draws of its constants is live, so items do not spend their attempts on structures whose
    ifs can never all matter (say a nested `if r < t` inside `if r < t'` on a one-value arm)."""
    rng = random.Random(f"{name}|pool|{structural}")
    pool = _Pool([], {"any": [], "train": [], "test": []}, ranges=_slot_ranges(cfg))
    seen: set[str] = set()
    texts: set[str] = set()
    for _ in range(20 * cfg.structures):
        skeleton = _skeleton(rng, cfg, texts)
        if skeleton is None or skeleton.structure in seen:
            continue
        seen.add(skeleton.structure)
        if any(_draw(rng, cfg, skeleton, pool) is not None for _ in range(_VIABLE)):
            pool.split["any"].append(len(pool.skeletons))
            pool.split[structure_split(skeleton.structure)].append(len(pool.skeletons))
            pool.skeletons.append(skeleton)
            if len(pool.skeletons) == cfg.structures:
                break
    return pool


def _skeleton(rng: random.Random, cfg: IfElseConfig, seen: set[str]) -> _Skeleton | None:
    """Draw one structure: a chain of arms on x, bodies that may nest ifs, an optional reduction. None if its text
    is in `seen` (which it joins), or if its normal form has fewer ifs than written (two bodies of one if are the
    same structure: never live)."""
    slots: list[str] = []

    def slot(kind: str) -> str:
        slots.append(kind)
        return f"#{len(slots) - 1}"

    def leaf() -> tuple[list[str], tuple]:
        text = rng.choice(_SIMPLE if cfg.simple else _MANY if rng.random() < cfg.many_prob else _EXPRS)
        a = slot("a") if "{a}" in text else ""
        t = slot("t") if "{t}" in text else ""
        return [f"result = {text.format(a=a, t=t)}"], ("leaf", text, _index(a), _index(t))

    def body(level: int) -> tuple[list[str], tuple]:
        if level >= cfg.depth or rng.random() >= cfg.nest_prob:
            return leaf()
        text = rng.choice(_R_CONDS if level % 2 == 0 else _R_CONDS + _X_CONDS)
        t = slot("tr" if text in _R_CONDS else "tx") if "{t}" in text else ""
        u = slot("u") if "{u}" in text else ""
        then_lines, then = body(level + 1)
        other_lines, other = body(level + 1)
        lines = [f"if {text.format(t=t, u=u)}:", *_indent(then_lines), "else:", *_indent(other_lines)]
        return lines, ("nest", text, _index(t), _index(u), then, other)

    n = min(rng.randint(cfg.min_branches, cfg.max_branches), cfg.x_max - cfg.x_min + 1)
    arms: list[tuple] = []
    lines = ["def f(x, r):"]
    for i in range(n):
        arm_lines, shape = body(0)
        if n == 1:
            lines += _indent(arm_lines)
            arms.append((None, -1, shape))
            break
        if i == n - 1:
            lines.append("    else:")
            arms.append((None, -1, shape))
        else:
            # `x <= c` holds the cut's value minus one: both mean x below the cut.
            op = "<=" if rng.random() < 0.2 else "<"
            cut = slot("cut" + op)
            lines.append(f"    {'if' if i == 0 else 'elif'} x {op} {cut}:")
            arms.append((op, _index(cut), shape))
        lines += _indent(_indent(arm_lines))
    reduce = None
    if rng.random() < cfg.modulus_prob:
        text = rng.choice(_RETURNS)
        a = slot("a") if "{a}" in text else ""
        m = slot("m") if "{m}" in text else ""
        lines.append(f"    return {text.format(a=a, m=m)}")
        reduce = (text, _index(a), _index(m))
    else:
        lines.append("    return result")
    key = "\n".join(lines)
    if key in seen:  # drawn before: the same structure (checked or refused then)
        return None
    seen.add(key)
    tree = execution.check_template(key, "f")
    # The structure of any live program of this skeleton: its constants are abstracted, and those the normal form
    # compares (two bodies of one if) differ in every live program, as the slots differ here.
    form = normal_form(tree, slots=True)
    if form.count("if(") != key.count("if "):  # `elif` counts as an if too
        return None
    text = _SLOT.sub(r"{\1}", key)  # a str.format template: the program is text.format(*values)
    shape = (tuple(arms), reduce)
    return _Skeleton(key, text, tuple(slots), shape, n, reduce is not None, digest(form), tree)


def _index(slot: str) -> int:
    return int(slot[1:]) if slot else -1


def _randint(rng: random.Random, low: int, high: int) -> int:
    """A uniform int in [low, high] (2.5x faster than rng.randint; 53-bit floats, so the bias is nil here)."""
    return low + int(rng.random() * (high - low + 1))


# Small results (x + r and the like) are far more common than large ones: an item whose interventional answer y is
# in [0, _SMALL) is kept with probability 1/2 + y / (2 * _SMALL), which flattens the answers so that no single one
# covers more than about 2% of items (a constant guess cannot farm the reward).
_SMALL = 40
_VIABLE = 8  # draws of constants that must yield one live program before a skeleton joins the pool
_OBSERVATIONS = 16  # observations tried per program (tables are computed once per x, so a try is cheap)
_TRIES = 8  # draws of a condition's or a body's constants before the item is given up as dead


def _slot_ranges(cfg: IfElseConfig) -> dict[str, tuple[int, int]]:
    """(lowest value, number of values) of each kind of slot but cuts: thresholds on r fall strictly inside r's
    range (so a condition on r can split it), `r > t` inside an expression may sit at its low end."""
    low = cfg.r_min + 1

    def span(a: int, b: int) -> tuple[int, int]:
        return a, max(a, b) - a + 1

    return {
        "a": span(2, cfg.coef_max), "t": span(cfg.r_min, cfg.r_max - 1), "tr": span(low, cfg.r_max - 1),
        "tx": span(1, 20), "u": span(0, 2), "m": span(cfg.m_min, cfg.m_max), "cut<": (0, 0), "cut<=": (0, 0),
    }  # fmt: skip


def _draw(rng: random.Random, cfg: IfElseConfig, skeleton: _Skeleton, pool: _Pool) -> list[int] | None:
    """Values for the skeleton's slots such that every `if` is live on the domain of (x, r): its condition splits
    the points that reach it, and its two sides give different outputs on the points of either side. Constants
    are drawn where they are used, knowing which points reach there (a threshold is redrawn until it splits them,
    a body until it differs from its sibling), up to _TRIES times each; None if that fails."""
    drawer = pool.drawers.get(skeleton.key)
    if drawer is None:
        drawer = pool.drawers[skeleton.key] = _drawer(cfg, skeleton, pool)
    return drawer(rng)


# A model: (drawn slot values, rng.random, ra, rm, the points that reach the node) -> the node's function, or None.
_Model = Callable[[list, Callable[[], float], int, int, Sequence[tuple[int, int]]], "_Fn | None"]


def _drawer(cfg: IfElseConfig, skeleton: _Skeleton, pool: _Pool) -> Callable[[random.Random], list[int] | None]:
    """_draw for one skeleton, built once: the walk over its shape is done here, so a draw only draws and checks."""
    ranges = [pool.ranges[kind] for kind in skeleton.slots]
    splits = pool.splits  # (first x, last x, condition, t, u) -> the points of those x that pass it, and the rest
    per_x = cfg.r_max - cfg.r_min + 1
    arms, reduce = skeleton.shape
    # Each body's model returns the program's output (the reduction applied), so two bodies compare directly.
    returned, ra_slot, rm_slot = reduce or ("result", -1, -1)

    def slot(j: int) -> tuple[int, int, int]:  # (slot, lowest value, number of values); slot -1: the value is 0
        return (j, *ranges[j]) if j >= 0 else (-1, 0, 1)

    def differ(f: _Fn, g: _Fn, points: Sequence[tuple[int, int]]) -> bool:
        for x, r in points:  # stops at the first difference: live bodies usually differ on the first points
            if f(x, r) != g(x, r):
                return True
        return False

    def leaf(text: str, a_at: int, t_at: int) -> _Model:
        make = _function(text, returned)
        a_slot, a_low, a_span = slot(a_at)
        t_slot, t_low, t_span = slot(t_at)

        def model(values: list, random_: Callable, ra: int, rm: int, reach: Sequence) -> _Fn | None:
            a = 0
            if a_slot >= 0:
                a = values[a_slot] = a_low + int(random_() * a_span)
            if t_slot < 0:
                return make(a, 0, 0, ra, rm)
            rs = [r for _, r in reach]
            low, high = min(rs), max(rs)
            for _ in range(_TRIES):  # a comparison `r > t` inside the expression must split the r that reach it
                t = values[t_slot] = t_low + int(random_() * t_span)
                if low <= t < high:
                    return make(a, t, 0, ra, rm)
            return None

        return model

    def nest(text: str, t_at: int, u_at: int, then_node: tuple, other_node: tuple) -> _Model:
        cond, split = _function(text), _splitter(text)
        t_slot, t_low, t_span = slot(t_at)
        u_slot, u_low, u_span = slot(u_at)
        then_model, other_model = build(then_node), build(other_node)
        # A condition that reads one of x, r cannot split points that all share that one's value.
        reads = 1 if "x" not in text else 0 if "r" not in text else -1  # index into a point (x, r); -1: both

        def model(values: list, random_: Callable, ra: int, rm: int, reach: Sequence) -> _Fn | None:
            first, last = reach[0][0], reach[-1][0]
            whole = len(reach) == (last - first + 1) * per_x  # all r for a run of x: a slice
            if whole:  # every r of the x in first..last
                stuck = (per_x == 1) if reads == 1 else (first == last) if reads == 0 else False
            else:
                stuck = reads >= 0 and len({p[reads] for p in reach}) == 1
            for _ in range(_TRIES):
                t = u = 0
                if t_slot >= 0:
                    t = values[t_slot] = t_low + int(random_() * t_span)
                if u_slot >= 0:
                    u = values[u_slot] = u_low + int(random_() * u_span)
                if stuck:  # no draw can split the points: the tries only draw, as they would
                    continue
                if whole:
                    key = (first, last, text, t, u)
                    parts = splits.get(key)
                    if parts is None:
                        parts = splits[key] = split(t, u, reach)
                    yes, no = parts
                else:
                    yes, no = split(t, u, reach)
                if yes and no:
                    break
            else:
                return None
            test = cond(0, t, u, 0, 0)
            then = then_model(values, random_, ra, rm, yes)
            if then is None:
                return None
            for _ in range(_TRIES):
                other = other_model(values, random_, ra, rm, no)
                if other is not None and differ(then, other, yes) and differ(then, other, no):
                    return lambda x, r: then(x, r) if test(x, r) else other(x, r)
            return None

        return model

    def build(node: tuple) -> _Model:
        return leaf(*node[1:]) if node[0] == "leaf" else nest(*node[1:])

    models = [build(shape) for _, _, shape in arms]
    cuts = [(j, op == "<=") for op, j, _ in arms[:-1]]  # `x <= c` holds the cut's value minus one: both mean x < cut
    ra_slot, ra_low, ra_span = slot(ra_slot)
    rm_slot, rm_low, rm_span = slot(rm_slot)
    n_slots, n, x_min, x_max = len(skeleton.slots), len(arms), cfg.x_min, cfg.x_max
    points = _points(cfg.x_min, cfg.x_max, cfg.r_min, cfg.r_max)

    def draw(rng: random.Random) -> list[int] | None:
        values = [0] * n_slots
        random_ = rng.random
        ra = rm = 0
        if ra_slot >= 0:
            ra = values[ra_slot] = ra_low + int(random_() * ra_span)
        if rm_slot >= 0:
            rm = values[rm_slot] = rm_low + int(random_() * rm_span)
        bounds = _distinct(rng, x_min + 1, x_max, n - 1)
        for (j, below), bound in zip(cuts, bounds):
            values[j] = bound - below
        edges = [(x - x_min) * per_x for x in (x_min, *bounds, x_max + 1)]
        reach = [points[edges[i] : edges[i + 1]] for i in range(n)]  # the points each arm takes
        # From the last arm up. Arm i is live when its body differs from the chain after it both on its own
        # points (where that chain would run arm i + 1's body) and on the points after its cut (where the later
        # arms run).
        bodies: list[_Fn | None] = [models[-1](values, random_, ra, rm, reach[-1])]
        for i in range(n - 2, -1, -1):
            if bodies[-1] is None:
                return None
            later = bodies[::-1]  # arms i + 1, i + 2, ...
            for _ in range(_TRIES):
                body = models[i](values, random_, ra, rm, reach[i])
                if body is not None and differ(body, later[0], reach[i]):
                    j = i + 1
                    for other in later:
                        if differ(body, other, reach[j]):
                            break
                        j += 1
                    else:
                        continue
                    break
            else:
                return None
            bodies.append(body)
        return values if bodies[-1] is not None else None

    return draw


def _distinct(rng: random.Random, low: int, high: int, k: int) -> list[int]:
    """k different ints in [low, high], sorted, uniformly over the sets of k (rng.sample without its overhead)."""
    chosen: set[int] = set()
    while len(chosen) < k:
        chosen.add(_randint(rng, low, high))
    return sorted(chosen)


def _two(rng: random.Random, low: int, high: int) -> tuple[int, int]:
    """Two different ints in [low, high], uniformly (the observed x and the intervened one)."""
    first = _randint(rng, low, high)
    second = _randint(rng, low, high - 1)
    return first, second + (second >= first)


@lru_cache(maxsize=16)
def _points(x_min: int, x_max: int, r_min: int, r_max: int) -> tuple[tuple[int, int], ...]:
    """Every (x, r) of the domain, x-major: built once per range (a tuple, so the shared copy cannot change)."""
    return tuple((x, r) for x in range(x_min, x_max + 1) for r in range(r_min, r_max + 1))


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]
