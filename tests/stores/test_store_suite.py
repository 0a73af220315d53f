"""One suite for every store (in-memory, SQLite, PostgreSQL), so that they cannot drift: each
agent's decisions serialise under threads and processes, nothing acknowledged is lost when a
process is killed, group commit shares transactions and keeps each agent's order, a decision
fails alone or its whole transaction fails, and the log verifies and replays to the states."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import signal
import sqlite3
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sentra_runtime import AgentState, Engine
from sentra_runtime.audit import verify_export

from tests.pg_fixtures import StoreFactory
from tests.runtime.helpers import SENTRA_TABLE
from tests.stores.helpers import assert_replays, hammer_with_resets, in_threads, replay, worker
from tests.stores.store_worker import ACTIONS, hammer

SENSITIVE = {"destination_type": "external", "data_classification": "sensitive"}


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Let threads switch every microsecond, so their steps interleave as much as they can."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_state_is_kept_and_only_a_reset_revives(make_store: StoreFactory) -> None:
    engine = Engine(SENTRA_TABLE, make_store())
    for _ in range(3):
        engine.evaluate("a", "CHANGE_PERMISSION")
    engine.evaluate("b", "EXPORT_DATA", SENSITIVE)
    assert engine.evaluate("a", "FILE_READ").rule_id == "AGENT_ALREADY_SHUT_DOWN"
    if make_store.kind != "memory":  # type: ignore[attr-defined]
        engine = Engine(SENTRA_TABLE, make_store(synchronous="FULL"))   # the same data
    assert engine.state("a") == AgentState(0, 3, "shut_down")
    assert engine.state("b") == AgentState(80, 0, "active")
    assert engine.agents() == ["a", "b"]
    assert engine.reset(operator="ops") == ["a", "b"]
    assert engine.state("a") == AgentState(0, 0, "active")
    assert engine.evaluate("a", "FILE_READ").allowed
    assert_replays(engine)


def test_threads_serialise_per_agent(make_store: StoreFactory, busy_switching: None) -> None:
    hammer_threads(make_store(), 400 if make_store.kind == "memory" else 150)  # type: ignore[attr-defined]


def test_threads_serialise_per_agent_with_group_commit(make_sql_store: StoreFactory,
                                                       busy_switching: None) -> None:
    hammer_threads(make_sql_store(group_commit=True), 150)


def hammer_threads(store: Any, per_thread: int) -> None:
    """8 threads of decisions and resets on shared agents: every record is there, in one
    gapless sequence, and the log replays to the stored states."""
    engine = Engine(SENTRA_TABLE, store)
    in_threads(8, lambda number: hammer_with_resets(engine, random.Random(number), per_thread))
    records = list(engine.audit_records())
    resets = 8 * (per_thread // 50)
    assert Counter(record["kind"] for record in records) == {
        "decision": 8 * per_thread - resets, "reset": resets, "policy_load": 1}
    assert [record["seq"] for record in records] == list(range(1, len(records) + 1))
    assert_replays(engine)


def test_the_log_exports_and_verifies_with_its_states_and_head(
        make_store: StoreFactory) -> None:
    engine = Engine(SENTRA_TABLE, make_store())
    for agent in ("a", "b", "a", "a"):
        engine.evaluate(agent, "CHANGE_PERMISSION")
    engine.reset("b", operator="ops")
    out = io.StringIO()
    assert engine.export_audit(out) == 6
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["kind"] for line in lines[6:]] == ["state", "state", "head"]
    assert lines[6] == {"kind": "state", "agent": "a", "cumulative_risk": 0,
                        "blocked_attempts": 3, "status": "shut_down"}
    assert lines[-1] == {"kind": "head", "seq": 6, "hash": lines[5]["hash"]}
    result = verify_export(lines)
    assert result.ok and result.agents == 2 and result.end == "stored head", str(result)
    assert str(engine.verify_audit()).startswith("ok: 6 records, hash chain intact")


def test_group_commit_shares_transactions_and_keeps_each_agents_order(
        make_sql_store: StoreFactory) -> None:
    store = make_sql_store(group_commit=True)
    engine = Engine(SENTRA_TABLE, store)
    assert store.group_commit
    commits = store.commits
    decisions: dict[int, list[Any]] = {}

    def work(number: int) -> None:
        rng = random.Random(number)
        decisions[number] = [engine.evaluate(f"agent-{number % 4}", *rng.choice(ACTIONS))
                             for _ in range(100)]

    in_threads(12, work)
    assert store.commits - commits < 12 * 100   # some decisions shared a commit
    records = [record for record in engine.audit_records() if record["kind"] == "decision"]
    assert len(records) == 12 * 100
    by_seq = {record["seq"]: record for record in records}
    for made in decisions.values():   # each thread's decisions, in its order, as recorded
        seqs = [decision.seq for decision in made]
        assert seqs == sorted(seqs)
        for decision in made:
            assert by_seq[decision.seq]["decision"]["rule_id"] == decision.rule_id
    assert_replays(engine)


@pytest.mark.parametrize("group_commit", [True, False])
def test_async_callers_share_transactions_and_keep_their_order(
        make_sql_store: StoreFactory, group_commit: bool) -> None:
    """`evaluate_async` from 12 tasks on one event loop (the server's path): with group commit
    the decisions that wait together share a transaction, without it each has its own; each
    task's decisions keep their order, and the log replays to the states."""
    store = make_sql_store(group_commit=group_commit, synchronous="FULL")
    engine = Engine(SENTRA_TABLE, store)
    commits = store.commits

    async def caller(number: int) -> list[Any]:
        rng = random.Random(number)
        return [await engine.evaluate_async(f"agent-{number % 4}", *rng.choice(ACTIONS))
                for _ in range(40)]

    async def main() -> list[list[Any]]:
        return await asyncio.gather(*(caller(number) for number in range(12)))

    made = asyncio.run(main())
    committed = store.commits - commits
    assert committed < 12 * 40 if group_commit else committed == 12 * 40
    records = [record for record in engine.audit_records() if record["kind"] == "decision"]
    by_seq = {record["seq"]: record for record in records}
    assert len(records) == 12 * 40
    for decisions in made:
        seqs = [decision.seq for decision in decisions]
        assert seqs == sorted(seqs)
        for decision in decisions:
            assert by_seq[decision.seq]["decision"]["rule_id"] == decision.rule_id
    assert_replays(engine)


def test_event_loops_deciding_at_once_each_get_every_answer(
        make_sql_store: StoreFactory) -> None:
    """Two threads, each with its own event loop, deciding in rounds at once on one store (the
    commit thread of a loop still deciding was once retired when the other loop decided, and
    that loop's next batch waited forever): every decision is answered, within a bound, and
    recorded once."""
    engine = Engine(SENTRA_TABLE, make_sql_store(group_commit=True))
    rounds, tasks = 30, 4
    failures: list[BaseException] = []

    def loop(number: int) -> None:
        async def main() -> None:
            for index in range(rounds):
                await asyncio.gather(*(engine.evaluate_async(
                    f"loop-{number}-{task}", ("FILE_READ", "EXPORT_DATA")[index % 2])
                    for task in range(tasks)))
        try:
            asyncio.run(main())
        except BaseException as error:   # reported by the test thread
            failures.append(error)

    threads = [threading.Thread(target=loop, args=(number,), daemon=True) for number in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a decision was never answered"
    assert not failures, failures[0]
    decided = sum(record["kind"] == "decision" for record in engine.audit_records())
    assert decided == 2 * rounds * tasks
    assert engine.verify_audit().ok


def test_a_decision_that_fails_alone_fails_alone(make_sql_store: StoreFactory) -> None:
    """An annotation that raises, replaces a record key or is not JSON fails its own decision
    (nothing recorded for it, the state unchanged); the decisions committed with it are not
    affected."""
    engine = Engine(SENTRA_TABLE, make_sql_store(group_commit=True))
    failures: list[BaseException] = []
    poisons = ({"seq": "not allowed"}, {"note": object()}, {"note": {"nested": {1j}}})

    def work(number: int) -> None:
        for index in range(30):
            poisoned = number == 0 and index % 2 == 0
            try:
                engine.evaluate(f"agent-{number}", "DELETE_RECORD", annotations=(
                    poisons[index % 3] if poisoned else {"note": index}))
            except (ValueError, TypeError) as error:
                failures.append(error)

    in_threads(6, work)
    assert len(failures) == 15
    records = [record for record in engine.audit_records() if record["kind"] == "decision"]
    assert len(records) == 6 * 30 - 15
    assert sum(record["agent"] == "agent-0" for record in records) == 15
    assert_replays(engine)


def poison(store: Any, target: str) -> None:
    """A trigger that makes the database refuse the audit record of agent ``poison``."""
    if target.startswith("postgresql"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as connection:
            connection.execute("CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ "
                               "BEGIN RAISE EXCEPTION 'poisoned'; END $$")
            connection.execute("CREATE TRIGGER poison BEFORE INSERT ON sentra_audit FOR EACH "
                               "ROW WHEN (NEW.agent = 'poison'::bytea) EXECUTE FUNCTION poison()")
        return
    with sqlite3.connect(target) as connection:
        connection.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON audit "
            "WHEN json_extract(NEW.body, '$.agent') = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned'); END")


def test_a_database_error_fails_every_decision_of_its_transaction(
        make_sql_store: StoreFactory, sql_target: str) -> None:
    """A write that the database refuses (a trigger here) rolls the whole transaction back:
    every decision in it raises, none is recorded, no state changes."""
    store = make_sql_store(group_commit=True)
    engine = Engine(SENTRA_TABLE, store)
    poison(store, sql_target)
    outcomes: list[str] = []
    lock = threading.Lock()

    def work(number: int) -> None:
        for _ in range(25):
            agent = "poison" if number == 0 else f"agent-{number}"
            try:
                engine.evaluate(agent, "DELETE_RECORD")
                outcome = "ok"
            except Exception:
                outcome = "failed"
            with lock:
                outcomes.append(f"{agent}:{outcome}")

    in_threads(4, work)
    assert outcomes.count("poison:failed") == 25
    records = [record for record in engine.audit_records() if record["kind"] == "decision"]
    assert len(records) == sum(outcomes.count(f"agent-{n}:ok") for n in (1, 2, 3))
    assert engine.state("poison") == AgentState(0, 0, "active")
    for number in (1, 2, 3):   # each agent's state is what its recorded decisions made
        assert engine.state(f"agent-{number}").cumulative_risk == min(
            30 * outcomes.count(f"agent-{number}:ok"), 90)
    assert_replays(engine)


@pytest.mark.slow
def test_threads_and_processes_share_one_store(make_sql_store: StoreFactory,
                                               sql_target: str) -> None:
    Engine(SENTRA_TABLE, make_sql_store()).close()
    processes = [worker(sql_target, "hammer", seed, 150) for seed in range(4)]
    engine = Engine(SENTRA_TABLE, make_sql_store())
    in_threads(8, lambda number: hammer(engine, random.Random(100 + number), 100))
    assert [process.wait(timeout=180) for process in processes] == [0] * 4
    records = list(engine.audit_records())
    kinds = Counter(record["kind"] for record in records)
    assert kinds == {"decision": 4 * 150 + 8 * 100, "policy_load": 6}
    assert_replays(engine)


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "threads"), [("ack", 0), ("ack-group", 8), ("ack-async", 8)])
def test_sigkill_loses_no_acknowledged_decision(make_sql_store: StoreFactory, sql_target: str,
                                                mode: str, threads: int) -> None:
    """Killed mid-load, one transaction per decision, with group commit from 8 threads and from
    8 tasks on an event loop (`evaluate_async`): every decision returned is in the log, and
    the log verifies."""
    make_sql_store().close()   # the schema, before the worker and the kill
    process = worker(sql_target, mode, threads, 0)
    assert process.stdout is not None
    acknowledged = [process.stdout.readline().strip() for _ in range(300)]
    os.kill(process.pid, signal.SIGKILL)
    acknowledged += [line.strip() for line in process.stdout if line.strip()]
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    store = make_sql_store()
    records = list(store.audit_records())
    decided = {record["agent"] for record in records if record["kind"] == "decision"}
    assert set(acknowledged) <= decided
    # at most the decisions in flight (one per thread) committed but not yet acknowledged
    assert len(decided) - len(acknowledged) <= max(threads, 1)
    assert store.verify_audit().ok
    replay(records)
