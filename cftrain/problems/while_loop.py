"""`while` (OOD: control flow never seen in training): loops whose bound or update depends on x and the hidden r.

`def f(x, r)` with one of three loop shapes: a counter loop `while i < <bound in r, x>` accumulating terms in
x, i and r; a threshold loop whose value climbs by an amount in r until it passes a bound in x; a decreasing
loop that shrinks a value built from x and r by subtraction or halving. The body may branch (if/else on the
loop state), and the result may be reduced `% m`. Termination holds by construction: every update moves the
loop variable strictly toward a bound that is fixed during the loop (steps are >= 1 because r >= 1, halving
only runs while the value is positive); the sandbox's step cap is the second guard.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from cftrain.problems.base import Family, FamilyConfig, Scenario, check_probability, render_code
from cftrain.problems.registry import register

# Counter loop: i counts up by 1 to a bound in r and x; total accumulates terms.
_COUNTER_BOUNDS = ("r + {a}", "x + r", "r * {a}", "x % {a} + r", "x // {a} + r", "r + x - {a}")
_COUNTER_TERMS = (
    "x", "i", "r", "x + i", "i * r", "x * r", "i + r", "x - i", "r - i", "i * {a}", "x * {a} - r", "i % {a} + r",
)  # fmt: skip
_COUNTER_CONDS = ("i % 2 == 0", "i % 3 == 0", "i < x", "i + r > x", "total > x * {a}", "i >= r")
_COUNTER_INITS = ("0", "x", "r", "{a}", "x * {a}")
_COUNTER_RETURNS = ("total", "total + i", "total - r", "total * {a} + x", "total + r * x")

# Threshold loop: value climbs (each update adds >= 1) until it reaches a bound in x.
_THRESHOLD_INITS = ("0", "x", "r", "x // 2", "{a}")
_THRESHOLD_BOUNDS = ("x * {a} + {b}", "x + {b}", "(x + {a}) * {b}", "x * x + {b}")
_THRESHOLD_STEPS = ("value + r + {c}", "value + r", "value + r * {c}", "value + 2 * r + {c}")
_THRESHOLD_OTHER = ("value + {c}", "value + r", "value + r + {c}", "value + x % {a} + 1")
_THRESHOLD_CONDS = ("count % 2 == 0", "value % 2 == 0", "value > x", "value % 3 == 1")
_THRESHOLD_RETURNS = (
    "count * {a}",
    "value",
    "count * {a} + value",
    "value - x + {b}",
    "count * {a} + r",
    "value + count",
)

# Decreasing loop: n falls (subtract >= 1, or halve while positive) until it reaches a bound >= 0.
_DECREASING_INITS = ("x * {a} + r", "x + r * {a}", "x * r + {a}", "(x + {a}) * r", "x + {a} * r + {b}")
_DECREASING_BOUNDS = ("{c}", "x", "r")
_DECREASING_STEPS = ("n - (r + {b})", "n - r", "n // 2", "n - r - {b}")
_DECREASING_CONDS = ("n % 2 == 0", "n > x * {a}", "steps % 2 == 0", "n % 3 == 0")
_DECREASING_RETURNS = (
    "steps * {a}",
    "n + x * {a}",
    "steps * {a} + n",
    "n * {a} + steps",
    "steps * {a} + r",
    "n * {a} + x",
)


@dataclass
class WhileConfig(FamilyConfig):
    x_min: int = field(default=0, metadata={"help": "smallest input x (>= 0)"})
    x_max: int = field(default=12, metadata={"help": "largest input x"})
    r_min: int = field(default=1, metadata={"help": "smallest hidden r (>= 1: loop steps in r must be positive)"})
    r_max: int = field(default=8, metadata={"help": "largest hidden r"})
    branch_prob: float = field(default=0.4, metadata={"help": "chance the loop body is an if/else"})
    modulus_prob: float = field(default=0.5, metadata={"help": "chance the result is reduced `% m`"})
    m_min: int = field(default=9, metadata={"help": "smallest modulus m"})
    m_max: int = field(default=60, metadata={"help": "largest modulus m"})
    coef_max: int = field(default=9, metadata={"help": "largest constant in loop bounds, steps and expressions"})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_range("x", self.x_min, self.x_max, minimum=0)
        self.check_range("r", self.r_min, self.r_max, minimum=1)
        self.check_range("m", self.m_min, self.m_max, minimum=2)
        if self.x_min == self.x_max:
            raise ValueError(f"need x_min < x_max so the intervention can change x; got {self.x_min}, {self.x_max}")
        if self.coef_max < 2:
            raise ValueError(f"coef_max must be >= 2; got {self.coef_max}")
        for name in ("branch_prob", "modulus_prob"):
            check_probability(name, getattr(self, name))


class While(Family):
    name = "while"
    config_cls = WhileConfig
    description = "OOD control flow: one hidden r, a while loop whose bound or update depends on r and x"

    def sample(self, rng: random.Random, cfg: WhileConfig) -> Scenario:
        def fill(template: str) -> str:
            return template.format(
                a=rng.randint(2, cfg.coef_max), b=rng.randint(1, cfg.coef_max), c=rng.randint(1, cfg.coef_max)
            )

        def add(var: str, expr: str) -> str:
            # Both spellings are kept: they are different structures to the split, same meaning to a reader.
            return f"{var} += {expr}" if rng.random() < 0.5 else f"{var} = {var} + {expr}"

        branch = rng.random() < cfg.branch_prob
        kind = rng.choice(("counter", "threshold", "decreasing"))
        if kind == "counter":
            lines = [f"    total = {fill(rng.choice(_COUNTER_INITS))}", "    i = 0"]
            lines.append(f"    while i < {fill(rng.choice(_COUNTER_BOUNDS))}:")
            if branch:
                then, other = rng.sample(_COUNTER_TERMS, 2)
                lines += [
                    f"        if {fill(rng.choice(_COUNTER_CONDS))}:",
                    f"            {add('total', fill(then))}",
                    "        else:",
                    f"            total = total - {fill(other)}"
                    if rng.random() < 0.3
                    else f"            {add('total', fill(other))}",
                ]
            else:
                lines.append(f"        {add('total', fill(rng.choice(_COUNTER_TERMS)))}")
            lines.append(f"        {add('i', '1')}")
            result = fill(rng.choice(_COUNTER_RETURNS))
        elif kind == "threshold":
            lines = [f"    value = {fill(rng.choice(_THRESHOLD_INITS))}", "    count = 0"]
            lines.append(f"    while value < {fill(rng.choice(_THRESHOLD_BOUNDS))}:")
            if branch:
                then, other = fill(rng.choice(_THRESHOLD_STEPS)), fill(rng.choice(_THRESHOLD_OTHER))
                if rng.random() < 0.5:
                    then, other = other, then
                lines += [
                    f"        if {fill(rng.choice(_THRESHOLD_CONDS))}:",
                    f"            value = {then}",
                    "        else:",
                    f"            value = {other}",
                ]
            else:
                lines.append(f"        value = {fill(rng.choice(_THRESHOLD_STEPS))}")
            lines.append(f"        {add('count', '1')}")
            result = fill(rng.choice(_THRESHOLD_RETURNS))
        else:
            lines = [f"    n = {fill(rng.choice(_DECREASING_INITS))}", "    steps = 0"]
            lines.append(f"    while n > {fill(rng.choice(_DECREASING_BOUNDS))}:")
            if branch:
                then, other = rng.sample(_DECREASING_STEPS, 2)
                lines += [
                    f"        if {fill(rng.choice(_DECREASING_CONDS))}:",
                    f"            n = {fill(then)}",
                    "        else:",
                    f"            n = {fill(other)}",
                ]
            else:
                lines.append(f"        n = {fill(rng.choice(_DECREASING_STEPS))}")
            lines.append(f"        {add('steps', '1')}")
            result = fill(rng.choice(_DECREASING_RETURNS))
        modulus = rng.random() < cfg.modulus_prob
        if modulus:
            m = rng.randint(cfg.m_min, cfg.m_max)
            result = f"{result} % {m}" if result.isidentifier() else f"({result}) % {m}"
        lines.append(f"    return {result}")

        def draw() -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
            x_obs, x_new = rng.sample(range(cfg.x_min, cfg.x_max + 1), 2)
            return {"x": x_obs}, {"r": rng.randint(cfg.r_min, cfg.r_max)}, {"x": x_new}

        inputs, truth, intervention = draw()
        return Scenario(
            program="\n".join(["def f(x, r):", *lines]),
            latent_domain={"r": (cfg.r_min, cfg.r_max)},
            inputs=inputs,
            truth=truth,
            intervention=intervention,
            redraw=draw,
            meta={"loop": kind, "branch": branch, "modulus": modulus},
        )

    def render(self, scenario: Scenario, variant: str, output: int) -> str:
        return render_code(scenario, variant, output)


register(While())
