"""Store schema version 4 (review tickets): a version-3 store is upgraded additively when a
store opens it (SQLite: a real file of that time, tests/fixtures/stores/legacy-v3-review.db;
PostgreSQL: the version-3 layout), keeps its agents and log, and then keeps tickets; an
upgrade can be refused; the schema is refused by a runtime that is older."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sentra_runtime import AgentState, Engine, SQLiteStore
from sentra_runtime.stores import SchemaError, open_store
from sentra_runtime.stores.sqlite import verify_file

from tests.runtime.helpers import compiled_table

LEGACY_V3 = Path(__file__).resolve().parents[1] / "fixtures" / "stores" / "legacy-v3-review.db"
REVIEWING = compiled_table('''policy reviewing version "1" {
  action_type normalize trim, upper
}
input {
  destination_type: string?
}
action EXPORT_DATA {
  review risk 30 as REVIEW_EXPORT "Exports need a human."
}
otherwise allow as OTHER "ok"
''')


def sqlite_version(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])


@pytest.fixture
def legacy_v3(tmp_path: Path) -> Path:
    """A copy of a version-3 store file (7 records, 3 agents: carol at risk 80, mallory shut
    down, bob reset), written by the runtime of that time."""
    path = tmp_path / "legacy-v3.db"
    shutil.copy(LEGACY_V3, path)
    return path


def test_a_version_3_file_verifies_read_only_and_is_upgraded_when_opened(
        legacy_v3: Path) -> None:
    assert sqlite_version(legacy_v3) == 3
    assert verify_file(legacy_v3).ok
    assert sqlite_version(legacy_v3) == 3
    with pytest.raises(SchemaError, match=r"version 3, older .*sentra-lang db upgrade"):
        SQLiteStore(legacy_v3, upgrade=False)
    engine = Engine(REVIEWING, SQLiteStore(legacy_v3))
    assert sqlite_version(legacy_v3) == 4
    assert engine.state("carol") == AgentState(80, 0, "active")
    assert engine.state("mallory") == AgentState(0, 3, "shut_down")
    held = engine.evaluate("carol", "EXPORT_DATA")
    assert held.label == "Review Required"
    over = engine.review(held.ticket, True, operator="alice")  # type: ignore[arg-type]
    assert (over.rule_id, over.projected_risk, over.blocked_attempts) == (
        "RISK_THRESHOLD_EXCEEDED", 110, 1)     # 80 + 30 > 100 at approval
    result = engine.verify_audit()
    assert result.ok and result.records == 10 and result.agents == 3, str(result)
    engine.close()
    with sqlite3.connect(legacy_v3) as connection:
        assert connection.execute("SELECT status FROM tickets").fetchall() == [("blocked",)]


def test_the_upgrade_command_upgrades_a_version_3_file(legacy_v3: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from sentra_lang.cli import main

    assert main(["db", "status", str(legacy_v3)]) == 1
    assert main(["db", "upgrade", str(legacy_v3)]) == 0
    assert sqlite_version(legacy_v3) == 4 and main(["db", "status", str(legacy_v3)]) == 0
    capsys.readouterr()


def test_a_version_3_postgres_database_is_upgraded(postgres_url: str) -> None:
    """A database of the version-3 layout (as that runtime made it), with an agent in it, gets
    the tickets table and the new functions."""
    import psycopg
    from sentra_runtime.stores import postgres

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        for statement in (*postgres.SCHEMA, *postgres.UPGRADE_TO_3, *postgres.FUNCTIONS):
            connection.execute(statement)
        connection.execute("INSERT INTO sentra_meta VALUES ('schema_version', '3')")
        connection.execute("INSERT INTO sentra_agents VALUES ('carol', 80, 0, false, NULL)")
    with pytest.raises(SchemaError, match=r"version 3, older"):
        open_store(postgres_url, upgrade=False)
    engine = Engine(REVIEWING, open_store(postgres_url))
    try:
        assert engine.state("carol") == AgentState(80, 0, "active")
        held = engine.evaluate("carol", "EXPORT_DATA")
        assert engine.review(held.ticket, False, operator="bob").blocked_attempts == 1  # type: ignore[arg-type]
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            assert connection.execute("SELECT value FROM sentra_meta WHERE key = "
                                      "'schema_version'").fetchone() == ("4",)
            assert connection.execute("SELECT status FROM sentra_tickets").fetchall() == [
                ("denied",)]
    finally:
        engine.close()
