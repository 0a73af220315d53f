"""The formatter: golden layouts, the laws (idempotent, print-then-parse), and `sentra-lang fmt`."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from sentra_lang import ast
from sentra_lang.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main
from sentra_lang.formatter import CLAUSE_ORDER, format_condition, format_module, format_source
from sentra_lang.parser import parse
from tests.conftest import ROOT
from tests.strategies import policies

CASES = Path(__file__).parent / "cases"
CASE_NAMES = sorted(path.name.removesuffix(".sentra.in") for path in CASES.glob("*.sentra.in"))
LAWS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fmt(text: str) -> str:
    formatted, diagnostics = format_source(text, "t.sentra")
    assert formatted is not None, diagnostics
    return formatted


def parsed(text: str) -> ast.Module:
    module, diagnostics = parse(text, "t.sentra")
    assert module is not None, diagnostics
    return module


def canonical_clauses(node: Any) -> Any:
    """The tree with every outcome's clauses in the formatter's order (the one change it makes)."""
    if isinstance(node, ast.Outcome):
        clauses = sorted(node.clauses, key=lambda clause: CLAUSE_ORDER.index(clause.kind))
        return dataclasses.replace(node, clauses=tuple(clauses))
    if isinstance(node, tuple):
        return tuple(canonical_clauses(child) for child in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changes = {f.name: canonical_clauses(getattr(node, f.name))
                   for f in dataclasses.fields(node) if f.compare and f.name != "span"}
        return dataclasses.replace(node, **changes)
    return node


def comment_texts(text: str) -> list[str]:
    return [comment.text.rstrip() for comment in parsed(text).comments]


# ---------------------------------------------------------------------------------- golden

@pytest.mark.parametrize("name", CASE_NAMES)
def test_golden_layout(golden: Any, name: str) -> None:
    source = (CASES / f"{name}.sentra.in").read_text(encoding="utf-8")
    golden.check(f"fmt/{name}.sentra", fmt(source))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_golden_output_is_canonical_and_keeps_meaning(name: str) -> None:
    source = (CASES / f"{name}.sentra.in").read_text(encoding="utf-8")
    formatted = fmt(source)
    assert fmt(formatted) == formatted
    assert parsed(formatted) == canonical_clauses(parsed(source))
    assert comment_texts(formatted) == comment_texts(source)


def test_the_sentra_policy_is_canonical() -> None:
    text = (ROOT / "policies" / "sentra.sentra").read_text(encoding="utf-8")
    assert fmt(text) == text


# ---------------------------------------------------------------------------- conditions

@pytest.mark.parametrize(("source", "expected"), [
    ("a and (b or c)", "a and (b or c)"),
    ("(a and b) or c", "a and b or c"),
    ("(a or b) or c", "(a or b) or c"),
    ("a and (b and c)", "a and (b and c)"),
    ("not (a and b)", "not (a and b)"),
    ("not (a)", "not a"),
    ("not (not a)", "not not a"),
    ("not (x == 1)", "not x == 1"),
    ("(((a)))", "a"),
    ("x not in {\"a\",\"b\"} or not x in S", 'x not in {"a", "b"} or not x in S'),
    ("x>=y and exists z", "x >= y and exists z"),
    ("s starts_with \"a\\\"b\"", 's starts_with "a\\"b"'),
])
def test_conditions_print_with_minimal_parentheses(source: str, expected: str) -> None:
    module = parsed(f"let C = {source}\n")
    let = module.items[0]
    assert isinstance(let, ast.Let)
    assert format_condition(let.value) == expected  # type: ignore[arg-type]
    assert parsed(f"let C = {expected}\n") == module


@pytest.mark.parametrize(("written", "printed"), [
    ("1.50", "1.5"), ("10.0", "10.0"), ("0.00001", "0.00001"), ("-7", "-7"), ("007", "7"),
])
def test_numbers_print_as_their_value(written: str, printed: str) -> None:
    assert fmt(f"input {{\n  n: number = {written}\n}}\n") == f"input {{\n  n: number = {printed}\n}}\n"


def test_strings_are_re_escaped() -> None:
    source = 'otherwise allow as X "q\\" b\\\\ t\\t n\\n"\n'
    assert fmt(source) == source
    assert fmt(source.replace("otherwise ", "otherwise   ")) == source


def test_a_module_built_by_hand_formats_without_spans() -> None:
    flag = ast.Ref(ast.Path(("ctx", "flag")))
    module = ast.Module((
        ast.PolicyDecl(ast.Name("p"), ast.Str("1"), (ast.Setting(ast.Name("strikes"), ast.Num(2)),)),
        ast.Let(ast.Name("C"), ast.Not(ast.Or((flag, ast.And((flag, flag)))))),
        ast.Otherwise(ast.Outcome("block", (
            ast.Clause("reason", ast.Str("no")), ast.Clause("id", ast.Name("NO"))))),
    ))
    text = format_module(module)
    assert text == ('policy p version "1" {\n  strikes 2\n}\n\n'
                    "let C = not (ctx.flag or ctx.flag and ctx.flag)\n\n"
                    'otherwise block as NO "no"\n')
    assert parsed(text) == canonical_clauses(module)


def test_comments_in_every_position_are_kept_in_order() -> None:
    source = (CASES / "comments.sentra.in").read_text(encoding="utf-8")
    formatted = fmt(source)
    assert comment_texts(formatted) == comment_texts(source)
    assert "strikes 2  # trailing on strikes\n" in formatted
    assert 'policy messy version "2.1" {  # trailing on header\n' in formatted
    assert "  # end of header block\n}\n" in formatted
    assert formatted.endswith("# end of file\n\n# really the end\n")


def test_unparsable_source_is_not_formatted() -> None:
    assert format_source("policy p {\n  strikes\n")[0] is None
    formatted, diagnostics = format_source('otherwise allow "bad \\q"\n')
    assert formatted is None and [d.code for d in diagnostics] == ["SL008"]


def test_rules_break_past_one_hundred_columns() -> None:
    reason = "r" * 70
    source = f'action A {{\n  when flag allow risk 10 as RULE threat "T" "{reason}"\n}}\n'
    assert fmt(source) == (f'action A {{\n  when flag\n    allow risk 10 as RULE threat "T"\n'
                           f'      "{reason}"\n}}\n')


# ------------------------------------------------------------------------------------ laws

@LAWS
@given(policies())
def test_formatting_is_idempotent(source: str) -> None:
    once = fmt(source)
    assert fmt(once) == once


@LAWS
@given(policies())
def test_print_then_parse_gives_the_same_tree(source: str) -> None:
    formatted = fmt(source)
    assert parsed(formatted) == canonical_clauses(parsed(source))
    assert comment_texts(formatted) == comment_texts(source)


@LAWS
@given(policies())
def test_a_module_without_comments_prints_canonical_text(source: str) -> None:
    module = parsed(source)
    bare = format_module(dataclasses.replace(module, comments=()))
    assert "#" not in bare.replace('"#', "")
    assert fmt(bare) == bare
    assert parsed(bare) == canonical_clauses(module)


# ------------------------------------------------------------------------------------- CLI

MESSY = "policy p {strikes 2}\notherwise block as NO\n"
CANONICAL = "policy p {\n  strikes 2\n}\n\notherwise block as NO\n"


def run_fmt(*args: str) -> int:
    return main(["fmt", *args])


def test_fmt_rewrites_files_in_place(tmp_path: Path) -> None:
    target = tmp_path / "a.sentra"
    target.write_text(MESSY, encoding="utf-8")
    assert run_fmt(str(target)) == EXIT_OK
    assert target.read_text(encoding="utf-8") == CANONICAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sentra"]


def test_fmt_check_lists_files_that_would_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messy, clean = tmp_path / "sub" / "messy.sentra", tmp_path / "clean.sentra"
    messy.parent.mkdir()
    messy.write_text(MESSY, encoding="utf-8")
    clean.write_text(CANONICAL, encoding="utf-8")
    assert run_fmt("--check", str(tmp_path)) == EXIT_FAILURE
    assert str(messy) in capsys.readouterr().out
    assert messy.read_text(encoding="utf-8") == MESSY
    assert run_fmt("--check", str(clean)) == EXIT_OK


def test_fmt_diff_prints_without_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "a.sentra"
    target.write_text(MESSY, encoding="utf-8")
    assert run_fmt("--diff", str(target)) == EXIT_OK
    out = capsys.readouterr().out
    assert "-policy p {strikes 2}\n" in out and "+  strikes 2\n" in out
    assert target.read_text(encoding="utf-8") == MESSY
    assert run_fmt("--check", "--diff", str(target)) == EXIT_FAILURE


def test_fmt_reads_stdin_and_writes_stdout(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", stdin(MESSY))
    assert run_fmt("-") == EXIT_OK
    assert capsys.readouterr().out == CANONICAL
    monkeypatch.setattr("sys.stdin", stdin(MESSY))
    assert run_fmt("--check", "-") == EXIT_FAILURE


def stdin(text: str | bytes) -> io.TextIOWrapper:
    """A standard input as a process has it: text over bytes (`fmt -` reads the bytes)."""
    return io.TextIOWrapper(io.BytesIO(text.encode() if isinstance(text, str) else text),
                            encoding="utf-8")


def test_fmt_leaves_a_file_with_syntax_errors_untouched(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.sentra"
    broken.write_text("policy p {\n  strikes\n", encoding="utf-8")
    messy = tmp_path / "z.sentra"
    messy.write_text(MESSY, encoding="utf-8")
    assert run_fmt(str(tmp_path)) == EXIT_FAILURE
    assert broken.read_text(encoding="utf-8") == "policy p {\n  strikes\n"
    assert "error[SL004]" in capsys.readouterr().err
    assert messy.read_text(encoding="utf-8") == CANONICAL


def test_fmt_missing_path_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_fmt(str(tmp_path / "nope.sentra")) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "nope.sentra" in err and "Traceback" not in err
