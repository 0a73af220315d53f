"""`sentra-lang serve` killed mid-load (SIGKILL) loses no answered decision: every decision a
client got a 200 for is in the store, the chain verifies, and the state equals a replay of the
log. The server runs as it ships (synchronous=FULL, group commit, decisions committed in the
store's commit thread), in its own process, with 8 clients."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sentra_runtime import Engine, MemoryStore, SQLiteStore
from sentra_runtime.stores.sqlite import read_audit

from tests.helpers import serve_process
from tests.server.conftest import POLICY, free_port

CLIENTS = 8
BEFORE_KILL = 400


def serve(database: Path, port: int) -> subprocess.Popen[bytes]:
    return serve_process([str(POLICY), "--db", str(database)], port,
                         stderr=subprocess.DEVNULL)


def client(port: int, number: int, answered: list[str], refused: list[bytes],
           lock: threading.Lock) -> None:
    """Decide for fresh agents, one request at a time, until the server is gone; note each
    agent whose decision was answered (a risky allow: it changes the agent's state), and any
    answer that is not a 200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    index = 0
    while True:
        agent = f"kill-{number}-{index}"
        body = json.dumps({"agent_id": agent, "action_type": "DELETE_RECORD"})
        try:
            connection.request("POST", "/agent-action", body,
                               {"Content-Type": "application/json"})
            reply = connection.getresponse()
            text = reply.read()
        except (OSError, http.client.HTTPException):
            return
        with lock:
            if reply.status != 200:
                refused.append(text)
                return
            answered.append(agent)
        index += 1


@pytest.mark.slow
def test_sigkill_mid_load_loses_no_answered_decision(tmp_path: Path) -> None:
    database = tmp_path / "killed.db"
    port = free_port()
    server = serve(database, port)
    answered: list[str] = []
    refused: list[bytes] = []
    lock = threading.Lock()
    clients = [threading.Thread(target=client, args=(port, number, answered, refused, lock))
               for number in range(CLIENTS)]
    try:
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + 120
        while len(answered) < BEFORE_KILL and not refused and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(server.pid, signal.SIGKILL)
        for thread in clients:
            thread.join(timeout=60)
    finally:
        server.kill()
        server.wait(timeout=30)
    assert server.returncode == -signal.SIGKILL
    assert refused == []
    assert len(answered) >= BEFORE_KILL
    records = [record for record in read_audit(database) if record["kind"] == "decision"]
    decided = {record["agent"] for record in records}
    assert set(answered) <= decided
    # committed but not answered: at most the requests in flight, one per client
    assert len(decided) - len(answered) <= CLIENTS
    store = SQLiteStore(database)
    try:
        assert store.verify_audit().ok
        replayed = Engine(_table(), MemoryStore(audit=False))
        for record in records:
            replayed.evaluate(record["agent"], record["action"], record["input"])
        for agent in decided:
            assert store.state(agent) == replayed.state(agent), agent
    finally:
        store.close()


def _table() -> dict[str, object]:
    from sentra_lang.policy_file import load_policy_file

    loaded = load_policy_file(POLICY)
    assert loaded.table is not None
    return loaded.table
