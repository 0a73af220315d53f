"""`render_human(color=True)` highlights the snippet's source line with the sentra lexer.

The highlighting only adds ANSI escapes: with them stripped, the coloured rendering is the plain
one (the golden files' form), so the carets stay under the same columns."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sentra_lang.compiler import compile_file, compile_source
from sentra_lang.diagnostics import render_human

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "tests" / "fixtures" / "diagnostics").glob("*.sentra"))
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def strip(text: str) -> str:
    return ANSI.sub("", text)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_coloured_snippet_strips_to_the_plain_rendering(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(path.parent)
    diagnostics = compile_file(path.name).sorted_diagnostics()
    assert diagnostics
    highlighted = 0
    for diag in diagnostics:
        plain = render_human(diag)
        coloured = render_human(diag, color=True)
        assert "\x1b[" not in plain
        assert strip(coloured) == plain
        if diag.span.source.text:
            snippet_line = coloured.split("\n")[2]
            assert snippet_line.startswith(f"{diag.span.line} | ")
            highlighted += bool(ANSI.search(snippet_line))  # a lone `}` has no colour
    assert highlighted, "no source line is highlighted"


def test_keywords_are_coloured_and_carets_stay_aligned() -> None:
    source = ('policy p version "1" {\n  strikes 3\n}\n\naction PAY {\n'
              '\twhen amont > 10 block risk 40 as BIG "too much"\n  allow as OK "fine"\n}\n')
    diag = next(d for d in compile_source(source, "p.sentra").sorted_diagnostics()
                if d.span.line == 6)
    coloured = render_human(diag, color=True)
    lines = coloured.split("\n")
    source_line, carets = lines[2], lines[3]
    assert re.search(r"\x1b\[[0-9;]*m[^\x1b]*\w", source_line)
    visible, caret_row = strip(source_line), strip(carets)
    assert visible == render_human(diag).split("\n")[2]
    start = caret_row.index("^")
    assert start == len(f"{diag.span.line} | ") + diag.span.column - 1
    assert len(visible) >= start
