"""Fixtures for the SDK tests: policy tables, a misbehaving server, real decision servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentra_lang.policy_file import load_policy_file
from tests.sdk.hostile import Answers, HostileServer

ROOT = Path(__file__).resolve().parents[2]
SENTRA_POLICY = ROOT / "policies" / "sentra.sentra"
REFUND_POLICY = Path(__file__).parent / "refund.sentra"


def table_of(path: Path) -> dict[str, Any]:
    loaded = load_policy_file(path)
    assert loaded.table is not None, loaded.problems
    return loaded.table


@pytest.fixture(scope="session")
def sentra_table() -> dict[str, Any]:
    return table_of(SENTRA_POLICY)


@pytest.fixture(scope="session")
def refund_table() -> dict[str, Any]:
    return table_of(REFUND_POLICY)


@pytest.fixture(scope="session")
def answers(sentra_table: dict[str, Any]) -> Answers:
    return Answers(sentra_table)


@pytest.fixture
def hostile(answers: Answers) -> Iterator[HostileServer]:
    server = HostileServer(answers)
    yield server
    server.stop()
