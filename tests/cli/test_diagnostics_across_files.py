"""No diagnostic vanishes: the same problem in two files is two diagnostics (issue 11, item 13).

Diagnostics are deduplicated, sorted and hashed by `check`, `test` and `docs`; each place is
exercised with two files holding the very same problem at the very same position.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentra_lang.cli import main
from sentra_lang.diagnostics import diagnostic, sort_diagnostics
from sentra_lang.source import Source, Span

ERROR = 'policy p version "1" {}\naction PAY {\n  when amont > 1 allow as X\n}\notherwise block as NO\n'
SUITE = 'suite "s" for "p.sentra"\nscenario "one" {\n  agent "a" PAY { amont: 2 } -> allowed\n}\n'
POLICY = ('policy p version "1" {}\ninput { amount: number }\n'
          'action PAY {\n  when amount > 1 allow as X\n}\notherwise block as NO\n')


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def twins(tmp_path: Path, text: str, suffix: str = ".sentra") -> list[str]:
    """The same text in `a/x` and `b/x`: same file name, same positions, another folder."""
    paths = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir(exist_ok=True)
        path = tmp_path / folder / f"x{suffix}"
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    return paths


def test_check_reports_the_same_problem_in_each_file(tmp_path: Path, capsys) -> None:
    first, second = twins(tmp_path, ERROR)
    code, out, _ = run(capsys, "check", "--format", "json", first, second)
    found = [d["file"] for d in json.loads(out)["diagnostics"] if d["code"] == "SL101"]
    assert code == 1 and found == [first, second]


def test_check_human_output_counts_both(tmp_path: Path, capsys) -> None:
    first, second = twins(tmp_path, ERROR)
    _, out, _ = run(capsys, "check", first, second)
    assert f"{first}:3:8: error[SL101]" in out and f"{second}:3:8: error[SL101]" in out
    assert "2 files checked: 2 errors" in out


def test_test_runner_reports_the_same_suite_problem_in_each_file(tmp_path: Path, capsys) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "p.sentra").write_text(POLICY, encoding="utf-8")
    first, second = twins(tmp_path, SUITE, ".sentra-test")
    code, out, _ = run(capsys, "test", first, second)
    assert code == 2
    assert f"{first}:3:19" in out and f"{second}:3:19" in out


def test_docs_reports_the_same_error_in_each_policy(tmp_path: Path, capsys) -> None:
    first, second = twins(tmp_path, ERROR)
    code, _, err = run(capsys, "docs", first, second, "-o", str(tmp_path / "site"),
                       "--markdown-only")
    assert code == 1
    assert f"{first}:3:8: error[SL101]" in err and f"{second}:3:8: error[SL101]" in err


def _at(path: str) -> Span:
    source = Source(path, "when amont > 1\n")
    return Span.of_offsets(source, 5, 10)


def test_diagnostics_of_two_files_are_different_values() -> None:
    one = diagnostic("SL101", "undeclared field `amont`", _at("a/x.sentra"))
    other = diagnostic("SL101", "undeclared field `amont`", _at("b/x.sentra"))
    assert one != other and len({one, other}) == 2
    assert sort_diagnostics([other, one]) == [one, other]


def test_witnesses_tell_diagnostics_apart() -> None:
    span = _at("x.sentra")
    one = diagnostic("SL405", "inputs fall through", span, witness={"amount": 1})
    other = diagnostic("SL405", "inputs fall through", span, witness={"amount": 2})
    assert len(sort_diagnostics([one, other])) == 2


def test_true_repeats_are_merged() -> None:
    # the same file read twice (two Source objects) and the same problem: one diagnostic
    one = diagnostic("SL101", "undeclared field `amont`", _at("x.sentra"))
    again = diagnostic("SL101", "undeclared field `amont`", _at("x.sentra"))
    assert sort_diagnostics([one, again]) == [one]
