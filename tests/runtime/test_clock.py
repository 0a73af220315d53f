"""The engine's injectable clock: every record's time is the clock's, in every store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import Engine, MemoryStore, SQLiteStore

from tests.runtime.helpers import Clock, sentra_table

START = 1_700_000_000.25   # 2023-11-14T22:13:20.250000Z



def times(engine: Engine) -> list[tuple[str, str]]:
    return [(record["kind"], record["time"]) for record in engine.audit_records()]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    made = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.db")
    yield made
    made.close()


def test_every_record_takes_the_engines_clock(store: Any) -> None:
    clock = Clock(START)
    engine = Engine(sentra_table(), store, clock=clock)
    clock.now += 60
    engine.evaluate("a", "FILE_READ")
    clock.now += 3600
    asyncio.run(engine.evaluate_async("a", "FILE_READ"))
    clock.now += 1.5
    engine.reset("a", operator="ops")
    assert times(engine) == [("policy_load", "2023-11-14T22:13:20.250000Z"),
                             ("decision", "2023-11-14T22:14:20.250000Z"),
                             ("decision", "2023-11-14T23:14:20.250000Z"),
                             ("reset", "2023-11-14T23:14:21.750000Z")]


def test_a_clock_going_backwards_is_recorded_as_it_is(store: Any) -> None:
    clock = Clock(START)
    engine = Engine(sentra_table(), store, clock=clock)
    clock.now -= 10
    engine.evaluate("a", "FILE_READ")
    assert times(engine)[-1] == ("decision", "2023-11-14T22:13:10.250000Z")


def test_the_default_clock_is_the_system_time() -> None:
    import time
    before = time.time()
    engine = Engine(sentra_table())
    engine.evaluate("a", "FILE_READ")
    after = time.time()
    stamp = list(engine.audit_records())[-1]["time"]
    assert time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(before)) <= stamp[:19] \
        <= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(after))


def test_decisions_do_not_depend_on_the_clock_without_time_settings() -> None:
    """A plain policy (the Sentra-compatible one) decides the same whatever the time."""
    early, late = (Engine(sentra_table(), clock=Clock(now)) for now in (0.0, 4e9))
    for action, fields in [("EXPORT_DATA", {"destination_type": "external",
                                            "data_classification": "sensitive"}),
                           ("DELETE_RECORD", {}), ("DELETE_RECORD", {}), ("FILE_READ", {})]:
        assert early.evaluate("a", action, fields) == late.evaluate("a", action, fields)
