"""`--format github` and the notes: every format shows analysis notes only with `--notes`;
workflow commands escape what GitHub needs escaped."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sentra_lang.cli import main
from sentra_lang.diagnostics import Severity, diagnostic, render_github
from sentra_lang.source import Source, Span
from sentra_lang.testing.reports import render_github_report
from sentra_lang.testing.runner import RunResult

ROOT = Path(__file__).resolve().parents[2]


def output(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    main(["check", *args])
    out: str = capsys.readouterr().out
    return out


def notes_in(fmt: str, text: str) -> int:
    if fmt == "human":
        return len(re.findall(r": note\[SL\d+\]", text))
    if fmt == "github":
        return len(re.findall(r"^::notice ", text, re.M))
    if fmt == "json":
        return sum(d["severity"] == "info" for d in json.loads(text)["diagnostics"])
    return sum(r["level"] == "note" for r in json.loads(text)["runs"][0]["results"])


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.usefixtures("in_root")
def test_notes_only_with_the_option_in_every_format(capsys: pytest.CaptureFixture[str]) -> None:
    """The repository's policies are clean but have analysis notes (overlaps)."""
    with_notes = {fmt: notes_in(fmt, output(capsys, "policies", "--notes", "--format", fmt))
                  for fmt in ("human", "github", "json", "sarif")}
    count = with_notes["human"]
    assert count > 0 and set(with_notes.values()) == {count}
    for fmt in ("human", "github", "json", "sarif"):
        assert notes_in(fmt, output(capsys, "policies", "--format", fmt)) == 0, fmt


@pytest.mark.usefixtures("in_root")
def test_github_output_of_a_clean_repository_is_empty(capsys: pytest.CaptureFixture[str]) -> None:
    """Only the refunds policy's one documented warning (SL408: it compares a refund with half
    the order total, two fields the analysis cannot relate exactly) is annotated."""
    lines = output(capsys, "policies", "--format", "github").splitlines()
    assert len(lines) == 1 and lines[0].startswith("::warning file=policies/refunds.sentra,")
    assert "title=SL408 analysis not exact::analysis of `ISSUE_REFUND`" in lines[0]


def test_github_escapes_file_names_and_messages(tmp_path: Path) -> None:
    source = Source(str(tmp_path / "a,b:c%d.sentra"), "x\n")
    diag = diagnostic("SL101", "undeclared field `50%`\nsecond line",
                      Span.of_offsets(source, 0, 1), help="did you mean `a, b`?")
    line = render_github(diag)
    assert line.startswith("::error file=")
    assert "a%2Cb%3Ac%25d.sentra,line=1,col=1,endLine=1,endColumn=2," in line
    assert line.endswith(",title=SL101 undeclared field::undeclared field `50%25`%0Asecond line "
                         "(did you mean `a, b`?)")
    assert "\n" not in line


def test_a_diagnostic_without_a_file_has_no_location() -> None:
    line = render_github(diagnostic("SL005", "file is not UTF-8 text"))
    assert line == "::error title=SL005 not a text file::file is not UTF-8 text"


def test_test_report_leaves_notes_out() -> None:
    source = Source("p.sentra", "x\n")
    span = Span.of_offsets(source, 0, 1)
    note = diagnostic("SL404", "`A` and `B` overlap", span)
    warning = diagnostic("SL107", "field `x` is never read", span)
    assert note.severity is Severity.INFO
    run = RunResult([], [note, warning], [], [], 0, 0, 0.0)
    report = render_github_report(run)
    assert "::warning file=p.sentra" in report and "::notice" not in report
