"""The Sentra-compatible API: the reference server's endpoints and JSON shapes, and the
claims-workflow adapter ``POST /evaluate`` (docs/server.md).

Every event is built from its audit record, so the answer to ``POST /agent-action`` and the same
event in ``GET /events`` are identical. Differences from the reference are deliberate and
documented: input it would crash on or misread gets a 422 naming the field, the audit log is never
emptied, ``GET /events`` answers in pages, and ``POST /reset`` needs the operator token.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter
from sentra_runtime import Policy
from sentra_runtime.decision import Decision
from sentra_runtime.sentra_api import (
    EXTRA_CONTEXT,
    REFERENCE_DEFAULTS,
    REQUEST_FIELDS,
    policy_input,
)

from sentra_lang.server import models
from sentra_lang.server.auth import OPERATOR_SECURITY, OperatorAuth, ReadAuth, read_security
from sentra_lang.server.gate import FieldError, Gate, field_errors
from sentra_lang.server.store import Reads

ALREADY_SHUT_DOWN = "AGENT_ALREADY_SHUT_DOWN"
OUTCOME_LINES = {"Allowed": "Action allowed", "Blocked": "Action blocked by policy",
                 "Agent Shut Down": "Agent execution halted",
                 "Review Required": "Action held for human review"}
EVENTS_LIMIT = 1000
"""Events in one ``GET /events`` answer, by default and at most."""
READ_BATCH = 200
_WHOLE = re.compile(r"[+-]?[0-9]+")
_reference_float = TypeAdapter(float).validate_python


# -- numbers as they were sent ----------------------------------------------------------------

class NotANumber(ValueError):
    """A value that is neither a finite number nor a string the reference reads as one."""


def read_number(value: Any) -> int | float:
    """A request number as the policy sees it: a JSON number as it was sent (``20`` stays the
    whole number 20, ``20.5`` a float); a numeric string as the reference server reads it
    (pydantic's ``float``), and as a whole number when it is written as one (``"20"`` is 20).

    Raises :class:`NotANumber` for anything else, a boolean included, and for numbers that are
    not finite, as a float too (``1e999``, ``"inf"``, an integer beyond a float's range).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise NotANumber("Input should be a finite number or a numeric string")
    number: int | float
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text) if _WHOLE.fullmatch(text) else _reference_float(value)
        except ValueError as error:
            raise NotANumber("Input should be a finite number or a numeric string") from error
    else:
        number = value
    try:
        finite = math.isfinite(number)
    except OverflowError:
        finite = False
    if not finite:
        raise NotANumber("Input should be a finite number")
    return number


def _request_number(value: Any) -> Any:
    if value is None:
        return None
    try:
        return read_number(value)
    except NotANumber as error:
        raise ValueError(str(error)) from error


RequestNumber = Annotated[int | float | None, BeforeValidator(_request_number)]


# -- requests ---------------------------------------------------------------------------------

class AgentAction(BaseModel):
    """The reference server's request. Every value must have its type (strict: no booleans as
    numbers, no numbers as strings); ``amount`` may also be a numeric string. Unknown top-level
    fields are ignored, as the reference ignores them, unless the policy refuses undeclared
    fields (:func:`policy_input`)."""

    model_config = ConfigDict(extra="allow", strict=True)

    agent_id: str
    action_type: str
    target: str | None = None
    amount: RequestNumber = None
    notification_type: str | None = None
    data_classification: str | None = "internal"
    destination_type: str | None = "internal"
    policy_context: dict[str, Any] = Field(default_factory=dict)


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    tool_name: str = ""
    arguments: dict[str, Any] = Field(default_factory=dict)


class ClaimEvaluation(BaseModel):
    """The claims workflow's request: a claim and the tool call its agent proposes."""

    model_config = ConfigDict(extra="ignore", strict=True)

    claim: dict[str, Any] | None = None
    proposed_tool_call: ToolCall | None = None


# -- the policy's view of a request -------------------------------------------------------------

def request_input(policy: Policy, sent: dict[str, Any], context: dict[str, Any],
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fields the policy gets from a request (:func:`sentra_runtime.sentra_api.policy_input`,
    the one definition), declared numbers in ``policy_context`` given as numeric strings read
    as the reference reads them (:func:`read_number`)."""
    return policy_input(policy, sent, _numeric_context(policy, context), extra)


def locate(name: str) -> tuple[str | int, ...]:
    if name == EXTRA_CONTEXT:
        return ("body", "context")
    if name == "context":
        return ("body", "policy_context")
    if name.startswith("context."):
        return ("body", "policy_context", *name.split(".")[1:])
    return ("body", *name.split("."))


def _numeric_context(policy: Policy, context: dict[str, Any]) -> dict[str, Any]:
    converted = context
    for key in _declared(policy).context_numbers:
        value = context.get(key)
        if not isinstance(value, str):
            continue
        try:
            number = read_number(value)
        except NotANumber:
            continue   # validation names the field
        if converted is context:
            converted = dict(context)
        converted[key] = number
    return converted


@dataclass(frozen=True)
class _Declared:
    """The ``policy_context`` keys the policy declares, and those declared as numbers."""

    context_keys: frozenset[str]
    """The first parts of the declared ``context.`` fields (``max_approval_amount``)."""
    context_numbers: tuple[str, ...]


_DECLARED: dict[str, _Declared] = {}


def _declared(policy: Policy) -> _Declared:
    """Cached per policy hash."""
    found = _DECLARED.get(policy.hash)
    if found is None:
        names = [spec.name for spec in policy.inputs]
        found = _Declared(
            frozenset(name.split(".", 2)[1] for name in names if name.startswith("context.")),
            tuple(spec.name.removeprefix("context.") for spec in policy.inputs
                  if spec.type == "number" and spec.name.startswith("context.")))
        _DECLARED[policy.hash] = found
    return found


def annotation(request: dict[str, Any]) -> Callable[[Policy, Decision], dict[str, Any]]:
    """The audit record's ``server`` key: what the request said beyond the policy's input."""

    def annotate(policy: Policy, decision: Decision) -> dict[str, Any]:
        matched = decision.matched_rule
        return {"server": {"api": "sentra", "request": request, "matched_rule": matched,
                           "policy_description": policy_description(policy, decision, matched),
                           **agent_settings(policy, decision)}}

    return annotate


def agent_settings(policy: Policy, decision: Decision) -> dict[str, int]:
    """What a decision record's ``server`` key says of the settings that applied to the agent
    (its group's, else the policy's): the dashboard and the Sentra events read them."""
    settings = policy.settings_of(decision.agent_id, decision.group)
    return {"risk_threshold": settings.risk_threshold, "strikes": settings.strikes}


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


async def decide(gate: Gate, action: AgentAction) -> dict[str, Any]:
    """Validate against the policy's declared types, decide, and return the event."""
    sent = {name: getattr(action, name) for name in REQUEST_FIELDS
            if name in action.model_fields_set}
    return await decide_values(gate, action.agent_id, action.action_type, sent,
                               action.policy_context, action.model_extra)


async def decide_values(gate: Gate, agent_id: str, action_type: str, sent: dict[str, Any],
                        policy_context: dict[str, Any],
                        extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """:func:`decide` on the request's values, already of the request model's types: ``sent``
    holds the top-level request fields the client gave (the lean ``POST /agent-action`` path
    calls it directly); ``extra`` the other top-level keys it sent (:func:`policy_input`).
    Raises :class:`RequestValidationError`, having written nothing, when a value does not fit
    the policy's declared type or the policy refuses a key."""
    policy = gate.policy
    fields = request_input(policy, sent, policy_context, extra)
    errors = field_errors(policy, fields, locate)
    if errors:
        raise RequestValidationError([error.to_dict() for error in errors])
    request = {"action_type": action_type,
               **{name: sent.get(name, REFERENCE_DEFAULTS.get(name)) for name in REQUEST_FIELDS}}
    _, record = await gate.decide(agent_id, action_type, fields, annotation(request))
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
        "target": _text(request.get("target")),
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
    amount = request["amount"] if "amount" in request else seen.get("amount")
    event.update({
        "amount": _reference_amount(amount),
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
    if "ticket" in decision:   # a review: the ticket to follow at /v1/reviews/{ticket}
        event["ticket"] = decision["ticket"]
    return event


def _reference_amount(amount: Any) -> float | None:
    """The event's ``amount`` as the reference's model echoes it: a float; ``None`` for
    anything but a number (a ``/v1`` decision's fields may hold any JSON value)."""
    if isinstance(amount, (int, float)) and not isinstance(amount, bool):
        return float(amount)
    return None


def _text(value: Any) -> str | None:
    """A text field of the event: ``None`` for anything but a string (a ``/v1`` decision's
    fields may hold any JSON value, and the event's fields are strings)."""
    return value if isinstance(value, str) else None


def _normalised(value: Any) -> str | None:
    """A string field as the reference server matches it: trimmed and lower-cased."""
    return value.strip().lower() if isinstance(value, str) else None


def events_page(gate: Gate, after: int, limit: int) -> tuple[bytes, int | None]:
    """One page of ``GET /events`` as JSON text: the decision events after ``after`` and after
    the last reset of all agents, oldest first, at most ``limit``; and the ``after`` of the next
    page (``None`` on the last). Read and rendered in batches, so only the page's text is held."""
    start = max(after, gate.reader.last_global_reset())
    threshold = gate.policy.risk_threshold
    parts: list[bytes] = []
    count = 0
    cursor = start
    while count < limit:
        batch = gate.reader.records(after=cursor, limit=min(READ_BATCH, limit - count),
                                    kind="decision")
        parts.extend(_encode(sentra_event(record, threshold)) for record in batch)
        count += len(batch)
        if batch:
            cursor = batch[-1]["seq"]
        if len(batch) < READ_BATCH and count < limit:
            return b"[" + b",".join(parts) + b"]", None
    more = gate.reader.records(after=cursor, limit=1, kind="decision")
    return b"[" + b",".join(parts) + b"]", cursor if more else None


_encode_text = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def _encode(value: Any) -> bytes:
    return _encode_text(value).encode("utf-8")


# -- the claims-workflow adapter -----------------------------------------------------------------

TOOL_ACTIONS = {
    "send_email_notification": "SEND_NOTIFICATION", "send_notification": "SEND_NOTIFICATION",
    "approve_payment": "APPROVE_TRANSACTION", "approve_transaction": "APPROVE_TRANSACTION",
}
DEFAULT_MAX_APPROVAL_AMOUNT = 5000
ARGUMENTS = ("body", "proposed_tool_call", "arguments")


def claim_request(policy: Policy, evaluation: ClaimEvaluation,
                  ) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """``(agent_id, action_type, sent fields, policy_context)`` of the ``/agent-action``
    request the claims adapter decides (docs/server.md). The context is the adapter's, derived
    from the claim, not sent: the policy gets the keys of it that it declares, whatever its
    setting for undeclared fields. Raises :class:`RequestValidationError` naming the argument
    that does not fit."""
    claim = evaluation.claim or {}
    call = evaluation.proposed_tool_call or ToolCall()
    arguments = call.arguments
    errors: list[FieldError] = []

    def text(name: str) -> str | None:
        value = arguments.get(name)
        if value is not None and not isinstance(value, str):
            errors.append(FieldError((*ARGUMENTS, name), "string_type",
                                     "Input should be a valid string", value))
            return None
        return value

    def number(name: str) -> int | float | None:
        value = arguments.get(name)
        if value is None:
            return None
        try:
            return read_number(value)
        except NotANumber as problem:
            errors.append(FieldError((*ARGUMENTS, name), "finite_number", str(problem), value))
            return None

    tool = call.tool_name.strip().lower()
    action_type = TOOL_ACTIONS.get(tool, call.tool_name.strip().upper())
    notification = text("notification_type")
    if notification is not None:
        notification_type = notification.lower()
    else:
        joined = " ".join(str(value) for value in arguments.values()).lower()
        notification_type = ("approval" if "approval" in joined or "approved" in joined else
                             "rejection" if "rejection" in joined or "denied" in joined else "")
    target = text("to") or text("recipient") or ""
    amount = number("amount")
    maximum = (number("max_approval_amount") if "max_approval_amount" in arguments
               else DEFAULT_MAX_APPROVAL_AMOUNT)
    classification = text("data_classification")
    destination = text("destination_type")
    if errors:
        raise RequestValidationError([error.to_dict() for error in errors])
    documents = claim.get("documents")
    proof = isinstance(documents, dict) and bool(documents.get("proof_of_termination"))
    employed = str(claim.get("currently_employed_elsewhere") or "").strip().lower() == "yes"
    claim_id = claim.get("claim_id")
    sent = {"target": target, "amount": amount, "notification_type": notification_type,
            "data_classification": classification or "internal",
            "destination_type": destination or "internal"}
    derived = {
        "approval_requires_verified_eligibility": True,
        "eligibility_verified": proof and not employed,
        "required_documents_present": proof,
        "currently_employed_elsewhere": employed,
        "max_approval_amount": maximum,
        "claim_id": claim_id,
    }
    declared = _declared(policy).context_keys
    context = {key: value for key, value in derived.items() if key in declared}
    agent_id = str(claim_id) if claim_id not in (None, "") else "unknown"
    return agent_id, action_type, sent, context


# -- routes ------------------------------------------------------------------------------------

def router(gate: Gate, operator: OperatorAuth, reader: ReadAuth, reads: Reads) -> APIRouter:
    """The Sentra-compatible endpoints over ``gate``."""
    api = APIRouter(tags=["Sentra-compatible"])

    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "risk_threshold": gate.policy.risk_threshold})

    api.add_api_route("/", health, methods=["GET"], summary="Health (as GET /health)",
                      operation_id="root", response_model=models.Health,
                      responses=models.errors(*models.EDGE))
    api.add_api_route("/health", health, methods=["GET"], summary="Health",
                      operation_id="health", response_model=models.Health,
                      responses=models.errors(*models.EDGE))

    @api.post("/agent-action", summary="Decide one proposed action (the Sentra event object)",
              operation_id="agent_action", response_model=models.SentraEvent,
              responses=models.errors(*models.POSTED))
    async def agent_action(action: AgentAction) -> JSONResponse:
        return JSONResponse(await decide(gate, action))

    @api.get("/events", operation_id="sentra_events", response_model=list[models.SentraEvent],
             summary="Decision events since the last reset of all agents, oldest first, in "
                     "pages (the `Link` header names the next page)",
             responses=models.errors(*models.EDGE, 401),
             openapi_extra={"security": read_security(reader)})
    async def events(after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
                     limit: Annotated[int, Query(ge=1, le=EVENTS_LIMIT)] = EVENTS_LIMIT,
                     _: str = Depends(reader)) -> Response:
        text, following = await reads.run(events_page, gate, after, limit)
        headers = {} if following is None else {
            "Link": f'</events?after={following}&limit={limit}>; rel="next"'}
        return Response(text, media_type="application/json", headers=headers)

    @api.post("/reset", summary="Reset every agent (operator token); the audit log keeps all",
              operation_id="sentra_reset", response_model=models.SentraReset,
              responses=models.errors(*models.POSTED, 401, 403),
              openapi_extra={"security": OPERATOR_SECURITY})
    def reset(who: str = Depends(operator)) -> JSONResponse:
        gate.reset(None, who)
        return JSONResponse({"message": "All agents reset; the audit log keeps every record.",
                             "risk_threshold": gate.policy.risk_threshold})

    @api.post("/evaluate", summary="Claims-workflow adapter: decide a proposed tool call",
              operation_id="evaluate_claim", response_model=models.ClaimAnswer,
              responses=models.errors(*models.POSTED))
    async def evaluate(evaluation: Annotated[ClaimEvaluation, Body()]) -> JSONResponse:
        agent_id, action_type, sent, context = claim_request(gate.policy, evaluation)
        event = await decide_values(gate, agent_id, action_type, sent, context)
        return JSONResponse({
            "result": {"decision": "ALLOW" if event["decision"] == "Allowed" else "BLOCK",
                       "reason": event["reason"], "risk_score": event["attempted_risk"]},
            "raw_event": event,
        })

    return api
