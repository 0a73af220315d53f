"""The toolchain's modules import each other without cycles (issue 12: checker, diagnostics and
highlight once formed one through the checker's vocabulary, now in `keywords.py`)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "sentra_lang"
# The language core: each stage may import earlier ones, never the reverse.
CORE = ["keywords", "source", "codes", "diagnostics", "parser", "loader", "checker", "compiler",
        "formatter", "highlight", "table", "analysis"]


def imported_modules(module: str) -> set[str]:
    """Every `sentra_lang.X` a module imports, at the top or inside a function."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sentra_lang"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name.split(".")[1] for name in found if name.startswith("sentra_lang.")}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target] if target in path else path + [target]
            if target not in state and (cycle := visit(target, path + [target])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_core_imports_without_cycles() -> None:
    graph = {module: imported_modules(module) & set(CORE) for module in CORE}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_keywords_import_nothing_of_the_toolchain() -> None:
    assert imported_modules("keywords") == set()


def test_the_cycle_finder_finds_the_old_cycle() -> None:
    old = {"checker": {"diagnostics"}, "diagnostics": {"highlight"}, "highlight": {"checker"}}
    assert find_cycle(old) == ["checker", "diagnostics", "highlight", "checker"]
