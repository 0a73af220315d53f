"""A review ticket someone edited in the store so that it is no ticket (not JSON, JSON the
decoder refuses, not an object, a ticket's keys or values missing or of the wrong kind) is
refused, never a 500: the requests that meet it answer 503 with a detail that says so
(docs/server.md, "When the database is unavailable"), other agents go on deciding, and
`audit verify` names the ticket."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
from sentra_runtime.review import Ticket, TicketDamaged
from sentra_runtime.stores.sqlite import verify_file

from tests.server.conftest import TOKEN, Serve, Server
from tests.server.test_review import POLICY, READ, held

DAMAGES = {
    "not JSON": "{not json",
    "nested too deeply": "[" * 100_000 + "]" * 100_000,
    "an integer too long": '{"risk": ' + "9" * 5000 + "}",
    "not an object": "[]",
    "keys missing": '{"ticket": "rv_x"}',
}


def damaged(server: Server, body: str) -> str:
    """Hold a decision of agent `a`, then overwrite its ticket's body; the ticket id."""
    ticket: str = held(server)["ticket"]
    with sqlite3.connect(server.db) as connection:
        connection.execute("UPDATE tickets SET body = ? WHERE ticket = ?", (body, ticket))
    return ticket


def assert_refused(answer: Any) -> None:
    assert answer.status == 503, (answer.status, answer.text[:300])
    assert "review ticket cannot be read" in answer.json()["detail"], answer.text[:300]
    assert "retry-after" not in answer.headers


@pytest.mark.parametrize("body", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_ticket_is_refused_never_a_500(serve: Serve, body: str) -> None:
    server = serve(POLICY, "refunds.sentra", read_token=READ)
    ticket = damaged(server, body)
    assert_refused(server.get("/v1/reviews?status=pending", token=READ))
    assert_refused(server.get(f"/v1/reviews/{ticket}", token=READ))
    assert_refused(server.post(f"/v1/reviews/{ticket}/approve", {"operator": "bob"},
                               token=TOKEN))
    assert_refused(server.post("/v1/decide", {"agent_id": "a", "action": "ISSUE_REFUND",
                                              "fields": {"amount": 1}}))
    other = server.post("/v1/decide", {"agent_id": "b", "action": "ISSUE_REFUND",
                                       "fields": {"amount": 1}})
    assert other.status == 200 and other.json()["decision"]["label"] == "Allowed"
    assert server.get("/v1/agents/a", token=READ).status == 200
    server.stop()
    result = verify_file(server.db)
    assert not result.ok and ticket in str(result), str(result)


GOOD = {"ticket": "rv_1", "agent_id": "a", "action": "PAY", "rule_id": "R", "risk": 5,
        "reason": "why", "threat": None, "policy_hash": "h", "created": 1, "expires": 2,
        "seq": 3, "input": {}}


@pytest.mark.parametrize("change", [
    {"risk": "5"}, {"risk": True}, {"created": 1.5}, {"input": []}, {"agent_id": None},
    {"status": None}, {"decision": "x"}, {"surprise": 1}])
def test_a_body_with_a_value_of_the_wrong_kind_is_damaged(change: dict[str, Any]) -> None:
    assert Ticket.from_body(json.dumps(GOOD)).risk == 5
    with pytest.raises(TicketDamaged, match="cannot be read"):
        Ticket.from_body(json.dumps({**GOOD, **change}))


def test_a_stored_ticket_reads_back_as_itself() -> None:
    ticket = Ticket.from_body(json.dumps(GOOD))
    assert Ticket.from_body(json.dumps(ticket.to_row())) == ticket
    assert Ticket.from_body(json.dumps({**GOOD, "seq": None}), seq=7).seq == 7
