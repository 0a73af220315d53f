"""`runtime/` imports nothing outside the standard library (optional drivers only lazily)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "runtime" / "sentra_runtime"
LAZY_ALLOWED = {"psycopg", "psycopg_pool"}


def imports(tree: ast.AST) -> list[tuple[str, int, bool]]:
    """(top-level module, line, at module level) for every import, nested ones included."""
    top_level = {id(node) for node in getattr(tree, "body", [])}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(name.split(".")[0], node.lineno, id(node) in top_level) for name in names]
    return found


def test_runtime_imports_only_the_standard_library() -> None:
    files = sorted(RUNTIME.rglob("*.py"))
    assert len(files) >= 8
    bad = []
    for path in files:
        for module, line, module_level in imports(ast.parse(path.read_text(), str(path))):
            if module == "sentra_runtime" or module in sys.stdlib_module_names:
                continue
            if module in LAZY_ALLOWED and not module_level:
                continue
            bad.append(f"{path.relative_to(RUNTIME)}:{line}: {module}")
    assert not bad, "non-standard imports in runtime/:\n" + "\n".join(bad)


def test_the_scan_sees_nested_imports() -> None:
    source = "def f():\n    import pydantic\n    from psycopg import sql\nimport psycopg\n"
    assert imports(ast.parse(source)) == [("psycopg", 4, True), ("pydantic", 2, False),
                                          ("psycopg", 3, False)]


def test_the_postgres_store_imports_its_driver_only_when_made() -> None:
    """Importing the runtime, its stores and the PostgreSQL store's module loads no driver."""
    import subprocess

    code = ("import sys, sentra_runtime, sentra_runtime.stores.postgres\n"
            "print(sorted(name for name in sys.modules if name.startswith('psycopg')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
