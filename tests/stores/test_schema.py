"""The versioned schema: created on first use with its version, a newer one refused with a clear
message, an older one upgraded (the SQLite layout from before versions, a real file of that
time: tests/fixtures/stores/legacy-v1.db, and version 2, before risk-decay anchors:
legacy-v2.db), for SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from sentra_runtime import AgentState, Engine, SQLiteStore
from sentra_runtime.stores import SCHEMA_VERSION, SchemaError, open_store
from sentra_runtime.stores.sqlite import verify_file

from tests.runtime.helpers import SENTRA_TABLE

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "stores" / "legacy-v1.db"
LEGACY_V2 = LEGACY.with_name("legacy-v2.db")


def sqlite_version(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """A copy of a store file written before schema versions (7 records, 2 agents)."""
    path = tmp_path / "legacy.db"
    shutil.copy(LEGACY, path)
    return path


def test_a_new_sqlite_file_gets_the_current_schema_and_its_version(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SQLiteStore(path).close()
    assert sqlite_version(path) == SCHEMA_VERSION == 4
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        columns = {row[1] for row in connection.execute("PRAGMA table_info(agents)")}
    assert {"agents", "audit", "head", "policies", "audit_head"} <= tables
    assert "decay_anchor" in columns


def test_the_layout_before_versions_is_version_1_and_verifies_without_a_head(
        legacy: Path) -> None:
    assert sqlite_version(legacy) == 0
    result = verify_file(legacy)
    assert result.ok and result.records == 7 and result.agents == 2, str(result)
    assert result.end == ""   # it keeps no head: a deleted tail would go unnoticed


def test_an_older_file_is_upgraded_when_opened(legacy: Path) -> None:
    engine = Engine(SENTRA_TABLE, SQLiteStore(legacy))
    assert sqlite_version(legacy) == SCHEMA_VERSION
    assert engine.state("mallory") == AgentState(0, 3, "shut_down")
    assert engine.state("bob") == AgentState(30, 0, "active")
    result = engine.verify_audit()
    assert result.ok and result.end == "stored head" and result.records == 8, str(result)
    engine.evaluate("bob", "DELETE_RECORD")
    assert engine.verify_audit().ok
    with sqlite3.connect(legacy) as connection:
        connection.execute("DELETE FROM audit WHERE seq = 9")
    assert "deleted from the end" in verify_file(legacy).problem


def test_an_older_file_is_refused_when_upgrades_are_off(legacy: Path) -> None:
    with pytest.raises(SchemaError, match=r"version 1, older .*sentra-lang db upgrade"):
        SQLiteStore(legacy, upgrade=False)
    assert sqlite_version(legacy) == 0   # untouched


def test_a_newer_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 5")
    message = r"store schema version 5, newer than this sentra-runtime supports \(4\)"
    with pytest.raises(SchemaError, match=message):
        SQLiteStore(path)
    with pytest.raises(SchemaError, match=message):
        verify_file(path)


@pytest.fixture
def legacy_v2(tmp_path: Path) -> Path:
    """A copy of a version-2 store file (7 records, 3 agents: carol at risk 80, mallory shut
    down, bob reset), written by the runtime of that time."""
    path = tmp_path / "legacy-v2.db"
    shutil.copy(LEGACY_V2, path)
    return path


def test_a_version_2_file_verifies_read_only_and_is_upgraded_when_opened(
        legacy_v2: Path) -> None:
    assert sqlite_version(legacy_v2) == 2
    assert verify_file(legacy_v2).ok   # read as it is: no decay anchors
    assert sqlite_version(legacy_v2) == 2
    engine = Engine(decaying_table(), SQLiteStore(legacy_v2), clock=lambda: 2e9)
    assert sqlite_version(legacy_v2) == SCHEMA_VERSION
    assert engine.state("carol") == AgentState(80, 0, "active")   # no anchor: no decay yet
    assert engine.state("mallory") == AgentState(0, 3, "shut_down")
    engine.evaluate("carol", "FILE_READ")   # starts carol's decay: the anchor is now
    engine.clock = lambda: 2e9 + 2 * 3600
    assert engine.state("carol") == AgentState(60, 0, "active")
    result = engine.verify_audit()
    assert result.ok and result.records == 9 and result.agents == 3, str(result)


def test_a_version_2_file_is_refused_when_upgrades_are_off(legacy_v2: Path) -> None:
    with pytest.raises(SchemaError, match=r"version 2, older .*sentra-lang db upgrade"):
        SQLiteStore(legacy_v2, upgrade=False)
    assert sqlite_version(legacy_v2) == 2


def test_a_version_2_postgres_database_is_upgraded(postgres_url: str) -> None:
    """A database of the version-2 layout (its tables and functions, as that runtime made
    them), with an agent in it, gets the anchor column and the new functions."""
    import psycopg
    from sentra_runtime.stores import postgres

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        for statement in (*postgres.SCHEMA, *V2_FUNCTIONS):
            connection.execute(statement)
        connection.execute("INSERT INTO sentra_meta VALUES ('schema_version', '2')")
        connection.execute("INSERT INTO sentra_agents VALUES ('carol', 80, 0, false)")
    with pytest.raises(SchemaError, match=r"version 2, older"):
        open_store(postgres_url, upgrade=False)
    engine = Engine(decaying_table(), open_store(postgres_url), clock=lambda: 2e9)
    try:
        assert engine.state("carol") == AgentState(80, 0, "active")
        engine.evaluate("carol", "FILE_READ")
        engine.clock = lambda: 2e9 + 3 * 3600
        assert engine.state("carol") == AgentState(50, 0, "active")
        decision = engine.evaluate("carol", "FILE_READ")
        assert (decision.cumulative_risk, decision.decayed) == (50, 30)
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            assert connection.execute("SELECT value FROM sentra_meta WHERE key = "
                                      "'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
            assert connection.execute("SELECT decay_anchor FROM sentra_agents").fetchone() == (
                round((2e9 + 3 * 3600) * 1e6),)
    finally:
        engine.close()


V2_FUNCTIONS = (
    """CREATE FUNCTION sentra_begin(agents text, every boolean)
    RETURNS TABLE (agent_id bytea, cumulative_risk bigint, blocked_attempts bigint,
                   shut_down boolean)
    LANGUAGE sql AS $$ SELECT NULL::bytea, 0::bigint, 0::bigint, false WHERE false $$""",
)
"""The version-2 ``sentra_begin`` (its signature and result type; the upgrade replaces it)."""


def decaying_table() -> dict[str, object]:
    """The Sentra table with ``risk_decay 10 per 1h`` (a version-3 table)."""
    import json

    from tests.runtime.tables import reseal

    table = json.loads(SENTRA_TABLE.read_text(encoding="utf-8"))
    table["schema_version"] = 3
    table["settings"]["risk_decay"] = {"amount": 10, "period": 3600}
    return reseal(table)


def test_a_database_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(SchemaError, match="not a sentra audit store"):
        SQLiteStore(path)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_processes_opening_a_new_database_at_once_create_one_schema(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    target = str(tmp_path / "race.db") if kind == "sqlite" else request.getfixturevalue(
        "postgres_url")
    errors: list[BaseException] = []
    engines: list[Engine] = []
    lock = threading.Lock()

    def open_one() -> None:
        try:
            engine = Engine(SENTRA_TABLE, open_store(target))
            engine.evaluate("a", "DELETE_RECORD")
            with lock:
                engines.append(engine)
        except BaseException as error:   # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert engines[0].state("a").cumulative_risk == 90
    assert engines[0].verify_audit().ok
    for engine in engines:
        engine.close()


def test_a_new_postgres_database_gets_the_schema_and_a_newer_one_is_refused(
        postgres_url: str) -> None:
    import psycopg

    open_store(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        assert connection.execute("SELECT value FROM sentra_meta WHERE key = 'schema_version'"
                                  ).fetchone() == (str(SCHEMA_VERSION),)
        connection.execute("UPDATE sentra_meta SET value = '5' WHERE key = 'schema_version'")
    with pytest.raises(SchemaError, match=r"version 5, newer than this sentra-runtime"):
        open_store(postgres_url)


def test_a_postgres_database_that_is_not_utf8_is_refused(postgres_server: str) -> None:
    import psycopg

    with psycopg.connect(postgres_server, autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS sentra_latin1")
        connection.execute("CREATE DATABASE sentra_latin1 ENCODING 'LATIN1' TEMPLATE template0 "
                           "LC_COLLATE 'C' LC_CTYPE 'C'")
    url = postgres_server.rsplit("/", 1)[0] + "/sentra_latin1"
    try:
        with pytest.raises(SchemaError, match="encoding LATIN1; the store needs UTF8"):
            open_store(url)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as connection:
            connection.execute("DROP DATABASE sentra_latin1")
