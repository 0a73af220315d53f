"""`sentra-lang check` and `compile` end to end: formats, exit codes, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentra_lang.cli import main

ROOT = Path(__file__).resolve().parents[2]
CLEAN = 'policy p version "1" {}\ninput { amount: number }\n' \
        'action PAY {\n  when amount > 10 block as BIG "Too big."\n  allow as OK\n}\n' \
        'otherwise block as NO\n'
WARNING = 'policy p version "1" {}\naction PAY {\n  allow "no id"\n}\notherwise block as NO\n'
ERROR = 'policy p version "1" {}\naction PAY {\n  when amont > 1 allow as X\n}\n'


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


@pytest.mark.parametrize(("source", "strict", "expected"), [
    (CLEAN, False, 0), (WARNING, False, 0), (WARNING, True, 1), (ERROR, False, 1)])
def test_check_exit_codes(tmp_path: Path, capsys, source: str, strict: bool, expected: int) -> None:
    path = write(tmp_path, "p.sentra", source)
    code, out, _ = run(capsys, "check", path, *(["--strict"] if strict else []))
    assert code == expected
    assert "1 file checked" in out


def test_check_policies_folder_is_clean(capsys) -> None:
    for name in ("sentra.sentra", "coding_agent.sentra"):
        code, out, _ = run(capsys, "check", "--strict", str(ROOT / "policies" / name))
        assert code == 0 and "0 errors, 0 warnings" in out, out
    # the refunds policy compares a refund with half the order total (two fields): the one
    # thing its analysis says it cannot judge exactly, and nothing else
    code, out, _ = run(capsys, "check", "--format", "json", str(ROOT / "policies"))
    found = [(d["code"], Path(d["file"]).name, d["message"].split("`")[1])
             for d in json.loads(out)["diagnostics"] if d["severity"] != "note"]
    assert code == 0 and found == [("SL408", "refunds.sentra", "ISSUE_REFUND")], found


@pytest.mark.parametrize("fmt", ["json", "sarif", "github"])
def test_machine_formats(tmp_path: Path, capsys, fmt: str) -> None:
    path = write(tmp_path, "p.sentra", ERROR)
    code, out, _ = run(capsys, "check", "--format", fmt, path)
    assert code == 1
    if fmt == "json":
        [diag] = [d for d in json.loads(out)["diagnostics"] if d["code"] == "SL101"]
        assert (diag["line"], diag["column"], diag["end_column"]) == (3, 8, 13)
    elif fmt == "sarif":
        sarif = json.loads(out)
        assert sarif["version"] == "2.1.0"
        [result] = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "SL101"]
        assert result["level"] == "error"
        assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 3
        assert sarif["runs"][0]["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "SL101"
    else:
        [line] = [line for line in out.splitlines() if line.startswith("::error ")]
        assert ",line=3,col=8,endLine=3,endColumn=13,title=SL101" in line


@pytest.mark.parametrize(("name", "content", "code_in_output"), [
    ("binary.sentra", b"\x7fELF\x02\x01\x01\x00\x00\x00", "SL005"),
    ("empty.sentra", b"", "SL007"),
    ("huge.sentra", b"#" * (9 * 1024 * 1024), "SL006"),
    ("broken.sentra", b"policy p {\n  strikes\n", "SL004"),
])
def test_bad_files_get_a_diagnostic_not_a_traceback(tmp_path: Path, capsys, name: str,
                                                    content: bytes, code_in_output: str) -> None:
    code, out, err = run(capsys, "check", write(tmp_path, name, content))
    assert code == 1 and code_in_output in out and "Traceback" not in out + err


def test_import_cycle_is_reported(tmp_path: Path, capsys) -> None:
    write(tmp_path, "a.sentra", 'import "b.sentra"\nlet A = {"a"}\n')
    write(tmp_path, "b.sentra", 'import "a.sentra"\nlet B = {"b"}\n')
    main_file = write(tmp_path, "main.sentra", 'import "a.sentra"\n' + CLEAN)
    code, out, _ = run(capsys, "check", main_file)
    assert code == 1 and "SL112" in out


@pytest.mark.parametrize("args", [["check", "missing.sentra"], ["compile", "missing.sentra"],
                                  ["compile", "."], ["check"], ["frobnicate"]])
def test_usage_errors_exit_2(capsys, args: list[str]) -> None:
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse reports its own usage errors
        code = int(exit_.code or 0)
    _, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err


def test_compile_writes_identical_bytes(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, "p.sentra", CLEAN)
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert run(capsys, "compile", path, "-o", str(first))[0] == 0
    assert run(capsys, "compile", path, "-o", str(second))[0] == 0
    assert first.read_bytes() == second.read_bytes()
    assert json.loads(first.read_text())["hash"].startswith("sha256:")


def test_compile_refuses_a_policy_with_errors(tmp_path: Path, capsys) -> None:
    out_file = tmp_path / "out.json"
    code, _, err = run(capsys, "compile", write(tmp_path, "p.sentra", ERROR), "-o", str(out_file))
    assert code == 1 and "SL101" in err and not out_file.exists()


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "sentra_lang", "check", str(ROOT / "policies")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_shipped_policies_are_formatted(capsys) -> None:
    assert main(["fmt", "--check", str(ROOT / "policies")]) == 0
    capsys.readouterr()


def test_compiled_table_gets_ordinary_permissions(tmp_path: Path, capsys) -> None:
    out_file = tmp_path / "table.json"
    assert run(capsys, "compile", write(tmp_path, "p.sentra", CLEAN), "-o", str(out_file))[0] == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out_file.stat().st_mode & 0o777 == 0o666 & ~umask


def test_check_states_which_policies_ignore_undeclared_fields(tmp_path: Path, capsys) -> None:
    """Issue 11: `check` shows the `undeclared_fields` setting in its human summary, per policy
    that ignores undeclared fields (with or without --notes); refusing, the default, is silent."""
    (tmp_path / "a.sentra").write_text('policy a version "1" {\n  undeclared_fields ignore\n}\n'
                                       'otherwise allow as OK\n', encoding="utf-8")
    (tmp_path / "b.sentra").write_text('policy b version "1" {\n  undeclared_fields refuse\n}\n'
                                       'otherwise allow as OK\n', encoding="utf-8")
    (tmp_path / "c.sentra").write_text('policy c version "1" {}\notherwise allow as OK\n',
                                       encoding="utf-8")
    line = (f"{tmp_path / 'a.sentra'}: undeclared fields are ignored (`undeclared_fields "
            "ignore` at line 2): a misspelt field is read past, not refused")
    for notes in ([], ["--notes"]):
        assert main(["check", str(tmp_path), *notes]) == 0
        out = capsys.readouterr().out.splitlines()
        assert [text for text in out if "undeclared fields are ignored (" in text] == [line]
        assert out[-1].startswith("3 files checked: 0 errors, 0 warnings, 1 note")
    assert main(["check", str(tmp_path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["diagnostics"] == []
