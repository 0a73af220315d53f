"""The in-memory store under threads (and a subclass of it): each agent's decisions serialise,
no audit record is lost, seqs are gapless; and its audit log is bounded."""

from __future__ import annotations

import random
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sentra_runtime import Engine, MemoryStore

from tests.runtime.helpers import SENTRA_TABLE, CountingMemoryStore
from tests.runtime.sqlite_worker import ACTIONS, AGENTS


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Let threads switch every microsecond, so their steps interleave as much as they can."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def hammer(engine: Engine, rng: random.Random, count: int) -> None:
    for number in range(count):
        if number % 50 == 49:
            engine.reset(rng.choice(AGENTS), operator=f"op-{number}")
            continue
        action, fields = rng.choice(ACTIONS)
        engine.evaluate(rng.choice(AGENTS), action, fields)


def replay(records: list[dict[str, Any]]) -> Engine:
    """Re-decide the recorded decisions and resets serially, in audit order; each replayed
    decision must equal the recorded one."""
    engine = Engine(SENTRA_TABLE, MemoryStore(audit=False))
    for record in records:
        if record["kind"] == "reset":
            engine.reset(record["agent"], operator=record["operator"])
        elif record["kind"] == "decision":
            decision = engine.evaluate(record["agent"], record["action"], record["input"])
            recorded = record["decision"]
            assert {key: getattr(decision, key) for key in recorded} == recorded, record
    return engine


@pytest.mark.parametrize("store_class", [MemoryStore, CountingMemoryStore],
                         ids=["memory", "subclass"])
def test_threads_serialise_per_agent(store_class: type[MemoryStore],
                                     busy_switching: None) -> None:
    engine = Engine(SENTRA_TABLE, store_class())
    threads = [threading.Thread(target=hammer, args=(engine, random.Random(n), 400))
               for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = list(engine.audit_records())
    assert Counter(record["kind"] for record in records) == {
        "decision": 8 * 392, "reset": 8 * 8, "policy_load": 1}
    assert [record["seq"] for record in records] == list(range(1, len(records) + 1))
    assert engine.verify_audit().ok
    replayed = replay(records)
    for agent in AGENTS:
        assert engine.state(agent) == replayed.state(agent), agent


def test_the_log_keeps_the_newest_records_and_verifies_what_it_holds() -> None:
    """Bounded by default: memory stays flat however long the agent runs. The records it holds
    keep their seqs and verify as a chain from the oldest one."""
    store = MemoryStore(audit_limit=50)
    engine = Engine(SENTRA_TABLE, store)
    for number in range(30):
        engine.evaluate(f"agent-{number % 3}", "FILE_READ")
    early = list(engine.audit_records())   # chained while all were held
    for number in range(200):
        engine.evaluate(f"agent-{number % 3}", "FILE_READ")
    records = list(engine.audit_records())
    assert len(records) == 50 and store.dropped == 181
    assert [record["seq"] for record in records] == list(range(182, 232))
    assert engine.verify_audit().ok and store.last_seq() == 231
    assert early[0]["seq"] == 1 and early[0]["prev"] is None
    assert records[0]["prev"] is None   # its predecessor left the buffer before being chained
    assert store.read_records(0, 3)[0]["seq"] == 182
    assert [record["seq"] for record in store.read_records(220, 3)] == [221, 222, 223]


def test_a_record_edited_in_the_window_is_detected() -> None:
    store = MemoryStore(audit_limit=20)
    engine = Engine(SENTRA_TABLE, store)
    for _ in range(40):
        engine.evaluate("a", "FILE_READ")
    records = list(engine.audit_records())
    records[5]["agent"] = "someone else"
    result = engine.verify_audit()
    assert not result.ok and result.seq == records[5]["seq"]


def test_an_unbounded_log_keeps_everything_and_no_log_keeps_nothing() -> None:
    everything = Engine(SENTRA_TABLE, MemoryStore(audit_limit=None))
    nothing = Engine(SENTRA_TABLE, MemoryStore(audit=False))
    for _ in range(12_000):
        everything.evaluate("a", "FILE_READ")
        nothing.evaluate("a", "FILE_READ")
    assert len(list(everything.audit_records())) == 12_001 and everything.verify_audit().ok
    assert list(nothing.audit_records()) == [] and nothing.state("a").cumulative_risk == 0
    with pytest.raises(ValueError, match="audit_limit"):
        MemoryStore(audit_limit=0)
