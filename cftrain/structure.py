"""The structure of a program: what is left of its AST once names and integer constants are abstracted.

Train and test files never share a structure, so "held out" means a program shape the model never trained on.
"""

from __future__ import annotations

import ast
import hashlib
import re

_BUILTINS = frozenset({"abs", "min", "max", "range"})
_CONSTANT = re.compile(r"Constant\(value=-?\d+\)")
_NAME = re.compile(r"((?:id|arg|name)=)'(\w+)'")


def structure_of(tree: ast.Module) -> str:
    """A 16-hex-digit hash of the checked program `tree` with names and constants abstracted.

    Names become v0, v1, ... in order of first appearance, so renaming a variable (or a word problem's noun) does
    not make a "new" structure.
    """
    names: dict[str, str] = {}

    def canonical(match: re.Match) -> str:
        name = match.group(2)
        if name not in _BUILTINS:
            name = names.setdefault(name, f"v{len(names)}")
        return f"{match.group(1)}'{name}'"

    dumped = _NAME.sub(canonical, ast.dump(tree))
    return hashlib.sha1(_CONSTANT.sub("Constant(0)", dumped).encode()).hexdigest()[:16]
