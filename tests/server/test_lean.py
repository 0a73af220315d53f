"""The lean path of POST /agent-action and POST /v1/decide answers byte for byte what the FastAPI
route answers, and hands on everything it does not take (so every 422 is the route's own,
nothing written)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from tests.server.conftest import Server

# The lean path takes `application/json` only; this type, which the edge accepts as JSON, goes
# to the FastAPI route.
ROUTE = {"Content-Type": "application/vnd.sentra+json"}
REQUESTS: list[dict[str, Any]] = [
    {"action_type": "FILE_READ"},
    {"action_type": " export_data ", "target": "s3://b", "destination_type": "external",
     "data_classification": "sensitive", "amount": 12},
    {"action_type": "SEND_NOTIFICATION", "notification_type": "approval",
     "policy_context": {"eligibility_verified": True,
                        "approval_requires_verified_eligibility": True}},
    {"action_type": "APPROVE_TRANSACTION", "amount": 9000.5,
     "policy_context": {"max_approval_amount": "5000"}},
    {"action_type": "APPROVE_TRANSACTION", "amount": 100, "data_classification": None,
     "destination_type": None, "notification_type": None, "target": None, "extra": [1]},
    {"action_type": "CHANGE_PERMISSION"}, {"action_type": "CHANGE_PERMISSION"},
    {"action_type": "DELETE_RECORD"}, {"action_type": "FILE_READ", "target": "ünïcode ✓"},
]


def _comparable(text: str, agent: str) -> str:
    text = re.sub(r'"timestamp":"[^"]*"', '"timestamp":""', text)
    return text.replace(json.dumps(agent)[1:-1], "AGENT")


def test_lean_answers_equal_the_routes_byte_for_byte(server: Server, agent: str) -> None:
    lean_agent, route_agent = agent + "-lean", agent + "-route"
    for body in REQUESTS:
        lean = server.post("/agent-action", {"agent_id": lean_agent, **body})
        route = server.post("/agent-action", {"agent_id": route_agent, **body}, headers=ROUTE)
        assert lean.status == route.status == 200, (lean.text, route.text)
        assert lean.headers["content-type"] == route.headers["content-type"]
        assert _comparable(lean.text, lean_agent) == _comparable(route.text, route_agent)
    events = [e for e in server.get("/events").json() if e["agent_id"] == lean_agent]
    assert [json.dumps(e) for e in events][-1] == json.dumps(lean.json())


@pytest.mark.parametrize("raw", [
    b'{"agent_id":"x","action_type":"FILE_READ","amount":NaN}',
    b'{"agent_id":"x","action_type":"FILE_READ","amount":"12"}',
    b'{"agent_id":"x","action_type":"FILE_READ","amount":true}',
    b'{"agent_id":"x","action_type":"FILE_READ","amount":1e999}',
    b'{"agent_id":"x","action_type":"FILE_READ","policy_context":null}',
    b'{"agent_id":"x","action_type":"SEND_NOTIFICATION","notification_type":"approval",'
    b'"policy_context":{"eligibility_verified":"false"}}',
    b'{"agent_id":"x","action_type":5}', b'["x"]', b'', b'{"agent_id": "x", ',
    b'\xff\xfe{', b'{"agent_id":"x","action_type":"FILE_READ","target":{"a":1}}',
])
def test_what_the_lean_path_hands_on_is_answered_as_by_the_route(server: Server,
                                                                  raw: bytes) -> None:
    lean = server.post("/agent-action", raw=raw)
    route = server.post("/agent-action", raw=raw, headers=ROUTE)
    assert lean.status == route.status
    if lean.status == 200:
        assert _comparable(lean.text, "x") == _comparable(route.text, "x")
    else:
        assert lean.text == route.text


def test_plain_requests_take_the_lean_path(server: Server, agent: str) -> None:
    from sentra_lang.server.lean import plain_event

    gate = server.app.state.gate

    def event(body: Any) -> bytes | None:
        return asyncio.run(plain_event(gate, body))

    body = {"agent_id": agent, "action_type": "FILE_READ"}
    before = server.head()
    answer = event(body)
    assert answer is not None and json.loads(answer)["decision"] == "Allowed"
    assert event({**body, "amount": 20}) is not None
    assert server.head() == before + 2
    for handed_on in ({**body, "action_type": 7}, {**body, "amount": True},
                      {**body, "amount": "20"}, {**body, "amount": 10**400},
                      {**body, "target": 5}, {**body, "policy_context": []}, [body]):
        assert event(handed_on) is None, handed_on
    assert server.head() == before + 2


DECIDE_REQUESTS: list[dict[str, Any]] = [
    {"action": "FILE_READ"},
    {"action": "FILE_READ", "fields": {}},
    {"action": " export_data ", "fields": {"target": "s3://b", "destination_type": "external",
                                           "data_classification": "sensitive", "amount": 12}},
    {"action": "SEND_NOTIFICATION", "fields": {
        "notification_type": "approval", "context": {
            "eligibility_verified": True, "approval_requires_verified_eligibility": True}}},
    {"action": "APPROVE_TRANSACTION", "fields": {"amount": 9000.5,
                                                 "context": {"max_approval_amount": 5000}}},
    {"action": "CHANGE_PERMISSION"}, {"action": "CHANGE_PERMISSION"}, {"action": "DELETE_RECORD"},
    {"action": "FILE_READ", "fields": {"target": "ünïcode ✓"}},
]


def _decided(text: str, agent: str) -> str:
    return re.sub(r'"seq":[0-9]+', '"seq":0', text).replace(json.dumps(agent)[1:-1], "AGENT")


def test_lean_decisions_equal_the_routes_byte_for_byte(server: Server, agent: str) -> None:
    lean_agent, route_agent = agent + "-lean", agent + "-route"
    for body in DECIDE_REQUESTS:
        lean = server.post("/v1/decide", {"agent_id": lean_agent, **body})
        route = server.post("/v1/decide", {"agent_id": route_agent, **body}, headers=ROUTE)
        assert lean.status == route.status == 200, (lean.text, route.text)
        assert lean.headers["content-type"] == route.headers["content-type"]
        assert _decided(lean.text, lean_agent) == _decided(route.text, route_agent)
    lean_records = server.get(f"/v1/events?agent={lean_agent}").json()["events"]
    route_records = server.get(f"/v1/events?agent={route_agent}").json()["events"]
    for kept, routed in zip(lean_records, route_records, strict=True):
        for record in (kept, routed):
            for key in ("seq", "prev", "hash", "time"):
                record.pop(key)
        assert _decided(json.dumps(kept), lean_agent) == _decided(json.dumps(routed), route_agent)


@pytest.mark.parametrize("raw", [
    b'{"agent_id":"x","action":"FILE_READ","extra":1}',
    b'{"agent_id":"x","action":"FILE_READ","fields":null}',
    b'{"agent_id":"x","action":"FILE_READ","fields":[]}',
    b'{"agent_id":"x","action":5}', b'{"agent_id":7,"action":"FILE_READ"}',
    b'{"action":"FILE_READ"}', b'{"agent_id":"x"}', b'["x"]', b'', b'{"agent_id": "x", ',
    b'{"agent_id":"x","action":"FILE_READ","fields":{"amount":"12"}}',
    b'{"agent_id":"x","action":"FILE_READ","fields":{"amount":1e999}}',
    b'{"agent_id":"x","action":"FILE_READ","fields":{"amount":true}}',
])
def test_what_the_lean_decision_hands_on_is_answered_as_by_the_route(server: Server,
                                                                     raw: bytes) -> None:
    before = server.head()
    lean = server.post("/v1/decide", raw=raw)
    route = server.post("/v1/decide", raw=raw, headers=ROUTE)
    assert lean.status == route.status
    if lean.status == 200:
        assert _decided(lean.text, "x") == _decided(route.text, "x")
    else:
        assert lean.text == route.text
        assert server.head() == before


def test_plain_decisions_take_the_lean_path(server: Server, agent: str) -> None:
    from sentra_lang.server.lean import plain_decision

    gate = server.app.state.gate

    def answer(body: Any) -> bytes | None:
        return asyncio.run(plain_decision(gate, body))

    body = {"agent_id": agent, "action": "FILE_READ"}
    before = server.head()
    given = answer(body)
    assert given is not None and json.loads(given)["decision"]["label"] == "Allowed"
    assert answer({**body, "fields": {"amount": 20}}) is not None
    assert server.head() == before + 2
    for handed_on in ({**body, "action": 7}, {**body, "fields": None}, {**body, "more": 1},
                      {"agent_id": agent}, {**body, "fields": {"amount": "20"}}, [body]):
        assert answer(handed_on) is None, handed_on
    assert server.head() == before + 2
