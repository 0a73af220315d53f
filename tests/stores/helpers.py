"""Shared steps of the store tests: load from threads and processes, and the serial replay that
every store's log must agree with."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sentra_runtime import Engine, MemoryStore

from tests.runtime.helpers import SENTRA_TABLE
from tests.stores.store_worker import ACTIONS, AGENTS

WORKER = Path(__file__).with_name("store_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def worker(target: str, mode: str, seed: int, count: int) -> subprocess.Popen[str]:
    """A writer process on the store at ``target`` (tests/stores/store_worker.py)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(WORKER), target, str(SENTRA_TABLE), mode,
                             str(seed), str(count)], stdout=subprocess.PIPE, text=True, env=env)


def hammer_with_resets(engine: Engine, rng: random.Random, count: int) -> None:
    """``count`` random decisions over the shared agents, every 50th a reset of one agent."""
    for number in range(count):
        if number % 50 == 49:
            engine.reset(rng.choice(AGENTS), operator=f"op-{number}")
            continue
        action, fields = rng.choice(ACTIONS)
        engine.evaluate(rng.choice(AGENTS), action, fields)


def in_threads(count: int, work: Callable[[int], Any]) -> None:
    threads = [threading.Thread(target=work, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def replay(records: list[dict[str, Any]],
           table: Callable[[str], dict[str, Any] | None] | None = None) -> Engine:
    """Re-decide the recorded decisions and resets serially, in audit order, on fresh state;
    every replayed decision must equal the recorded one. Returns an engine whose states are the
    states the log leaves the agents in. ``table(policy_hash)`` gives the policy each record
    names (a shared store's saved tables); by default every record is replayed with the
    Sentra reference table."""
    state = MemoryStore(audit=False)
    engines: dict[str, Engine] = {}

    def engine_for(record: dict[str, Any]) -> Engine:
        policy_hash = record["policy_hash"] if table is not None else ""
        if policy_hash not in engines:
            found = SENTRA_TABLE if table is None else table(policy_hash)
            assert found is not None, f"no table for {policy_hash}"
            engines[policy_hash] = Engine(found, state)
        return engines[policy_hash]

    engine = Engine(SENTRA_TABLE, state)
    for record in records:
        if record["kind"] in ("reset", "decision"):
            engine = engine_for(record)
        if record["kind"] == "reset":
            if record["agent"] is None:
                for agent in record["agents"]:
                    engine.reset(agent, operator=record["operator"])
            else:
                engine.reset(record["agent"], operator=record["operator"])
        elif record["kind"] == "decision":
            decision = engine.evaluate(record["agent"], record["action"], record["input"])
            recorded = record["decision"]
            assert {key: getattr(decision, key) for key in recorded} == recorded, record
    return engine


def assert_replays(engine: Engine) -> None:
    """The store's log verifies, and replaying it serially gives every agent its stored state."""
    assert engine.verify_audit().ok, str(engine.verify_audit())
    replayed = replay(list(engine.audit_records()))
    for agent in engine.agents():
        assert engine.state(agent) == replayed.state(agent), agent
