"""The SQLite store under threads, processes and SIGKILL: nothing acknowledged is lost, the
per-agent decisions serialise, and the audit chain verifies."""

from __future__ import annotations

import os
import random
import signal
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
from tests.runtime.sqlite_worker import hammer

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
def test_sigkill_loses_no_acknowledged_decision(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    process = worker(path, "ack", 0, 0)
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
    assert len(decided) - len(acknowledged) <= 1  # at most the one in flight, committed unacked
    assert store.verify_audit().ok
