"""The versioned schema: created on first use with its version, a newer one refused with a clear
message, an older one upgraded (the SQLite layout from before versions, a real file of that
time: tests/fixtures/stores/legacy-v1.db), for SQLite and PostgreSQL."""

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
    assert sqlite_version(path) == SCHEMA_VERSION == 2
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"agents", "audit", "head", "policies", "audit_head"} <= tables


def test_the_layout_before_versions_is_version_1_and_verifies_without_a_head(
        legacy: Path) -> None:
    assert sqlite_version(legacy) == 0
    result = verify_file(legacy)
    assert result.ok and result.records == 7 and result.agents == 2, str(result)
    assert result.end == ""   # it keeps no head: a deleted tail would go unnoticed


def test_an_older_file_is_upgraded_when_opened(legacy: Path) -> None:
    engine = Engine(SENTRA_TABLE, SQLiteStore(legacy))
    assert sqlite_version(legacy) == 2
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
        connection.execute("PRAGMA user_version = 3")
    message = r"store schema version 3, newer than this sentra-runtime supports \(2\)"
    with pytest.raises(SchemaError, match=message):
        SQLiteStore(path)
    with pytest.raises(SchemaError, match=message):
        verify_file(path)


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
                                  ).fetchone() == ("2",)
        connection.execute("UPDATE sentra_meta SET value = '3' WHERE key = 'schema_version'")
    with pytest.raises(SchemaError, match=r"version 3, newer than this sentra-runtime"):
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
