"""The native API, ``/v1``: full decisions with explanations, agents, paged events and their live
stream, the policy and its reload, metrics. Operator actions need the operator token; reads need
the read token when the server has one."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sentra_runtime import Policy, review
from sentra_runtime.decision import Decision
from starlette.convertors import Convertor, register_url_convertor

from sentra_lang.server import models
from sentra_lang.server.auth import OPERATOR_SECURITY, OperatorAuth, ReadAuth, read_security
from sentra_lang.server.compat import agent_settings, policy_description, sentra_event
from sentra_lang.server.events import EventBroadcast
from sentra_lang.server.gate import FieldError, Gate, PolicyRefused, field_errors
from sentra_lang.server.metrics import CONTENT_TYPE, Metrics
from sentra_lang.server.store import Reads

MAX_SEQ = 2**63 - 1
"""The largest sequence number SQLite can hold; larger ``seq``/``after`` values are a 422."""
Seq = Annotated[int, Query(ge=0, le=MAX_SEQ)]
PAGE_LIMIT = 1000
Limit = Annotated[int, Query(ge=1, le=PAGE_LIMIT)]
REQUEST_KEYS = ("target", "amount", "notification_type", "data_classification",
                "destination_type")


class AgentIdConvertor(Convertor[str]):
    """An agent id in a path: any text, ``/`` and line breaks included. Starlette's ``path``
    convertor (``.*``) stops at a line break, and its route's ``$`` also matches before a final
    one, so `/v1/agents/bob%0A` read agent `bob` and the reset of `a%0Ab` was a 404; agents
    are keyed by the exact id string, and any string is an id."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("agent_id", AgentIdConvertor())


class ReviewRequest(BaseModel):
    """An operator's verdict: who gives it (default: the operator token's holder, `operator`)
    and an optional note, both kept in the audit log. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    operator: str | None = Field(default=None, min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=2000)


def ticket_view(ticket: review.Ticket) -> dict[str, Any]:
    return ticket.to_dict()


class DecideRequest(BaseModel):
    """One proposed action: the agent, the action type, and the fields the policy reads.
    Every value must have its type (strict); unknown top-level keys are refused, and the
    ``fields`` go to the policy as they are, so its setting for undeclared fields applies."""

    model_config = ConfigDict(extra="forbid", strict=True)

    agent_id: str
    action: str
    fields: dict[str, Any] = Field(default_factory=dict)


class GroupRequest(BaseModel):
    """An operator's group assignment: a group the policy declares, or ``null`` to clear the
    assignment (the policy's patterns decide again), and who assigns it (audited)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    group: str | None
    operator: str = Field(min_length=1, max_length=200)


def record_view(record: dict[str, Any], threshold: int) -> dict[str, Any]:
    """An audit record as the API shows it; a decision also gets its Sentra event."""
    if record.get("kind") != "decision":
        return record
    return {**record, "event": sentra_event(record, threshold)}


def agent_view(gate: Gate, agent_id: str) -> dict[str, Any]:
    """An agent's state now: after the policy's ``risk_decay`` (read, not written)."""
    state = gate.engine.state(agent_id)
    view: dict[str, Any] = {"agent_id": agent_id, "cumulative_risk": state.cumulative_risk,
                            "blocked_attempts": state.blocked_attempts, "status": state.status}
    if gate.engine.decider.limited:
        view["limits"] = gate.engine.limits(agent_id)
    group, assigned = gate.engine.group(agent_id)
    if gate.policy.groups or assigned is not None:
        view["group"], view["assigned_group"] = group, assigned
        settings = gate.policy.settings_of(agent_id, group)
        view["risk_threshold"], view["strikes"] = settings.risk_threshold, settings.strikes
    return view


def agents_page(gate: Gate, after: str | None, limit: int) -> dict[str, Any]:
    """Agents in id order after ``after``, at most ``limit``, with their state."""
    known = sorted(gate.store.agents())
    start = 0 if after is None else bisect.bisect_right(known, after)
    page = known[start:start + limit]
    policy = gate.policy
    return {"risk_threshold": policy.risk_threshold, "strikes": policy.strikes,
            "agents": [agent_view(gate, agent) for agent in page],
            "next_after": page[-1] if page and start + limit < len(known) else None}


def tickets_page(tickets: list[review.Ticket], after: str | None,
                 limit: int) -> dict[str, Any]:
    """The tickets (oldest first) after the one whose id is ``after``, at most ``limit``; an
    ``after`` no ticket of the list has starts at the first."""
    start = next((index + 1 for index, ticket in enumerate(tickets) if ticket.ticket == after),
                 0)
    page = tickets[start:start + limit]
    more = start + limit < len(tickets)
    return {"tickets": [ticket_view(ticket) for ticket in page],
            "next_after": page[-1].ticket if page and more else None}


def events_page(gate: Gate, after: int, limit: int, agent: str | None, label: str | None,
                kind: str | None) -> JSONResponse:
    records = gate.reader.records(after=after, limit=limit, agent=agent, label=label, kind=kind)
    threshold = gate.policy.risk_threshold
    return JSONResponse({
        "events": [record_view(record, threshold) for record in records],
        "next_after": records[-1]["seq"] if records else after,
        "head": gate.reader.head(),
        "last_global_reset": gate.reader.last_global_reset(),
    })


async def decide_request(gate: Gate, agent_id: str, action: str,
                         fields: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/decide`` on a request's values, already of the request model's types: the
    answer's content. Raises :class:`RequestValidationError`, having written nothing, when a
    field does not fit the policy (the lean path hands such a request on to the route)."""
    errors = field_errors(gate.policy, fields, _locate)
    if errors:
        raise RequestValidationError([error.to_dict() for error in errors])
    decision, record = await gate.decide(agent_id, action, fields, _annotation(action, fields))
    return {"seq": record["seq"], "decision": decision.to_dict(explanation=True)}


def _locate(name: str) -> tuple[str | int, ...]:
    return ("body", "fields", *name.split("."))


def _annotation(action: str,
                fields: dict[str, Any]) -> Callable[[Policy, Decision], dict[str, Any]]:
    kept = {key: fields[key] for key in REQUEST_KEYS if key in fields}

    def annotate(policy: Policy, decision: Decision) -> dict[str, Any]:
        matched = decision.matched_rule
        return {"server": {"api": "v1", "request": {"action_type": action, **kept},
                           "matched_rule": matched,
                           "policy_description": policy_description(policy, decision, matched),
                           **agent_settings(policy, decision)}}

    return annotate


def router(gate: Gate, operator: OperatorAuth, reader: ReadAuth, broadcast: EventBroadcast,
           metrics: Metrics, reads: Reads) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["native v1"])
    reading = read_security(reader)
    authorised = Depends(operator)
    readable = Depends(reader)
    operated = models.errors(*models.POSTED, 401, 403)
    read = models.errors(*models.EDGE, 401)

    @api.post("/decide", summary="Decide one action: the full decision with its explanation",
              operation_id="decide", response_model=models.Decided,
              responses=models.errors(*models.POSTED))
    async def decide(request: DecideRequest) -> JSONResponse:
        return JSONResponse(await decide_request(gate, request.agent_id, request.action,
                                                 request.fields))

    @api.get("/agents", summary="Agents the store knows, in id order, with their state, in "
             "pages", operation_id="list_agents", response_model=models.AgentPage,
             responses=read, openapi_extra={"security": reading})
    async def agents(after: str | None = None, limit: Limit = PAGE_LIMIT,
                     _: str = readable) -> JSONResponse:
        return JSONResponse(await reads.run(agents_page, gate, after, limit))

    @api.get("/agents/{agent_id:agent_id}", summary="One agent's state (fresh for an unknown id)",
             operation_id="get_agent", response_model=models.KnownAgent, responses=read,
             openapi_extra={"security": reading})
    async def agent(agent_id: str, _: str = readable) -> JSONResponse:
        def view() -> dict[str, Any]:
            return {**agent_view(gate, agent_id), "known": agent_id in gate.store.agents()}

        return JSONResponse(await reads.run(view))

    @api.post("/agents/{agent_id:agent_id}/reset", summary="Reset one agent (operator token)",
              operation_id="reset_agent", response_model=models.AgentReset, responses=operated,
              openapi_extra={"security": OPERATOR_SECURITY})
    def reset_agent(agent_id: str, who: str = authorised) -> JSONResponse:
        record = gate.reset(agent_id, who)
        return JSONResponse({"seq": record["seq"], "reset": record["agents"],
                             "agent": agent_view(gate, agent_id)})

    @api.put("/agents/{agent_id:agent_id}/group", summary="Assign an agent to a declared group, or "
             "clear the assignment with null (operator token)", operation_id="assign_group",
             response_model=models.GroupAssigned, responses=operated,
             openapi_extra={"security": OPERATOR_SECURITY})
    def assign_group(agent_id: str, request: GroupRequest, _: str = authorised) -> JSONResponse:
        try:
            record = gate.assign_group(agent_id, request.group, request.operator)
        except ValueError as error:   # a group the policy does not declare: located
            problem = FieldError(("body", "group"), "value_error", str(error), request.group)
            return JSONResponse(status_code=422, content={"detail": [problem.to_dict()]})
        return JSONResponse({"seq": record["seq"], "agent": agent_view(gate, agent_id)})

    @api.post("/reset", summary="Reset every agent (operator token)", operation_id="reset_all",
              response_model=models.ResetAll, responses=operated,
              openapi_extra={"security": OPERATOR_SECURITY})
    def reset_all(who: str = authorised) -> JSONResponse:
        record = gate.reset(None, who)
        return JSONResponse({"seq": record["seq"], "reset": record["agents"]})

    @api.get("/reviews", summary="Review tickets, oldest first (expired ones marked so first)",
             operation_id="list_reviews", response_model=models.TicketPage, responses=read,
             openapi_extra={"security": reading})
    async def reviews(status: models.TicketStatus | None = None, agent: str | None = None,
                      after: str | None = None, limit: Limit = PAGE_LIMIT,
                      _: str = readable) -> JSONResponse:
        def listed() -> dict[str, Any]:
            return tickets_page(gate.engine.tickets(status, agent), after, limit)

        return JSONResponse(await reads.run(listed))

    @api.get("/reviews/{ticket}", summary="One review ticket: its status and, once judged, the "
             "decision (no token: the ticket id is the agent's secret)",
             operation_id="get_review", response_model=models.Ticket,
             responses=models.errors(*models.EDGE, 404))
    async def ticket(ticket: str) -> JSONResponse:
        def found() -> dict[str, Any]:   # an id of any other form than a ticket's: unknown
            return ticket_view(gate.engine.ticket(ticket))

        try:
            return JSONResponse(await reads.run(found))
        except review.UnknownTicket:
            raise HTTPException(404, "no review ticket with this id") from None

    def verdict(ticket: str, approve: bool, request: ReviewRequest | None,
                who: str) -> JSONResponse:
        request = request or ReviewRequest()
        try:
            decision, record = gate.review(ticket, approve, request.operator or who,
                                           request.note)
        except review.UnknownTicket:
            raise HTTPException(404, "no review ticket with this id") from None
        except review.TicketClosed as closed:
            raise HTTPException(409, {"message": f"the ticket is {closed.ticket.status}, not "
                                                 "pending: a verdict is given once",
                                      "ticket": ticket_view(closed.ticket)}) from None
        except review.TicketError as error:
            raise HTTPException(409, {"message": str(error)}) from None
        return JSONResponse({"seq": record["seq"],
                             "ticket": ticket_view(gate.engine.ticket(ticket)),
                             "decision": decision.to_dict(explanation=True)})

    reviewed = models.errors(*models.POSTED, 401, 403, 404, 409)

    @api.post("/reviews/{ticket}/approve", summary="Approve a pending review ticket (operator "
              "token): the review rule's allow, decided now", operation_id="approve_review",
              response_model=models.Reviewed, responses=reviewed,
              openapi_extra={"security": OPERATOR_SECURITY})
    def approve(ticket: str, request: ReviewRequest | None = None,
                who: str = authorised) -> JSONResponse:
        return verdict(ticket, True, request, who)

    @api.post("/reviews/{ticket}/deny", summary="Deny a pending review ticket (operator token): "
              "a block with the review rule's id, and a strike", operation_id="deny_review",
              response_model=models.Reviewed, responses=reviewed,
              openapi_extra={"security": OPERATOR_SECURITY})
    def deny(ticket: str, request: ReviewRequest | None = None,
             who: str = authorised) -> JSONResponse:
        return verdict(ticket, False, request, who)

    @api.get("/events", summary="Audit records, oldest first, paged by sequence number",
             operation_id="list_events", response_model=models.EventPage, responses=read,
             openapi_extra={"security": reading})
    async def events(after: Seq = 0, limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = 100,
                     agent: str | None = None, decision: models.Label | None = None,
                     kind: models.Kind | None = None, _: str = readable) -> JSONResponse:
        return await reads.run(events_page, gate, after, limit, agent, decision, kind)

    @api.get("/events/stream", summary="Live server-sent events", operation_id="stream_events",
             response_class=StreamingResponse, openapi_extra={"security": reading},
             responses={200: {"description": "`id: seq`, `event: decision|reset|policy_load|"
                                              "group|review`, "
                                              "`data: record` messages",
                              "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                        **read})
    async def events_stream(after: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
                            agent: str | None = None, decision: models.Label | None = None,
                            last_event_id: Annotated[str | None, Header()] = None,
                            access_token: Annotated[str | None, Query(
                                description="the read token, for browsers' EventSource, "
                                            "which cannot send headers")] = None,
                            _: str = readable) -> StreamingResponse:
        start = after
        if start is None and last_event_id and len(last_event_id) <= 19 \
                and last_event_id.isascii() and last_event_id.isdigit() \
                and int(last_event_id) <= MAX_SEQ:
            start = int(last_event_id)
        if start is None:
            start = await reads.run(gate.reader.head)
        return StreamingResponse(broadcast.stream(start, agent, decision),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no", "Connection": "close"})

    @api.get("/events/{seq}", summary="One audit record", operation_id="get_event",
             response_model=models.AuditRecord, responses=models.errors(*models.EDGE, 401, 404),
             openapi_extra={"security": reading})
    async def event(seq: Annotated[int, Path(ge=0, le=MAX_SEQ)],
                    _: str = readable) -> JSONResponse:
        record = await reads.run(gate.reader.record, seq)
        if record is None:
            raise HTTPException(404, f"no audit record with seq {seq}")
        return JSONResponse(record_view(record, gate.policy.risk_threshold))

    @api.get("/policy", summary="The policy this server process serves: name, version, hash, "
             "table, and where it came from",
             operation_id="get_policy", response_model=models.PolicyInfo, responses=read,
             openapi_extra={"security": reading})
    async def policy(_: str = readable) -> JSONResponse:
        served, table, loaded_at = gate.policy, gate.table, gate.loaded_at
        return await reads.run(lambda: JSONResponse({
            "name": served.name, "version": served.version, "description": served.description,
            "hash": served.hash, "schema_version": served.schema_version,
            "risk_threshold": served.risk_threshold, "strikes": served.strikes,
            "source": str(gate.policy_path), "loaded_at": loaded_at, "table": table,
            "instance": gate.instance, "origin": gate.origin,
            "load_seq": gate.engine.policy_load_seq,
        }))

    @api.post("/policy/reload", summary="Recompile the policy file and swap it in (operator "
              "token); state is kept, a policy that does not compile is refused",
              operation_id="reload_policy", response_model=models.Reloaded,
              responses={**operated, 422: models.RELOAD_REFUSED},
              openapi_extra={"security": OPERATOR_SECURITY})
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
             operation_id="v1_metrics", response_class=PlainTextResponse, responses=read,
             openapi_extra={"security": reading})
    async def v1_metrics(_: str = readable) -> PlainTextResponse:
        return PlainTextResponse(await reads.run(metrics.render), media_type=CONTENT_TYPE)

    return api
