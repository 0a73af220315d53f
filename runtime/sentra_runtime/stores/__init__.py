"""Agent state and audit stores behind one small interface.

A store serialises the decisions of each agent: :meth:`Store.apply` reads the agent's state,
calls the decider's pure state step (:meth:`sentra_runtime.Decider.transition`), writes the new
state and appends the audit record, all as one step (one lock, or one database transaction), and
returns the decision only after that step is durable to the store's guarantee.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, Protocol, runtime_checkable

from sentra_runtime import review
from sentra_runtime.audit import Annotations, VerifyResult
from sentra_runtime.decider import FRESH
from sentra_runtime.decider import State as RawState
from sentra_runtime.decision import AgentState, Decision
from sentra_runtime.policy import Policy

Decide = Callable[..., tuple[Decision, RawState]]
"""``decide(state, agent_id, action, fields, code, payload, seq, now) -> (decision, state)``:
the decider's pure state step (:meth:`~sentra_runtime.Decider.transition`); ``seq`` is the seq
of the decision's audit record (``None`` without a log), ``now`` the decision's time."""


class Reset(list[str]):
    """The ids of the agents a reset returned to ``(0, 0, active)``, sorted, and the ``seq`` of
    the reset's audit record (``None`` when the store keeps no log)."""

    def __init__(self, agents: Iterable[str], seq: int | None) -> None:
        super().__init__(agents)
        self.seq = seq


class Store(Protocol):
    def apply(self, decide: Decide, agent_id: str, action: str, fields: Any, code: int,
              payload: Any, now: float | None = None, *,
              annotations: Annotations | None = None) -> Decision:
        """Decide for one agent atomically; the decision is returned once it is recorded.

        Under the store's lock (or in its transaction): read the agent's state, call
        ``decide(state, agent_id, action, fields, code, payload, seq, now)`` (``seq`` ``None``
        when the store keeps no log), keep the state it returns and record the decision with
        ``now`` as its time (the engine's clock; the current time when ``None``). ``fields``,
        ``code`` and ``payload`` are the call's input and the matcher's answer, passed through.
        ``annotations`` (see :meth:`Engine.evaluate`) go into the decision's audit record.
        """

    def reset(self, agent_id: str | None, operator: str, policy_hash: str | None, *,
              now: float | None = None) -> list[str]:
        """Return one agent (or all, for ``None``) to ``(0, 0, active)`` (no decay anchor);
        audited at ``now`` (the current time when ``None``). Stores with a log return a
        :class:`Reset` carrying the record's seq."""

    def assign_group(self, agent_id: str, group: str | None, operator: str,
                     policy_hash: str | None, *, now: float | None = None) -> int | None:
        """Keep an operator's group assignment beside the agent's state (``None`` clears it;
        decisions and resets never change it) and audit it at ``now``, atomically; the seq of
        its record (``None`` without a log). The state the decider reads then has it as its
        sixth item."""

    def state(self, agent_id: str) -> AgentState:
        """The agent's stored state (no decay applied: :meth:`Engine.state` applies it)."""

    def raw_state(self, agent_id: str) -> RawState:
        """The agent's stored state as the decider reads it (:data:`RawState`: with its decay
        anchor, when it has one); :data:`FRESH` for an unknown agent."""

    def agents(self) -> list[str]: ...

    def ticket(self, ticket_id: str) -> review.Ticket | None:
        """The review ticket with this id, as stored (``None``: the store holds none)."""

    def tickets(self, status: str | None = None,
                agent_id: str | None = None) -> list[review.Ticket]:
        """The review tickets with this status of this agent (``None``: any), oldest first."""

    def settle(self, ticket_id: str, step: review.Step,
               now: float) -> tuple[review.Ticket, Decision | None]:
        """Run ``step(ticket, agent state, seq)`` under the agent's lock (or in one
        transaction) and keep what it settles: the ticket, the agent's new state and the audit
        record of the step, all at once; ``(ticket, decision)``. The store also saves the
        pending ticket of every ``review`` decision ``apply`` makes, and ``reset`` cancels the
        pending tickets of the agents it resets. :class:`~sentra_runtime.review.UnknownTicket`
        when there is no such ticket."""

    def record_policy_load(self, policy: Policy, *, now: float | None = None) -> int | None:
        """Audit a policy load at ``now`` (the current time when ``None``); return the record's
        seq (``None`` without a log)."""

    def audit_records(self) -> Iterator[dict[str, Any]]: ...

    def read_records(self, after_seq: int = 0, limit: int = 100, *, agent: str | None = None,
                     label: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        """Up to ``limit`` sealed records with ``seq > after_seq``, oldest first, filtered by
        agent, decision label and kind (``None``: any)."""

    def last_seq(self) -> int:
        """The seq of the newest audit record (0 for an empty log)."""

    def verify_audit(self, *, expected_head: str | None = None) -> VerifyResult: ...

    def export_audit(self, out: IO[str]) -> int: ...

    def close(self) -> None: ...


@runtime_checkable
class SharedStore(Store, Protocol):
    """A store several processes share (SQLite, PostgreSQL): each keeps the compiled tables of
    the policies loaded, so that every process can load the policy another one loaded, and
    counts its agents in one query."""

    def save_policy_table(self, table: dict[str, Any]) -> None: ...

    def policy_table(self, policy_hash: str) -> dict[str, Any] | None: ...

    def count_agents(self) -> tuple[int, int]:
        """How many agents are active and how many shut down (one query)."""


def open_store(target: str | os.PathLike[str], **options: Any) -> Store:
    """The store a ``--db`` names: a ``postgresql://`` (or ``postgres://``) URL opens a
    :class:`~sentra_runtime.stores.postgres.PostgresStore`, anything else is the path of a
    SQLite file. ``options`` go to the store (both take ``synchronous``, ``group_commit`` and
    ``upgrade``)."""
    if is_postgres_url(target):
        return PostgresStore(str(target), **options)
    return SQLiteStore(target, **options)


def is_postgres_url(target: object) -> bool:
    """Whether ``target`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return isinstance(target, str) and target.split("://", 1)[0].lower() in (
        "postgresql", "postgres")


# last: the stores import the names defined above
from sentra_runtime.stores.memory import MemoryStore  # noqa: E402
from sentra_runtime.stores.postgres import PostgresStore  # noqa: E402  (its driver: lazily)
from sentra_runtime.stores.schema import (  # noqa: E402
    SCHEMA_VERSION,
    SchemaError,
    StoreUnavailable,
)
from sentra_runtime.stores.sqlite import SQLiteStore  # noqa: E402

__all__ = ["FRESH", "SCHEMA_VERSION", "AgentState", "Decide", "MemoryStore", "PostgresStore",
           "RawState", "Reset", "SQLiteStore", "SchemaError", "SharedStore", "Store",
           "StoreUnavailable", "is_postgres_url", "open_store"]
