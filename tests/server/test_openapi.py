"""The OpenAPI document: valid (openapi-spec-validator), with stable operation ids, a schema for
every answer, the error answers each route can give, bearer security on operator and read
routes, and `text/event-stream` for the stream; real answers fit the declared models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import POLICY, TOKEN, Server

validator = pytest.importorskip("openapi_spec_validator")

OPERATIONS = {
    ("get", "/"): "root", ("get", "/health"): "health",
    ("post", "/agent-action"): "agent_action", ("get", "/events"): "sentra_events",
    ("post", "/reset"): "sentra_reset", ("post", "/evaluate"): "evaluate_claim",
    ("post", "/v1/decide"): "decide", ("get", "/v1/agents"): "list_agents",
    ("get", "/v1/agents/{agent_id}"): "get_agent",
    ("post", "/v1/agents/{agent_id}/reset"): "reset_agent", ("post", "/v1/reset"): "reset_all",
    ("put", "/v1/agents/{agent_id}/group"): "assign_group",
    ("get", "/v1/events"): "list_events", ("get", "/v1/events/stream"): "stream_events",
    ("get", "/v1/events/{seq}"): "get_event", ("get", "/v1/policy"): "get_policy",
    ("post", "/v1/policy/reload"): "reload_policy", ("get", "/v1/metrics"): "v1_metrics",
    ("get", "/metrics"): "metrics", ("get", "/v1/impact"): "get_impact",
    ("get", "/v1/dashboard/snapshot"): "get_dashboard_snapshot",
    ("get", "/v1/reviews"): "list_reviews", ("get", "/v1/reviews/{ticket}"): "get_review",
    ("post", "/v1/reviews/{ticket}/approve"): "approve_review",
    ("post", "/v1/reviews/{ticket}/deny"): "deny_review",
}
OPERATOR = {"sentra_reset", "reset_agent", "reset_all", "reload_policy", "assign_group",
            "approve_review", "deny_review"}
READS = {"sentra_events", "list_agents", "get_agent", "list_events", "stream_events",
         "get_event", "get_policy", "v1_metrics", "metrics", "get_impact",
         "get_dashboard_snapshot", "list_reviews"}


@pytest.fixture(scope="module")
def document(server: Server) -> dict[str, Any]:
    answer = server.get("/openapi.json")
    assert answer.status == 200
    return dict(answer.json())


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method, path): operation for path, item in document["paths"].items()
            for method, operation in item.items()}


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validator.validate(document)


def test_operation_ids_are_stable_names(document: dict[str, Any]) -> None:
    found = {key: operation["operationId"] for key, operation in operations(document).items()}
    assert found == OPERATIONS


def test_every_answer_has_a_schema(document: dict[str, Any]) -> None:
    for key, operation in operations(document).items():
        content = operation["responses"]["200"]["content"]
        for media, described in content.items():
            assert described.get("schema"), (key, media)
            if media == "application/json":
                schema = described["schema"]
                assert "$ref" in schema or schema.get("type") == "array", (key, schema)


def test_error_answers_are_declared(document: dict[str, Any]) -> None:
    for (method, path), operation in operations(document).items():
        declared = set(operation["responses"])
        assert {"400", "408", "422"} <= declared, path
        if method == "post":
            assert {"413", "415"} <= declared, path
        if operation["operationId"] in OPERATOR:
            assert {"401", "403"} <= declared, path
        if operation["operationId"] in READS:
            assert "401" in declared, path
    assert "404" in operations(document)[("get", "/v1/events/{seq}")]["responses"]
    schemas = document["components"]["schemas"]
    assert set(schemas["Invalid"]["properties"]) == {"detail"}


def test_operator_and_read_routes_name_their_bearer_schemes(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["operatorToken"] == {"type": "http", "scheme": "bearer",
                                         "description": schemes["operatorToken"]["description"]}
    assert schemes["readToken"]["scheme"] == "bearer"
    for operation in operations(document).values():
        security = operation.get("security")
        if operation["operationId"] in OPERATOR:
            assert security == [{"operatorToken": []}]
        elif operation["operationId"] in READS:
            assert security == [{"readToken": []}, {"operatorToken": []}, {}]
        else:
            assert security is None, operation["operationId"]


def test_the_stream_is_an_event_stream(document: dict[str, Any]) -> None:
    answer = operations(document)[("get", "/v1/events/stream")]["responses"]["200"]
    assert list(answer["content"]) == ["text/event-stream"]


def test_impact_answers_json_or_csv(document: dict[str, Any]) -> None:
    content = operations(document)[("get", "/v1/impact")]["responses"]["200"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/ImpactReport"}
    assert content["text/csv"]["schema"] == {"type": "string"}


def test_reads_are_not_optional_with_a_read_token(tmp_path: Path) -> None:
    running = Server(POLICY, tmp_path / "s.db", TOKEN, read_token="r")
    try:
        document = running.get("/openapi.json").json()
    finally:
        running.stop()
    listed = operations(document)[("get", "/v1/events")]
    assert listed["security"] == [{"readToken": []}, {"operatorToken": []}]


def test_real_answers_fit_the_declared_models(server: Server, agent: str) -> None:
    from sentra_lang.server import models

    event = server.act(agent, "APPROVE_TRANSACTION", amount=20)
    models.SentraEvent.model_validate(event, strict=False)
    for _ in range(3):
        server.act(agent, "CHANGE_PERMISSION")
    models.SentraEvent.model_validate(server.act(agent, "FILE_READ"))
    checks: list[tuple[type[Any], Any]] = [
        (models.Health, server.get("/health").json()),
        (models.Decided, server.post("/v1/decide", {"agent_id": agent + "-v1",
                                                    "action": "FILE_READ"}).json()),
        (models.ClaimAnswer, server.post("/evaluate", {}).json()),
        (models.AgentPage, server.get("/v1/agents").json()),
        (models.KnownAgent, server.get(f"/v1/agents/{agent}").json()),
        (models.EventPage, server.get("/v1/events?limit=50").json()),
        (models.AuditRecord, server.get("/v1/events/1").json()),
        (models.PolicyInfo, server.get("/v1/policy").json()),
        (models.AgentReset, server.post(f"/v1/agents/{agent}/reset", token=TOKEN).json()),
        (models.ImpactReport, server.get("/v1/impact").json()),
        (models.ImpactReport, server.get("/v1/impact?field=context.x&bucket=hour").json()),
        (models.DashboardSnapshot, server.get("/v1/dashboard/snapshot").json()),
        (models.Invalid, server.post("/agent-action", {"agent_id": 5}).json()),
        (models.Invalid, server.post("/agent-action", raw=b'{"agent_id":"\\ud800"}').json()),
    ]
    for model, answer in checks:
        model.model_validate(answer)
    for event in server.get("/events").json():
        models.SentraEvent.model_validate(event)


def test_sentra_events_of_v1_decisions_fit_the_model_whatever_the_fields_held(
        own_server: Server) -> None:
    """A `/v1/decide` request's fields go to the policy as they are: the Sentra event of its
    decision shows only the values that fit the event's fields (strings, a number)."""
    from sentra_lang.server import models

    fine = {"target": "bob", "amount": 7, "notification_type": "Email",
            "data_classification": " Public ", "destination_type": "internal"}
    for fields in ({"target": {"a": 1}}, fine, {"target": 5}, {"amount": 2.5}):
        answer = own_server.post("/v1/decide", {"agent_id": "v1", "action": "FILE_READ",
                                                "fields": fields})
        assert answer.status == 200, answer.text
    events = own_server.get("/events").json()
    for event in events:
        models.SentraEvent.model_validate(event, strict=True)
    shown = [(e["target"], e["amount"], e["notification_type"], e["data_classification"],
              e["destination_type"]) for e in events]
    assert shown == [(None, None, None, "internal", "internal"),
                     ("bob", 7.0, "email", "public", "internal"),
                     (None, None, None, "internal", "internal"),
                     (None, 2.5, None, "internal", "internal")]
