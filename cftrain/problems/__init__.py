"""Problem families. Importing this package registers every family; add a family by importing its module here."""

from cftrain.problems import (
    if_else,  # noqa: F401  (registers if_else, if_else_long)
    math_word,  # noqa: F401  (registers math_word)
    multi_r,  # noqa: F401  (registers multi_r)
    while_loop,  # noqa: F401  (registers while)
)
from cftrain.problems.base import VARIANTS, Family, FamilyConfig, Scenario, generate
from cftrain.problems.registry import FAMILIES, get_family, register

__all__ = ["FAMILIES", "VARIANTS", "Family", "FamilyConfig", "Scenario", "generate", "get_family", "register"]
