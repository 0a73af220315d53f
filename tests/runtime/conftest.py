"""Fixtures for the runtime tests: the hand-written Sentra reference table and engines on it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sentra_runtime import Engine, MemoryStore

from tests.runtime.helpers import SENTRA_TABLE, ApplyingMemoryStore


@pytest.fixture
def sentra_table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SENTRA_TABLE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(params=["inline", "apply"])
def engine(sentra_table: dict[str, Any], request: pytest.FixtureRequest) -> Engine:
    """An engine on the in-memory store, through its inline fast path and through
    ``Store.apply``: every test of the semantics runs on both."""
    store = MemoryStore() if request.param == "inline" else ApplyingMemoryStore()
    return Engine(sentra_table, store)
