"""The Sentra-compatible API over HTTP: shapes, semantics walkthroughs, validation (docs/server.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.server.conftest import TOKEN, Server

EVENT_KEYS = ["timestamp", "agent_id", "action_type", "action_label", "target", "amount",
              "notification_type", "data_classification", "destination_type",
              "policy_triggered", "policy_description", "threat_type", "risk", "attempted_risk",
              "projected_risk", "cumulative_risk", "decision", "reason", "event_trace"]
SHUT_DOWN_KEYS = [key for key in EVENT_KEYS if key not in
                  ("amount", "notification_type", "data_classification", "destination_type")]
SENSITIVE_EXPORT = {"destination_type": "external", "data_classification": "sensitive"}


def test_health_and_root_answer_the_reference_shape(server: Server) -> None:
    for path in ("/", "/health"):
        response = server.get(path)
        assert response.status == 200
        assert response.text == '{"status":"ok","risk_threshold":100}'


def test_agent_action_event_has_the_reference_keys_in_order(server: Server, agent: str) -> None:
    event = server.act(agent, " export_data ", target="s3://bucket", amount="12.5",
                       **SENSITIVE_EXPORT)
    assert list(event) == EVENT_KEYS
    assert (event["action_type"], event["action_label"]) == ("EXPORT_DATA", "Export Data")
    assert event["amount"] == 12.5 and event["target"] == "s3://bucket"
    assert event["policy_triggered"] == "RISKY_SENSITIVE_EXTERNAL_EXPORT"
    assert (event["risk"], event["attempted_risk"], event["projected_risk"]) == (80, 80, 80)
    assert event["cumulative_risk"] == "80/100" and event["decision"] == "Allowed"
    assert event["event_trace"] == [
        "Tool invoked: EXPORT_DATA", "Policy matched: RISKY_SENSITIVE_EXTERNAL_EXPORT",
        "Attempted risk: 80", "Projected risk: 80/100", "Applied risk: 80",
        "Cumulative risk: 80/100", "Blocked attempts: 0", "Action allowed"]
    assert len(event["timestamp"]) == 19 and event["timestamp"][10] == " "


def test_three_strikes_shut_the_agent_down_and_it_stays_down(server: Server, agent: str) -> None:
    first = server.act(agent, "CHANGE_PERMISSION")
    assert (first["decision"], first["policy_triggered"]) == ("Blocked", "BLOCK_PERMISSION_CHANGE")
    assert (first["risk"], first["attempted_risk"], first["cumulative_risk"]) == (0, 60, "0/100")
    assert first["event_trace"][-2:] == ["Blocked attempts: 1", "Action blocked by policy"]
    second = server.act(agent, "CHANGE_PERMISSION")
    assert second["decision"] == "Blocked"
    third = server.act(agent, "CHANGE_PERMISSION")
    assert third["decision"] == "Agent Shut Down"
    assert third["policy_triggered"] == "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS"
    assert third["reason"] == ("Agent shut down after 3 blocked attempts. Cumulative risk remains "
                               "0/100.")
    assert third["event_trace"][-2:] == ["Blocked attempts: 3", "Agent execution halted"]
    after = server.act(agent, "FILE_READ")
    assert list(after) == SHUT_DOWN_KEYS
    assert after["decision"] == "Agent Shut Down"
    assert after["policy_triggered"] == "AGENT_ALREADY_SHUT_DOWN"
    assert after["reason"] == "Agent is already shut down."
    assert after["event_trace"] == ["Tool invoked: FILE_READ", "Agent already shut down"]
    state = server.get(f"/v1/agents/{agent}").json()
    assert (state["blocked_attempts"], state["status"]) == (3, "shut_down")


def test_threshold_reached_exactly_is_allowed_and_beyond_is_blocked(server: Server,
                                                                     agent: str) -> None:
    assert server.act(agent, "EXPORT_DATA", **SENSITIVE_EXPORT)["cumulative_risk"] == "80/100"
    exact = server.act(agent, "SOMETHING_NEW")
    assert (exact["decision"], exact["cumulative_risk"]) == ("Allowed", "100/100")
    over = server.act(agent, "DELETE_RECORD")
    assert over["decision"] == "Blocked"
    assert over["policy_triggered"] == "RISK_THRESHOLD_EXCEEDED"
    assert over["threat_type"] == "Destructive Action"
    assert over["reason"] == "Projected risk would reach 130/100. Action blocked before execution."
    assert (over["risk"], over["attempted_risk"], over["projected_risk"]) == (0, 30, 130)
    assert over["event_trace"][1] == "Policy matched: RISKY_DELETE_RECORD"
    assert server.act(agent, "FILE_READ")["decision"] == "Allowed"


def test_empty_agent_and_action_are_valid(server: Server) -> None:
    event = server.act("", "", unknown_field=[1, 2])
    assert (event["agent_id"], event["policy_triggered"]) == ("", "RISKY_UNKNOWN_ACTION")


@pytest.mark.parametrize(("body", "loc"), [
    ('{"agent_id":"x","action_type":"FILE_READ","amount":NaN}', ["body", "amount"]),
    ('{"agent_id":"x","action_type":"FILE_READ","amount":"inf"}', ["body", "amount"]),
    ('{"agent_id":"x","action_type":"FILE_READ","amount":1e999}', ["body", "amount"]),
    ('{"agent_id":"x","action_type":"FILE_READ","amount":"lots"}', ["body", "amount"]),
    (('{"agent_id":"x","action_type":"SEND_NOTIFICATION","notification_type":"approval",'
      '"policy_context":{"eligibility_verified":"false"}}'),
     ["body", "policy_context", "eligibility_verified"]),
    (('{"agent_id":"x","action_type":"APPROVE_TRANSACTION",'
      '"policy_context":{"approval_requires_verified_eligibility":"no"}}'),
     ["body", "policy_context", "approval_requires_verified_eligibility"]),
    (('{"agent_id":"x","action_type":"APPROVE_TRANSACTION",'
      '"policy_context":{"max_approval_amount":"a lot"}}'),
     ["body", "policy_context", "max_approval_amount"]),
    ('{"agent_id":"x","action_type":"FILE_READ","policy_context":[1]}',
     ["body", "policy_context"]),
    ('{"action_type":"FILE_READ"}', ["body", "agent_id"]),
    ('{"agent_id":7,"action_type":"FILE_READ"}', ["body", "agent_id"]),
    ('{"agent_id":"x","action_type":"FILE_READ","data_classification":3}',
     ["body", "data_classification"]),
])
def test_bad_input_is_a_422_naming_the_field_and_nothing_is_written(
        server: Server, body: str, loc: list[Any]) -> None:
    before = server.head()
    response = server.post("/agent-action", raw=body.encode())
    assert response.status == 422, response.text
    assert loc in [error["loc"] for error in response.json()["detail"]]
    assert server.head() == before


def test_malformed_json_and_oversized_bodies_are_refused(server: Server) -> None:
    before = server.head()
    malformed = server.post("/agent-action", raw=b'{"agent_id": "x", ')
    assert malformed.status == 422
    huge = server.post("/agent-action", {"agent_id": "x", "action_type": "FILE_READ",
                                         "target": "x" * 100_000})
    assert huge.status == 413
    assert server.head() == before


def test_action_type_and_string_fields_are_echoed_normalised(server: Server, agent: str) -> None:
    """The action type upper-cased and trimmed, string fields lower-cased and trimmed;
    the event shows them as matched, not as sent."""
    event = server.act(agent, "  file_read  ", notification_type=" Approval ",
                       data_classification=" Sensitive", destination_type="EXTERNAL ",
                       target=" Kept As Sent ")
    assert (event["action_type"], event["action_label"]) == ("FILE_READ", "File Read")
    assert event["event_trace"][0] == "Tool invoked: FILE_READ"
    assert (event["notification_type"], event["data_classification"],
            event["destination_type"]) == ("approval", "sensitive", "external")
    assert event["target"] == " Kept As Sent "
    assert event["policy_triggered"] == "ALLOW_INTERNAL_WORKFLOW"
    # GET /events rebuilds the same event from the audit record
    listed = [e for e in server.get("/events").json() if e["agent_id"] == agent]
    assert listed[-1] == event
    # after a shutdown the short form shows the normalised action type too
    for _ in range(3):
        server.act(agent, "change_permission")
    down = server.act(agent, " export_data ")
    assert (down["action_type"], down["action_label"]) == ("EXPORT_DATA", "Export Data")
    assert down["event_trace"] == ["Tool invoked: EXPORT_DATA", "Agent already shut down"]


@pytest.mark.parametrize("context", ['"{\\"approval_requires_verified_eligibility\\": true}"', "5",
                                     '"x"', "true", "[]"])
def test_a_policy_context_that_is_not_an_object_is_a_422(server: Server, context: str) -> None:
    before = server.head()
    body = '{"agent_id":"x","action_type":"APPROVE_TRANSACTION","policy_context":' + context + "}"
    response = server.post("/agent-action", raw=body.encode())
    assert response.status == 422, response.text
    assert ["body", "policy_context"] in [error["loc"] for error in response.json()["detail"]]
    assert server.head() == before


def test_numeric_strings_are_numbers_like_the_reference(server: Server, agent: str) -> None:
    event = server.act(agent, "APPROVE_TRANSACTION", amount="9000",
                       policy_context={"max_approval_amount": "5000"})
    assert event["policy_triggered"] == "RISKY_OVER_LIMIT_TRANSACTION"
    assert event["amount"] == 9000.0


def test_events_are_oldest_first_since_the_last_global_reset(own_server: Server) -> None:
    own_server.act("a", "FILE_READ")
    own_server.act("b", "DELETE_RECORD")
    events = own_server.get("/events").json()
    assert [(e["agent_id"], e["action_type"]) for e in events] == [("a", "FILE_READ"),
                                                                   ("b", "DELETE_RECORD")]
    posted = own_server.act("a", "CHANGE_PERMISSION")
    assert own_server.get("/events").json()[-1] == posted
    reset = own_server.post("/reset", token=TOKEN)
    assert reset.status == 200
    assert list(reset.json()) == ["message", "risk_threshold"]
    assert own_server.get("/events").json() == []
    assert own_server.get("/v1/agents/b").json()["cumulative_risk"] == 0
    own_server.act("c", "FILE_READ")
    assert [e["agent_id"] for e in own_server.get("/events").json()] == ["c"]
    kinds = [r["kind"] for r in own_server.get("/v1/events?limit=1000").json()["events"]]
    assert kinds.count("decision") == 4 and "reset" in kinds


def test_reset_needs_the_operator_token(server: Server) -> None:
    before = server.head()
    assert server.post("/reset").status == 401
    assert server.post("/reset", token="wrong").status == 401
    assert server.head() == before


def claim(**arguments: Any) -> dict[str, Any]:
    return {"claim": {"claim_id": "CLM-1", "documents": {"proof_of_termination": "scan.pdf"},
                      "currently_employed_elsewhere": " No "},
            "proposed_tool_call": {"tool_name": "Send_Email_Notification",
                                   "arguments": arguments}}


def test_evaluate_adapter_allows_a_verified_approval(server: Server) -> None:
    response = server.post("/evaluate", claim(to="a@b.c", body="Your claim was approved"))
    assert response.status == 200
    answer = response.json()
    assert list(answer) == ["result", "raw_event"]
    assert answer["result"] == {"decision": "ALLOW", "reason": "Approval notification allowed: "
                                "eligibility verified.", "risk_score": 0}
    raw = answer["raw_event"]
    assert (raw["agent_id"], raw["action_type"], raw["target"], raw["notification_type"]) == \
        ("CLM-1", "SEND_NOTIFICATION", "a@b.c", "approval")


def test_evaluate_adapter_blocks_an_unverified_approval(server: Server) -> None:
    body = claim(recipient="x@y.z", notification_type="APPROVAL")
    body["claim"]["currently_employed_elsewhere"] = "YES"
    body["claim"]["claim_id"] = "CLM-2"
    answer = server.post("/evaluate", body).json()
    assert answer["result"]["decision"] == "BLOCK"
    assert answer["result"]["risk_score"] == 40
    assert answer["raw_event"]["policy_triggered"] == "BLOCK_UNSAFE_APPROVAL_NOTIFICATION"
    assert answer["raw_event"]["target"] == "x@y.z"


def test_evaluate_adapter_maps_payments_and_limits(server: Server) -> None:
    body = {"claim": {"claim_id": "CLM-3", "documents": {"proof_of_termination": True}},
            "proposed_tool_call": {"tool_name": "approve_payment",
                                   "arguments": {"amount": "7000"}}}
    answer = server.post("/evaluate", body).json()
    assert answer["raw_event"]["policy_triggered"] == "RISKY_OVER_LIMIT_TRANSACTION"
    assert answer["result"] == {"decision": "ALLOW", "reason": answer["raw_event"]["reason"],
                                "risk_score": 25}
    body["claim"]["claim_id"] = "CLM-4"
    body["proposed_tool_call"]["arguments"]["max_approval_amount"] = 10_000
    assert server.post("/evaluate", body).json()["raw_event"]["policy_triggered"] == \
        "ALLOW_TRANSACTION"


def test_evaluate_adapter_trims_tool_names(server: Server) -> None:
    answer = server.post("/evaluate", {
        "claim": {"claim_id": "CLM-TRIM"},
        "proposed_tool_call": {"tool_name": " export_data ", "arguments": {
            "destination_type": " External ", "data_classification": "SENSITIVE"}}}).json()
    raw = answer["raw_event"]
    assert (raw["action_type"], raw["action_label"]) == ("EXPORT_DATA", "Export Data")
    assert raw["event_trace"][0] == "Tool invoked: EXPORT_DATA"
    assert raw["policy_triggered"] == "RISKY_SENSITIVE_EXTERNAL_EXPORT"
    assert (raw["destination_type"], raw["data_classification"]) == ("external", "sensitive")
    unknown = server.post("/evaluate", {"claim": {"claim_id": "CLM-TRIM-2"}, "proposed_tool_call":
                                        {"tool_name": "  do_Something  "}}).json()["raw_event"]
    assert unknown["action_type"] == "DO_SOMETHING"
    assert unknown["policy_triggered"] == "RISKY_UNKNOWN_ACTION"


def test_evaluate_adapter_defaults_and_rejection(server: Server) -> None:
    empty = server.post("/evaluate", {}).json()
    assert empty["raw_event"]["agent_id"] == "unknown"
    assert empty["raw_event"]["policy_triggered"] == "RISKY_UNKNOWN_ACTION"
    denied = server.post("/evaluate", {"claim": {"claim_id": "CLM-5"}, "proposed_tool_call": {
        "tool_name": "send_notification", "arguments": {"body": "Claim DENIED"}}}).json()
    assert denied["raw_event"]["notification_type"] == "rejection"
    assert denied["result"]["decision"] == "ALLOW"
    before = server.head()
    bad = server.post("/evaluate", {"proposed_tool_call": {"tool_name": "approve_payment",
                                                           "arguments": {"amount": "NaN"}}})
    assert bad.status == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "proposed_tool_call", "arguments", "amount"]
    assert server.head() == before


# -- a policy that refuses undeclared fields, through the compatible API ---------------------------

REFUSING = """policy refunds version "1" {
  action_type normalize trim, upper
}
input {
  amount: number?
  context.account_flag: string?
}
action REFUND {
  when context.account_flag == "fraud" block risk 10 as FRAUD "Flagged account."
  when amount > 500 allow risk 30 as LARGE_REFUND "Refund of {amount} is large."
  allow as REFUND "Refund of {amount}."
}
otherwise block as UNKNOWN "Unknown action."
"""
"""Refuses undeclared fields (the default) and declares no top-level request field but
`amount`: the request's other fields (`target`, `notification_type`, and the reference's
defaults `data_classification` and `destination_type`) are not the policy's to see."""


@pytest.fixture(scope="module")
def refusing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("refusing")
    policy = folder / "refunds.sentra"
    policy.write_text(REFUSING, encoding="utf-8")
    running = Server(policy, folder / "refunds.db", TOKEN)
    yield running
    running.stop()


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "application/vnd.sentra+json"}],
                         ids=["lean path", "route"])
def test_a_refusing_policy_gets_only_the_request_fields_it_declares(
        refusing_server: Server, agent: str, headers: dict[str, str]) -> None:
    every_field = {"target": "acct-9", "notification_type": "refund",
                   "data_classification": "Internal", "destination_type": "external"}
    for body, rule, risk in (
            ({"amount": 20}, "REFUND", 0),
            ({"amount": 900, **every_field}, "LARGE_REFUND", 30),
            ({"amount": "700", "target": None, "policy_context": {"account_flag": "ok"}},
             "LARGE_REFUND", 60)):
        answer = refusing_server.post(
            "/agent-action", {"agent_id": agent, "action_type": " refund ", **body},
            headers=headers)
        assert answer.status == 200, answer.text
        event = answer.json()
        assert (event["policy_triggered"], event["cumulative_risk"]) == (rule, f"{risk}/100")
    assert event["reason"] == "Refund of 700 is large."
    # the event still echoes the request as the reference does
    echoed = refusing_server.post("/agent-action", {"agent_id": agent, "action_type": "REFUND",
                                                    **every_field}, headers=headers).json()
    assert {key: echoed[key] for key in every_field} == {**every_field,
                                                          "data_classification": "internal"}
    records = refusing_server.get(f"/v1/events?agent={agent}").json()["events"]
    assert [record["input"] for record in records] == [{"amount": 20}, {"amount": 900},
                                                       {"amount": 700,
                                                        "context.account_flag": "ok"}, {}]


def test_a_refusing_policy_still_refuses_undeclared_context_keys(refusing_server: Server,
                                                                 agent: str) -> None:
    before = refusing_server.head()
    for headers in ({}, {"Content-Type": "application/vnd.sentra+json"}):
        answer = refusing_server.post("/agent-action", {
            "agent_id": agent, "action_type": "REFUND", "target": "acct-9",
            "policy_context": {"acount_flag": "fraud"}}, headers=headers)
        assert answer.status == 422, answer.text
        [error] = answer.json()["detail"]
        assert error["loc"] == ["body", "policy_context", "acount_flag"]
        assert "did you mean `account_flag`?" in error["msg"]
    assert refusing_server.head() == before
    flagged = refusing_server.act(agent, "REFUND", target="acct-9",
                                  policy_context={"account_flag": "fraud"})
    assert flagged["decision"] == "Blocked" and flagged["policy_triggered"] == "FRAUD"


def test_the_claims_adapter_hands_a_refusing_policy_what_it_declares(refusing_server: Server,
                                                                    agent: str) -> None:
    """The adapter's context is derived from the claim, not sent: a policy that refuses
    undeclared fields gets the keys of it that it declares, and no 422 for the others."""
    answer = refusing_server.post("/evaluate", {
        "claim": {"claim_id": agent, "documents": {"proof_of_termination": "yes"}},
        "proposed_tool_call": {"tool_name": "refund", "arguments": {"amount": 900,
                                                                    "to": "acct-9"}}})
    assert answer.status == 200, answer.text
    result = answer.json()
    assert result["result"] == {"decision": "ALLOW", "reason": "Refund of 900 is large.",
                                "risk_score": 30}
    assert result["raw_event"]["target"] == "acct-9"
