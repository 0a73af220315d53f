"""16 client threads, 50 agents, thousands of requests: the server's decisions equal a serial
replay of its audit log, none is lost, and no agent ever goes above the threshold."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest
from sentra_runtime import Engine, MemoryStore
from sentra_runtime.stores.sqlite import read_audit

from tests.server.conftest import POLICY, TOKEN, Server

THREADS = 16
AGENTS = 50
PER_THREAD = 150
ACTIONS = [
    {"action_type": "EXPORT_DATA", "destination_type": "external",
     "data_classification": "sensitive"},
    {"action_type": "DELETE_RECORD"}, {"action_type": "FILE_READ"},
    {"action_type": "CHANGE_PERMISSION"}, {"action_type": "SOMETHING_ELSE"},
    {"action_type": "MODIFY_RECORD", "data_classification": "restricted",
     "policy_context": {"sensitive_record_update_requires_review": True}},
]


@pytest.mark.slow
def test_concurrent_decisions_equal_a_serial_replay(tmp_path: Path) -> None:
    running = Server(POLICY, tmp_path / "s.db", TOKEN)
    failures: list[str] = []
    answers: list[dict] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        chooser = random.Random(number)
        for _ in range(PER_THREAD):
            body = {"agent_id": f"agent-{chooser.randrange(AGENTS)}", **chooser.choice(ACTIONS)}
            response = running.post("/agent-action", body)
            with lock:
                if response.status != 200:
                    failures.append(response.text)
                else:
                    answers.append(response.json())

    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert len(answers) == THREADS * PER_THREAD
        final = {a["agent_id"]: a for a in running.get("/v1/agents").json()["agents"]}
    finally:
        running.stop()

    records = [r for r in read_audit(tmp_path / "s.db") if r["kind"] == "decision"]
    assert len(records) == THREADS * PER_THREAD
    policy = running.app.state.gate.table
    replay = Engine(policy, MemoryStore(audit=False))
    for record in records:
        decision = replay.evaluate(record["agent"], record["action"], record["input"])
        expected = record["decision"]
        assert (decision.label, decision.rule_id, decision.cumulative_risk,
                decision.blocked_attempts, decision.status) == \
            (expected["label"], expected["rule_id"], expected["cumulative_risk"],
             expected["blocked_attempts"], expected["status"]), record["seq"]
        assert decision.cumulative_risk <= 100
    for agent_id, state in final.items():
        replayed = replay.state(agent_id)
        assert (state["cumulative_risk"], state["blocked_attempts"], state["status"]) == \
            (replayed.cumulative_risk, replayed.blocked_attempts, replayed.status)
    assert all(int(a["cumulative_risk"].split("/")[0]) <= 100 for a in answers)
