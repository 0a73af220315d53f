"""The engine: a policy's decisions for many agents, with their state in a store.

The decisions are :class:`~sentra_runtime.decider.Decider`'s, exactly; the engine adds the
agents' state. ``evaluate`` runs the decider's matcher (pure: which rule matches this action and
input) outside any lock, then hands the decider's state step to the store, which runs it for
the agent inside one lock or transaction (:meth:`Store.apply`). There is one evaluation path,
whatever the store: the one below.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

from sentra_runtime import review as _review
from sentra_runtime.audit import Annotations, VerifyResult
from sentra_runtime.decider import Decider, assignment, checked_fields
from sentra_runtime.decision import Decision
from sentra_runtime.guard import ActionDenied as ActionDenied
from sentra_runtime.guard import F, guard
from sentra_runtime.policy import Policy
from sentra_runtime.stores import AgentState, MemoryStore, Reset, Store


class Engine:
    """Evaluate actions of agents against one policy, keeping state in a store.

    ``policy`` is a :class:`Decider`, a loaded :class:`Policy`, a table dict, JSON text, or a
    path to a table file; ``store`` defaults to a fresh :class:`MemoryStore`. ``clock`` gives
    the time (seconds since the epoch, UTC; :func:`time.time` by default): each decision's time, which
    is its audit record's ``time`` and the ``now`` of time-dependent settings (``risk_decay``),
    and the time of resets and policy loads. Tests and suites pass a clock they move.
    """

    def __init__(self, policy: Decider | Policy | Mapping[str, Any] | str | os.PathLike[str],
                 store: Store | None = None, *,
                 clock: Callable[[], float] | None = None) -> None:
        self.decider = policy if isinstance(policy, Decider) else Decider(policy)
        self.policy = self.decider.policy
        self.matcher = self.decider.matcher
        self.store: Store = store if store is not None else MemoryStore()
        self.clock: Callable[[], float] = time.time if clock is None else clock
        self._match = self.decider.match
        self._transition = self.decider.step
        """The decider's state step (:attr:`Decider.step`), bound once (not once per
        decision)."""
        self.policy_load_seq: int | None = self.store.record_policy_load(self.policy,
                                                                          now=self.clock())
        self._reviews = self.policy.reviews
        """Whether the policy holds decisions for review (then a decision first expires the
        agent's tickets whose time is up)."""
        """The seq of the audit record of this engine's policy load (``None`` without a log)."""

    @property
    def policy_hash(self) -> str:
        return self.policy.hash

    # -- evaluation ------------------------------------------------------------------------------

    def evaluate(self, agent_id: str, action: str, fields: Mapping[str, Any] | None = None,
                 *, annotations: Annotations | None = None) -> Decision:
        """Decide one proposed action of one agent, update its state, and audit the decision.

        ``annotations`` adds keys to the decision's audit record (inside its hash chain): a
        mapping of JSON values, or a function of the decision that returns one (it runs in the
        decision's transaction). They may not replace the record's own keys. The record's seq
        is ``decision.seq``.
        """
        if (fields.__class__ is not dict or agent_id.__class__ is not str
                or action.__class__ is not str):
            fields = checked_fields(agent_id, action, fields)
        code, payload, action = self._match(action, fields)
        if self._reviews:
            self._expire_due(agent_id)
        if annotations is None:
            return self.store.apply(self._transition, agent_id, action, fields, code, payload,
                                    self.clock())
        return self.store.apply(self._transition, agent_id, action, fields, code, payload,
                                self.clock(), annotations=annotations)

    async def evaluate_async(self, agent_id: str, action: str,
                             fields: Mapping[str, Any] | None = None, *,
                             annotations: Annotations | None = None) -> Decision:
        """:meth:`evaluate` for callers on an asyncio event loop: the same decision, made by the
        same matcher and state step, without blocking the loop on the store. A store with
        ``apply_async`` (:class:`SQLiteStore`: commits run in a thread of its own, and
        decisions that wait together share one, with group commit) is awaited; any other
        store's ``apply`` runs in a worker thread."""
        if (fields.__class__ is not dict or agent_id.__class__ is not str
                or action.__class__ is not str):
            fields = checked_fields(agent_id, action, fields)
        code, payload, action = self._match(action, fields)
        if self._reviews:
            await asyncio.to_thread(self._expire_due, agent_id)
        now = self.clock()
        apply_async = getattr(self.store, "apply_async", None)
        if apply_async is not None:
            decision: Decision = await apply_async(self._transition, agent_id, action, fields,
                                                   code, payload, now, annotations=annotations)
            return decision
        return await asyncio.to_thread(self.store.apply, self._transition, agent_id, action,
                                       fields, code, payload, now, annotations=annotations)

    # -- review tickets ----------------------------------------------------------------------------

    def review(self, ticket: str, approve: bool, *, operator: str,
               note: str | None = None) -> Decision:
        """An operator's verdict on a pending review ticket, decided now (docs/runtime.md,
        "Review"); audited (a record of kind ``review``) with the operator and the note.

        Approval is the review rule's allow, decided against the agent's state now: its risk
        is applied now; over the threshold it is ``RISK_THRESHOLD_EXCEEDED`` (a strike), for a
        shut-down agent ``AGENT_ALREADY_SHUT_DOWN`` (the ticket is then ``blocked``). Denial is
        a block with the review rule's id and a strike. Returns the decision (its ``ticket``
        names the ticket). Raises :class:`~sentra_runtime.review.UnknownTicket` for an unknown
        id, :class:`~sentra_runtime.review.TicketClosed` for a ticket that is no longer pending
        (one whose time is up is expired now, and recorded so, first).
        """
        if not isinstance(ticket, str):
            raise TypeError(f"ticket must be a string, not {type(ticket).__name__}")
        if not isinstance(approve, bool):
            raise TypeError(f"approve must be a bool, not {type(approve).__name__}")
        if not isinstance(operator, str) or not operator:
            raise ValueError("a review needs the operator's name (operator=...)")
        if note is not None and not isinstance(note, str):
            raise TypeError(f"note must be a string or None, not {type(note).__name__}")
        if not _review.well_formed(ticket):
            raise _review.UnknownTicket(ticket)
        now = self.clock()
        verdict = "Approved" if approve else "Denied"
        reason = f"{verdict} by `{operator}` after review" + (f": {note}" if note else ".")

        def step(held: _review.Ticket, state: tuple[int, ...],
                 seq: int | None) -> _review.Settlement | None:
            if held.status != _review.PENDING:
                return None
            if held.due(_review.micros(now)):
                return _review.expiry(held, now)
            try:
                decision, after = self.decider.verdict(
                    held.rule_id, approve, reason, state, held.agent_id,  # type: ignore[arg-type]
                    held.action, seq, now)
            except KeyError:
                raise _review.TicketError(
                    f"ticket {held.ticket}: the policy has no review rule `{held.rule_id}` "
                    "(it was reloaded without it); deny it with a policy that has it, or "
                    "reset the agent") from None
            decision.__dict__["ticket"] = held.ticket
            status = (_review.APPROVED if decision.allowed else
                      _review.DENIED if not approve else _review.BLOCKED)
            done = _review.closed(held, status, now, operator, note, decision)
            return _review.Settlement(done, decision, after,
                                      _review.review_record(now, done, decision))

        held, decision = self.store.settle(ticket, step, now)
        if decision is None:
            raise _review.TicketClosed(held)
        return decision

    def ticket(self, ticket: str) -> _review.Ticket:
        """The review ticket with this id, after expiring it if its time is up (recorded);
        :class:`~sentra_runtime.review.UnknownTicket` when there is none."""
        found = self.store.ticket(ticket) if _review.well_formed(ticket) else None
        if found is None:
            raise _review.UnknownTicket(ticket)
        if found.due(_review.micros(self.clock())):
            found = self._expire(found.ticket)
        return found

    def verdict(self, ticket: str) -> tuple[str, Decision | None]:
        """Where a review ticket stands (:meth:`ticket`, after expiring it if its time is up)
        and the decision its verdict made: ``None`` while it is pending, and when it expired
        or was cancelled. What a guard that waits for a verdict polls (the MCP gateway's
        ``--review-wait`` too)."""
        found = self.ticket(ticket)
        if found.decision is None:
            return found.status, None
        from sentra_runtime.wire import decision_from_wire
        return found.status, decision_from_wire({"seq": None, "decision": found.decision},
                                                explained=False)

    def tickets(self, status: str | None = None,
                agent: str | None = None) -> list[_review.Ticket]:
        """The review tickets with this status of this agent (``None``: any), oldest first,
        after expiring those whose time is up (recorded)."""
        if status is not None and status not in _review.STATUSES:
            raise ValueError(f"status must be one of {', '.join(_review.STATUSES)}, "
                             f"not {status!r}")
        self._expire_due(agent)
        return self.store.tickets(status, agent)

    def _expire_due(self, agent_id: str | None) -> None:
        """Expire the pending tickets (of one agent, or all) whose time is up, each with its
        audit record."""
        now_us = _review.micros(self.clock())
        for held in self.store.tickets(_review.PENDING, agent_id):
            if held.due(now_us):
                self._expire(held.ticket)

    def _expire(self, ticket: str) -> _review.Ticket:
        now = self.clock()

        def step(held: _review.Ticket, state: tuple[int, ...],
                 seq: int | None) -> _review.Settlement | None:
            return _review.expiry(held, now) if held.due(_review.micros(now)) else None

        return self.store.settle(ticket, step, now)[0]

    # -- operators and introspection -------------------------------------------------------------

    def reset(self, agent_id: str | None = None, *, operator: str) -> Reset:
        """Return one agent (or every agent, for ``None``) to ``(0, 0, active)``; audited.

        Returns the ids of the agents reset (a list) carrying the reset record's ``seq``.
        """
        if agent_id is not None and not isinstance(agent_id, str):
            raise TypeError(f"agent_id must be a string or None, not {type(agent_id).__name__}")
        if not isinstance(operator, str) or not operator:
            raise ValueError("reset needs the operator's name (operator=...)")
        agents = self.store.reset(agent_id, operator, self.policy.hash, now=self.clock())
        return agents if isinstance(agents, Reset) else Reset(agents, None)

    def assign_group(self, agent_id: str, group: str | None, *, operator: str) -> int | None:
        """Put an agent in a group the policy declares, whatever its id's patterns say, or
        (``group=None``) clear the assignment so that the patterns decide again; audited with
        the operator. Returns the seq of the record (``None`` when the store keeps no log).
        ``ValueError`` for a group the policy does not declare (an agent can never choose its
        group: only an operator, through this call, assigns one)."""
        if not isinstance(agent_id, str):
            raise TypeError(f"agent_id must be a string, not {type(agent_id).__name__}")
        if not isinstance(operator, str) or not operator:
            raise ValueError("assigning a group needs the operator's name (operator=...)")
        if group is not None:
            names = [declared.name for declared in self.policy.groups]
            if not isinstance(group, str) or group not in names:
                raise ValueError(undeclared_group(group, names))
        assign = getattr(self.store, "assign_group", None)
        if assign is None:
            raise TypeError(f"{type(self.store).__name__} does not keep group assignments")
        seq: int | None = assign(agent_id, group, operator, self.policy.hash, now=self.clock())
        return seq

    def group(self, agent_id: str) -> tuple[str, str | None]:
        """The agent's group now (``""``: none) and the group an operator assigned it to
        (``None``: none). An assignment to a group the policy no longer declares is kept but
        inert: the patterns decide, and the two differ."""
        assigned = assignment(self.store.raw_state(agent_id))
        return self.decider.member(agent_id, assigned).group, assigned

    def state(self, agent_id: str) -> AgentState:
        """The agent's ``(cumulative_risk, blocked_attempts, status)`` now (by the engine's
        clock, after the policy's ``risk_decay``, which a read applies without writing);
        fresh for unknown ids."""
        if not self.decider.decays:
            return self.store.state(agent_id)
        raw = self.decider.decayed_state(self.store.raw_state(agent_id), self.clock(),
                                         agent_id)
        return AgentState.from_raw((raw[0], raw[1], raw[2]))

    def limits(self, agent_id: str) -> list[dict[str, Any]]:
        """Every rate limit that applies to the agent now (the rules', the blocks', its
        group's), each as ``{"limit": "5 per 1h", "for": "`REFUND_OK`", "count": N}``, N the
        counted decisions its window holds by the engine's clock; ``[]`` for a policy without
        limits."""
        if not self.decider.limited:
            return []
        usage = self.decider.limit_usage(self.store.raw_state(agent_id), self.clock(), agent_id)
        return [{"limit": str(limit), "for": limit.target, "count": count}
                for limit, count in usage]

    def agents(self) -> list[str]:
        """Ids of the agents the store has seen, sorted."""
        return self.store.agents()

    def guard(self, agent_id: str, action: str, fields: Mapping[str, Any] | None = None, *,
              from_arguments: bool = True, wait: float | None = None) -> Callable[[F], F]:
        """Decorate a tool function so each call is evaluated first.

        The call proceeds only when the decision is allowed; otherwise :class:`ActionDenied` (a
        ``PermissionError``) is raised before the body runs. The fields are ``fields`` plus,
        with ``from_arguments``, the call's arguments whose names the policy declares, by
        parameter name (positional ones too, defaults for those left out); the policy sees what
        the body gets (rules in :mod:`sentra_runtime.guard`). The decision of the last call is
        in ``wrapper.last_decision``.

        A call the policy holds for review raises :class:`~sentra_runtime.ReviewPending`
        (carrying the ticket) before the body runs; with ``wait`` (seconds) the guard first
        waits that long for the operator's verdict, and runs the body once if it allows the
        call (``ActionDenied`` if it does not).
        """
        return guard(self, agent_id, action, fields, from_arguments, wait)

    def audit_records(self) -> Iterator[dict[str, Any]]:
        """The store's audit log: hash-chained records in seq order."""
        return self.store.audit_records()

    def verify_audit(self, *, expected_head: str | None = None) -> VerifyResult:
        return self.store.verify_audit(expected_head=expected_head)

    def export_audit(self, out: IO[str]) -> int:
        """Write the audit log as JSON Lines; return the number of records."""
        return self.store.export_audit(out)

    def close(self) -> None:
        self.store.close()


def undeclared_group(group: object, names: list[str]) -> str:
    """Why an assignment to ``group`` is refused, with the nearest declared name."""
    if not names:
        return f"the policy declares no groups: `{group}` cannot be assigned"
    by_case = {name.casefold(): name for name in names}
    close = difflib.get_close_matches(str(group).casefold(), list(by_case), n=1)
    hint = (f"; did you mean `{by_case[close[0]]}`?" if close
            else f" (declared: {', '.join(f'`{name}`' for name in names)})")
    return f"the policy declares no group `{group}`{hint}"
