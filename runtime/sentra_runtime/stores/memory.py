"""The in-memory store: thread-safe, the default for embedding, gone when the process ends.

One lock serialises state updates (the rules themselves run outside it). The audit log is a
ring buffer of the last ``audit_limit`` records (10,000 by default), so a long-running process
keeps bounded memory: a decision is appended as ``(time, decision, annotation)`` and turned into
its hash-chained record only when someone reads the log, so the hot path stays a dict update
and an append. Records that leave the buffer before anyone read them are dropped without being
chained; the chain of the records the buffer holds starts at its oldest one.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import IO, Any

from sentra_runtime import audit, review
from sentra_runtime.decider import assignment, with_assignment
from sentra_runtime.decision import Decision
from sentra_runtime.policy import Policy
from sentra_runtime.stores import FRESH, AgentState, Decide, RawState, Reset

DEFAULT_AUDIT_LIMIT = 10_000
"""How many audit records a :class:`MemoryStore` keeps by default (about 5 MB)."""

_clock = time.time


class MemoryStore:
    """Agent states in a dict; the audit log's last ``audit_limit`` records in memory.

    ``audit=False`` keeps no log at all; ``audit_limit=None`` keeps every record (memory grows
    with every decision: for short runs and tests that need the whole log).

    Review tickets: a pending one is kept until it is settled; a settled one (approved, blocked,
    denied, expired, cancelled) while the log holds the record of its last step (without a
    log: the last ``audit_limit`` settled tickets), so a long-running store stays bounded.
    """

    def __init__(self, *, audit: bool = True,
                 audit_limit: int | None = DEFAULT_AUDIT_LIMIT) -> None:
        if audit_limit is not None and audit_limit < 1:
            raise ValueError("audit_limit must be a positive number of records, or None")
        self._lock = threading.Lock()
        self._states: dict[str, RawState] = {}
        self._keep_audit = audit
        self._log: deque[Any] = deque(maxlen=audit_limit)
        """The newest records, oldest first; the last is seq ``_seq``. Records with a seq above
        ``_sealed_seq`` are entries not yet chained: ``(time, decision, annotation)`` for a
        decision, the record dict for a reset or policy load."""
        self._seq = 0
        self._sealed_seq = 0
        self._sealed_hash: str | None = None
        self._tickets: dict[str, review.Ticket] = {}
        """Review tickets by id, in the order they were made."""
        self._audit_limit = audit_limit
        self._settled_order: deque[tuple[int | None, str]] = deque()
        """Settled tickets, oldest step first: the seq of the record of their last step and
        their id (see :meth:`_forget_settled`)."""

    def apply(self, decide: Decide, agent_id: str, action: str, fields: Any, code: int,
              payload: Any, now: float | None = None, *,
              annotations: audit.Annotations | None = None) -> Decision:
        if now is None:
            now = _clock()
        self._lock.acquire()   # the lock's methods, called directly: cheaper than `with` here
        try:
            state = self._states.get(agent_id, FRESH)
            if self._keep_audit:
                seq = self._seq + 1
                decision, new_state = decide(state, agent_id, action, fields, code, payload, seq,
                                             now)
                extra = None if annotations is None else audit.annotation(annotations, decision)
                self._log.append((now, decision, extra))
                self._seq = seq
            else:
                seq = None
                decision, new_state = decide(state, agent_id, action, fields, code, payload, None,
                                             now)
            if decision.ticket is not None:
                self._tickets[decision.ticket] = review.held(decision, now, seq)
            if new_state is not state or state is FRESH:
                if len(state) > 5 and len(new_state) < 6:   # a policy without groups
                    new_state = with_assignment(new_state, state[5])
                self._states[agent_id] = new_state
        finally:
            self._lock.release()
        return decision

    async def apply_async(self, decide: Decide, agent_id: str, action: str, fields: Any,
                          code: int, payload: Any, now: float | None = None, *,
                          annotations: audit.Annotations | None = None) -> Decision:
        """:meth:`apply`, called on the event loop: it holds the lock for microseconds and
        never waits for I/O."""
        return self.apply(decide, agent_id, action, fields, code, payload, now,
                          annotations=annotations)

    def reset(self, agent_id: str | None, operator: str, policy_hash: str | None, *,
              now: float | None = None) -> Reset:
        with self._lock:
            states = self._states
            if agent_id is None:
                agents = sorted(states)
                self._states = {agent: _fresh(states[agent]) for agent in agents}
            else:
                agents = [agent_id]
                states[agent_id] = _fresh(states.get(agent_id, FRESH))
            now = _clock() if now is None else now
            seq = self._append(audit.reset_record(now, policy_hash, agent_id, operator, agents))
            reset = set(agents)
            for ticket in list(self._tickets.values()):
                if ticket.status == review.PENDING and ticket.agent_id in reset:
                    self._settled(review.cancellation(ticket, now, operator))
        return Reset(agents, seq)

    def assign_group(self, agent_id: str, group: str | None, operator: str,
                     policy_hash: str | None, *, now: float | None = None) -> int | None:
        """Keep an operator's group assignment beside the agent's state (``None`` clears it)
        and audit it; the seq of its record."""
        with self._lock:
            state = self._states.get(agent_id, FRESH)
            self._states[agent_id] = with_assignment(state, group)
            return self._append(audit.group_record(_clock() if now is None else now,
                                                   policy_hash, agent_id, group, operator))

    # -- review tickets ---------------------------------------------------------------------

    def ticket(self, ticket_id: str) -> review.Ticket | None:
        """The ticket with this id, as stored (``None``: no such ticket)."""
        with self._lock:
            self._forget_settled()
            return self._tickets.get(ticket_id)

    def tickets(self, status: str | None = None,
                agent_id: str | None = None) -> list[review.Ticket]:
        """The tickets with this status of this agent (``None``: any), oldest first."""
        with self._lock:
            self._forget_settled()
            return [ticket for ticket in self._tickets.values()
                    if (status is None or ticket.status == status)
                    and (agent_id is None or ticket.agent_id == agent_id)]

    def settle(self, ticket_id: str, step: review.Step,
               now: float) -> tuple[review.Ticket, Decision | None]:
        """Run ``step`` on the ticket and its agent's state under the lock; keep what it
        settles (the ticket, the agent's state, the audit record). ``UnknownTicket`` when
        there is no such ticket."""
        with self._lock:
            ticket = self._tickets.get(ticket_id)
            if ticket is None:
                raise review.UnknownTicket(ticket_id)
            seq = self._seq + 1 if self._keep_audit else None
            settlement = step(ticket, self._states.get(ticket.agent_id, FRESH), seq)
            if settlement is None:
                return ticket, None
            self._settled(settlement)
            return settlement.ticket, settlement.decision

    def _settled(self, settlement: review.Settlement) -> None:
        """Keep a ticket's step (under the lock)."""
        ticket = settlement.ticket
        self._tickets[ticket.ticket] = ticket
        if settlement.state is not None:
            self._states[ticket.agent_id] = settlement.state  # type: ignore[assignment]
        seq = self._append(settlement.record)
        if ticket.status != review.PENDING:
            self._settled_order.append((seq, ticket.ticket))
            self._forget_settled()

    def _forget_settled(self) -> None:
        """Drop the settled tickets whose last record the log no longer holds (without a log:
        past the newest ``audit_limit``), oldest first (under the lock)."""
        order = self._settled_order
        if self._keep_audit:
            if self._audit_limit is None:
                order.clear()   # every record is held: so is every ticket
                return
            gone = self._seq - len(self._log)   # the records up to this seq left the log
            while order and order[0][0] is not None and order[0][0] <= gone:
                self._tickets.pop(order.popleft()[1], None)
        elif self._audit_limit is not None:
            while len(order) > self._audit_limit:
                self._tickets.pop(order.popleft()[1], None)

    def set_state(self, agent_id: str, cumulative_risk: int, blocked_attempts: int,
                  shut_down: bool = False, *, decay_anchor: float | None = None) -> None:
        """Seed an agent's state (for `explain --state` and tests); not an audited event.
        ``decay_anchor`` (seconds since the epoch) is when its risk was raised from 0, for a
        policy with ``risk_decay``."""
        state: RawState = (cumulative_risk, blocked_attempts, shut_down)
        if decay_anchor is not None and cumulative_risk > 0:
            state = (*state, round(decay_anchor * 1_000_000))  # type: ignore[assignment]
        with self._lock:
            self._states[agent_id] = state

    def state(self, agent_id: str) -> AgentState:
        return AgentState.from_raw(self._states.get(agent_id, FRESH))

    def raw_state(self, agent_id: str) -> RawState:
        return self._states.get(agent_id, FRESH)

    def agents(self) -> list[str]:
        with self._lock:
            return sorted(self._states)

    def record_policy_load(self, policy: Policy, *, now: float | None = None) -> int | None:
        with self._lock:
            return self._append(audit.policy_load_record(
                _clock() if now is None else now, policy.hash, policy.name, policy.version, policy.schema_version))

    def _append(self, record: dict[str, Any]) -> int | None:
        if not self._keep_audit:
            return None
        self._seq += 1
        self._log.append(record)
        return self._seq

    @property
    def dropped(self) -> int:
        """How many of the oldest records the log no longer holds (past ``audit_limit``)."""
        return self._seq - len(self._log)

    def _seal(self) -> None:
        """Chain the entries not yet chained (under the lock), oldest first, replacing each
        with its record. An entry whose predecessor left the buffer unchained gets no
        ``prev``."""
        log = self._log
        first = self._seq - len(log) + 1
        start = max(self._sealed_seq + 1, first)
        prev = self._sealed_hash if start == self._sealed_seq + 1 else None
        for index in range(start - first, len(log)):
            entry = log[index]
            if entry.__class__ is tuple:
                seconds, decision, extra = entry
                entry = audit.decision_record(seconds, decision)
                if extra is not None:
                    entry.update(extra)
            prev = audit.seal(entry, first + index, prev)["hash"]
            log[index] = entry
        self._sealed_seq, self._sealed_hash = self._seq, prev

    def audit_records(self) -> Iterator[dict[str, Any]]:
        """The records the log holds, chained on first read (under the lock)."""
        with self._lock:
            self._seal()
            records = list(self._log)
        return iter(records)

    def read_records(self, after_seq: int = 0, limit: int = 100, *, agent: str | None = None,
                     label: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            self._seal()
            first = self._seq - len(self._log) + 1
            selected: list[dict[str, Any]] = []
            for record in itertools.islice(self._log, max(after_seq + 1 - first, 0), None):
                if len(selected) >= limit:
                    break
                if audit.matches(record, agent, label, kind):
                    selected.append(record)
        return selected

    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def verify_audit(self, *, expected_head: str | None = None) -> audit.VerifyResult:
        """Verify the chain of the records the log holds (from its oldest one: the records
        before it are gone, see :attr:`dropped`), and the agents' states against it (each
        agent the held records name is in the state its newest record leaves it in).
        ``ValueError`` when the store keeps no log (``audit=False``): nothing to verify."""
        self._has_log()
        with self._lock:
            self._forget_settled()
            tickets = [(ticket.ticket, ticket.status, ticket.to_row())
                       for ticket in self._tickets.values()]
        records, states = self._snapshot()
        after = (0, None) if not records else (records[0]["seq"] - 1, records[0]["prev"])
        return audit.verify_records(records, expected_head=expected_head, after=after,
                                    states=states, tickets=tickets)

    def export_audit(self, out: IO[str]) -> int:
        """The records the log holds, then every agent's state and the head, as JSON Lines
        (:func:`sentra_runtime.audit.write_export`); ``ValueError`` without a log."""
        self._has_log()
        records, states = self._snapshot()
        head = (0, None) if not records else (records[-1]["seq"], records[-1]["hash"])
        return audit.write_export(records, states, head, out)

    def _has_log(self) -> None:
        if not self._keep_audit:
            raise ValueError("this MemoryStore keeps no audit log (audit=False): there is no log "
                             "to verify or export")

    def _snapshot(self) -> tuple[list[dict[str, Any]], list[tuple[str, RawState]]]:
        """The records held and the agents' states, at one moment."""
        with self._lock:
            self._seal()
            return list(self._log), sorted(self._states.items())

    def close(self) -> None:
        """Nothing to release."""


def _fresh(state: RawState) -> RawState:
    """A reset agent's state: fresh, keeping an operator's group assignment."""
    return with_assignment(FRESH, assignment(state))
