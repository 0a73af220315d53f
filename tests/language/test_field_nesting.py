"""A field inside another declared field (`a` and `a.b`) is SL117, in either order and across
imports: input gives `a` as a value or as the object holding `b`, never both, and the runtime
refuses such a table. Before, the checker passed it and `compile` wrote a table no engine could
load (a verification probe of `diff` found it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sentra_runtime import Engine

from sentra_lang.compiler import compile_file, compile_source

POLICY = ('policy p version "1" {{}}\ninput {{\n{fields}}}\n'
          'action A {{\n  when {read} > 1 block as BIG\n}}\notherwise allow as O\n')


def errors(fields: list[str], read: str) -> list[tuple[str, str]]:
    text = POLICY.format(fields="".join(f"  {field}\n" for field in fields), read=read)
    compiled = compile_source(text, "p.sentra", analyse=False)
    found = [(d.code, d.message) for d in compiled.diagnostics if d.severity.value == "error"]
    if not found:   # what the checker accepts, the runtime loads
        assert compiled.table is not None
        Engine(compiled.table.model_dump(mode="json"))
    return found


@pytest.mark.parametrize(("fields", "message"), [
    (["a: int", "a.b: int"], "field `a.b` is inside the declared field `a`"),
    (["a.b: int", "a: int"], "field `a` holds the declared field `a.b`"),
    (["a: int", "a.b.c: int"], "field `a.b.c` is inside the declared field `a`"),
    (["a.b.c: int", "a.b: int"], "field `a.b` holds the declared field `a.b.c`"),
])
def test_a_field_inside_a_field_is_sl117(fields: list[str], message: str) -> None:
    assert errors(fields, "a.b" if "a.b: int" in fields else "a") == [("SL117", message)]


@pytest.mark.parametrize("fields", [["a.b: int", "a.c: int"], ["ab: int", "a.b: int"],
                                    ["a.bc: int", "a.b: int"], ["a.b: int", "b.a: int"]])
def test_siblings_and_names_that_only_share_letters_are_fine(fields: list[str]) -> None:
    assert errors(fields, "a.b") == []


def test_a_field_inside_an_imported_field_is_sl117(tmp_path: Path) -> None:
    (tmp_path / "lib.sentra").write_text('input {\n  context: string\n}\n', encoding="utf-8")
    main = tmp_path / "p.sentra"
    main.write_text('policy p version "1" {}\nimport "lib.sentra"\ninput {\n'
                    '  context.total: number\n}\naction A {\n  when context.total > 1 block as B\n'
                    '}\notherwise allow as O\n', encoding="utf-8")
    compiled = compile_file(main, analyse=False)
    assert [(d.code, d.message) for d in compiled.diagnostics if d.code == "SL117"] == [
        ("SL117", "field `context` holds the declared field `context.total`")]
    assert compiled.table is None
