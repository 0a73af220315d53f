"""Fixtures for the runtime tests: the hand-written Sentra reference table and engines on it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sentra_runtime import Engine

from tests.runtime.helpers import SENTRA_TABLE


@pytest.fixture
def sentra_table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SENTRA_TABLE.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def engine(sentra_table: dict[str, Any]) -> Engine:
    return Engine(sentra_table)
