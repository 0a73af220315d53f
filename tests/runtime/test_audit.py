"""The audit log: every event recorded, the chain verifies, any tampering is found with its seq."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import Engine, MemoryStore, SQLiteStore, read_jsonl, verify_records
from sentra_runtime.audit import head


def run_some(engine: Engine) -> None:
    for index in range(6):
        engine.evaluate(f"agent{index % 2}", "EXPORT_DATA",
                        {"destination_type": "external", "data_classification": "sensitive"})
    engine.reset("agent0", operator="ops")
    engine.evaluate("agent0", "APPROVE_TRANSACTION", {"amount": "lots"})


@pytest.fixture(params=["memory", "sqlite"])
def records(request: pytest.FixtureRequest, sentra_table: dict[str, Any],
            tmp_path: Path) -> list[dict[str, Any]]:
    store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "a.db")
    engine = Engine(sentra_table, store)
    run_some(engine)
    out = io.StringIO()
    assert engine.export_audit(out) == 9
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["kind"] for line in lines[9:]] == ["state", "state", "head"]
    return lines[:9]   # the records, without the export's end lines


def assert_tampered(records: list[dict[str, Any]], seq: int, problem: str) -> None:
    result = verify_records(records)
    assert (result.ok, result.seq) == (False, seq), str(result)
    assert problem in result.problem


def test_every_event_is_recorded_and_chained(records: list[dict[str, Any]],
                                             sentra_table: dict[str, Any]) -> None:
    assert [r["kind"] for r in records] == ["policy_load"] + ["decision"] * 6 + ["reset",
                                                                                  "decision"]
    assert [r["seq"] for r in records] == list(range(1, 10))
    assert all(r["policy_hash"] == sentra_table["hash"] for r in records)
    assert verify_records(records).ok
    last = records[-1]
    assert last["decision"]["rule_id"] == "INVALID_INPUT"
    assert last["input"] == {"amount": "lots"}
    first = records[1]
    assert first["input"]["destination_type"] == "external"
    assert "0 + 80 = 80 <= 100" in first["explanation"]
    assert records[7]["operator"] == "ops"


def test_edit_is_found(records: list[dict[str, Any]]) -> None:
    records[4]["decision"]["allowed"] = True
    assert_tampered(records, 5, "edited")


def test_delete_is_found(records: list[dict[str, Any]]) -> None:
    del records[4]
    assert_tampered(records, 6, "seq 5 missing")


def test_insert_is_found(records: list[dict[str, Any]]) -> None:
    forged = dict(records[3], agent="mallory")
    records.insert(4, forged)
    assert_tampered(records, 4, "reordered or duplicated")


def test_insert_with_rewritten_seqs_is_found(records: list[dict[str, Any]]) -> None:
    from sentra_runtime.audit import seal
    forged = seal({k: v for k, v in records[3].items() if k not in ("seq", "prev", "hash")}, 5,
                  records[3]["hash"])
    records.insert(4, forged)
    for record in records[5:]:
        record["seq"] += 1
    assert_tampered(records, 6, "edited")


def test_reorder_is_found(records: list[dict[str, Any]]) -> None:
    records[3], records[4] = records[4], records[3]
    assert_tampered(records, 5, "reordered")


def test_truncation_is_found_with_an_anchored_head(records: list[dict[str, Any]]) -> None:
    anchored = head(records)
    assert verify_records(records[:-1]).ok
    assert not verify_records(records[:-1], expected_head=anchored).ok


def test_tampering_in_the_sqlite_file_is_found(sentra_table: dict[str, Any],
                                               tmp_path: Path) -> None:
    import sqlite3
    path = tmp_path / "a.db"
    run_some(Engine(sentra_table, SQLiteStore(path)))
    with sqlite3.connect(path) as connection:
        text = connection.execute("SELECT body FROM audit WHERE seq = 3").fetchone()[0]
        connection.execute("UPDATE audit SET body = ? WHERE seq = 3",
                           (text.replace('"Allowed"', '"Blocked"'),))
    result = SQLiteStore(path).verify_audit()
    assert (result.ok, result.seq) == (False, 3)


def test_jsonl_round_trip(sentra_table: dict[str, Any], tmp_path: Path) -> None:
    engine = Engine(sentra_table)
    run_some(engine)
    path = tmp_path / "log.jsonl"
    with path.open("w") as out:
        engine.export_audit(out)
    assert verify_records(read_jsonl(path)).ok
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("agent", "agent9", 1)
    path.write_text("\n".join(lines) + "\n")
    assert verify_records(read_jsonl(path)).seq == 3
