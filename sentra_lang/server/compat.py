"""The Sentra-compatible API: the reference server's endpoints and JSON shapes, and the
claims-workflow adapter ``POST /evaluate`` (docs/server.md describes both).

Every event is built from its audit record, so the answer to ``POST /agent-action`` and the same
event in ``GET /events`` are identical. Differences from the reference are deliberate and
documented: input it would crash on or misread gets a 422 naming the field, the audit log is never
emptied, and ``POST /reset`` needs the operator token.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sentra_runtime import Policy
from sentra_runtime.decision import Decision

from sentra_lang.server.gate import FieldError, Gate, field_errors

ALREADY_SHUT_DOWN = "AGENT_ALREADY_SHUT_DOWN"
OUTCOME_LINES = {"Allowed": "Action allowed", "Blocked": "Action blocked by policy",
                 "Agent Shut Down": "Agent execution halted"}
PAGE = 10_000

FiniteNumber = Annotated[float, Field(allow_inf_nan=False)]


class AgentAction(BaseModel):
    """The reference server's request; unknown top-level fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    agent_id: str
    action_type: str
    target: str | None = None
    amount: FiniteNumber | None = None
    notification_type: str | None = None
    data_classification: str | None = "internal"
    destination_type: str | None = "internal"
    policy_context: dict[str, Any] = Field(default_factory=dict)


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tool_name: str = ""
    arguments: dict[str, Any] = Field(default_factory=dict)


class ClaimEvaluation(BaseModel):
    """The claims workflow's request: a claim and the tool call its agent proposes."""

    model_config = ConfigDict(extra="ignore")

    claim: dict[str, Any] | None = None
    proposed_tool_call: ToolCall | None = None


# -- the policy's view of a request ------------------------------------------------------------

def policy_fields(action: AgentAction) -> dict[str, Any]:
    """The request's fields under their request names, ``policy_context`` as ``context``."""
    return {
        "target": action.target, "amount": action.amount,
        "notification_type": action.notification_type,
        "data_classification": action.data_classification,
        "destination_type": action.destination_type, "context": action.policy_context,
    }


def locate(name: str) -> tuple[str | int, ...]:
    if name == "context":
        return ("body", "policy_context")
    if name.startswith("context."):
        return ("body", "policy_context", *name.split(".")[1:])
    return ("body", *name.split("."))


def numeric_context(policy: Policy, context: dict[str, Any]) -> dict[str, Any]:
    """Numeric strings in ``policy_context`` for declared numbers, as numbers (the reference
    server reads them with ``float()``); anything else is left for validation to judge."""
    converted = context
    for key in _context_numbers(policy):
        value = context.get(key)
        if not isinstance(value, str):
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        if math.isfinite(number):
            if converted is context:
                converted = dict(context)
            converted[key] = number
    return converted


_CONTEXT_NUMBERS: dict[str, tuple[str, ...]] = {}


def _context_numbers(policy: Policy) -> tuple[str, ...]:
    """The ``policy_context`` keys the policy declares as numbers (cached per policy hash)."""
    keys = _CONTEXT_NUMBERS.get(policy.hash)
    if keys is None:
        keys = tuple(spec.name.removeprefix("context.") for spec in policy.inputs
                     if spec.type == "number" and spec.name.startswith("context."))
        _CONTEXT_NUMBERS[policy.hash] = keys
    return keys


def annotation(request: dict[str, Any]) -> Callable[[Policy, Decision], dict[str, Any]]:
    """The audit record's ``server`` key: what the request said beyond the policy's input."""

    def annotate(policy: Policy, decision: Decision) -> dict[str, Any]:
        matched = decision.matched_rule
        return {"server": {"api": "sentra", "request": request, "matched_rule": matched,
                           "policy_description": policy_description(policy, decision, matched),
                           "risk_threshold": policy.risk_threshold}}

    return annotate


def policy_description(policy: Policy, decision: Decision, matched: str | None) -> str:
    """The rule's longer description; else its reason (or, when another rule id decided, the
    reference server's fallback: the matched rule's id in title case)."""
    if decision.rule_id == ALREADY_SHUT_DOWN:
        return decision.reason
    if matched is None:
        return decision.description or decision.reason
    rule = policy.rule(matched)
    if rule.description:
        return rule.description
    if decision.rule_id == matched:
        return decision.reason
    if "{" not in rule.reason:
        return rule.reason
    return matched.replace("_", " ").title()


def decide(gate: Gate, action: AgentAction) -> dict[str, Any]:
    """Validate against the policy's declared types, decide, and return the event."""
    return decide_values(gate, action.agent_id, action.action_type, action.target,
                         action.amount, action.notification_type, action.data_classification,
                         action.destination_type, action.policy_context)


def decide_values(gate: Gate, agent_id: str, action_type: str, target: str | None,
                  amount: float | None, notification_type: str | None,
                  data_classification: str | None, destination_type: str | None,
                  policy_context: dict[str, Any]) -> dict[str, Any]:
    """:func:`decide` on the request's values, already of the request model's types (the lean
    ``POST /agent-action`` path calls it directly). Raises :class:`RequestValidationError`,
    having written nothing, when a value does not fit the policy's declared type."""
    policy = gate.policy
    fields = {"target": target, "amount": amount, "notification_type": notification_type,
              "data_classification": data_classification, "destination_type": destination_type,
              "context": numeric_context(policy, policy_context)}
    errors = field_errors(policy, fields, locate)
    if errors:
        raise RequestValidationError([error.to_dict() for error in errors])
    request = {"action_type": action_type, "target": target, "amount": amount,
               "notification_type": notification_type,
               "data_classification": data_classification, "destination_type": destination_type}
    _, record = gate.decide(agent_id, action_type, fields, annotation(request))
    return sentra_event(record, policy.risk_threshold)


# -- events ------------------------------------------------------------------------------------

def sentra_event(record: dict[str, Any], default_threshold: int) -> dict[str, Any]:
    """The reference server's event object for a decision record, keys in its order."""
    server = record.get("server") or {}
    request = server.get("request") or {}
    decision = record["decision"]
    threshold = server.get("risk_threshold", default_threshold)
    action_type = record["action"]  # normalised by the policy that decided (trim, upper)
    cumulative = decision["cumulative_risk"]
    event: dict[str, Any] = {
        "timestamp": record["time"][:19].replace("T", " "),
        "agent_id": record["agent"],
        "action_type": action_type,
        "action_label": action_type.replace("_", " ").title(),
        "target": request.get("target"),
    }
    if decision["rule_id"] == ALREADY_SHUT_DOWN:
        event.update({
            "policy_triggered": ALREADY_SHUT_DOWN, "policy_description": decision["reason"],
            "threat_type": decision["threat"], "risk": 0, "attempted_risk": 0,
            "projected_risk": cumulative, "cumulative_risk": f"{cumulative}/{threshold}",
            "decision": decision["label"], "reason": decision["reason"],
            "event_trace": [f"Tool invoked: {action_type}", "Agent already shut down"],
        })
        return event
    seen = record.get("input") or {}
    matched = server.get("matched_rule") or decision["rule_id"]
    event.update({
        "amount": request["amount"] if "amount" in request else seen.get("amount"),
        **{key: _normalised(request[key] if key in request else seen.get(key))
           for key in ("notification_type", "data_classification", "destination_type")},
        "policy_triggered": decision["rule_id"],
        "policy_description": server.get("policy_description") or decision["reason"],
        "threat_type": decision["threat"],
        "risk": decision["applied_risk"],
        "attempted_risk": decision["attempted_risk"],
        "projected_risk": decision["projected_risk"],
        "cumulative_risk": f"{cumulative}/{threshold}",
        "decision": decision["label"],
        "reason": decision["reason"],
        "event_trace": [
            f"Tool invoked: {action_type}",
            f"Policy matched: {matched}",
            f"Attempted risk: {decision['attempted_risk']}",
            f"Projected risk: {decision['projected_risk']}/{threshold}",
            f"Applied risk: {decision['applied_risk']}",
            f"Cumulative risk: {cumulative}/{threshold}",
            f"Blocked attempts: {decision['blocked_attempts']}",
            OUTCOME_LINES[decision["label"]],
        ],
    })
    return event


def _normalised(value: Any) -> Any:
    """A string field as the reference server matches it: trimmed and lower-cased."""
    return value.strip().lower() if isinstance(value, str) else value


def events_since_reset(gate: Gate) -> list[dict[str, Any]]:
    """Decision events since the last reset of all agents, oldest first."""
    after = gate.reader.last_global_reset()
    threshold = gate.policy.risk_threshold
    events: list[dict[str, Any]] = []
    while True:
        page = gate.reader.records(after=after, limit=PAGE, kind="decision")
        events.extend(sentra_event(record, threshold) for record in page)
        if len(page) < PAGE:
            return events
        after = page[-1]["seq"]


# -- the claims-workflow adapter -----------------------------------------------------------------

TOOL_ACTIONS = {
    "send_email_notification": "SEND_NOTIFICATION", "send_notification": "SEND_NOTIFICATION",
    "approve_payment": "APPROVE_TRANSACTION", "approve_transaction": "APPROVE_TRANSACTION",
}
DEFAULT_MAX_APPROVAL_AMOUNT = 5000


def claim_action(evaluation: ClaimEvaluation) -> AgentAction:
    """The ``/agent-action`` request the claims adapter decides (docs/server.md)."""
    claim = evaluation.claim or {}
    call = evaluation.proposed_tool_call or ToolCall()
    arguments = call.arguments
    errors: list[FieldError] = []

    def argument(name: str, kind: type | tuple[type, ...], what: str) -> Any:
        value = arguments.get(name)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            errors.append(FieldError(("body", "proposed_tool_call", "arguments", name),
                                     f"{what}_type", f"Input should be a valid {what}", value))
            return None
        return value

    tool = call.tool_name.strip().lower()
    action_type = TOOL_ACTIONS.get(tool, call.tool_name.strip().upper())
    notification = argument("notification_type", str, "string")
    if notification is not None:
        notification_type = notification.lower()
    else:
        joined = " ".join(str(value) for value in arguments.values()).lower()
        notification_type = ("approval" if "approval" in joined or "approved" in joined else
                             "rejection" if "rejection" in joined or "denied" in joined else "")
    target = argument("to", str, "string") or argument("recipient", str, "string") or ""
    amount = _number_argument(arguments, "amount", errors)
    maximum = (_number_argument(arguments, "max_approval_amount", errors)
               if "max_approval_amount" in arguments else DEFAULT_MAX_APPROVAL_AMOUNT)
    classification = argument("data_classification", str, "string")
    destination = argument("destination_type", str, "string")
    if errors:
        raise RequestValidationError([error.to_dict() for error in errors])
    documents = claim.get("documents")
    proof = isinstance(documents, dict) and bool(documents.get("proof_of_termination"))
    employed = str(claim.get("currently_employed_elsewhere") or "").strip().lower() == "yes"
    claim_id = claim.get("claim_id")
    return AgentAction(
        agent_id=str(claim_id) if claim_id not in (None, "") else "unknown",
        action_type=action_type, target=target, amount=amount,
        notification_type=notification_type,
        data_classification=classification or "internal",
        destination_type=destination or "internal",
        policy_context={
            "approval_requires_verified_eligibility": True,
            "eligibility_verified": proof and not employed,
            "required_documents_present": proof,
            "currently_employed_elsewhere": employed,
            "max_approval_amount": maximum,
            "claim_id": claim_id,
        },
    )


def _number_argument(arguments: dict[str, Any], name: str, errors: list[FieldError]) -> Any:
    value = arguments.get(name)
    if value is None:
        return None
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        errors.append(FieldError(("body", "proposed_tool_call", "arguments", name),
                                 "finite_number", "Input should be a finite number or a numeric "
                                 "string", value))
        return None
    return number


# -- routes ------------------------------------------------------------------------------------

def router(gate: Gate, operator: Callable[..., str]) -> APIRouter:
    """The Sentra-compatible endpoints over ``gate``."""
    api = APIRouter(tags=["Sentra-compatible"])

    def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "risk_threshold": gate.policy.risk_threshold})

    api.add_api_route("/", health, methods=["GET"], summary="Health (as GET /health)")
    api.add_api_route("/health", health, methods=["GET"], summary="Health")

    @api.post("/agent-action", summary="Decide one proposed action (the Sentra event object)")
    async def agent_action(action: AgentAction) -> JSONResponse:
        return JSONResponse(decide(gate, action))

    @api.get("/events", summary="Decision events since the last reset of all agents, oldest first")
    def events() -> JSONResponse:
        return JSONResponse(events_since_reset(gate))

    @api.post("/reset", summary="Reset every agent (operator token); the audit log keeps all")
    def reset(who: str = Depends(operator)) -> JSONResponse:
        gate.reset(None, who)
        return JSONResponse({"message": "All agents reset; the audit log keeps every record.",
                             "risk_threshold": gate.policy.risk_threshold})

    @api.post("/evaluate", summary="Claims-workflow adapter: decide a proposed tool call")
    def evaluate(evaluation: Annotated[ClaimEvaluation, Body()]) -> JSONResponse:
        event = decide(gate, claim_action(evaluation))
        return JSONResponse({
            "result": {"decision": "ALLOW" if event["decision"] == "Allowed" else "BLOCK",
                       "reason": event["reason"], "risk_score": event["attempted_risk"]},
            "raw_event": event,
        })

    return api
