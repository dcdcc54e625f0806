"""`multi_r` (OOD: causal structure): several hidden variables and a for loop.

`def f(x, r1, r2)` or `def f(x, r1, r2, r3)`: a running total built over `for i in range(<bound in x>)`, whose
body branches on i and the hidden variables, an optional branch on the hidden variables after the loop,
and an optional final `% m`. Every hidden variable appears in the program. One observation now constrains a
joint assignment, so the consistent set is a set of tuples; only counterfactual and interventional variants
are offered (abduction asks for the values of one hidden variable).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from cftrain.problems.base import Family, FamilyConfig, Scenario, check_probability, render_code
from cftrain.problems.registry import register

# {p}, {q}: two different hidden variables drawn per use; {a}: a constant; {t}, {u}: thresholds for one hidden
# variable and for a sum of two, inside their ranges so both sides of a test are reachable.
_BOUNDS = ("x + 1", "x % {a} + 2", "x // 2 + 2", "x + {a}", "min(x, {a}) + 2")
_INITS = ("0", "{p}", "x", "{p} * {a}", "x + {p}")
_CONDS = (
    "i < {p}", "i >= {p}", "i % 2 == 0 and {p} > {t}", "i == {p}", "i + {p} > x", "{p} > i",
    "i % {p} == 0", "{p} + {q} > i + {t}", "i % 2 == 1 or {p} < {t}",
)  # fmt: skip
_TERMS = (
    "{p}", "i * {p}", "{p} + i", "x + {p}", "{p} * {q}", "i", "{a}", "{p} + {q}", "x * {p}", "{p} * {a} - i",
)  # fmt: skip
_AFTER = (
    "if {p} > {t}:\n        total = total + x", "if {p} == {q}:\n        total = total * 2",
    "if {p} < {q}:\n        total = total + {p} * {a}", "if {p} + {q} > {u}:\n        total = total - x",
)  # fmt: skip
_RETURNS = ("total", "total + {p} * x", "total - {p}", "total + x", "total * {a} + {p}")


@dataclass
class MultiRConfig(FamilyConfig):
    n_hidden: int = field(default=3, metadata={"help": "number of hidden variables r1..rN (2 or 3)"})
    x_min: int = field(default=0, metadata={"help": "smallest input x (>= 0)"})
    x_max: int = field(default=8, metadata={"help": "largest input x (loops run up to about x + 9 times)"})
    r_min: int = field(default=1, metadata={"help": "smallest value of each hidden variable (>= 1: used in `% r`)"})
    r_max: int = field(default=4, metadata={"help": "largest value of each hidden variable"})
    after_prob: float = field(default=0.4, metadata={"help": "chance of an if on the hidden variables after the loop"})
    modulus_prob: float = field(default=0.5, metadata={"help": "chance the result is reduced `% m`"})
    m_min: int = field(default=9, metadata={"help": "smallest modulus m"})
    m_max: int = field(default=60, metadata={"help": "largest modulus m"})
    coef_max: int = field(default=6, metadata={"help": "largest constant in bounds and expressions"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_hidden not in (2, 3):
            raise ValueError(f"n_hidden must be 2 or 3; got {self.n_hidden}")
        self.check_range("x", self.x_min, self.x_max, minimum=0)
        self.check_range("r", self.r_min, self.r_max, minimum=1)
        self.check_range("m", self.m_min, self.m_max, minimum=2)
        if self.x_min == self.x_max:
            raise ValueError(f"need x_min < x_max so the intervention can change x; got {self.x_min}, {self.x_max}")
        if self.r_min == self.r_max:
            raise ValueError(f"need r_min < r_max so the hidden variables are unknown; got {self.r_min}, {self.r_max}")
        if self.coef_max < 2:
            raise ValueError(f"coef_max must be >= 2; got {self.coef_max}")
        for name in ("after_prob", "modulus_prob"):
            check_probability(name, getattr(self, name))


class MultiR(Family):
    name = "multi_r"
    config_cls = MultiRConfig
    description = "OOD causal structure: 2-3 hidden variables, a for loop with ifs on i and the hidden variables"
    n_latents = 3  # more than one: abduction is not offered

    def sample(self, rng: random.Random, cfg: MultiRConfig) -> Scenario:
        hidden = [f"r{k}" for k in range(1, cfg.n_hidden + 1)]

        def fill(template: str) -> str:
            p, q = rng.sample(hidden, 2)
            return template.format(
                p=p,
                q=q,
                a=rng.randint(2, cfg.coef_max),
                t=rng.randint(cfg.r_min, cfg.r_max - 1),
                u=rng.randint(2 * cfg.r_min, 2 * cfg.r_max - 1),
            )

        # Resample the shape until every hidden variable appears, so each one can matter.
        while True:
            lines = [f"    total = {fill(rng.choice(_INITS))}", f"    for i in range({fill(rng.choice(_BOUNDS))}):"]
            then, other = rng.sample(_TERMS, 2)
            lines += [
                f"        if {fill(rng.choice(_CONDS))}:",
                f"            total = total + {fill(then)}",
                "        else:",
                f"            total = total {rng.choice('+-')} {fill(other)}",
            ]
            after = rng.random() < cfg.after_prob
            if after:
                lines.append(f"    {fill(rng.choice(_AFTER))}")
            result = fill(rng.choice(_RETURNS))
            modulus = rng.random() < cfg.modulus_prob
            if modulus:
                m = rng.randint(cfg.m_min, cfg.m_max)
                result = f"total % {m}" if result == "total" else f"({result}) % {m}"
            lines.append(f"    return {result}")
            body = "\n".join(lines)
            if all(re.search(rf"\b{name}\b", body) for name in hidden):
                break

        def draw() -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
            x_obs, x_new = rng.sample(range(cfg.x_min, cfg.x_max + 1), 2)
            return {"x": x_obs}, {name: rng.randint(cfg.r_min, cfg.r_max) for name in hidden}, {"x": x_new}

        inputs, truth, intervention = draw()
        return Scenario(
            program="\n".join([f"def f(x, {', '.join(hidden)}):", body]),
            latent_domain={name: (cfg.r_min, cfg.r_max) for name in hidden},
            inputs=inputs,
            truth=truth,
            intervention=intervention,
            redraw=draw,
            meta={"n_hidden": cfg.n_hidden, "after": after, "modulus": modulus},
        )

    def render(self, scenario: Scenario, variant: str, output: int) -> str:
        return render_code(scenario, variant, output)


register(MultiR())
