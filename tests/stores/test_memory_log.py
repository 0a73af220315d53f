"""The in-memory store's bounded audit log: it keeps the newest records, verifies what it holds,
and an unbounded log keeps everything."""

from __future__ import annotations

import pytest
from sentra_runtime import Engine, MemoryStore

from tests.runtime.helpers import SENTRA_TABLE


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


def test_states_are_checked_against_the_newest_records_held() -> None:
    """Each record holds its agent's state after it, so the window checks every agent it names
    (however old the agent's history); agents it no longer names are not checked."""
    store = MemoryStore(audit_limit=10)
    engine = Engine(SENTRA_TABLE, store)
    for _ in range(3):
        engine.evaluate("old", "CHANGE_PERMISSION")   # shut down, then out of the window
    for _ in range(12):
        engine.evaluate("new", "DELETE_RECORD")
    assert engine.verify_audit().ok
    store.set_state("old", 0, 0)                       # not named by the window: unchecked
    assert engine.verify_audit().ok
    store.set_state("new", 0, 0)                       # named: its newest record says 90, 3
    result = engine.verify_audit()
    assert not result.ok and "agent `new`" in result.problem and result.seq == 16


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


def test_without_a_log_verify_and_export_say_there_is_none() -> None:
    """docs/runtime.md: `audit=False` keeps no log; verifying or exporting it is a ValueError,
    not a tampered verdict over states no log names."""
    import io

    engine = Engine(SENTRA_TABLE, MemoryStore(audit=False))
    engine.evaluate("a", "FILE_READ")
    for call in (engine.verify_audit, lambda: engine.export_audit(io.StringIO())):
        with pytest.raises(ValueError, match="keeps no audit log"):
            call()
