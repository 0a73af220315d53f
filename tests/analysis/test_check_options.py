"""`check` around the analysis: summarised overlap notes and `--all-witnesses`, the progress
line (stderr only), and SL406 instead of an answer at every limit."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from sentra_lang import regions
from sentra_lang.analysis import AnalysisOptions, analyse
from sentra_lang.cli import main
from sentra_lang.cli.progress import ProgressLine
from sentra_lang.compiler import compile_source
from tests.analysis.helpers import backticked, compiled, decided_by

HEADER = 'policy p version "1" {}\n'


def wide_overlap(later: int) -> str:
    """`TOP` decides every large amount; `later` rules on tools match large amounts too."""
    rules = ["  when amount > 100 block as TOP"]
    rules += [f'  when tool == "t{i}" allow risk 5 as R{i}' for i in range(later)]
    return (HEADER + "input {\n  amount: number\n  tool: string\n}\naction A {\n" +
            "\n".join(rules) + "\n  allow as REST\n}\notherwise block as OTHER\n")


def overlap_notes(src: str, options: AnalysisOptions | None = None) -> list[tuple[str, ...]]:
    result = compile_source(src, "t.sentra", analysis=options)
    return [backticked(d.message) for d in result.sorted_diagnostics() if d.code == "SL404"]


def test_few_overlaps_get_a_note_each() -> None:
    assert overlap_notes(wide_overlap(3)) == [("TOP", f"R{i}", "TOP") for i in range(3)]


def test_many_overlaps_of_one_rule_are_summarised() -> None:
    src = wide_overlap(40)
    (note,) = overlap_notes(src)
    assert note == ("TOP", "R0", "R1", "R2", "R39")
    result = compiled(src)
    (diag,) = [d for d in result.diagnostics if d.code == "SL404"]
    assert "40 later rules" in diag.message and "--all-witnesses" in (diag.help or "")
    assert diag.witness is not None and diag.witness["tool"] == "t0"
    assert decided_by(result, "A", diag.witness) == "TOP"


def test_all_witnesses_gives_every_pair() -> None:
    notes = overlap_notes(wide_overlap(40), AnalysisOptions(all_witnesses=True))
    assert sorted(notes) == sorted(("TOP", f"R{i}", "TOP") for i in range(40))


def test_check_all_witnesses_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.sentra"
    path.write_text(wide_overlap(10), encoding="utf-8")
    main(["check", str(path), "--format", "json", "--notes"])
    summary = json.loads(capsys.readouterr().out)["diagnostics"]
    main(["check", str(path), "--format", "json", "--notes", "--all-witnesses"])
    every = json.loads(capsys.readouterr().out)["diagnostics"]
    assert [d["code"] for d in summary].count("SL404") == 1
    assert [d["code"] for d in every].count("SL404") == 10


# ------------------------------------------------------------------------------ progress

def test_the_analysis_reports_its_progress() -> None:
    result = compiled(wide_overlap(600))
    assert result.table is not None and result.model is not None
    lines: list[str] = []
    analyse(result.table, result.model, AnalysisOptions(progress=lines.append, progress_after=0))
    assert lines and lines[0].startswith("analysing `A` (action 1 of 1): row ")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_line_is_redrawn_on_a_terminal_and_cleared() -> None:
    stream = _Terminal()
    line = ProgressLine(stream, interval=0)
    line.show("one")
    line.show("two")
    line.clear()
    assert stream.getvalue() == "\rone\x1b[K\rtwo\x1b[K\r\x1b[K"


def test_the_progress_line_needs_a_terminal_or_the_flag() -> None:
    quiet, forced = io.StringIO(), io.StringIO()
    ProgressLine(quiet).show("hidden")
    line = ProgressLine(forced, force=True, interval=0)
    line.show("shown")
    line.clear()
    assert quiet.getvalue() == "" and forced.getvalue() == "shown\n"


def test_progress_never_reaches_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.sentra"
    path.write_text(wide_overlap(300), encoding="utf-8")
    main(["check", str(path), "--format", "json", "--notes", "--progress"])
    assert json.loads(capsys.readouterr().out)["diagnostics"]


# -------------------------------------------------------------------------------- limits

def test_a_text_group_with_too_many_combinations_is_sl406() -> None:
    tests = " and ".join(f's contains "w{i}x"' for i in range(20))
    src = (HEADER + "input {\n  s: string\n  t: string\n}\naction A {\n"
           f"  when s == t and {tests} allow as X\n  allow as Y\n}}\notherwise block as OTHER\n")
    result = compile_source(src, "t.sentra")
    codes = [d.code for d in result.diagnostics if d.code.startswith("SL4")]
    assert codes == ["SL406"]


def test_too_many_pairs_with_all_witnesses_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(regions, "MAX_PAIRS", 5)
    import sentra_lang.analysis as analysis_module
    monkeypatch.setattr(analysis_module, "MAX_PAIRS", 5)
    result = compile_source(wide_overlap(20), "t.sentra",
                            analysis=AnalysisOptions(all_witnesses=True))
    codes = [d.code for d in result.diagnostics]
    assert codes.count("SL404") == 5 and codes.count("SL407") == 1
    assert [d.code for d in compile_source(wide_overlap(20), "t.sentra").diagnostics
            ].count("SL407") == 0


def test_too_many_pieces_is_sl406_not_an_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(regions, "DENSE_LIMIT", 1)
    monkeypatch.setattr(regions, "MAX_PIECES", 3)
    result = compile_source(wide_overlap(20), "t.sentra")
    found = [d for d in result.diagnostics if d.code.startswith("SL4")]
    assert [d.code for d in found] == ["SL406"]
    assert "too many pieces" in found[0].message


def test_the_sparse_engine_agrees_with_the_dense_one(monkeypatch: pytest.MonkeyPatch) -> None:
    src = wide_overlap(12).replace("allow as REST", 'when tool starts_with "t1" block as T1\n'
                                   "  allow as REST")
    dense = [(d.code, d.message, d.witness) for d in compiled(src).sorted_diagnostics()]
    monkeypatch.setattr(regions, "DENSE_LIMIT", 1)
    sparse = [(d.code, d.message) for d in compiled(src).sorted_diagnostics()]
    assert [(c, m) for c, m, _ in dense] == sparse
