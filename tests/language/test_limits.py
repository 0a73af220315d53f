"""The documented limits (docs/language.md, "Limits"): each one is a clear diagnostic with its
location, never a traceback (issue 11, item 16), and the limit itself is still accepted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sentra_lang.cli import main
from sentra_lang.compiler import compile_source
from sentra_lang.diagnostics import Diagnostic
from sentra_lang.parser import MAX_NESTING, MAX_NUMBER_DIGITS
from sentra_lang.testing.runner import SelectionError, keyword_matcher
from sentra_lang.testing.suite_parser import MAX_LIST_NESTING, parse_suite

HEADER = 'policy p version "1" {}\ninput {\n  a: bool\n  n: number\n  k: string\n}\n'
OTHERWISE = "otherwise allow as O\n"


def rule(condition: str) -> str:
    return f"{HEADER}action A {{\n  when {condition} allow as X\n}}\n{OTHERWISE}"


def errors(src: str) -> list[Diagnostic]:
    return [d for d in compile_source(src, "t.sentra").sorted_diagnostics()
            if d.severity.value == "error"]


def suite(body: str) -> str:
    return f'suite "s" for "p.sentra"\n{body}'


# ------------------------------------------------------------------------------- numbers

def test_a_number_of_5000_digits_is_sl012_at_the_number() -> None:
    digits = "9" * 5000
    [diag] = errors(rule(f"n > {digits}"))
    assert diag.code == "SL012" and diag.span.text == digits
    assert (diag.span.line, diag.span.column) == (8, 12)


def test_a_number_of_100_digits_is_fine() -> None:
    assert errors(rule(f"n > {'9' * MAX_NUMBER_DIGITS}")) == []
    assert errors(rule(f"n > 0.{'1' * (MAX_NUMBER_DIGITS - 1)}")) == []


@pytest.mark.parametrize("where", [
    'scenario "s" {{ agent "a" A {{ n: {d} }} -> allowed }}',
    'scenario "s" {{ agent "a" A -> allowed risk {d} }}',
    'cases "c" A {{ with n\n  {d} -> allowed }}',
    'property "p" A where n > {d} -> never blocked',
    'property "p" A examples {d} -> never blocked',
])
def test_a_long_number_in_a_suite_is_sl012(where: str) -> None:
    digits = "7" * 5000
    parsed, diagnostics = parse_suite(suite(where.format(d=digits)))
    assert [d.code for d in diagnostics] == ["SL012"]
    assert diagnostics[0].span.text == digits


# ------------------------------------------------------------------------------- nesting

def test_3000_nots_are_sl013_where_the_limit_is_crossed() -> None:
    [diag] = errors(rule("not " * 3000 + "a"))
    assert diag.code == "SL013" and diag.span.line == 8
    assert diag.span.text == "not " * (3000 - MAX_NESTING) + "a"


def test_100_levels_are_fine() -> None:
    assert errors(rule("not " * MAX_NESTING + "a")) == []
    nested = "(" * 5000 + "a" + ")" * 5000  # parentheses alone add no level
    assert errors(rule(nested)) == []


def test_alternating_groups_count_as_levels() -> None:
    condition = "a"
    for level in range(MAX_NESTING + 20):
        condition = f"(a {'and' if level % 2 else 'or'} {condition})"
    [diag] = errors(rule(condition))
    assert diag.code == "SL013"


def test_1000_chained_lets_are_one_sl013() -> None:
    lets = "let L0 = a\n" + "".join(f"let L{i} = L{i - 1}\n" for i in range(1, 1000))
    src = f"{HEADER}{lets}action A {{\n  when L999 allow as X\n}}\n{OTHERWISE}"
    [diag] = errors(src)
    assert diag.code == "SL013" and diag.span.text == f"L{MAX_NESTING + 1}"


def test_a_diamond_of_lets_is_sl304_quickly() -> None:
    lets = "let L0 = a\n" + "".join(f"let L{i} = L{i - 1} and L{i - 1}\n" for i in range(1, 60))
    src = f"{HEADER}{lets}action A {{\n  when L59 allow as X\n}}\n{OTHERWISE}"
    start = time.perf_counter()
    [diag] = errors(src)
    assert time.perf_counter() - start < 10
    assert diag.code == "SL304" and diag.span.text == "L13"  # 2 ** 14 - 1 tests


def test_a_cycle_of_lets_is_reported_once_per_cycle() -> None:
    src = (f"{HEADER}let A1 = B1 and a\nlet B1 = not A1\nlet C = C\n"
           f"action A {{\n  when A1 or C allow as X\n}}\n{OTHERWISE}")
    found = [(d.code, d.span.text, d.message) for d in errors(src)]
    assert found == [("SL213", "B1", "named condition `A1` refers to itself: A1 -> B1 -> A1"),
                     ("SL213", "C", "named condition `C` refers to itself: C -> C")]


def test_deep_lists_in_a_suite_are_sl013() -> None:
    deep = "[" * 5000 + "]" * 5000
    parsed, diagnostics = parse_suite(suite(f'scenario "s" {{ agent "a" A {{ n: {deep} }} -> allowed }}'))
    assert parsed is None and [d.code for d in diagnostics] == ["SL013"]
    assert diagnostics[0].span.line == 2


def test_lists_32_deep_are_fine() -> None:
    deep = "[" * MAX_LIST_NESTING + "]" * MAX_LIST_NESTING
    parsed, diagnostics = parse_suite(suite(f'scenario "s" {{ agent "a" A {{ n: {deep} }} -> allowed }}'))
    assert parsed is not None and diagnostics == []


def test_a_deep_where_condition_in_a_suite_is_sl013() -> None:
    parsed, diagnostics = parse_suite(suite('property "p" A where ' + "not " * 3000
                                            + "a -> never blocked"))
    assert [d.code for d in diagnostics] == ["SL013"]


def test_deep_keyword_selection_is_a_selection_error() -> None:
    with pytest.raises(SelectionError):
        keyword_matcher("not " * 3000 + "x")
    matches = keyword_matcher(" and ".join(["x"] * 5000))  # flat: any length
    assert matches is not None


def test_the_cli_reports_each_limit_without_a_traceback(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    cases = {"number": rule("n > " + "9" * 5000), "nots": rule("not " * 3000 + "a")}
    for name, src in cases.items():
        (tmp_path / f"{name}.sentra").write_text(src, encoding="utf-8")
    assert main(["check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "error[SL012]" in out and "error[SL013]" in out and "Traceback" not in out
