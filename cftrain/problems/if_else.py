"""`if_else` (train and in-distribution test) and `if_else_long` (OOD: deeper nesting, more branches).

The paper's template: `def f(x, r)` with one hidden integer r, an if/elif/else chain on x whose branches
compute arithmetic on x and r (a branch may nest an `if` on r), and an optional final `% m` that makes
several r consistent with one observation, so answers are sets.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from cftrain.problems.base import Family, FamilyConfig, Scenario, render_code
from cftrain.problems.registry import register

_EXPRS = (
    "x + r", "r + x", "x - r", "r - x", "x * r", "x * {a} + r", "r * {a} + x", "(x + r) * {a}",
    "x * {a} - r", "x + r * {a}", "x * r + {a}", "(x + {a}) * r", "x * {a} * r", "r * {a} - x",
)  # fmt: skip
_SIMPLE = tuple(e for e in _EXPRS if "{a}" not in e)
_R_CONDS = ("r >= {t}", "r < {t}", "r > {t}", "r <= {t}", "r % 2 == 0", "r % 3 == {u}")
_X_CONDS = ("x >= {t}", "x < {t}", "x % 2 == 1", "x + r > {t}", "x * r < {t}")
_RETURNS = ("(result * {a} - r) % {m}", "result % {m}", "(result + {a}) % {m}", "(result - x) % {m}")


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
    modulus_prob: float = field(default=0.6, metadata={"help": "chance the result is reduced `% m`"})
    m_min: int = field(default=7, metadata={"help": "smallest modulus m"})
    m_max: int = field(default=40, metadata={"help": "largest modulus m"})
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
        for name in ("nest_prob", "modulus_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]; got {getattr(self, name)}")


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
        def fill(template: str) -> str:
            # Thresholds on r fall strictly inside its range, so both sides of a nested if are reachable.
            on_r = template.startswith("r ")
            t = rng.randint(cfg.r_min + 1, max(cfg.r_min + 1, cfg.r_max - 1)) if on_r else rng.randint(1, 20)
            return template.format(a=rng.randint(2, cfg.coef_max), t=t, u=rng.randint(0, 2))

        def body(level: int, indent: str) -> list[str]:
            if level < cfg.depth and rng.random() < cfg.nest_prob:
                conds = _R_CONDS if level % 2 == 0 else _R_CONDS + _X_CONDS
                then, other = body(level + 1, indent + "    "), body(level + 1, indent + "    ")
                while other == then:
                    other = body(level + 1, indent + "    ")
                return [f"{indent}if {fill(rng.choice(conds))}:", *then, f"{indent}else:", *other]
            return [f"{indent}result = {fill(rng.choice(_SIMPLE if cfg.simple else _EXPRS))}"]

        n = rng.randint(cfg.min_branches, cfg.max_branches)
        cuts = sorted(rng.sample(range(cfg.x_min + 1, cfg.x_max + 1), min(n - 1, cfg.x_max - cfg.x_min)))
        lines = ["def f(x, r):"]
        for i, cut in enumerate(cuts):
            cond = f"x < {cut}" if rng.random() < 0.8 else f"x < {cut} or x == {rng.randint(cut, cfg.x_max)}"
            lines += [f"    {'if' if i == 0 else 'elif'} {cond}:", *body(0, " " * 8)]
        lines += ["    else:", *body(0, " " * 8)] if cuts else body(0, " " * 4)
        if rng.random() < cfg.modulus_prob:
            m = rng.randint(cfg.m_min, cfg.m_max)
            lines.append(f"    return {rng.choice(_RETURNS).format(a=rng.randint(2, cfg.coef_max), m=m)}")
        else:
            lines.append("    return result")
        x_obs, x_new = rng.sample(range(cfg.x_min, cfg.x_max + 1), 2)
        return Scenario(
            program="\n".join(lines),
            latent_domain={"r": (cfg.r_min, cfg.r_max)},
            inputs={"x": x_obs},
            truth={"r": rng.randint(cfg.r_min, cfg.r_max)},
            intervention={"x": x_new},
            meta={"branches": n, "modulus": lines[-1] != "    return result"},
        )

    def render(self, scenario: Scenario, variant: str, output: int) -> str:
        return render_code(scenario, variant, output)


class IfElseLong(IfElse):
    name = "if_else_long"
    config_cls = IfElseLongConfig
    description = "OOD surface: if_else with 4-6 branches and up to 3 nested levels"


register(IfElse())
register(IfElseLong())
