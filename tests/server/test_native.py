"""The native /v1 API, operator token, reload, restart, metrics, SSE and OpenAPI over HTTP."""

from __future__ import annotations

import http.client
import json
import shutil
from pathlib import Path

from tests.server.conftest import POLICY, TOKEN, Server


def test_decide_returns_the_full_decision_with_explanation(server: Server, agent: str) -> None:
    answer = server.post("/v1/decide", {"agent_id": agent, "action": "APPROVE_TRANSACTION",
                                        "fields": {"amount": 9000,
                                                   "context": {"max_approval_amount": 5000}}})
    assert answer.status == 200
    decision = answer.json()["decision"]
    assert decision["rule_id"] == "RISKY_OVER_LIMIT_TRANSACTION"
    assert decision["cumulative_risk"] == 25 and decision["allowed"] is True
    assert decision["explanation"]["matched_rule"] == "RISKY_OVER_LIMIT_TRANSACTION"
    record = server.get(f"/v1/events/{answer.json()['seq']}").json()
    assert record["agent"] == agent and record["event"]["cumulative_risk"] == "25/100"
    bad = server.post("/v1/decide", {"agent_id": agent, "action": "X",
                                     "fields": {"context": {"eligibility_verified": "no"}}})
    assert bad.status == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "fields", "context", "eligibility_verified"]


def test_decide_refuses_a_parent_that_is_not_an_object(server: Server, agent: str) -> None:
    """Fail closed, not open: `{"context": "{...}"}` is never read as an empty context."""
    before = server.head()
    context: object
    for context in ('{"approval_requires_verified_eligibility": true}', 5, [], True):
        bad = server.post("/v1/decide", {"agent_id": agent, "action": "APPROVE_TRANSACTION",
                                         "fields": {"context": context}})
        assert bad.status == 422, bad.text
        errors = bad.json()["detail"]
        assert [error["loc"] for error in errors] == [["body", "fields", "context"]]
        assert errors[0]["type"] == "dict_type" and errors[0]["input"] == context
    assert server.head() == before
    assert server.get(f"/v1/agents/{agent}").json()["known"] is False
    nulled = server.post("/v1/decide", {"agent_id": agent, "action": "APPROVE_TRANSACTION",
                                        "fields": {"context": None}})
    assert nulled.status == 200 and nulled.json()["decision"]["rule_id"] == "ALLOW_TRANSACTION"


def test_sequence_numbers_beyond_sqlite_are_a_422(server: Server) -> None:
    for path in ("/v1/events/999999999999999999999", f"/v1/events/{2**63}", "/v1/events/-1",
                 "/v1/events?after=99999999999999999999", f"/v1/events?after={2**63}",
                 "/v1/events?after=-1", f"/v1/events/stream?after={2**63}",
                 "/v1/events/" + "9" * 5000, "/v1/events?after=" + "9" * 5000):
        assert server.get(path).status == 422, path
    assert server.get(f"/v1/events/{2**63 - 1}").status == 404
    top = server.get(f"/v1/events?after={2**63 - 1}").json()
    assert top["events"] == [] and top["next_after"] == 2**63 - 1


def test_a_huge_last_event_id_does_not_break_the_stream(server: Server) -> None:
    for last in ("9" * 30, "9" * 5000, "\u00b2"):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            connection.putrequest("GET", "/v1/events/stream")
            connection.putheader("Last-Event-ID", last.encode("latin-1"))
            connection.endheaders()
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("content-type", "").startswith("text/event-stream")
        finally:
            connection.close()


def test_agents_events_paging_and_filters(server: Server, agent: str) -> None:
    for action in ("FILE_READ", "CHANGE_PERMISSION", "DELETE_RECORD"):
        server.act(agent, action)
    listed = {a["agent_id"]: a for a in server.get("/v1/agents").json()["agents"]}
    assert listed[agent] == {"agent_id": agent, "cumulative_risk": 30, "blocked_attempts": 1,
                             "status": "active"}
    one = server.get(f"/v1/agents/{agent}").json()
    assert one["known"] is True and one["cumulative_risk"] == 30
    assert server.get("/v1/agents/nobody-ever").json()["known"] is False
    mine = server.get(f"/v1/events?agent={agent}&limit=2").json()
    assert [r["action"] for r in mine["events"]] == ["FILE_READ", "CHANGE_PERMISSION"]
    rest = server.get(f"/v1/events?agent={agent}&after={mine['next_after']}").json()
    assert [r["action"] for r in rest["events"]] == ["DELETE_RECORD"]
    blocked = server.get(f"/v1/events?agent={agent}&decision=Blocked").json()["events"]
    assert [r["decision"]["rule_id"] for r in blocked] == ["BLOCK_PERMISSION_CHANGE"]
    assert server.get("/v1/events?decision=Maybe").status == 422
    assert server.get("/v1/events/999999999").status == 404


def test_operator_token_guards_agent_reset(server: Server, agent: str) -> None:
    server.act(agent, "DELETE_RECORD")
    before = server.head()
    assert server.post(f"/v1/agents/{agent}/reset").status == 401
    assert server.post(f"/v1/agents/{agent}/reset", token="nope").status == 401
    assert server.head() == before
    done = server.post(f"/v1/agents/{agent}/reset", token=TOKEN)
    assert done.status == 200 and done.json()["reset"] == [agent]
    assert server.get(f"/v1/agents/{agent}").json()["cumulative_risk"] == 0


def test_operator_actions_are_refused_without_a_configured_token(tmp_path: Path) -> None:
    running = Server(POLICY, tmp_path / "s.db", None)
    try:
        assert running.post("/reset", token="anything").status == 403
        assert running.post("/v1/policy/reload", token="anything").status == 403
        assert running.post("/v1/agents/a/reset").status == 403
    finally:
        running.stop()


def test_policy_info_metrics_docs_and_dashboard(server: Server, agent: str) -> None:
    server.act(agent, "FILE_READ")
    policy = server.get("/v1/policy").json()
    assert policy["name"] == "sentra" and policy["hash"].startswith("sha256:")
    assert policy["table"]["hash"] == policy["hash"]
    metrics = server.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'sentra_decisions_total{decision="Allowed",rule="ALLOW_INTERNAL_WORKFLOW"}' in metrics.text
    assert "sentra_decision_seconds_count" in metrics.text
    assert server.get("/v1/metrics").status == 200
    assert "/agent-action" in server.get("/openapi.json").json()["paths"]
    assert server.get("/docs").status == 200
    page = server.get("/dashboard")
    assert page.status == 200 and "/static/dashboard.js" in page.text
    assert server.get("/static/dashboard.js").status == 200


def test_reload_keeps_state_and_refuses_a_broken_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy.sentra"
    shutil.copy(POLICY, policy)
    running = Server(policy, tmp_path / "s.db", TOKEN)
    try:
        running.act("a", "DELETE_RECORD")
        old = running.get("/v1/policy").json()["hash"]
        policy.write_text(POLICY.read_text().replace("allow risk 30 as RISKY_DELETE_RECORD",
                                                     "allow risk 35 as RISKY_DELETE_RECORD"))
        assert running.post("/v1/policy/reload").status == 401
        reloaded = running.post("/v1/policy/reload", token=TOKEN).json()
        assert reloaded["changed"] is True and reloaded["previous_hash"] == old
        assert running.act("a", "DELETE_RECORD")["cumulative_risk"] == "65/100"
        policy.write_text("policy broken {")
        refused = running.post("/v1/policy/reload", token=TOKEN)
        assert refused.status == 422 and refused.json()["detail"]["problems"]
        assert running.get("/v1/policy").json()["hash"] == reloaded["hash"]
        assert running.act("a", "DELETE_RECORD")["cumulative_risk"] == "100/100"
    finally:
        running.stop()


def test_restart_keeps_state_and_the_audit_log(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    first = Server(POLICY, db, TOKEN)
    for _ in range(3):
        first.act("persistent", "CHANGE_PERMISSION")
    head = first.head()
    first.stop()
    second = Server(POLICY, db, TOKEN)
    try:
        assert second.get("/v1/agents/persistent").json()["status"] == "shut_down"
        assert second.act("persistent", "FILE_READ")["policy_triggered"] == \
            "AGENT_ALREADY_SHUT_DOWN"
        assert len(second.get("/events").json()) == 4
        assert second.head() == head + 2
    finally:
        second.stop()


def test_event_stream_delivers_new_decisions(server: Server, agent: str) -> None:
    head = server.head()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", f"/v1/events/stream?after={head}&agent={agent}")
    reply = connection.getresponse()
    assert reply.status == 200
    assert reply.getheader("content-type").startswith("text/event-stream")
    server.act(agent, "EXPORT_DATA", destination_type="external", data_classification="secret")
    lines: list[str] = []
    while not any(line.startswith("data: ") for line in lines):
        lines.append(reply.fp.readline().decode().rstrip("\n"))
    data = json.loads(next(line for line in lines if line.startswith("data: "))[6:])
    assert data["agent"] == agent and data["event"]["policy_triggered"] == "ALLOW_INTERNAL_EXPORT"
    assert "event: decision" in lines
    connection.close()
