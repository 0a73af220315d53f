"""`sentra-lang explain` and `sentra-lang audit`: output, exit codes, no tracebacks."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sentra_runtime import Engine, SQLiteStore

from sentra_lang.cli import main
from tests.runtime.helpers import SENTRA_TABLE

ROOT = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_explain_human(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", str(SENTRA_TABLE), "export_data",
                       "--field", "destination_type=external",
                       "--field", "data_classification=Sensitive", "--state", "40,0")
    assert code == 0
    assert out.startswith("Blocked (RISK_THRESHOLD_EXCEEDED)")
    assert "40 + 80 = 120 > 100" in out


def test_explain_json_parses_values_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", str(SENTRA_TABLE), "APPROVE_TRANSACTION", "-f",
                       "amount=900", "-f", "context.max_approval_amount=100", "--agent", "x",
                       "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert (data["rule_id"], data["agent_id"]) == ("RISKY_OVER_LIMIT_TRANSACTION", "x")
    assert data["explanation"]["matched_rule"] == "RISKY_OVER_LIMIT_TRANSACTION"


def test_explain_compiles_a_sentra_policy(capsys: pytest.CaptureFixture[str]) -> None:
    source = ROOT / "policies" / "sentra.sentra"
    if not source.exists():
        pytest.skip("policies/sentra.sentra is not there yet")
    code, out, _ = run(capsys, "explain", str(source), "CHANGE_PERMISSION")
    assert (code, out.splitlines()[0]) == (0, "Blocked (BLOCK_PERMISSION_CHANGE)")


@pytest.mark.parametrize("argv", [
    ["explain", "missing.json", "X"],
    ["explain", str(SENTRA_TABLE), "X", "--field", "novalue"],
    ["explain", str(SENTRA_TABLE), "X", "--state", "1"],
    ["audit", "verify", "missing.db"],
])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and "error:" in err and "Traceback" not in err


def test_explain_rejects_a_tampered_table(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    table = json.loads(SENTRA_TABLE.read_text())
    table["rules"][0]["risk"] = 5
    (tmp_path / "t.json").write_text(json.dumps(table))
    code, _, err = run(capsys, "explain", str(tmp_path / "t.json"), "FILE_READ")
    assert code == 2 and "content hash mismatch" in err


def test_audit_verify_and_export(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    database = tmp_path / "store.db"
    engine = Engine(SENTRA_TABLE, SQLiteStore(database))
    for action in ("FILE_READ", "DELETE_RECORD", "CHANGE_PERMISSION"):
        engine.evaluate("a", action)
    engine.close()
    assert run(capsys, "audit", "verify", str(database))[0] == 0
    export = tmp_path / "log.jsonl"
    assert run(capsys, "audit", "export", str(database), "-o", str(export))[0] == 0
    kinds = [json.loads(line)["kind"] for line in export.read_text().splitlines()]
    assert kinds == ["policy_load", "decision", "decision", "decision", "state", "head"]
    assert run(capsys, "audit", "verify", str(export))[0] == 0
    with sqlite3.connect(database) as connection:
        connection.execute("DELETE FROM audit WHERE seq = 2")
    code, out, _ = run(capsys, "audit", "verify", str(database))
    assert code == 1 and "tampered at seq 3" in out and "seq 2 missing" in out


def test_audit_verify_refuses_a_non_log(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE t (x)")
    code, _, err = run(capsys, "audit", "verify", str(other))
    assert code == 2 and "not a sentra audit store" in err


def test_compile_emit_python_prints_the_code_that_runs(capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    policy = ROOT / "policies" / "sentra.sentra"
    code, table_text, _ = run(capsys, "compile", str(policy))
    assert code == 0
    code, source, _ = run(capsys, "compile", str(policy), "--emit", "python")
    assert code == 0
    engine = Engine(json.loads(table_text))
    assert source == engine.matcher.source
    compile(source, "emitted.py", "exec")   # a whole module, as printed
    assert "def match(action, fields):" in source and "def _block_0(" in source
    out = tmp_path / "matcher.py"
    assert run(capsys, "compile", str(policy), "--emit", "python", "-o", str(out))[0] == 0
    assert out.read_text(encoding="utf-8") == source
