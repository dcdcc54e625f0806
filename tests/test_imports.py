"""The package's imports run one way: no module imports, even inside a function, a module that imports it back."""

import ast

from conftest import ROOT


def _imports() -> dict[str, set[str]]:
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in (ROOT / "cftrain").rglob("*.py")}
    modules = {name.removesuffix(".__init__"): path for name, path in files.items()}
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            edges[name] |= {t for t in targets if t in modules and t != name}
    return edges


def test_no_import_cycles_even_through_function_level_imports():
    edges = _imports()
    packages = {"cftrain", "cftrain.problems"}  # `from cftrain.problems import X` re-exports, not a dependency back
    cycles = []
    for start in edges:
        stack, seen = [(start, [start])], {start}
        while stack:
            node, path = stack.pop()
            for nxt in edges[node] - packages:
                if nxt == start:
                    cycles.append(" -> ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert not cycles, cycles[:5]
    assert "cftrain.records" not in edges and not any(
        "cftrain.problems" in target for target in edges["cftrain.execution"]
    )  # the sandbox knows programs, not records
