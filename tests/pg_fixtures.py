"""PostgreSQL for the tests: the session's server, a fresh schema per test, and the stores.

The server is SENTRA_TEST_POSTGRES_URL when set (`.ci/run` starts a throwaway cluster and sets
it); otherwise the session starts its own throwaway cluster when PostgreSQL's server binaries
are installed (tests/pg_cluster.py), so `python -m pytest` runs the PostgreSQL tests here too.
Without either, those tests skip with a message, except in CI (`CI` set to anything but
`false`/`0`), where a missing database fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import pytest

from tests.pg_cluster import URL_VARIABLE, Cluster, ClusterUnavailable
from tests.playwright_fixtures import in_ci

STORE_KINDS = ("memory", "sqlite", "postgres")
SQL_KINDS = ("sqlite", "postgres")


def unavailable(reason: str) -> NoReturn:
    """Skip (locally) or fail (in CI, as the browser tests do) a test that needs PostgreSQL."""
    message = (f"PostgreSQL tests need a server: set {URL_VARIABLE} or install PostgreSQL's "
               f"server binaries ({reason})")
    if in_ci():
        pytest.fail(f"CI: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server's URL for the whole session (its database ``postgres``)."""
    url = os.environ.get(URL_VARIABLE)
    if url:
        yield url
        return
    try:
        cluster = Cluster().start()
    except ClusterUnavailable as error:
        unavailable(str(error))
    try:
        yield cluster.url
    finally:
        cluster.stop()


def with_schema(url: str, schema: str) -> str:
    """``url`` with its connections' ``search_path`` set to ``schema``."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A database of the test's own: a fresh schema on the session's server (the store's tables
    are created there), dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(postgres_server, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as error:
        unavailable(f"cannot connect to {postgres_server}: {error}")
    yield with_schema(postgres_server, schema)
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster of the test's own, for tests that stop and start the server."""
    try:
        cluster = Cluster().start()
    except ClusterUnavailable as error:
        unavailable(str(error))
    try:
        yield cluster
    finally:
        cluster.stop()


StoreFactory = Callable[..., Any]


def store_target(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """Where a store of ``kind`` keeps its data: a SQLite file, a PostgreSQL URL, or nothing."""
    if kind == "sqlite":
        return str(tmp_path / "store.db")
    if kind == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return None


def store_factory(kind: str, target: str | None) -> StoreFactory:
    """``make(**options)``: a new store of ``kind`` on ``target`` (the same data each time,
    except for the in-memory store, which has none to share)."""
    from sentra_runtime import MemoryStore
    from sentra_runtime.stores import open_store

    def make(**options: Any) -> Any:
        if target is None:
            return MemoryStore(**options)
        return open_store(target, **options)

    return make
