"""`sentra-lang serve --db` with a PostgreSQL URL and `--workers`: what is refused before a
server starts, and how (exit 2 and a `sentra-lang serve: error:` line; a password never shown)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sentra_lang.cli import main
from tests.server.conftest import POLICY
from tests.test_packaging import without_extras

UNREACHABLE = "postgresql://me:s3cret@127.0.0.1:1/sentra"


def serve(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
          *args: str) -> tuple[int, str]:
    uvicorn = pytest.importorskip("uvicorn")

    def never(*arguments: object, **options: object) -> None:
        raise AssertionError("the server started")

    monkeypatch.setattr(uvicorn, "run", never)
    code = main(["serve", str(POLICY), *args])
    return code, capsys.readouterr().err


def test_an_unreachable_database_is_a_usage_error_without_its_password(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for workers in ("1", "3"):
        code, err = serve(capsys, monkeypatch, "--db", UNREACHABLE, "--workers", workers)
        assert code == 2 and "s3cret" not in err
        assert err.startswith("sentra-lang serve: error: cannot use postgresql://me:***@"
                              "127.0.0.1:1/sentra as the state database: cannot connect")


def test_a_newer_schema_is_refused(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    database = tmp_path / "future.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE agents (agent_id TEXT)")
        connection.execute("CREATE TABLE audit (seq INTEGER)")
        connection.execute("PRAGMA user_version = 7")
    code, err = serve(capsys, monkeypatch, "--db", str(database))
    assert code == 2 and "store schema version 7, newer than this sentra-runtime" in err


def test_workers_are_checked(capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, err = serve(capsys, monkeypatch, "--db", str(tmp_path / "x.db"), "--workers", "0")
    assert code == 2 and "--workers must be between 1 and 64, not 0" in err
    broken = tmp_path / "broken.sentra"
    broken.write_text("policy broken {")
    code = main(["serve", str(broken), "--db", str(tmp_path / "x.db"), "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 1 and "broken.sentra:1:" in err   # the diagnostics, before any worker


def test_a_postgres_url_without_the_extra_names_the_extra(tmp_path: Path) -> None:
    for args in (["serve", str(POLICY), "--db", UNREACHABLE], ["audit", "verify", UNREACHABLE],
                 ["db", "status", UNREACHABLE]):
        done = without_extras(*args, blocked=("psycopg", "psycopg_pool"), cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert done.stderr.endswith("needs the `postgres` extra: pip install "
                                    "'sentra-lang[postgres]'\n"), done.stderr
