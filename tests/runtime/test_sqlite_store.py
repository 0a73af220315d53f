"""The SQLite store under threads, processes and SIGKILL: nothing acknowledged is lost, the
per-agent decisions serialise, and the audit chain verifies."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import AgentState, Engine, MemoryStore, SQLiteStore

from tests.runtime.helpers import SENTRA_TABLE
from tests.runtime.sqlite_worker import ACTIONS, hammer

WORKER = Path(__file__).with_name("sqlite_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def worker(database: Path, mode: str, seed: int, count: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(WORKER), str(database), str(SENTRA_TABLE), mode,
                             str(seed), str(count)], stdout=subprocess.PIPE, text=True, env=env)


def replay(records: list[dict[str, Any]]) -> Engine:
    """Re-decide each agent's recorded decisions serially, in audit order, on a fresh engine;
    every replayed decision must equal the recorded one."""
    engine = Engine(SENTRA_TABLE, MemoryStore(audit=False))
    for record in records:
        if record["kind"] != "decision":
            continue
        decision = engine.evaluate(record["agent"], record["action"], record["input"])
        recorded = record["decision"]
        assert (decision.rule_id, decision.cumulative_risk, decision.blocked_attempts,
                decision.status) == (recorded["rule_id"], recorded["cumulative_risk"],
                                     recorded["blocked_attempts"], recorded["status"]), record
    return engine


def test_decisions_are_durable_and_the_state_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    engine = Engine(SENTRA_TABLE, SQLiteStore(path))
    for _ in range(3):
        engine.evaluate("a", "CHANGE_PERMISSION")
    engine.evaluate("b", "EXPORT_DATA", {"destination_type": "external",
                                          "data_classification": "sensitive"})
    engine.close()
    reopened = Engine(SENTRA_TABLE, SQLiteStore(path, synchronous="FULL"))
    assert reopened.state("a") == AgentState(0, 3, "shut_down")
    assert reopened.state("b") == AgentState(80, 0, "active")
    assert reopened.agents() == ["a", "b"]
    assert reopened.evaluate("a", "FILE_READ").rule_id == "AGENT_ALREADY_SHUT_DOWN"
    reopened.reset(operator="ops")
    assert reopened.state("a") == AgentState(0, 0, "active")
    assert reopened.verify_audit().ok


def test_bad_synchronous_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteStore(tmp_path / "x.db", synchronous="OFF")


def test_background_checkpoints_keep_the_wal_small(tmp_path: Path) -> None:
    """With ``checkpoint_interval`` no commit checkpoints; a thread does, and the WAL is
    reused instead of growing with the log."""
    path = tmp_path / "store.db"
    store = SQLiteStore(path, checkpoint_interval=0.02)
    engine = Engine(SENTRA_TABLE, store)
    assert store._connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    sizes = []
    for _ in range(6):
        for number in range(400):
            engine.evaluate(f"agent-{number % 20}", "FILE_READ", {"target": "x" * 200})
        deadline = time.monotonic() + 5
        checkpoints = store._checkpointer.checkpoints   # type: ignore[union-attr]
        while store._checkpointer.checkpoints < checkpoints + 2:   # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        sizes.append(os.path.getsize(f"{path}-wal"))
    assert max(sizes[2:]) <= 2 * sizes[1]   # bounded, not growing with 2,400 decisions
    engine.close()
    assert not store._checkpointer.is_alive()   # type: ignore[union-attr]
    reopened = SQLiteStore(path)
    assert reopened.last_seq() == 1 + 2400 and reopened.verify_audit().ok
    reopened.close()
    with pytest.raises(ValueError, match="checkpoint_interval"):
        SQLiteStore(path, checkpoint_interval=0)


@pytest.mark.slow
def test_threads_and_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    Engine(SENTRA_TABLE, SQLiteStore(path)).close()
    processes = [worker(path, "hammer", seed, 250) for seed in range(4)]
    engine = Engine(SENTRA_TABLE, SQLiteStore(path))
    threads = [threading.Thread(target=hammer, args=(engine, random.Random(100 + n), 150))
               for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [process.wait(timeout=120) for process in processes] == [0] * 4
    records = list(engine.audit_records())
    kinds = Counter(record["kind"] for record in records)
    assert kinds == {"decision": 4 * 250 + 8 * 150, "policy_load": 6}
    assert engine.verify_audit().ok
    replayed = replay(records)
    for agent in engine.agents():
        assert engine.state(agent) == replayed.state(agent), agent


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "threads"), [("ack", 0), ("ack-group", 8), ("ack-async", 8)])
def test_sigkill_loses_no_acknowledged_decision(tmp_path: Path, mode: str, threads: int) -> None:
    """Killed mid-load, one transaction per decision, with group commit from 8 threads, and
    from 8 tasks on an event loop (`evaluate_async`): every decision returned is in the file."""
    path = tmp_path / "killed.db"
    process = worker(path, mode, threads, 0)
    assert process.stdout is not None
    acknowledged = [process.stdout.readline().strip() for _ in range(300)]
    os.kill(process.pid, signal.SIGKILL)
    acknowledged += [line.strip() for line in process.stdout if line.strip()]
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    store = SQLiteStore(path)
    records = list(store.audit_records())
    decided = {record["agent"] for record in records if record["kind"] == "decision"}
    assert set(acknowledged) <= decided
    # at most the decisions in flight (one per thread) committed but not yet acknowledged
    assert len(decided) - len(acknowledged) <= max(threads, 1)
    assert store.verify_audit().ok


def group_engine(path: Path, **options: Any) -> Engine:
    return Engine(SENTRA_TABLE, SQLiteStore(path, group_commit=True, **options))


def in_threads(count: int, work: Any) -> None:
    threads = [threading.Thread(target=work, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_group_commit_shares_transactions_and_keeps_each_agents_order(tmp_path: Path) -> None:
    engine = group_engine(tmp_path / "group.db")
    store = engine.store
    assert isinstance(store, SQLiteStore) and store.group_commit
    commits = store.commits
    decisions: dict[int, list[Any]] = {}

    def work(number: int) -> None:
        rng = random.Random(number)
        decisions[number] = [engine.evaluate(f"agent-{number % 4}", *rng.choice(ACTIONS))
                             for _ in range(150)]

    in_threads(12, work)
    assert store.commits - commits < 12 * 150   # some decisions shared a commit
    records = [record for record in engine.audit_records() if record["kind"] == "decision"]
    assert len(records) == 12 * 150 and engine.verify_audit().ok
    by_seq = {record["seq"]: record for record in records}
    for made in decisions.values():   # each thread's decisions, in its order, as recorded
        seqs = [decision.seq for decision in made]
        assert seqs == sorted(seqs)
        for decision in made:
            assert by_seq[decision.seq]["decision"]["rule_id"] == decision.rule_id
    replayed = replay(list(engine.audit_records()))
    for agent in engine.agents():
        assert engine.state(agent) == replayed.state(agent), agent
    engine.close()


def test_a_decision_that_fails_alone_fails_alone(tmp_path: Path) -> None:
    """An annotation that raises fails its own decision (nothing recorded for it, the state
    unchanged); the decisions committed with it are not affected."""
    engine = group_engine(tmp_path / "alone.db")
    failures: list[BaseException] = []

    def work(number: int) -> None:
        for index in range(40):
            poisoned = number == 0 and index % 2 == 0
            try:
                engine.evaluate(f"agent-{number}", "DELETE_RECORD", annotations=(
                    {"seq": "not allowed"} if poisoned else {"note": index}))
            except ValueError as error:
                failures.append(error)

    in_threads(6, work)
    assert len(failures) == 20
    records = [record for record in engine.audit_records() if record["kind"] == "decision"]
    assert len(records) == 6 * 40 - 20 and engine.verify_audit().ok
    assert sum(record["agent"] == "agent-0" for record in records) == 20
    replayed = replay(records)
    for agent in engine.agents():
        assert engine.state(agent) == replayed.state(agent), agent
    engine.close()


def test_a_database_error_fails_every_decision_of_its_transaction(tmp_path: Path) -> None:
    """A write that the database refuses (a trigger here) rolls the whole transaction back:
    every decision in it raises, none is recorded, no state changes."""
    path = tmp_path / "poisoned.db"
    engine = group_engine(path)
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON audit "
            "WHEN json_extract(NEW.body, '$.agent') = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned'); END")
    outcomes: list[str] = []
    lock = threading.Lock()

    def work(number: int) -> None:
        for _ in range(30):
            agent = "poison" if number == 0 else f"agent-{number}"
            try:
                engine.evaluate(agent, "DELETE_RECORD")
                outcome = "ok"
            except sqlite3.Error:
                outcome = "failed"
            with lock:
                outcomes.append(f"{agent}:{outcome}")

    in_threads(4, work)
    assert outcomes.count("poison:failed") == 30
    records = [record for record in engine.audit_records() if record["kind"] == "decision"]
    assert len(records) == outcomes.count("agent-1:ok") + outcomes.count("agent-2:ok") + \
        outcomes.count("agent-3:ok")
    assert engine.state("poison") == AgentState(0, 0, "active")
    for number in (1, 2, 3):   # each agent's state is what its recorded decisions made
        assert engine.state(f"agent-{number}").cumulative_risk == min(
            30 * outcomes.count(f"agent-{number}:ok"), 90)
    assert engine.verify_audit().ok
    engine.close()
