"""Every request field takes its own type and nothing else (docs/server.md: "any value that does
not fit its type is a 422"): no booleans as numbers, no numbers as strings, on every endpoint.
Numbers reach the policy as they were sent, so a reason reads the same on every surface."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sentra_runtime import Engine

from sentra_lang import load_policy_file
from sentra_lang.cli import main
from tests.server.conftest import POLICY, TOKEN, Server

ACTION = {"agent_id": "typed", "action_type": "APPROVE_TRANSACTION"}
CLAIM_CALL = {"tool_name": "approve_payment", "arguments": {}}


@pytest.mark.parametrize(("path", "body", "loc"), [
    ("/agent-action", {**ACTION, "amount": True}, ["body", "amount"]),
    ("/agent-action", {**ACTION, "amount": False}, ["body", "amount"]),
    ("/agent-action", {**ACTION, "amount": [1]}, ["body", "amount"]),
    ("/agent-action", {**ACTION, "amount": 10**400}, ["body", "amount"]),
    ("/agent-action", {**ACTION, "amount": "1e400"}, ["body", "amount"]),
    ("/agent-action", {**ACTION, "agent_id": 7}, ["body", "agent_id"]),
    ("/agent-action", {**ACTION, "agent_id": True}, ["body", "agent_id"]),
    ("/agent-action", {**ACTION, "action_type": 1.5}, ["body", "action_type"]),
    ("/agent-action", {**ACTION, "target": 5}, ["body", "target"]),
    ("/agent-action", {**ACTION, "target": False}, ["body", "target"]),
    ("/agent-action", {**ACTION, "notification_type": True}, ["body", "notification_type"]),
    ("/agent-action", {**ACTION, "data_classification": 0}, ["body", "data_classification"]),
    ("/agent-action", {**ACTION, "destination_type": ["x"]}, ["body", "destination_type"]),
    ("/agent-action", {**ACTION, "policy_context": {"max_approval_amount": True}},
     ["body", "policy_context", "max_approval_amount"]),
    ("/agent-action", {**ACTION, "policy_context": {"eligibility_verified": 1}},
     ["body", "policy_context", "eligibility_verified"]),
    ("/v1/decide", {"agent_id": 1, "action": "X"}, ["body", "agent_id"]),
    ("/v1/decide", {"agent_id": "a", "action": False}, ["body", "action"]),
    ("/v1/decide", {"agent_id": "a", "action": "X", "fields": []}, ["body", "fields"]),
    ("/v1/decide", {"agent_id": "a", "action": "APPROVE_TRANSACTION",
                    "fields": {"amount": True}}, ["body", "fields", "amount"]),
    ("/v1/decide", {"agent_id": "a", "action": "X", "fieldz": {}}, ["body", "fieldz"]),
    ("/evaluate", {"claim": []}, ["body", "claim"]),
    ("/evaluate", {"claim": "CLM-1"}, ["body", "claim"]),
    ("/evaluate", {"proposed_tool_call": {"tool_name": 5}},
     ["body", "proposed_tool_call", "tool_name"]),
    ("/evaluate", {"proposed_tool_call": {"tool_name": "x", "arguments": "to=a"}},
     ["body", "proposed_tool_call", "arguments"]),
    ("/evaluate", {"proposed_tool_call": {**CLAIM_CALL, "arguments": {"amount": True}}},
     ["body", "proposed_tool_call", "arguments", "amount"]),
    ("/evaluate", {"proposed_tool_call": {**CLAIM_CALL, "arguments": {"to": 5}}},
     ["body", "proposed_tool_call", "arguments", "to"]),
    ("/evaluate", {"proposed_tool_call": {**CLAIM_CALL,
                                          "arguments": {"max_approval_amount": False}}},
     ["body", "proposed_tool_call", "arguments", "max_approval_amount"]),
])
def test_a_value_of_another_type_is_a_422_and_nothing_is_written(
        server: Server, path: str, body: dict[str, Any], loc: list[Any]) -> None:
    """`"amount": true` used to be decided as 1.0."""
    before = server.head()
    answer = server.post(path, body)
    assert answer.status == 422, answer.text
    assert loc in [problem["loc"] for problem in answer.json()["detail"]], answer.text
    assert server.head() == before


def test_unknown_top_level_fields_are_ignored_by_the_sentra_api(server: Server,
                                                               agent: str) -> None:
    """As the reference ignores them; /v1/decide refuses them (its request is its own)."""
    event = server.act(agent, "FILE_READ", amout=5, extra={"x": [1]})
    assert event["decision"] == "Allowed"
    answer = server.post("/evaluate", {"claim": {"claim_id": agent + "-claim"}, "other": 1,
                                       "proposed_tool_call": {"tool_name": "file_read",
                                                              "extra": True}})
    assert answer.status == 200, answer.text


def test_the_policy_gets_the_request_as_sent() -> None:
    """The declared top-level fields the client sent (the Sentra policy does not declare
    `target`), the reference defaults for declared ones it left out, and `policy_context`
    whole (unknown keys too: the policy's setting for undeclared fields judges them), numeric
    strings of declared numbers as numbers."""
    from sentra_lang.server.compat import request_input

    policy = Engine(load_policy_file(POLICY).table).policy
    context = {"acount_flag": "fraud", "max_approval_amount": "5000", "claim_id": 3}
    assert request_input(policy, {"target": "t", "amount": 20, "notification_type": None},
                        context) == {
        "amount": 20, "data_classification": "internal",
        "destination_type": "internal",
        "context": {"acount_flag": "fraud", "max_approval_amount": 5000, "claim_id": 3}}
    assert context["max_approval_amount"] == "5000"
    assert request_input(policy, {"data_classification": None}, {}) == {
        "destination_type": "internal", "context": {}}


# -- the same number everywhere -----------------------------------------------------------------

OVER_LIMIT = "Transaction amount {} exceeds the approval limit of {}."


@pytest.mark.parametrize(("amount", "limit", "shown"), [
    (9000, 5000, ("9000", "5000")),
    ("9000", "5000", ("9000", "5000")),
    (" 9000 ", 5000.0, ("9000", "5000.0")),
    (9000.5, 5000, ("9000.5", "5000")),
    ("9000.5", 5000, ("9000.5", "5000")),
    ("9e3", 5000, ("9000.0", "5000")),
])
def test_a_reason_renders_a_number_as_it_was_sent_on_every_surface(
        server: Server, agent: str, capsys: pytest.CaptureFixture[str], amount: Any,
        limit: Any, shown: tuple[str, str]) -> None:
    """The Sentra API used to render `9000.0` where /v1, explain and suites render `9000`
    (docs/table.md, "Reasons": integers without a decimal point, floats in Python's shortest
    form; a numeric string as the number it spells)."""
    expected = OVER_LIMIT.format(*shown)
    context = {"max_approval_amount": limit}
    event = server.act(agent, "APPROVE_TRANSACTION", amount=amount, policy_context=context)
    assert event["reason"] == expected
    assert event["amount"] == float(amount)   # the reference's model echoes a float
    claim = server.post("/evaluate", {"claim": {"claim_id": agent + "-claim", "documents": {
        "proof_of_termination": "yes"}}, "proposed_tool_call": {
        "tool_name": "approve_payment", "arguments": {"amount": amount,
                                                       "max_approval_amount": limit}}}).json()
    assert claim["result"]["reason"] == expected
    if isinstance(amount, str) or isinstance(limit, str):
        return   # /v1 and explain take the policy's own types: numbers
    native = server.post("/v1/decide", {"agent_id": agent + "-v1", "action": "APPROVE_TRANSACTION",
                                        "fields": {"amount": amount, "context": context}}).json()
    assert native["decision"]["reason"] == expected
    assert main(["explain", str(POLICY), "APPROVE_TRANSACTION", "--field",
                 f"amount={json.dumps(amount)}", "--field",
                 f"context.max_approval_amount={json.dumps(limit)}", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["reason"] == expected


def test_the_policy_loads_metric_counts_the_policy_at_start(own_server: Server) -> None:
    """It used to say 0 while a policy was loaded."""
    def loads() -> str:
        text = own_server.get("/metrics").text
        help_line = next(line for line in text.splitlines()
                         if line.startswith("# HELP sentra_policy_loads_total"))
        assert "the one at start and each successful reload" in help_line
        return next(line for line in text.splitlines()
                    if line.startswith("sentra_policy_loads_total "))

    assert loads() == "sentra_policy_loads_total 1"
    assert own_server.post("/v1/policy/reload", token=TOKEN).status == 200
    assert loads() == "sentra_policy_loads_total 2"
