"""Golden files: AST dumps, decision tables and rendered diagnostics (`--update-goldens`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from sentra_lang.compiler import compile_file
from sentra_lang.diagnostics import render_human, render_json, render_sarif
from sentra_lang.parser import parse
from sentra_lang.table import dump_table

ROOT = Path(__file__).resolve().parents[2]
POLICIES = sorted((ROOT / "policies").glob("*.sentra"))
DIAGNOSTIC_FIXTURES = sorted((ROOT / "tests" / "fixtures" / "diagnostics").glob("*.sentra"))


def dump_ast(node: Any, indent: int = 0) -> str:
    """An indented dump of AST nodes without spans: what equality compares."""
    pad = "  " * indent
    if dataclasses.is_dataclass(node):
        fields = [f for f in dataclasses.fields(node) if f.compare]
        lines = [f"{pad}{type(node).__name__}"]
        for f in fields:
            value = getattr(node, f.name)
            if dataclasses.is_dataclass(value) or (isinstance(value, tuple) and value):
                lines.append(f"{pad}  {f.name}:")
                lines.append(dump_ast(value, indent + 2))
            else:
                lines.append(f"{pad}  {f.name}: {value!r}")
        return "\n".join(lines)
    if isinstance(node, tuple):
        return "\n".join(dump_ast(item, indent) for item in node)
    return f"{pad}{node!r}"


@pytest.mark.parametrize("path", POLICIES, ids=[p.name for p in POLICIES])
def test_ast_dump(path: Path, golden) -> None:
    module, diagnostics = parse(path.read_text("utf-8"), path.name)
    assert module is not None and not diagnostics
    golden.check(f"ast/{path.stem}.txt", dump_ast(module) + "\n")


@pytest.mark.parametrize("path", POLICIES, ids=[p.name for p in POLICIES])
def test_table_json(path: Path, golden, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = compile_file(Path("policies") / path.name, analyse=False)
    assert result.ok and result.table is not None
    golden.check(f"table/{path.stem}.json", dump_table(result.table))


@pytest.mark.parametrize("path", DIAGNOSTIC_FIXTURES, ids=[p.name for p in DIAGNOSTIC_FIXTURES])
def test_rendered_diagnostics(path: Path, golden, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(path.parent)
    diagnostics = compile_file(path.name).sorted_diagnostics()
    human = "\n\n".join(render_human(d) for d in diagnostics) + "\n"
    golden.check(f"diagnostics/{path.stem}.txt", human)
    golden.check(f"diagnostics/{path.stem}.json", render_json(diagnostics))
    golden.check(f"diagnostics/{path.stem}.sarif",
                 render_sarif(diagnostics, version="test", root=Path("/project")))
