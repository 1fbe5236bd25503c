"""The import graph of our packages, read from the source files (nothing is imported): no circles, and a core
library that never pulls in the heavy engines.

An edge is an import at module level, `if TYPE_CHECKING:` blocks included (a circle there is still two modules
that cannot be read one without the other); an import inside a function is a deliberate deferral and is left
out of the circles, but not out of the engines check. Importing `a.b.c` also runs the `__init__` of `a.b`,
so that package is an edge too, unless it encloses the importer (it is being imported already).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("minio3_data", "pipelines", "train")
ENGINES = {"torch", "vllm", "verl"}  # the `rl` and `gpu` extras; DESIGN.md invariant 5


def modules(root: Path) -> dict[str, Path]:
    """Every module of PACKAGES under `root` by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def import_nodes(tree: ast.AST, in_functions: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif in_functions or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from import_nodes(node, in_functions)


def imported(name: str, path: Path, known: dict[str, Path], in_functions: bool) -> set[str]:
    """The dotted names module `name` imports: relative imports resolved, `from p import m` naming module p.m."""
    names = set()
    for node in import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path)), in_functions):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        target = node.module or ""
        if node.level:
            base = name.split(".")[: None if path.name == "__init__.py" else -1]
            base = base[: len(base) - node.level + 1]
            target = ".".join([*base, *([node.module] if node.module else [])])
        names.add(target)
        names.update(f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known)
    return names


def graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of ours that importing it runs first (module-level imports)."""
    known = modules(root)
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        edges[name] = set()
        for target in imported(name, path, known, in_functions=False):
            parts = target.split(".")
            for k in range(1, len(parts) + 1):
                run = ".".join(parts[:k])
                if run in known and run != name and not name.startswith(run + "."):
                    edges[name].add(run)
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_through_others() -> None:
    edges = graph(ROOT)
    assert len(edges) > 100 and "pipelines.sampling.engine" in edges  # the walk found the tree
    assert circles(edges) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_core_library_imports_no_engine_and_no_stage() -> None:
    known = modules(ROOT)
    wrong = {
        name: sorted(t for t in imported(name, path, known, in_functions=True)
                     if t.split(".")[0] in ENGINES | {"pipelines", "train"})
        for name, path in known.items()
        if name.split(".")[0] == "minio3_data"
    }  # fmt: skip
    assert {name: found for name, found in wrong.items() if found} == {}
