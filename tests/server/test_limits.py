"""A policy with rate limits behind the real server: a decision over a limit carries `limit`
(the OpenAPI schema documents it, the SDK reads it back), the agent's state lists its limits
with their counts, and the windows survive a restart of the server on its store."""

from __future__ import annotations

import pytest
from sentra_runtime.remote import RemoteEngine

from tests.server.conftest import TOKEN, Serve, Server

POLICY = '''policy limited version "1" {
  risk_threshold 100
}
group trusted {
  agents "ops-*"
  limit 10 per 1d
}
action EXPORT {
  allow risk 10 as EXPORT_OK "Export allowed." limit 2 per 1h
}
otherwise block as UNKNOWN "Not covered."
'''


@pytest.fixture
def limited(serve: Serve) -> Server:
    return serve(POLICY, "limited.sentra")



def test_over_a_limit_the_server_says_which_and_the_state_lists_the_counts(
        limited: Server) -> None:
    assert [limited.decide("ops-1")["label"] for _ in range(2)] == ["Allowed"] * 2
    over = limited.decide("ops-1")
    assert (over["rule_id"], over["limit"]) == (
        "RATE_LIMIT_EXCEEDED", {"limit": "2 per 1h", "for": "`EXPORT_OK`", "count": 2})
    state = limited.get("/v1/agents/ops-1", token=TOKEN).json()
    assert state["limits"] == [
        {"limit": "2 per 1h", "for": "`EXPORT_OK`", "count": 2},
        {"limit": "10 per 1d", "for": "all actions in group `trusted`", "count": 2}]
    assert state["blocked_attempts"] == 1
    schema = limited.get("/openapi.json").json()["components"]["schemas"]
    assert "limit" in schema["DecisionView"]["properties"]
    assert "limits" in schema["AgentState"]["properties"]
    remote = RemoteEngine(limited.url, token=TOKEN)
    try:
        assert remote.evaluate("ops-1", "EXPORT").to_dict()["limit"]["count"] == 2
    finally:
        remote.close()


def test_the_windows_survive_a_restart(limited: Server) -> None:
    for _ in range(2):
        limited.decide("a")
    limited.stop()
    again = Server(limited.policy, limited.db, TOKEN)
    try:
        assert again.decide("a")["rule_id"] == "RATE_LIMIT_EXCEEDED"
    finally:
        again.stop()
