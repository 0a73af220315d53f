"""`sentra-lang audit verify|export` and `sentra-lang db status|upgrade` on a SQLite file, a
JSON Lines export and a PostgreSQL database: exit codes, messages, and usage errors."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sentra_runtime import Engine
from sentra_runtime.stores import open_store

from sentra_lang.cli import main
from tests.runtime.helpers import SENTRA_TABLE
from tests.stores.test_schema import LEGACY


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(params=["sqlite", "postgres"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    target = str(tmp_path / "store.db") if request.param == "sqlite" else str(
        request.getfixturevalue("postgres_url"))
    engine = Engine(SENTRA_TABLE, open_store(target))
    for action in ("FILE_READ", "DELETE_RECORD", "CHANGE_PERMISSION"):
        engine.evaluate("a", action)
    engine.close()
    return target


def test_verify_export_and_verify_the_export(capsys: pytest.CaptureFixture[str],
                                             store_target: str, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "audit", "verify", store_target)
    assert code == 0 and out.endswith("ok: 4 records, hash chain intact; ends at the stored "
                                      "head; 1 agent state matches the log\n")
    export = tmp_path / "log.jsonl"
    code, _, err = run(capsys, "audit", "export", store_target, "-o", str(export))
    assert (code, err) == (0, f"wrote 4 records to {export}\n")
    code, out, _ = run(capsys, "audit", "verify", str(export))
    assert code == 0 and "ends at the stored head; 1 agent state matches" in out
    code, stdout_export, _ = run(capsys, "audit", "export", store_target)
    assert stdout_export == export.read_text()


def test_verify_reports_an_edited_state(capsys: pytest.CaptureFixture[str],
                                        store_target: str) -> None:
    if store_target.startswith("postgresql"):
        import psycopg

        with psycopg.connect(store_target, autocommit=True) as connection:
            connection.execute("UPDATE sentra_agents SET blocked_attempts = 0")
    else:
        with sqlite3.connect(store_target) as connection:
            connection.execute("UPDATE agents SET blocked_attempts = 0")
    code, out, _ = run(capsys, "audit", "verify", store_target)
    assert code == 1 and "tampered at seq 4: agent `a`: the stored state" in out


def test_a_password_is_never_printed(capsys: pytest.CaptureFixture[str],
                                     postgres_url: str) -> None:
    url = postgres_url.replace("postgres@", "postgres:s3cret@", 1)
    open_store(url).close()
    code, out, err = run(capsys, "audit", "verify", url)
    assert code == 0 and "s3cret" not in out + err and "postgres:***@" in out
    code, out, err = run(capsys, "db", "status", url.replace("127.0.0.1:", "127.0.0.1:1", 1))
    assert code == 2 and "s3cret" not in out + err


def test_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "audit", "verify", str(tmp_path / "missing.db"))
    assert code == 2 and "no such audit log" in err
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE t (x)")
    code, _, err = run(capsys, "audit", "verify", str(other))
    assert code == 2 and "not a sentra audit store" in err
    code, _, err = run(capsys, "audit", "verify", "postgresql://nobody@127.0.0.1:1/none")
    assert code == 2 and "cannot connect to postgresql://nobody@127.0.0.1:1/none" in err
    code, _, err = run(capsys, "db", "upgrade", str(tmp_path / "missing.db"))
    assert code == 2 and "no such store file" in err
    export = tmp_path / "log.jsonl"
    export.write_text("{}\n")
    code, _, err = run(capsys, "audit", "export", str(export))
    assert code == 2 and "an export is already JSON Lines" in err


def test_db_status_and_upgrade_of_the_layout_before_versions(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.db"
    shutil.copy(LEGACY, legacy)
    code, out, _ = run(capsys, "db", "status", str(legacy))
    assert code == 1 and "store schema version 1; this sentra-lang uses version 4" in out
    code, out, _ = run(capsys, "audit", "verify", str(legacy))
    assert code == 0 and "its end is not anchored" in out
    code, out, _ = run(capsys, "db", "upgrade", str(legacy))
    assert code == 0 and "upgraded the store schema from version 1 to 4" in out
    code, out, _ = run(capsys, "db", "upgrade", str(legacy))
    assert code == 0 and "current: nothing to do" in out
    code, out, _ = run(capsys, "db", "status", str(legacy))
    assert code == 0 and out.endswith("store schema version 4, current\n")
    code, out, _ = run(capsys, "audit", "verify", str(legacy))
    assert code == 0 and "ends at the stored head" in out


def test_db_upgrade_creates_the_schema_of_an_empty_postgres_database(
        capsys: pytest.CaptureFixture[str], postgres_url: str) -> None:
    code, out, _ = run(capsys, "db", "status", postgres_url)
    assert code == 1 and "no store yet" in out
    code, out, _ = run(capsys, "db", "upgrade", postgres_url)
    assert code == 0 and "created the store schema, version 4" in out
    assert run(capsys, "db", "status", postgres_url)[0] == 0
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("UPDATE sentra_meta SET value = '9'")
    code, _, err = run(capsys, "db", "upgrade", postgres_url)
    assert code == 2 and "version 9, newer than this sentra-runtime supports (4)" in err
    code, _, err = run(capsys, "audit", "verify", postgres_url)
    assert code == 2 and "version 9, newer" in err


def test_head_is_the_anchor_verify_checks(capsys: pytest.CaptureFixture[str],
                                          store_target: str, tmp_path: Path) -> None:
    """`audit head` gives the anchor (the same for a store and its export); `verify --anchor`
    passes while the log holds that record, grown or not, and fails once it was rewritten;
    `--expected-head` wants the log to end there."""
    code, out, _ = run(capsys, "audit", "head", store_target)
    anchor = out.strip()
    seq, _, digest = anchor.partition(":")
    assert code == 0 and seq == "4" and digest.startswith("sha256:")
    export = tmp_path / "log.jsonl"
    run(capsys, "audit", "export", store_target, "-o", str(export))
    assert run(capsys, "audit", "head", str(export))[1] == out
    assert run(capsys, "audit", "verify", store_target, "--expected-head", digest)[0] == 0
    engine = Engine(SENTRA_TABLE, open_store(store_target))
    engine.evaluate("b", "FILE_READ")
    engine.close()
    code, out, _ = run(capsys, "audit", "verify", store_target, "--anchor", anchor)
    assert code == 0 and "holds the anchored record seq 4" in out
    code, out, _ = run(capsys, "audit", "verify", store_target, "--expected-head", digest)
    assert code == 1 and "not at the expected head" in out
    with pytest.raises(SystemExit) as exited:   # argparse's usage error
        main(["audit", "verify", store_target, "--anchor", "four"])
    assert exited.value.code == 2 and "expected SEQ:HASH" in capsys.readouterr().err


def test_db_status_and_upgrade_of_a_version_2_file(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    """A store file of version 2 (before risk-decay anchors) is upgraded to 4 by `db upgrade`
    and verifies before and after."""
    from tests.stores.test_schema import LEGACY_V2

    legacy = tmp_path / "legacy-v2.db"
    shutil.copy(LEGACY_V2, legacy)
    code, out, _ = run(capsys, "db", "status", str(legacy))
    assert code == 1 and "store schema version 2; this sentra-lang uses version 4" in out
    assert run(capsys, "audit", "verify", str(legacy))[0] == 0
    code, out, _ = run(capsys, "db", "upgrade", str(legacy))
    assert code == 0 and "upgraded the store schema from version 2 to 4" in out
    code, out, _ = run(capsys, "audit", "verify", str(legacy))
    assert code == 0 and "3 agent states match the log" in out, out


def test_db_status_and_upgrade_of_a_version_3_file(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    """A store file of version 3 (before rate-limit windows and group assignments) is upgraded
    to 4 by `db upgrade`, keeps its agents and verifies before and after."""
    legacy = tmp_path / "legacy-v3.db"
    shutil.copy(LEGACY.with_name("legacy-v3.db"), legacy)
    code, out, _ = run(capsys, "db", "status", str(legacy))
    assert code == 1 and "store schema version 3; this sentra-lang uses version 4" in out
    assert run(capsys, "audit", "verify", str(legacy))[0] == 0
    code, out, _ = run(capsys, "db", "upgrade", str(legacy))
    assert code == 0 and "upgraded the store schema from version 3 to 4" in out
    code, out, _ = run(capsys, "audit", "verify", str(legacy))
    assert code == 0 and "3 agent states match the log" in out, out
