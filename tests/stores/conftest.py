"""Fixtures of the store suite: one factory per store kind, closing what it made."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pg_fixtures import SQL_KINDS, STORE_KINDS, StoreFactory, store_factory, store_target


def _tracked(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    factory = store_factory(kind, store_target(kind, request, tmp_path))
    made: list[Any] = []

    def make(**options: Any) -> Any:
        store = factory(**options)
        made.append(store)
        return store

    make.kind = kind  # type: ignore[attr-defined]
    yield make
    for store in made:
        store.close()


@pytest.fixture(params=STORE_KINDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """``make_store(**options)``: a store of each kind (memory, SQLite, PostgreSQL)."""
    yield from _tracked(request.param, request, tmp_path)


@pytest.fixture(params=SQL_KINDS)
def make_sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """``make_sql_store(**options)``: a store of each kind that keeps its data in a database
    several processes share (SQLite, PostgreSQL); each call opens the same data."""
    yield from _tracked(request.param, request, tmp_path)


@pytest.fixture
def sql_target(make_sql_store: StoreFactory, request: pytest.FixtureRequest,
               tmp_path: Path) -> str:
    """Where ``make_sql_store`` keeps its data (a file or a URL), for other processes."""
    target = store_target(make_sql_store.kind, request, tmp_path)  # type: ignore[attr-defined]
    assert target is not None
    return target
