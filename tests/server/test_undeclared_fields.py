"""Undeclared fields over HTTP: a policy that refuses them answers a 422 naming the field (with a
"did you mean") and writes nothing; the Sentra-compatible policy ignores them, as the reference
server does, so its API stays compatible."""

from __future__ import annotations

import pytest

from tests.server.conftest import Serve, Server

POLICY = """policy fraud version "1" {}
input {
  amount: number?
  context.account_flag: string?
}
action PAY {
  when context.account_flag == "fraud" block as FRAUD "Flagged account."
  allow as PAID "Paid."
}
otherwise block as UNKNOWN "Unknown action."
"""


@pytest.fixture
def refusing_server(serve: Serve) -> Server:
    return serve(POLICY, "fraud.sentra", "fraud.db")


def test_a_misspelt_field_is_a_422_naming_it_and_nothing_is_written(
        refusing_server: Server) -> None:
    before = refusing_server.head()
    answer = refusing_server.post("/v1/decide", {
        "agent_id": "a", "action": "PAY", "fields": {"context": {"acount_flag": "fraud"}}})
    assert answer.status == 422, answer.text
    [error] = answer.json()["detail"]
    assert error["loc"] == ["body", "fields", "context", "acount_flag"]
    assert error["type"] == "extra_forbidden" and error["input"] == "fraud"
    assert "did you mean `account_flag`?" in error["msg"]
    assert refusing_server.head() == before
    spelt = refusing_server.post("/v1/decide", {
        "agent_id": "a", "action": "PAY", "fields": {"context": {"account_flag": "fraud"}}})
    assert spelt.status == 200 and spelt.json()["decision"]["rule_id"] == "FRAUD"


def test_the_sentra_policy_reads_past_keys_it_does_not_use(server: Server, agent: str) -> None:
    event = server.act(agent, "APPROVE_TRANSACTION", amount=100,
                       policy_context={"claim_id": "c-7", "workflow_type": "claims",
                                       "max_approval_amount": 5000})
    assert event["policy_triggered"] == "ALLOW_TRANSACTION"
    decided = server.post("/v1/decide", {"agent_id": agent, "action": "FILE_READ",
                                         "fields": {"context": {"claim_id": "c-7"}}})
    assert decided.status == 200 and decided.json()["decision"]["allowed"] is True


NO_CONTEXT = """policy refunds version "1" {}
input {
  amount: number?
}
action REFUND {
  when amount > 100 block as LARGE "Refund of {amount} needs a person."
  allow as REFUNDED "Refunded."
}
otherwise block as UNKNOWN "Unknown action."
"""


@pytest.fixture
def no_context_server(serve: Serve) -> Server:
    return serve(NO_CONTEXT, "refunds.sentra", "refunds.db")


@pytest.mark.parametrize("body", [
    {"agent_id": "a", "action_type": "REFUND", "amount": 20},
    {"agent_id": "a", "action_type": "REFUND", "amount": 20, "policy_context": {}},
    {"agent_id": "a", "action_type": "REFUND", "amount": "20", "target": "order-1"},
], ids=["without-context", "empty-context", "numeric-string-and-target"])
def test_a_refusing_policy_that_reads_no_context_works_through_the_compatible_api(
        no_context_server: Server, body: dict[str, object]) -> None:
    answer = no_context_server.post("/agent-action", body)
    assert answer.status == 200, answer.text
    assert answer.json()["decision"] == "Allowed"


@pytest.mark.parametrize(("key", "loc", "hint"), [
    ("amout", ["body", "amout"], "did you mean `amount`?"),
    ("context", ["body", "context"], None),
    ("Amount", ["body", "Amount"], "did you mean `amount`?"),
])
def test_a_top_level_typo_is_refused_by_a_refusing_policy(
        no_context_server: Server, key: str, loc: list[str], hint: str | None) -> None:
    """Typed `amout`, the amount never reaches the policy: a refusing policy answers 422 naming
    the key (the lean path and the route alike) rather than allowing a large refund."""
    before = no_context_server.head()
    answer = no_context_server.post("/agent-action", {
        "agent_id": "a", "action_type": "REFUND", key: 5000})
    assert answer.status == 422, answer.text
    [error] = answer.json()["detail"]
    assert (error["loc"], error["type"], error["input"]) == (loc, "extra_forbidden", 5000)
    assert hint is None or hint in error["msg"], error["msg"]
    assert no_context_server.head() == before


def test_the_sentra_policy_ignores_top_level_keys_beyond_the_request(
        server: Server, agent: str) -> None:
    event = server.act(agent, "FILE_READ", amout=5, context={"x": 1})
    assert event["decision"] == "Allowed"
