"""The shapes of the server's answers, for its OpenAPI document (``/openapi.json``).

The routes answer with pre-rendered JSON (the answers are built from audit records), so these
models describe the answers and are not used to build them; ``tests/server/test_openapi.py``
checks real answers against them and validates the whole document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

Label = Literal["Allowed", "Blocked", "Agent Shut Down", "Review Required"]
Kind = Literal["decision", "reset", "policy_load", "group", "review"]
TicketStatus = Literal["pending", "approved", "blocked", "denied", "expired", "cancelled"]


class Answer(BaseModel):
    """An answer whose keys are listed; some carry more (open records)."""

    model_config = ConfigDict(extra="allow")


class Health(Answer):
    status: Literal["ok"]
    risk_threshold: int


class SentraEvent(Answer):
    """The Sentra reference server's event object, keys in its order. An agent already shut
    down gets the short form: no ``amount``, ``notification_type``, ``data_classification``
    or ``destination_type``."""

    timestamp: str = Field(description="UTC, `YYYY-MM-DD HH:MM:SS`")
    agent_id: str
    action_type: str
    action_label: str
    target: str | None
    amount: float | None = None
    notification_type: str | None = None
    data_classification: str | None = None
    destination_type: str | None = None
    policy_triggered: str
    policy_description: str
    threat_type: str | None
    risk: int
    attempted_risk: int
    projected_risk: int
    cumulative_risk: str = Field(description="`N/threshold`")
    decision: Label
    reason: str
    event_trace: list[str]
    ticket: str | None = Field(default=None, description="A `Review Required` decision's "
                               "review ticket (follow it at `/v1/reviews/{ticket}`); absent "
                               "otherwise.")


class SentraReset(Answer):
    message: str
    risk_threshold: int


class ClaimResult(Answer):
    decision: Literal["ALLOW", "BLOCK"]
    reason: str
    risk_score: int


class ClaimAnswer(Answer):
    result: ClaimResult
    raw_event: SentraEvent


class LimitCount(Answer):
    limit: str = Field(description="`N per DURATION`, e.g. `5 per 1h`.")
    for_: str = Field(alias="for", description="What it counts, as its reason names it.")
    count: int = Field(description="The agent's counted decisions in the window now.")


class DecisionView(Answer):
    """A decision; ``/v1/decide`` adds its ``explanation``."""

    agent_id: str
    action: str
    outcome: Literal["allow", "block", "shutdown", "review"]
    label: Label
    allowed: bool
    reason: str
    rule_id: str
    threat: str | None
    description: str | None
    attempted_risk: int
    applied_risk: int
    projected_risk: int
    cumulative_risk: int
    blocked_attempts: int
    status: Literal["active", "shut_down"]
    policy_hash: str
    decayed: int | None = Field(default=None, description="How much the policy's `risk_decay` "
                                "took off the agent's risk before this decision (only under a "
                                "policy with `risk_decay`).")
    group: str | None = Field(default=None, description="The agent's group under a policy with "
                              "groups (`\"\"`: no group holds it); absent under a policy "
                              "without groups.")
    limit: LimitCount | None = Field(default=None, description="The rate limit a "
                                     "`RATE_LIMIT_EXCEEDED` decision went over, with its count "
                                     "(the decisions already in the window); absent otherwise.")
    ticket: str | None = Field(default=None, description="A `review` decision's ticket (an "
                               "operator approves or denies it: `/v1/reviews/{ticket}`), or the "
                               "ticket an operator's verdict settled; absent otherwise.")
    expires_at: float | None = Field(default=None, description="When a `review` decision's "
                                     "ticket expires (seconds since the epoch, UTC).")
    explanation: dict[str, Any] | None = None


class Decided(Answer):
    seq: int
    decision: DecisionView


class AgentState(Answer):
    agent_id: str
    cumulative_risk: int
    blocked_attempts: int
    status: Literal["active", "shut_down"]
    limits: list[LimitCount] | None = Field(
        default=None, description="Under a policy with rate limits: every limit that applies "
                                  "to the agent, with its count now; absent otherwise.")
    group: str | None = Field(default=None, description="Under a policy with groups: the "
                              "agent's group now (`\"\"`: none).")
    assigned_group: str | None = Field(default=None, description="The group an operator "
                                       "assigned the agent to (null: none); it differs from "
                                       "`group` when the policy no longer declares it (the "
                                       "assignment is then inert).")
    risk_threshold: int | None = Field(default=None, description="Under a policy with groups: "
                                       "the threshold that applies to the agent (its group's, "
                                       "else the policy's).")
    strikes: int | None = Field(default=None, description="Under a policy with groups: the "
                                "blocked attempts that shut the agent down (its group's, else "
                                "the policy's).")


class KnownAgent(AgentState):
    known: bool


class AgentPage(Answer):
    risk_threshold: int
    strikes: int
    agents: list[AgentState]
    next_after: str | None = Field(description="pass as `after` for the next page; null on the "
                                               "last page")


class AgentReset(Answer):
    seq: int
    reset: list[str]
    agent: AgentState


class GroupAssigned(Answer):
    seq: int
    agent: AgentState


class ResetAll(Answer):
    seq: int
    reset: list[str]


class Ticket(Answer):
    """A review ticket (docs/runtime.md, "Review"): a held decision and where it stands."""

    ticket: str
    agent_id: str
    action: str
    rule_id: str
    risk: int
    reason: str
    threat: str | None
    policy_hash: str
    created: str
    expires: str
    seq: int | None = Field(description="the seq of the review decision's audit record")
    input: dict[str, Any]
    status: TicketStatus
    settled: str | None
    operator: str | None
    note: str | None
    decision: DecisionView | None = Field(description="the decision the verdict made "
                                                      "(approved, blocked, denied)")


class TicketPage(Answer):
    tickets: list[Ticket]
    next_after: str | None = Field(description="pass as `after` for the next page; null on the "
                                               "last page")


class Reviewed(Answer):
    seq: int = Field(description="the seq of the verdict's `review` audit record")
    ticket: Ticket
    decision: DecisionView


class AuditRecord(Answer):
    """An audit record (``decision``, ``reset``, ``policy_load`` or ``review``) as the log
    keeps it; a decision also carries its Sentra ``event``."""

    seq: int
    kind: Kind
    time: str
    hash: str
    prev: str | None
    policy_hash: str | None
    event: SentraEvent | None = None


class EventPage(Answer):
    events: list[AuditRecord]
    next_after: int
    head: int
    last_global_reset: int


class PolicyInfo(Answer):
    name: str
    version: str
    description: str | None
    hash: str
    schema_version: int
    risk_threshold: int
    strikes: int
    source: str
    loaded_at: float
    table: dict[str, Any]
    instance: str = Field(description="the server process answering: host name and process id")
    origin: Literal["file", "log"] = Field(
        description="`file`: loaded from the policy file here (at start or by a reload); "
                    "`log`: adopted from the newest policy load of another process sharing "
                    "the store")
    load_seq: int | None = Field(description="the seq of this process's load of the policy")


class Reloaded(Answer):
    previous_hash: str
    hash: str
    changed: bool
    name: str
    version: str


class ImpactSettings(Answer):
    field: str
    field_declared: bool = Field(description="whether the served policy declares the field")
    bucket: Literal["hour", "day", "week", "month"]
    since: str | None
    until: str | None


class ImpactCounts(Answer):
    blocked: int
    shut_down: int
    prevented: int
    exposure_prevented: float
    exposure_actions: int
    held: int = Field(description="actions held for an operator's review (Review Required)")


class ImpactTotals(ImpactCounts):
    decisions: int
    allowed: int
    agents_shut_down: int
    shutdowns: int


class ThreatImpact(ImpactCounts):
    threat: str | None


class RuleImpact(ImpactCounts):
    rule_id: str


class AgentShutdowns(Answer):
    agent: str
    shutdowns: int
    first_shutdown: str
    last_shutdown: str
    last_rule_id: str
    denied_after: int


class BucketImpact(ImpactCounts):
    bucket_start: str
    decisions: int
    allowed: int
    shutdowns: int


class ImpactReport(Answer):
    """What the gate prevented, from the audit log, as of ``last_seq`` (docs/server.md,
    "GET /v1/impact")."""

    settings: ImpactSettings
    last_seq: int
    totals: ImpactTotals
    by_threat: list[ThreatImpact]
    by_rule: list[RuleImpact]
    agents_shut_down: list[AgentShutdowns]
    over_time: list[BucketImpact]


class SnapshotCounts(Answer):
    events: int = Field(description="decisions in the whole audit log")
    agents: int
    active: int | None = Field(description="null when the snapshot lists only some agents")
    shut_down: int | None = Field(description="null when the snapshot lists only some agents")
    blocked: int = Field(description="decisions blocked or shut down in the whole audit log")


class DashboardSnapshot(Answer):
    """The dashboard's first state, as of ``head``: what the page embeds when reads are open."""

    head: int
    rendered_at: str
    counts: SnapshotCounts
    agents: list[AgentState]
    agents_next_after: str | None = Field(description="the agents listed are the first of "
                                                      "more: page on from here with "
                                                      "`/v1/agents?after=`; null when all "
                                                      "are listed")
    events: list[dict[str, Any]] = Field(description="the newest records since the last "
                                                     "reset of every agent, oldest first, "
                                                     "summarised")


class Problem(BaseModel):
    """An error answer: ``detail`` says what was wrong."""

    detail: Any


class FieldProblem(BaseModel):
    type: str
    loc: list[str | int] = Field(description="where: `body`, `query` or `path`, then the field")
    msg: str
    input: Any = None


class Invalid(BaseModel):
    """A request that does not fit: each problem names its field."""

    detail: list[FieldProblem]


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Declared error answers for a route's OpenAPI entry. They refer to the error models by
    name (:func:`error_schemas` adds them to the document): giving FastAPI the models would
    build a validator per route and answer, a tenth of a second of start-up for nothing."""
    return {status: ERRORS[status] for status in statuses}


def _answer(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}


def error_schemas() -> dict[str, Any]:
    """The JSON schemas of the error models, for the document's ``components.schemas``."""
    _, document = models_json_schema([(Problem, "serialization"), (Invalid, "serialization")],
                                     ref_template="#/components/schemas/{model}")
    return dict(document["$defs"])


ERRORS: dict[int, dict[str, Any]] = {
    400: _answer(Problem, "the Host header names no allowed host"),
    401: _answer(Problem, "token missing or wrong"),
    403: _answer(Problem, "operator actions are disabled (no operator token)"),
    404: _answer(Problem, "not found"),
    409: _answer(Problem, "the review ticket is no longer pending (its `detail` says its "
                          "status): a verdict is given once"),
    408: _answer(Problem, "the request did not arrive in time"),
    413: _answer(Problem, "the body is larger than --max-body-bytes"),
    415: _answer(Problem, "the body is not declared as JSON"),
    422: _answer(Invalid, "the request does not fit: each problem names its field; nothing is "
                          "written"),
}
RELOAD_REFUSED = _answer(Problem, "the request does not fit, or the policy does not compile (its "
                                  "diagnostics); the old one serves on")
EDGE = (400, 408, 422)
"""What any request can get from the edge (docs/server.md, "The edge")."""
POSTED = (*EDGE, 413, 415)
