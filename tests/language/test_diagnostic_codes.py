"""Every diagnostic code: its documented example produces it, with the documented underline."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentra_lang.codes import CODES
from sentra_lang.compiler import compile_file, compile_source
from tests.helpers import assert_diagnostic

EXAMPLES = [code for code in CODES.values() if code.example]


@pytest.mark.parametrize("code", EXAMPLES, ids=[c.code for c in EXAMPLES])
def test_example_produces_code_with_underline(code) -> None:
    assert_diagnostic(code.example, code.code, underline=code.underline)


def test_codes_are_stable_and_documented() -> None:
    for code in CODES.values():
        assert code.code.startswith("SL") and len(code.code) == 5
        assert code.severity in {"error", "warning", "info"}
        assert code.title and code.explanation


def test_binary_file_is_sl005(tmp_path: Path) -> None:
    path = tmp_path / "bin.sentra"
    path.write_bytes(b"policy p \xff\xfe\x00 {}")
    [diag] = compile_file(path).diagnostics
    assert diag.code == "SL005" and diag.span.column == 10  # the first byte that is not UTF-8


def test_huge_file_is_sl006(tmp_path: Path) -> None:
    path = tmp_path / "huge.sentra"
    path.write_bytes(b"# " + b"x" * (9 * 1024 * 1024))
    assert [d.code for d in compile_file(path).diagnostics] == ["SL006"]


def test_importing_a_policy_is_sl053(tmp_path: Path) -> None:
    (tmp_path / "other.sentra").write_text('policy q version "1" {}\notherwise allow as Y\n')
    main = tmp_path / "main.sentra"
    main.write_text('import "other.sentra"\npolicy p version "1" {}\notherwise allow as X\n')
    [diag] = [d for d in compile_file(main).diagnostics if d.code == "SL053"]
    assert diag.span.text == '"other.sentra"'


def test_import_cycle_is_sl112(tmp_path: Path) -> None:
    (tmp_path / "a.sentra").write_text('import "b.sentra"\nlet A = {"a"}\n')
    (tmp_path / "b.sentra").write_text('import "a.sentra"\nlet B = {"b"}\n')
    main = tmp_path / "main.sentra"
    main.write_text('import "a.sentra"\npolicy p version "1" {}\notherwise allow as X\n')
    diags = [d for d in compile_file(main).diagnostics if d.code == "SL112"]
    assert diags and "a.sentra -> b.sentra -> a.sentra" in diags[0].message
    assert diags[0].span.text == '"a.sentra"'


def test_exploding_condition_is_sl304() -> None:
    disjunction = " and ".join(f"(f{i} or g{i})" for i in range(10))
    fields = "\n".join(f"  f{i}: bool\n  g{i}: bool" for i in range(10))
    src = (f'policy p version "1" {{}}\ninput {{\n{fields}\n}}\n'
           f"action A {{\n  when {disjunction} allow as X\n}}\notherwise allow as O\n")
    assert_diagnostic(src, "SL304", underline=disjunction)


def test_too_many_cells_is_sl406() -> None:
    fields = "\n".join(f"  n{i}: number" for i in range(5))
    chain = " and ".join(f"n{i} > n{i + 1}" for i in range(4))
    cond = chain + " and " + " and ".join(f"n0 > {j}" for j in range(8))
    src = (f'policy p version "1" {{}}\ninput {{\n{fields}\n}}\n'
           f"action A {{\n  when {cond} allow as X\n  allow as Y\n}}\notherwise allow as O\n")
    assert_diagnostic(src, "SL406", underline="action A")


def test_every_problem_in_a_file_is_reported_at_once() -> None:
    src = ('policy p version "1" {}\ninput { a: number }\n'
           'action A {\n  when b > 1 allow as X\n  when c allow as X\n}\n'
           'otherwise allow risk 500 as O\n')
    codes = sorted(d.code for d in compile_source(src).diagnostics)
    assert codes == ["SL101", "SL101", "SL105", "SL107", "SL302"]
