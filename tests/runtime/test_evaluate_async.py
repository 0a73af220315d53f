"""`Engine.evaluate_async`: the same decisions as `evaluate`, for callers on an event loop.

On a SQLite store the loop decides the queued batch and the store's commit thread commits it
(`SQLiteStore.apply_async`): decisions that wait together share a transaction, each caller's
decisions keep their order, nothing is answered before its commit, and the loop is never held
by a commit or by another writer."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import AgentState, Decision, Engine, MemoryStore, SQLiteStore

from tests.runtime.helpers import SENTRA_TABLE, CountingMemoryStore
from tests.stores.helpers import replay
from tests.stores.store_worker import ACTIONS


def decide_all(engine: Engine, callers: int, per_caller: int,
               agent: Any = lambda number: f"agent-{number % 4}") -> dict[int, list[Decision]]:
    """``callers`` tasks on one loop, each deciding ``per_caller`` random actions in turn."""

    async def caller(number: int) -> list[Decision]:
        rng = random.Random(number)
        return [await engine.evaluate_async(agent(number), *rng.choice(ACTIONS))
                for _ in range(per_caller)]

    async def main() -> list[list[Decision]]:
        return await asyncio.gather(*(caller(number) for number in range(callers)))

    return dict(enumerate(asyncio.run(main())))


def decisions(engine: Engine) -> list[dict[str, Any]]:
    return [record for record in engine.audit_records() if record["kind"] == "decision"]


@pytest.mark.parametrize("group_commit", [True, False])
def test_async_decisions_share_commits_and_keep_each_callers_order(tmp_path: Path,
                                                                   group_commit: bool) -> None:
    engine = Engine(SENTRA_TABLE, SQLiteStore(tmp_path / "a.db", group_commit=group_commit,
                                              synchronous="FULL"))
    store = engine.store
    assert isinstance(store, SQLiteStore)
    commits = store.commits
    made = decide_all(engine, 12, 40)
    committed = store.commits - commits
    if group_commit:
        assert committed < 12 * 40   # decisions that waited together shared a commit
    else:
        assert committed == 12 * 40
    records = decisions(engine)
    assert len(records) == 12 * 40 and engine.verify_audit().ok
    by_seq = {record["seq"]: record for record in records}
    for caller in made.values():
        seqs = [decision.seq for decision in caller]
        assert seqs == sorted(seqs)
        for decision in caller:
            recorded = by_seq[decision.seq]
            assert (recorded["agent"], recorded["decision"]["rule_id"],
                    recorded["decision"]["cumulative_risk"]) == (
                decision.agent_id, decision.rule_id, decision.cumulative_risk)
    replayed = replay(records)
    for agent in engine.agents():
        assert engine.state(agent) == replayed.state(agent), agent
    engine.close()


def test_async_and_sync_decisions_are_the_same(tmp_path: Path) -> None:
    """Each action decided through `evaluate_async` (SQLite, memory, and a store without
    `apply_async`, run in a thread) equals the same action through `evaluate`."""
    rng = random.Random(5)
    calls = [(f"agent-{rng.randrange(3)}", *rng.choice(ACTIONS)) for _ in range(60)]
    expected = Engine(SENTRA_TABLE, MemoryStore())
    wanted = [expected.evaluate(*call) for call in calls]

    class ThreadOnly(MemoryStore):
        apply_async = None   # a store with no async entry point: apply runs in a thread

    stores: list[Any] = [SQLiteStore(tmp_path / "same.db", group_commit=True),
                         MemoryStore(), CountingMemoryStore(), ThreadOnly()]
    for store in stores:
        engine = Engine(SENTRA_TABLE, store)

        async def main(engine: Engine = engine) -> list[Decision]:
            return [await engine.evaluate_async(*call) for call in calls]

        got = asyncio.run(main())
        assert [decision.to_dict() for decision in got] == [
            decision.to_dict() for decision in wanted], type(store).__name__
        assert [decision.explanation.steps for decision in got] == [
            decision.explanation.steps for decision in wanted]
        engine.close()
    assert stores[2].applied == len(calls)   # the subclass's apply ran for every decision


def test_evaluate_async_checks_its_arguments_as_evaluate_does() -> None:
    engine = Engine(SENTRA_TABLE)
    with pytest.raises(TypeError, match="agent_id must be a string"):
        asyncio.run(engine.evaluate_async(7, "FILE_READ"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fields must be a mapping"):
        asyncio.run(engine.evaluate_async("a", "FILE_READ", [1]))  # type: ignore[arg-type]
    assert asyncio.run(engine.evaluate_async("a", "FILE_READ", None)).allowed


def test_the_loop_is_not_held_while_another_writer_has_the_database(tmp_path: Path) -> None:
    """Another connection holds the write lock: the decision waits in the commit thread (not
    on the loop, which keeps running other tasks), then goes through once the lock is free."""
    path = tmp_path / "busy.db"
    engine = Engine(SENTRA_TABLE, SQLiteStore(path, group_commit=True))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def main() -> tuple[Decision, int, float]:
        ticks = 0
        started = time.monotonic()
        decision = asyncio.ensure_future(engine.evaluate_async("waiting", "DELETE_RECORD"))
        asyncio.get_running_loop().call_later(0.5, other.execute, "COMMIT")
        while not decision.done():
            await asyncio.sleep(0.01)
            ticks += 1
        return decision.result(), ticks, time.monotonic() - started

    decision, ticks, seconds = asyncio.run(main())
    other.close()
    assert decision.allowed and decision.cumulative_risk == 30
    assert seconds >= 0.45 and ticks >= 20   # the loop ran on while the decision waited
    assert engine.state("waiting") == AgentState(30, 0, "active")
    engine.close()


def test_an_async_decision_that_fails_alone_fails_alone(tmp_path: Path) -> None:
    engine = Engine(SENTRA_TABLE, SQLiteStore(tmp_path / "alone.db", group_commit=True))

    async def caller(number: int) -> list[str]:
        outcomes = []
        for index in range(30):
            poisoned = number == 0 and index % 2 == 0
            try:
                await engine.evaluate_async(f"agent-{number}", "DELETE_RECORD", annotations=(
                    {"seq": "not allowed"} if poisoned else {"note": index}))
                outcomes.append("ok")
            except ValueError:
                outcomes.append("refused")
        return outcomes

    async def main() -> list[list[str]]:
        return await asyncio.gather(*(caller(number) for number in range(6)))

    outcomes = asyncio.run(main())
    assert outcomes[0].count("refused") == 15
    assert all(outcome == ["ok"] * 30 for outcome in outcomes[1:])
    records = decisions(engine)
    assert len(records) == 6 * 30 - 15 and engine.verify_audit().ok
    replayed = replay(records)
    for agent in engine.agents():
        assert engine.state(agent) == replayed.state(agent), agent
    engine.close()


def test_an_async_batch_the_database_refuses_fails_whole(tmp_path: Path) -> None:
    """A write the database refuses (a trigger) rolls the batch back: every decision of it
    raises, none is recorded; the decisions of other batches stand."""
    path = tmp_path / "poisoned.db"
    engine = Engine(SENTRA_TABLE, SQLiteStore(path, group_commit=True))
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON audit "
            "WHEN json_extract(NEW.body, '$.agent') = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned'); END")

    async def caller(agent: str) -> list[str]:
        outcomes = []
        for _ in range(20):
            try:
                await engine.evaluate_async(agent, "DELETE_RECORD")
                outcomes.append("ok")
            except sqlite3.Error:
                outcomes.append("failed")
        return outcomes

    async def main() -> dict[str, list[str]]:
        agents = ["poison", "agent-1", "agent-2", "agent-3"]
        return dict(zip(agents, await asyncio.gather(*(caller(agent) for agent in agents))))

    outcomes = asyncio.run(main())
    assert outcomes["poison"] == ["failed"] * 20
    records = decisions(engine)
    assert len(records) == sum(outcome.count("ok") for outcome in outcomes.values())
    assert engine.state("poison") == AgentState(0, 0, "active")
    for number in (1, 2, 3):   # each agent's state is what its recorded decisions made
        agent = f"agent-{number}"
        assert engine.state(agent).cumulative_risk == min(30 * outcomes[agent].count("ok"), 90)
    assert engine.verify_audit().ok
    engine.close()


def test_a_caller_that_stops_waiting_does_not_stop_the_others(tmp_path: Path) -> None:
    """A cancelled caller's decision is still made and recorded (it was queued); the callers
    that kept waiting get theirs."""
    engine = Engine(SENTRA_TABLE, SQLiteStore(tmp_path / "cancel.db", group_commit=True,
                                              synchronous="FULL"))

    async def main() -> list[Decision]:
        waiting = [asyncio.ensure_future(engine.evaluate_async(f"agent-{number}",
                                                               "DELETE_RECORD"))
                   for number in range(8)]
        await asyncio.sleep(0)
        waiting[3].cancel()
        return [await task for index, task in enumerate(waiting) if index != 3]

    answered = asyncio.run(main())
    assert [decision.agent_id for decision in answered] == [
        f"agent-{number}" for number in range(8) if number != 3]
    assert {record["agent"] for record in decisions(engine)} == {
        f"agent-{number}" for number in range(8)}
    engine.close()


def test_a_batch_writes_each_agents_last_state_and_nothing_for_a_failed_new_agent(
        tmp_path: Path) -> None:
    """One transaction of many decisions (the same agents several times, and a new agent whose
    only decision fails): each agent's row holds the state its last decision left, the failed
    agent gets no row and no record, and the log replays to the stored states."""
    store = SQLiteStore(tmp_path / "batch.db", group_commit=True)
    engine = Engine(SENTRA_TABLE, store)
    commits = store.commits

    async def main() -> list[Any]:
        return await asyncio.gather(*(
            engine.evaluate_async("doomed", "DELETE_RECORD", annotations={"seq": "refused"})
            if number == 5 else engine.evaluate_async(f"agent-{number % 3}", "DELETE_RECORD")
            for number in range(12)), return_exceptions=True)

    made = asyncio.run(main())
    assert store.commits - commits == 1   # all twelve waited together: one transaction
    assert isinstance(made[5], ValueError)
    assert "doomed" not in engine.agents() and engine.agents() == ["agent-0", "agent-1",
                                                                   "agent-2"]
    records = decisions(engine)
    assert [record["agent"] for record in records] == [
        f"agent-{number % 3}" for number in range(12) if number != 5]
    replayed = replay(records)
    for agent in engine.agents():
        assert engine.state(agent) == replayed.state(agent), agent
    assert engine.state("agent-0").cumulative_risk == 90   # three blocks of 30 (shut down)
    engine.close()


def test_the_record_of_an_async_decision_is_kept_once_as_read_back(tmp_path: Path) -> None:
    """`committed_record(seq)` gives the record of a decision `apply_async` committed exactly
    as `read_records` reads it back, once; a seq it did not keep gives `None`."""
    store = SQLiteStore(tmp_path / "kept.db", group_commit=True)
    engine = Engine(SENTRA_TABLE, store, clock=lambda: 1_700_000_000.5)
    decision = asyncio.run(engine.evaluate_async("agent-1", "DELETE_RECORD",
                                                 annotations={"server": {"note": [1, 2.5]}}))
    seq = decision.seq
    assert seq is not None
    kept, read_back = store.committed_record(seq), store.read_records(seq - 1, 1)[0]
    assert json.dumps(kept) == json.dumps(read_back)   # the same keys, in the same order
    assert store.committed_record(seq) is None   # given once
    sync = engine.evaluate("agent-1", "DELETE_RECORD")   # not through apply_async: not kept
    assert sync.seq is not None and store.committed_record(sync.seq) is None
    assert store.committed_record(seq - 1) is None
    engine.close()


def test_the_store_keeps_only_the_latest_records(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Records nobody takes do not pile up: past `KEPT_RECORDS` the oldest are dropped (and
    read back from the database as before)."""
    from sentra_runtime.stores import sqlite

    monkeypatch.setattr(sqlite, "KEPT_RECORDS", 2)
    store = SQLiteStore(tmp_path / "bounded.db", group_commit=True)
    engine = Engine(SENTRA_TABLE, store)

    async def three() -> list[Decision]:
        return [await engine.evaluate_async("agent-1", "READ_FILE") for _ in range(3)]

    seqs = [decision.seq for decision in asyncio.run(three())]
    assert all(isinstance(seq, int) for seq in seqs)
    assert [store.committed_record(seq) is not None for seq in seqs if seq] == [
        False, True, True]
    engine.close()
