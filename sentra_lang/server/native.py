"""The native API, ``/v1``: full decisions with explanations, agents, paged events and their live
stream, the policy and its reload, metrics. Operator actions need the operator token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sentra_runtime import Policy
from sentra_runtime.decision import Decision

from sentra_lang.server.compat import policy_description, sentra_event
from sentra_lang.server.events import EventStream
from sentra_lang.server.gate import Gate, PolicyRefused, field_errors
from sentra_lang.server.metrics import CONTENT_TYPE, Metrics

Label = Literal["Allowed", "Blocked", "Agent Shut Down"]
Kind = Literal["decision", "reset", "policy_load"]
MAX_SEQ = 2**63 - 1
"""The largest sequence number SQLite can hold; larger ``seq``/``after`` values are a 422."""
Seq = Annotated[int, Query(ge=0, le=MAX_SEQ)]
REQUEST_KEYS = ("target", "amount", "notification_type", "data_classification",
                "destination_type")


class DecideRequest(BaseModel):
    """One proposed action: the agent, the action type, and the fields the policy reads."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str
    action: str
    fields: dict[str, Any] = Field(default_factory=dict)


def record_view(record: dict[str, Any], threshold: int) -> dict[str, Any]:
    """An audit record as the API shows it; a decision also gets its Sentra event."""
    if record.get("kind") != "decision":
        return record
    return {**record, "event": sentra_event(record, threshold)}


def agent_view(gate: Gate, agent_id: str) -> dict[str, Any]:
    state = gate.store.state(agent_id)
    return {"agent_id": agent_id, "cumulative_risk": state.cumulative_risk,
            "blocked_attempts": state.blocked_attempts, "status": state.status}


def _annotation(request: DecideRequest) -> Callable[[Policy, Decision], dict[str, Any]]:
    kept = {key: request.fields[key] for key in REQUEST_KEYS if key in request.fields}

    def annotate(policy: Policy, decision: Decision) -> dict[str, Any]:
        matched = decision.matched_rule
        return {"server": {"api": "v1", "request": {"action_type": request.action, **kept},
                           "matched_rule": matched,
                           "policy_description": policy_description(policy, decision, matched),
                           "risk_threshold": policy.risk_threshold}}

    return annotate


def router(gate: Gate, operator: Callable[..., str], stream: EventStream,
           metrics: Metrics) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["native v1"])
    authorised = Depends(operator)

    @api.post("/decide", summary="Decide one action: the full decision with its explanation")
    def decide(request: DecideRequest) -> JSONResponse:
        errors = field_errors(gate.policy, request.fields,
                              lambda name: ("body", "fields", *name.split(".")))
        if errors:
            raise RequestValidationError([error.to_dict() for error in errors])
        decision, record = gate.decide(request.agent_id, request.action, request.fields,
                                       _annotation(request))
        return JSONResponse({"seq": record["seq"],
                             "decision": decision.to_dict(explanation=True)})

    @api.get("/agents", summary="Every agent the store knows, with its state")
    def agents() -> JSONResponse:
        policy = gate.policy
        return JSONResponse({"risk_threshold": policy.risk_threshold,
                             "strikes": policy.strikes,
                             "agents": [agent_view(gate, agent) for agent in gate.store.agents()]})

    @api.get("/agents/{agent_id:path}", summary="One agent's state (fresh for an unknown id)")
    def agent(agent_id: str) -> JSONResponse:
        return JSONResponse({**agent_view(gate, agent_id),
                             "known": agent_id in gate.store.agents()})

    @api.post("/agents/{agent_id:path}/reset", summary="Reset one agent (operator token)")
    def reset_agent(agent_id: str, who: str = authorised) -> JSONResponse:
        record = gate.reset(agent_id, who)
        return JSONResponse({"seq": record["seq"], "reset": record["agents"],
                             "agent": agent_view(gate, agent_id)})

    @api.post("/reset", summary="Reset every agent (operator token)")
    def reset_all(who: str = authorised) -> JSONResponse:
        record = gate.reset(None, who)
        return JSONResponse({"seq": record["seq"], "reset": record["agents"]})

    @api.get("/events", summary="Audit records, oldest first, paged by sequence number")
    def events(after: Seq = 0,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               agent: str | None = None, decision: Label | None = None,
               kind: Kind | None = None) -> JSONResponse:
        records = gate.reader.records(after=after, limit=limit, agent=agent, label=decision,
                                      kind=kind)
        threshold = gate.policy.risk_threshold
        return JSONResponse({
            "events": [record_view(record, threshold) for record in records],
            "next_after": records[-1]["seq"] if records else after,
            "head": gate.reader.head(),
            "last_global_reset": gate.reader.last_global_reset(),
        })

    @api.get("/events/stream", summary="Live server-sent events (text/event-stream)",
             response_class=StreamingResponse)
    def events_stream(after: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
                      agent: str | None = None, decision: Label | None = None,
                      last_event_id: Annotated[str | None, Header()] = None,
                      ) -> StreamingResponse:
        start = after
        if start is None and last_event_id and len(last_event_id) <= 19 \
                and last_event_id.isascii() and last_event_id.isdigit() \
                and int(last_event_id) <= MAX_SEQ:
            start = int(last_event_id)
        if start is None:
            start = gate.reader.head()
        return StreamingResponse(stream.stream(start, agent, decision),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    @api.get("/events/{seq}", summary="One audit record")
    def event(seq: Annotated[int, Path(ge=0, le=MAX_SEQ)]) -> JSONResponse:
        record = gate.reader.record(seq)
        if record is None:
            raise HTTPException(404, f"no audit record with seq {seq}")
        return JSONResponse(record_view(record, gate.policy.risk_threshold))

    @api.get("/policy", summary="The policy being served: name, version, hash and table")
    def policy() -> JSONResponse:
        served = gate.policy
        return JSONResponse({
            "name": served.name, "version": served.version, "description": served.description,
            "hash": served.hash, "schema_version": served.schema_version,
            "risk_threshold": served.risk_threshold, "strikes": served.strikes,
            "source": str(gate.policy_path), "loaded_at": gate.loaded_at, "table": gate.table,
        })

    @api.post("/policy/reload", summary="Recompile the policy file and swap it in (operator "
              "token); state is kept, a policy that does not compile is refused")
    def reload(who: str = authorised) -> JSONResponse:
        try:
            old, new = gate.reload()
        except PolicyRefused as refused:
            metrics.reload_failed()
            return JSONResponse(status_code=422, content={"detail": {
                "message": f"the policy in {refused.path} does not compile; the policy with "
                           f"hash {gate.policy.hash} keeps serving",
                "problems": refused.problems}})
        return JSONResponse({"previous_hash": old.hash, "hash": new.hash,
                             "changed": old.hash != new.hash,
                             "name": new.name, "version": new.version})

    @api.get("/metrics", summary="Prometheus metrics (also at /metrics)",
             response_class=PlainTextResponse)
    def v1_metrics() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE)

    return api
