"""The review queue behind the real server (docs/server.md, "Review"): decisions held for an
operator carry their ticket; `/v1/reviews` lists them (read token), `/v1/reviews/{ticket}` is
open to the ticket's holder, approve and deny need the operator token; hostile requests get a
clear 4xx and change nothing; the Sentra-compatible answer says `Review Required`; verdicts are
audit records on the stream, and the store verifies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sentra_runtime.stores.sqlite import verify_file

from tests.runtime.helpers import T0, Clock
from tests.server.conftest import TOKEN, Serve, Server

READ = "test-read-token"
POLICY = '''policy refunds version "1" {
  risk_threshold 100
  review_timeout 1h
}
input {
  amount: number?
  target: string?
}
action ISSUE_REFUND {
  when amount > 500 review risk 60 as REVIEW_LARGE threat "Financial Overreach" "Refund of {amount} needs a human."
  allow risk 10 as SMALL "Small refund."
}
otherwise block as OTHER "Not covered."
'''


@pytest.fixture
def reviewing(serve: Serve) -> tuple[Server, Clock]:
    running = serve(POLICY, "refunds.sentra", read_token=READ)
    clock = Clock()
    running.app.state.gate.clock = clock
    return running, clock


def held(server: Server, agent: str = "a", amount: int = 700) -> dict[str, Any]:
    answer = server.post("/v1/decide", {"agent_id": agent, "action": "ISSUE_REFUND",
                                        "fields": {"amount": amount}})
    assert answer.status == 200, answer.text
    decision: dict[str, Any] = answer.json()["decision"]
    return decision


def test_a_review_decision_carries_its_ticket_and_the_queue_lists_it(
        reviewing: tuple[Server, Clock]) -> None:
    server, _ = reviewing
    decision = held(server)
    assert (decision["label"], decision["outcome"], decision["allowed"]) == (
        "Review Required", "review", False)
    assert decision["ticket"].startswith("rv_") and decision["expires_at"] == T0 + 3600
    assert server.get("/v1/reviews?status=pending").status == 401
    page = server.get("/v1/reviews?status=pending", token=READ)
    assert page.status == 200
    [ticket] = page.json()["tickets"]
    assert (ticket["ticket"], ticket["status"], ticket["input"], ticket["rule_id"]) == (
        decision["ticket"], "pending", {"amount": 700}, "REVIEW_LARGE")
    assert ticket["expires"] == "2023-11-14T23:13:20.000000Z"
    assert server.get("/v1/reviews?status=open", token=READ).status == 422
    mine = server.get(f"/v1/reviews/{decision['ticket']}")   # no token: the ticket is the secret
    assert mine.status == 200 and mine.json()["status"] == "pending"


def test_approve_needs_the_operator_token_and_is_given_once(
        reviewing: tuple[Server, Clock]) -> None:
    server, clock = reviewing
    ticket = held(server)["ticket"]
    path = f"/v1/reviews/{ticket}/approve"
    assert server.post(path, {"operator": "alice"}).status == 401
    assert server.post(path, {"operator": "alice"}, token=READ).status == 401
    clock.now += 60
    answer = server.post(path, {"operator": "alice", "note": "verified"}, token=TOKEN)
    assert answer.status == 200, answer.text
    body = answer.json()
    assert (body["decision"]["label"], body["decision"]["rule_id"],
            body["decision"]["cumulative_risk"], body["decision"]["ticket"]) == (
        "Allowed", "REVIEW_LARGE", 60, ticket)
    assert (body["ticket"]["status"], body["ticket"]["operator"], body["ticket"]["note"]) == (
        "approved", "alice", "verified")
    from sentra_lang.server import models  # the answers fit the OpenAPI document's models
    models.Reviewed.model_validate(body)
    models.TicketPage.model_validate(server.get("/v1/reviews", token=READ).json())
    models.Ticket.model_validate(server.get(f"/v1/reviews/{ticket}").json())
    models.Decided.model_validate(server.post("/v1/decide", {
        "agent_id": "z", "action": "ISSUE_REFUND", "fields": {"amount": 900}}).json())
    again = server.post(f"/v1/reviews/{ticket}/deny", {"operator": "bob"}, token=TOKEN)
    assert again.status == 409 and again.json()["detail"]["ticket"]["status"] == "approved"
    record = server.get(f"/v1/events/{body['seq']}", token=READ).json()
    assert (record["kind"], record["verdict"], record["operator"], record["note"]) == (
        "review", "approved", "alice", "verified")
    assert server.get("/v1/agents/a", token=READ).json()["cumulative_risk"] == 60
    assert verify_file(server.db).ok


def test_deny_is_a_strike_and_the_operator_defaults_to_the_tokens(
        reviewing: tuple[Server, Clock]) -> None:
    server, _ = reviewing
    ticket = held(server)["ticket"]
    answer = server.post(f"/v1/reviews/{ticket}/deny", token=TOKEN)
    assert answer.status == 200, answer.text
    decision = answer.json()["decision"]
    assert (decision["label"], decision["rule_id"], decision["blocked_attempts"]) == (
        "Blocked", "REVIEW_LARGE", 1)
    assert answer.json()["ticket"]["operator"] == "operator"


def test_an_expired_ticket_is_a_409_and_reads_as_expired(
        reviewing: tuple[Server, Clock]) -> None:
    server, clock = reviewing
    ticket = held(server)["ticket"]
    clock.now += 3600
    answer = server.post(f"/v1/reviews/{ticket}/approve", {"operator": "alice"}, token=TOKEN)
    assert answer.status == 409 and answer.json()["detail"]["ticket"]["status"] == "expired"
    assert server.get(f"/v1/reviews/{ticket}").json()["status"] == "expired"
    kinds = [e["verdict"] for e in server.get("/v1/events?kind=review",
                                              token=READ).json()["events"]]
    assert kinds == ["expired"]


@pytest.mark.parametrize(("body", "status"), [
    ({"operator": 5}, 422), ({"operator": ""}, 422), ({"operator": "a" * 201}, 422),
    ({"note": "x" * 2001}, 422), ({"operator": "a", "approve": False}, 422),
    ([1, 2], 422), ("alice", 422), ({"note": None, "operator": None}, 200),
])
def test_hostile_bodies_get_a_clear_4xx_and_change_nothing(
        reviewing: tuple[Server, Clock], body: Any, status: int) -> None:
    server, _ = reviewing
    ticket = held(server)["ticket"]
    answer = server.post(f"/v1/reviews/{ticket}/approve", body, token=TOKEN)
    assert answer.status == status, answer.text
    assert "Traceback" not in answer.text
    if status != 200:
        assert "detail" in answer.json()
        assert server.get(f"/v1/reviews/{ticket}").json()["status"] == "pending"


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b'{"operator": "a", "operator": 1}',
                                 b"1e999", b"[]"])
def test_malformed_json_is_refused(reviewing: tuple[Server, Clock], raw: bytes) -> None:
    server, _ = reviewing
    ticket = held(server)["ticket"]
    answer = server.request("POST", f"/v1/reviews/{ticket}/deny", raw=raw, token=TOKEN)
    assert 400 <= answer.status < 500 and "Traceback" not in answer.text, answer.text
    if answer.status != 200:
        assert server.get(f"/v1/reviews/{ticket}").json()["status"] == "pending"


@pytest.mark.parametrize("ticket", ["rv_nosuchticket0000000000", "x" * 5000, "%00",
                                    "..%2F..%2Fetc", "rv_" + "%C3%A9" * 10])
def test_unknown_tickets_are_404(reviewing: tuple[Server, Clock], ticket: str) -> None:
    server, _ = reviewing
    assert server.get(f"/v1/reviews/{ticket}").status == 404
    answer = server.post(f"/v1/reviews/{ticket}/approve", {"operator": "a"}, token=TOKEN)
    assert answer.status == 404 and "Traceback" not in answer.text


def test_the_compatible_endpoint_answers_review_required(reviewing: tuple[Server, Clock]) -> None:
    server, _ = reviewing
    answer = server.post("/agent-action", {"agent_id": "c", "action_type": "ISSUE_REFUND",
                                           "amount": 900, "target": "order-1"})
    assert answer.status == 200, answer.text
    event = answer.json()
    assert event["decision"] == "Review Required"
    assert event["policy_triggered"] == "REVIEW_LARGE"
    assert event["event_trace"][-1] == "Action held for human review"
    [ticket] = server.get("/v1/reviews?agent=c", token=READ).json()["tickets"]
    assert ticket["status"] == "pending" and event["ticket"] == ticket["ticket"]


def test_verdicts_reach_the_live_stream(reviewing: tuple[Server, Clock]) -> None:
    import http.client

    server, _ = reviewing
    ticket = held(server)["ticket"]
    start = server.head(token=READ)
    server.post(f"/v1/reviews/{ticket}/approve", {"operator": "alice"}, token=TOKEN)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", f"/v1/events/stream?after={start}&access_token={READ}")
    reply = connection.getresponse()
    seen = b""
    while b"event: review" not in seen:
        line = reply.fp.readline()
        assert line, seen
        seen += line
    data = next(line for line in reply.fp if line.startswith(b"data: "))
    record = json.loads(data[6:])
    assert (record["kind"], record["ticket"], record["verdict"]) == ("review", ticket, "approved")
    connection.close()


def test_the_queue_is_paged_oldest_first(reviewing: tuple[Server, Clock]) -> None:
    server, clock = reviewing
    made = []
    for number in range(5):
        made.append(held(server, agent=f"agent-{number}")["ticket"])
        clock.now += 1
    seen, after, pages = [], None, 0
    while True:
        query = "/v1/reviews?status=pending&limit=2" + ("" if after is None else f"&after={after}")
        page = server.get(query, token=READ).json()
        seen += [ticket["ticket"] for ticket in page["tickets"]]
        pages += 1
        after = page["next_after"]
        if after is None:
            break
    assert (seen, pages) == (made, 3)
    assert server.get("/v1/reviews?limit=0", token=READ).status == 422
    assert server.get("/v1/reviews?limit=1001", token=READ).status == 422
    unknown = server.get("/v1/reviews?after=rv_gone&limit=1", token=READ).json()
    assert [t["ticket"] for t in unknown["tickets"]] == made[:1]   # an unknown `after`: the start
