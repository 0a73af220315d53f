"""The decision server under a policy with groups, rate limits and risk decay (issue 15, items
2-4), probed from docs/server.md ("/v1/agents", "PUT /v1/agents/{id}/group", reload) and
docs/language.md alone, on a real server (uvicorn on a loopback port, a real SQLite file)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import TOKEN, Server

Serve = Callable[[str], Server]

POLICY = """policy refunds version "1" {
  risk_threshold 100
  strikes 3
  risk_decay 10 per 1s
}

group trusted {
  agents "ops-*"
  risk_threshold 150
  limit ISSUE_REFUND 3 per 1h
}

input {
  amount: int
}

action ISSUE_REFUND {
  allow risk 40 as REFUND_OK "Refund of {amount} issued."
}

otherwise block as UNKNOWN "Not covered."
"""


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Start a server of the test's own on a policy source (stopped after the test)."""
    started: list[Server] = []

    def start(source: str) -> Server:
        policy = tmp_path / "policy.sentra"
        policy.write_text(source, encoding="utf-8")
        started.append(Server(policy, tmp_path / "sentra.db", TOKEN))
        return started[-1]

    yield start
    for running in started:
        running.stop()


def agent(server: Any, agent_id: str) -> dict[str, Any]:
    response = server.get(f"/v1/agents/{agent_id}", token=server.token)
    assert response.status == 200, response.text
    return dict(response.json())


def test_the_compatible_endpoint_blocks_over_a_group_limit_with_the_groups_threshold(
        serve: Serve) -> None:
    server = serve(POLICY.replace("risk_decay 10 per 1s", "risk_decay 10 per 1d"))
    answers = [server.act("ops-1", "ISSUE_REFUND", amount=1) for _ in range(4)]
    assert [a["policy_triggered"] for a in answers] == ["REFUND_OK"] * 3 + ["RATE_LIMIT_EXCEEDED"]
    assert answers[2]["cumulative_risk"] == "120/150"                 # the group's threshold
    # docs/server.md: another id decided, and the matched rule's reason interpolates a field
    assert answers[3]["policy_description"] == "Refund Ok"
    assert answers[3]["cumulative_risk"] == "120/150"
    state = agent(server, "ops-1")
    assert (state["group"], state["risk_threshold"], state["blocked_attempts"]) == \
        ("trusted", 150, 1)
    assert state["limits"] == [{"limit": "3 per 1h", "for": "`ISSUE_REFUND` in group `trusted`",
                                "count": 3}]


def test_reading_a_decayed_agent_writes_nothing(serve: Serve) -> None:
    server = serve(POLICY)
    assert server.decide("a", "ISSUE_REFUND", {"amount": 1})["cumulative_risk"] == 40
    head = server.head(server.token)
    time.sleep(2.2)                                                    # two periods
    assert agent(server, "a")["cumulative_risk"] == 20
    listed = server.get("/v1/agents", token=server.token).json()["agents"]
    assert [a["cumulative_risk"] for a in listed if a["agent_id"] == "a"] == [20]
    assert server.head(server.token) == head
    assert server.decide("a", "ISSUE_REFUND", {"amount": 1})["decayed"] >= 20


@pytest.mark.parametrize("agent_id, path", [
    ("a/b", "a%2Fb"), ("\x1b[2J", "%1B%5B2J"), ("\u202e", "%E2%80%AE"), ("a b", "a%20b")])
def test_an_assignment_to_a_hostile_id_is_that_agents_and_nobody_elses(
        serve: Serve, agent_id: str, path: str) -> None:
    server = serve(POLICY)
    response = server.request("PUT", f"/v1/agents/{path}/group",
                              {"group": "trusted", "operator": "alice"}, token=server.token)
    assert response.status == 200, response.text
    assert response.json()["agent"]["agent_id"] == agent_id
    decision = server.decide(agent_id, "ISSUE_REFUND", {"amount": 1})
    assert decision["group"] == "trusted"
    assert server.decide("a", "ISSUE_REFUND", {"amount": 1})["group"] == ""


def test_a_reload_that_removes_the_assigned_group_leaves_it_inert(serve: Serve) -> None:
    server = serve(POLICY.replace("risk_decay 10 per 1s", "risk_decay 10 per 1d"))
    put = server.request("PUT", "/v1/agents/x-1/group", {"group": "trusted", "operator": "al"},
                         token=server.token)
    assert put.status == 200, put.text
    for _ in range(3):
        assert server.decide("x-1", "ISSUE_REFUND", {"amount": 1})["label"] == "Allowed"
    server.policy.write_text(POLICY.replace("group trusted", "group vetted"), "utf-8")
    assert server.post("/v1/policy/reload", token=server.token).status == 200
    state = agent(server, "x-1")
    assert (state["group"], state["assigned_group"], state["risk_threshold"]) == \
        ("", "trusted", 100)
    decision = server.decide("x-1", "ISSUE_REFUND", {"amount": 1})    # 120 > 100, no limit
    assert (decision["rule_id"], decision["group"]) == ("RISK_THRESHOLD_EXCEEDED", "")
    server.policy.write_text(POLICY, "utf-8")                         # the group is back
    assert server.post("/v1/policy/reload", token=server.token).status == 200
    assert agent(server, "x-1")["group"] == "trusted"
