"""Reading small YAML files (recipes, configs) as untrusted input: one-line errors naming the file, line and column,
and a cap on the size YAML aliases can expand to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_NODES = 100_000  # values in a loaded recipe once YAML aliases are expanded; real recipes have a few hundred
MAX_DEPTH = 50


def yaml_error(path: str | Path, error: yaml.YAMLError) -> str:
    """One line, `FILE:LINE:COL: problem`, for a YAML syntax error."""
    mark = getattr(error, "problem_mark", None)
    if mark is None:
        return f"{path}: invalid YAML: {' '.join(str(error).split())}"
    problem = " ".join(filter(None, (getattr(error, "context", None), getattr(error, "problem", None))))
    return f"{path}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {problem}"


def _expanded_size(value: Any, where: str) -> int:
    """Number of values in `value` with shared (aliased) parts counted each time they appear; ValueError on a cycle,
    on nesting deeper than MAX_DEPTH or beyond MAX_NODES. Memoised, so an alias chain costs its length, not its size."""
    memo: dict[int, int | None] = {}

    def size(node: Any, depth: int) -> int:
        if not isinstance(node, dict | list):
            return 1
        if depth > MAX_DEPTH:
            raise ValueError(f"{where}: nested deeper than {MAX_DEPTH} levels")
        if id(node) in memo:
            if memo[id(node)] is None:
                raise ValueError(f"{where}: a YAML alias refers to itself")
            return memo[id(node)]
        memo[id(node)] = None
        total = 1
        for child in node.values() if isinstance(node, dict) else node:
            total += size(child, depth + 1)
            if total > MAX_NODES:
                raise ValueError(
                    f"{where}: expands to more than {MAX_NODES} values (YAML aliases?); too big for a recipe"
                )
        memo[id(node)] = total
        return total

    return size(value, 0)


def read_yaml(path: str | Path, what: str = "recipe") -> Any:
    """A small YAML file (a recipe), or ValueError naming the file (and line and column for syntax errors)."""
    try:
        value = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{what} {path}: is a folder, expected a YAML file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{what} {path}: cannot read: {e}") from None
    except yaml.YAMLError as e:
        raise ValueError(yaml_error(path, e)) from None
    _expanded_size(value, f"{what} {path}")
    return value
