"""Paths a user gives for reports and databases: a clear usage error (exit 2), never a
traceback, and reports replaced atomically."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sentra_lang.cli import main

POLICY = 'policy p version "1" {}\ninput { amount: number = 0 }\n' \
         'action PAY {\n  when amount > 10 block as BIG "Too big."\n  allow as OK "Ok."\n}\n' \
         'otherwise block as NO "No."\n'
SUITE = 'suite "s" for "p.sentra"\nscenario "pay" {\n  agent "a" PAY { amount: 1 } -> allowed ' \
        'rule OK\n}\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "p.sentra").write_text(POLICY)
    (tmp_path / "s.sentra-test").write_text(SUITE)
    (tmp_path / "a_file").write_text("mine")
    return tmp_path


@pytest.mark.parametrize("option", ["--junit-xml", "--json"])
@pytest.mark.parametrize("target", ["a_file/report", "missing/../a_file/x", "."])
def test_unwritable_report_is_a_usage_error(project: Path, option: str, target: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["test", str(project / "s.sentra-test"), option, str(project / target)])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot write the" in err and "report" in err and "Traceback" not in err
    assert (project / "a_file").read_text() == "mine"


def test_reports_are_written_atomically_and_parse(project: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from sentra_lang import files
    from sentra_lang.testing import reports

    written: list[Path] = []

    def spy(path: Path, text: str) -> None:
        written.append(path)
        files.write_atomically(path, text)

    monkeypatch.setattr(reports, "write_atomically", spy)
    junit, report = project / "out" / "junit.xml", project / "out" / "report.json"
    assert main(["test", str(project / "s.sentra-test"), "--junit-xml", str(junit),
                 "--json", str(report)]) == 0
    assert written == [junit, report]
    assert ET.parse(junit).getroot().get("tests") == "1"
    assert json.loads(report.read_text())["summary"]["passed"] == 1
    assert not [p for p in (project / "out").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("db", ["missing/dir/y.db", "a_file", "."])
def test_serve_with_an_unusable_db_is_a_usage_error(project: Path, db: str,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    uvicorn = pytest.importorskip("uvicorn")
    pytest.importorskip("fastapi")

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server started")

    monkeypatch.setattr(uvicorn, "run", never)
    code = main(["serve", str(project / "p.sentra"), "--db", str(project / db)])
    err = capsys.readouterr().err
    assert code == 2
    assert "sentra-lang serve: error:" in err and str(project / db) in err
    assert (project / "a_file").read_text() == "mine"
