"""A policy with agent groups behind the real server: `/v1/decide` carries the agent's `group`,
the OpenAPI schema documents it, and the SDK reads it back (docs/server.md)."""

from __future__ import annotations

import pytest
from sentra_runtime.remote import RemoteEngine

from tests.server.conftest import TOKEN, Serve, Server

POLICY = '''policy grouped version "1" {
  risk_threshold 100
}
group trusted {
  agents "ops-*"
  risk_threshold 200
}
action EXPORT {
  allow risk 60 as EXPORT_OK "Export allowed."
}
otherwise block as UNKNOWN "Not covered."
'''


@pytest.fixture
def grouped(serve: Serve) -> Server:
    return serve(POLICY, "grouped.sentra")



def test_the_server_answers_with_the_group_and_applies_its_settings(grouped: Server) -> None:
    assert [(d["label"], d["group"]) for d in (grouped.decide("ops-1") for _ in range(4))] == [
        ("Allowed", "trusted")] * 3 + [("Blocked", "trusted")]   # 180 of 200, then 240
    assert [(d["label"], d["group"]) for d in (grouped.decide("x") for _ in range(2))] == [
        ("Allowed", ""), ("Blocked", "")]
    schema = grouped.get("/openapi.json").json()
    assert "group" in schema["components"]["schemas"]["DecisionView"]["properties"]
    remote = RemoteEngine(grouped.url, token=TOKEN)
    assert remote.evaluate("ops-2", "EXPORT").group == "trusted"
    remote.close()


def test_a_body_cannot_put_the_agent_in_a_group(grouped: Server) -> None:
    answer = grouped.post("/v1/decide", {"agent_id": "x", "action": "EXPORT", "group": "trusted",
                                         "fields": {"agent": {"group": "trusted"}}}, token=TOKEN)
    assert answer.status in (200, 422), answer.text
    if answer.status == 200:
        decision = answer.json()["decision"]
        assert (decision["group"], decision["rule_id"]) == ("", "UNDECLARED_FIELD")


def test_events_show_the_threshold_of_the_agents_group(grouped: Server) -> None:
    """The compatible event's `cumulative_risk` and trace read `N/threshold` with the threshold
    that applied to the agent (its group's), never the header's: 180/200, not 180/100."""
    events = [grouped.act("ops-9", "EXPORT") for _ in range(3)]
    assert [event["cumulative_risk"] for event in events] == ["60/200", "120/200", "180/200"]
    assert "Projected risk: 180/200" in events[2]["event_trace"]
    assert grouped.act("plain-9", "EXPORT")["cumulative_risk"] == "60/100"
    listed = grouped.get("/v1/events?agent=ops-9", token=TOKEN).json()["events"]
    assert [record["event"]["cumulative_risk"] for record in listed] == [
        "60/200", "120/200", "180/200"]
