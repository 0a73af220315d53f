"""Fixtures for the SDK tests: policy tables, a misbehaving server, real decision servers."""

from __future__ import annotations

import uuid
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


READ_TOKEN = "sdk-read-token"


@pytest.fixture(scope="session")
def refund_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A decision server on the refund policy, with an operator and a read token."""
    from tests.server.conftest import TOKEN, Server

    running = Server(REFUND_POLICY, tmp_path_factory.mktemp("refund") / "s.db", TOKEN,
                     read_token=READ_TOKEN)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def sentra_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A decision server on the Sentra policy, with an operator token and open reads."""
    from tests.server.conftest import TOKEN, Server

    running = Server(SENTRA_POLICY, tmp_path_factory.mktemp("sentra") / "s.db", TOKEN)
    yield running
    running.stop()


@pytest.fixture
def agent() -> str:
    return f"agent-{uuid.uuid4().hex[:10]}"
