"""Fixtures for the runtime tests: the hand-written Sentra reference table and engines on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import Engine, Store

from tests.pg_fixtures import STORE_KINDS, store_factory, store_target
from tests.runtime.helpers import CountingMemoryStore
from tests.runtime.helpers import sentra_table as load_sentra_table


@pytest.fixture
def sentra_table() -> dict[str, Any]:
    return load_sentra_table()


@pytest.fixture(params=["memory", "subclass", "sqlite", "postgres"])
def engine(sentra_table: dict[str, Any], request: pytest.FixtureRequest,
           tmp_path: Path) -> Iterator[Engine]:
    """An engine on the in-memory store, on a subclass of it, on a SQLite file and on a
    PostgreSQL database: every test of the semantics runs on each (one evaluation path,
    whatever the store)."""
    store: Store
    if request.param == "subclass":
        store = CountingMemoryStore()
    else:
        store = store_factory(request.param, store_target(request.param, request, tmp_path))()
    engine = Engine(sentra_table, store)
    yield engine
    engine.close()


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store of each kind (memory, SQLite, PostgreSQL), closed after the test."""
    made: Store = store_factory(request.param, store_target(request.param, request, tmp_path))()
    yield made
    made.close()

