"""Review tickets: decisions held for an operator, and their lifecycle (docs/runtime.md,
"Review").

A ``review`` rule's decision holds the action: the agent gets ``Review Required`` and a ticket,
its state is unchanged. The ticket is ``pending`` until one of:

- ``approved``: an operator approved it and the approval, decided at its own time against the
  agent's state then, allowed the action (the review rule's risk is applied then);
- ``blocked``: an operator approved it but the agent was shut down, or the review rule's risk
  would cross the threshold then (that block is a strike, as any);
- ``denied``: an operator denied it (a block with the review rule's id, and a strike);
- ``expired``: its time passed with no verdict (no strike; the action never runs);
- ``cancelled``: the agent was reset while the ticket was pending.

Every step after the review decision itself is an audit record of kind ``review`` in the one
chain. This module holds what every store shares: the ticket, and the records of its steps.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, fields, replace
from typing import Any, NamedTuple

from sentra_runtime import audit, jsontext
from sentra_runtime.decision import Decision

PENDING = "pending"
APPROVED = "approved"
BLOCKED = "blocked"
DENIED = "denied"
EXPIRED = "expired"
CANCELLED = "cancelled"
STATUSES = (PENDING, APPROVED, BLOCKED, DENIED, EXPIRED, CANCELLED)
"""Every status a ticket can have; all but ``pending`` are final."""
REVIEW = audit.REVIEW
TICKET_PREFIX = "rv_"


def new_ticket_id() -> str:
    """A random, unguessable ticket id: ``rv_`` and 22 URL-safe characters (128 bits)."""
    return TICKET_PREFIX + secrets.token_urlsafe(16)


_TICKET_ID = re.compile(r"rv_[A-Za-z0-9_-]{22}")


def well_formed(ticket_id: str) -> bool:
    """Whether ``ticket_id`` has the form :func:`new_ticket_id` gives: any other text names no
    ticket in any store, and is answered as unknown before a store is asked (a NUL, which
    PostgreSQL's text cannot hold, included)."""
    return _TICKET_ID.fullmatch(ticket_id) is not None


class TicketError(Exception):
    """A review that cannot be made: no such ticket, or the ticket is no longer pending."""


class UnknownTicket(TicketError, LookupError):
    """No ticket has this id (in this store)."""


class TicketClosed(TicketError):
    """The ticket already has its final status (``ticket``): it was approved, denied, blocked,
    expired or cancelled before this review (an expiry found by the review itself included)."""

    def __init__(self, ticket: Ticket) -> None:
        super().__init__(f"ticket {ticket.ticket} is {ticket.status}, not pending")
        self.ticket = ticket


@dataclass(frozen=True)
class Ticket:
    """One held decision and where it stands. Times are whole microseconds since the epoch."""

    ticket: str
    agent_id: str
    action: str
    rule_id: str
    risk: int
    """The review rule's risk: attempted when the ticket was made, applied on approval."""
    reason: str
    """The review decision's reason (why it needs a human)."""
    threat: str | None
    policy_hash: str
    created: int
    expires: int
    seq: int | None
    """The seq of the review decision's audit record (``None`` without a log)."""
    input: Mapping[str, Any]
    """The input as the policy saw it (what the operator judges)."""
    status: str = PENDING
    settled: int | None = None
    """When the ticket got its final status."""
    operator: str | None = None
    note: str | None = None
    decision: Mapping[str, Any] | None = None
    """The decision the verdict made (``Decision.to_dict()``), for ``approved``, ``blocked``
    and ``denied``."""

    def due(self, now_us: int) -> bool:
        """Whether the ticket is pending and its time is up at ``now_us`` (a ticket expires
        at its ``expires`` time exactly)."""
        return self.status == PENDING and now_us >= self.expires

    def to_dict(self) -> dict[str, Any]:
        """The ticket as JSON: times as ISO 8601 UTC (``created``, ``expires``,
        ``settled``)."""
        data = asdict(self)
        data["input"] = dict(self.input)
        for key in ("created", "expires", "settled"):
            if data[key] is not None:
                data[key] = audit.timestamp_us(data[key])
        return data

    def to_row(self) -> dict[str, Any]:
        """The ticket as a store keeps it (JSON, times in microseconds)."""
        data = asdict(self)
        data["input"] = dict(self.input)
        data["decision"] = None if self.decision is None else dict(self.decision)
        return data

    @classmethod
    def from_body(cls, body: str, **filled: Any) -> Ticket:
        """The ticket a SQL store keeps as ``body`` (the JSON of :meth:`to_row`), with
        ``filled``: values only a column holds (PostgreSQL's ``seq``).
        :class:`TicketDamaged` when the body is no ticket (someone edited the store)."""
        try:
            data = jsontext.loads(body)
        except jsontext.JSONTextError as error:
            raise TicketDamaged(str(error)) from None
        if not isinstance(data, dict):
            raise TicketDamaged("it is not a JSON object")
        data.update(filled)
        missing = [item.name for item in fields(cls)
                   if item.default is MISSING and item.name not in data]
        unknown = sorted(set(data) - _ROW_TYPES.keys())
        if missing or unknown:
            raise TicketDamaged(f"its keys are not a ticket's (missing {missing[:3]}, unknown "
                                f"{unknown[:3]})")
        for name, value in data.items():
            if value is None and name in _NULLABLE:
                continue
            if not isinstance(value, _ROW_TYPES[name]) or isinstance(value, bool):
                raise TicketDamaged(f"its `{name}` is not what a ticket holds")
        return cls(**data)


class TicketDamaged(ValueError):
    """A ticket a store holds whose body is no ticket: the store was edited outside the
    runtime. Reads and settlements that meet it refuse (the server answers 503, fail closed);
    ``audit verify`` names the ticket."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"a stored review ticket cannot be read ({reason}): the store was "
                         "edited; run `sentra-lang audit verify`")


_ROW_TYPES: dict[str, type] = {
    "ticket": str, "agent_id": str, "action": str, "rule_id": str, "risk": int, "reason": str,
    "threat": str, "policy_hash": str, "created": int, "expires": int, "seq": int,
    "input": dict, "status": str, "settled": int, "operator": str, "note": str,
    "decision": dict}
"""What each key of a stored ticket holds (:meth:`Ticket.from_body`): :class:`Ticket`'s
fields, in order."""
_NULLABLE = frozenset({"threat", "seq", "settled", "operator", "note", "decision"})
"""The keys whose value may be null."""


def stored_view(ticket: str, status: str, body: str, filled: Mapping[str, Any] | None = None,
                **columns: Any) -> tuple[str, str, dict[str, Any] | str]:
    """A ticket a SQL store keeps as `audit verify` compares it with the log: its id, its
    status and its body. The store also keeps some of the body's values in ``columns`` of
    their own (its agent, its times), which it finds and settles tickets by: where a column
    disagrees with the body, the value is given as both, which no record matches (an edit of
    the body or of the column alone is an edited ticket). ``filled``: values only a column
    holds (PostgreSQL's ``seq``, known once the record is appended), which the body takes. A
    body that is not a JSON object is given as it is (verification says so)."""
    try:
        row = jsontext.loads(body)
    except jsontext.JSONTextError:
        return ticket, status, body
    if not isinstance(row, dict):
        return ticket, status, body
    row.update(filled or {})
    for key, value in {**columns, "ticket": ticket, "status": status}.items():
        if row.get(key) != value:
            row[key] = {"body": row.get(key), "column": value}
    return ticket, status, row


def held(decision: Decision, now: float, seq: int | None) -> Ticket:
    """The pending ticket of a ``review`` decision made at ``now`` (its ``ticket`` and
    ``expires_at`` set by the decider)."""
    assert decision.ticket is not None and decision.expires_at is not None
    return Ticket(ticket=decision.ticket, agent_id=decision.agent_id, action=decision.action,
                  rule_id=decision.rule_id, risk=decision.attempted_risk, reason=decision.reason,
                  threat=decision.threat, policy_hash=decision.policy_hash,
                  created=micros(now), expires=micros(decision.expires_at), seq=seq,
                  input=decision.audit_input)


def micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


class Settlement(NamedTuple):
    """What a step of a ticket changes, in one store transaction: the ticket, the agent's
    state (``None``: unchanged), and the audit record of the step (unsealed)."""

    ticket: Ticket
    decision: Decision | None
    state: tuple[int, ...] | None
    record: dict[str, Any]


Step = Callable[[Ticket, tuple[int, ...], int | None], Settlement | None]
"""``step(ticket, agent state, seq) -> Settlement``: what a store runs, inside its lock or
transaction, to settle a ticket; ``None``: nothing to do (the ticket is no longer pending)."""


def review_record(seconds: float, ticket: Ticket, decision: Decision | None) -> dict[str, Any]:
    """The audit record of a ticket's step (its status after it, the operator and note, and the
    decision it made when there is one)."""
    record: dict[str, Any] = {
        "kind": REVIEW, "time": audit.timestamp(seconds), "policy_hash": ticket.policy_hash,
        "agent": ticket.agent_id, "action": ticket.action, "ticket": ticket.ticket,
        "verdict": ticket.status, "operator": ticket.operator, "note": ticket.note,
        "rule_id": ticket.rule_id,
        "decision": None if decision is None else audit.decision_outcome(decision),
    }
    if decision is not None:
        record["policy_hash"] = decision.policy_hash
        record["explanation"] = decision.explanation_summary
    return record


def closed(ticket: Ticket, status: str, now: float, operator: str | None = None,
           note: str | None = None, decision: Decision | None = None) -> Ticket:
    """The ticket with its final status, set at ``now``."""
    return replace(ticket, status=status, settled=micros(now), operator=operator, note=note,
                   decision=None if decision is None else decision.to_dict())


def expiry(ticket: Ticket, now: float) -> Settlement:
    """The expiry of a pending ticket whose time is up: no strike, the state unchanged."""
    done = closed(ticket, EXPIRED, now)
    return Settlement(done, None, None, review_record(now, done, None))


def cancellation(ticket: Ticket, now: float, operator: str) -> Settlement:
    """A pending ticket cancelled by the reset of its agent (by ``operator``)."""
    done = closed(ticket, CANCELLED, now, operator)
    return Settlement(done, None, None, review_record(now, done, None))
