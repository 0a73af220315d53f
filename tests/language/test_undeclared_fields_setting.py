"""The `undeclared_fields` setting through the pipeline: syntax, checks (with a "did you mean"),
the note `check` shows, formatting, the table, and what the runtime then does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sentra_runtime import Engine

from sentra_lang.formatter import format_source
from tests.helpers import assert_diagnostic, compile_ok

ROOT = Path(__file__).resolve().parents[2]


def policy(setting: str = "") -> str:
    return (f'policy p version "1" {{\n{setting}}}\n'
            "input {\n  context.account_flag: string?\n}\n"
            'action A {\n  when context.account_flag == "fraud" block as FRAUD "Fraud."\n'
            '  allow as OK "Ok."\n}\notherwise block as NO "No."\n')


@pytest.mark.parametrize(("setting", "expected"), [
    ("", "refuse"), ("  undeclared_fields refuse\n", "refuse"),
    ("  undeclared_fields ignore\n", "ignore"),
])
def test_the_setting_reaches_the_table(setting: str, expected: str) -> None:
    table = compile_ok(policy(setting)).table
    assert table is not None
    assert (table.schema_version, table.settings.undeclared_fields) == (2, expected)


def test_new_policies_refuse_a_misspelt_field() -> None:
    table = compile_ok(policy()).table
    assert table is not None
    engine = Engine(table.model_dump(mode="json"))
    typo = engine.evaluate("a", "A", {"context": {"acount_flag": "fraud"}})
    assert (typo.allowed, typo.rule_id) == (False, "UNDECLARED_FIELD")
    assert "did you mean `context.account_flag`?" in typo.reason
    assert engine.evaluate("b", "A", {"context": {"account_flag": "fraud"}}).rule_id == "FRAUD"


def test_ignore_is_a_note_that_check_shows() -> None:
    diag = assert_diagnostic(policy("  undeclared_fields ignore\n"), "SL305", underline="ignore")
    assert diag.severity.value == "info"
    assert "`undeclared_fields refuse`" in (diag.help or "")


@pytest.mark.parametrize(("value", "hint"), [
    ("refuze", "did you mean `refuse`?"), ("Ignore", "did you mean `ignore`?"),
    ('"refuse"', "did you mean `refuse`?"), ("3", "`refuse` blocks input"),
    ("normalize trim", "`refuse` blocks input"),
])
def test_a_bad_value_is_an_error_with_a_hint(value: str, hint: str) -> None:
    diag = assert_diagnostic(policy(f"  undeclared_fields {value}\n"), "SL210",
                             message="`undeclared_fields` is `refuse` or `ignore`")
    assert hint in (diag.help or "")


def test_a_misspelt_setting_name_gets_a_did_you_mean() -> None:
    diag = assert_diagnostic(policy("  undeclared_field refuse\n"), "SL110")
    assert diag.help == "did you mean `undeclared_fields`?"


def test_other_settings_refuse_a_word() -> None:
    assert_diagnostic(policy("  strikes three\n"), "SL210", underline="three")


def test_the_formatter_keeps_the_setting() -> None:
    source = policy("  undeclared_fields    ignore   # the caller sends more\n")
    formatted, problems = format_source(source, "p.sentra")
    assert formatted is not None and not problems
    assert "  undeclared_fields ignore  # the caller sends more\n" in formatted
    assert format_source(formatted, "p.sentra") == (formatted, [])


def test_check_json_reports_the_note(tmp_path: Path) -> None:
    path = tmp_path / "p.sentra"
    path.write_text(policy("  undeclared_fields ignore\n"), encoding="utf-8")
    shown = subprocess.run([sys.executable, "-m", "sentra_lang", "check", "--notes", "--format", "json",
                            str(path)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert shown.returncode == 0, shown.stderr
    codes = [item["code"] for item in json.loads(shown.stdout)["diagnostics"]]
    assert "SL305" in codes
