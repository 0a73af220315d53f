"""Agent state and audit stores behind one small interface.

A store serialises the decisions of each agent: :meth:`Store.apply` reads the agent's state,
calls the engine's pure ``decide`` function, writes the new state and appends the audit record,
all as one step (one lock, or one database transaction), and returns the decision only after that
step is durable to the store's guarantee.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO, Any, NamedTuple, Protocol

from sentra_runtime.audit import VerifyResult
from sentra_runtime.decision import ACTIVE, SHUT_DOWN, Decision
from sentra_runtime.policy import Policy

RawState = tuple[int, int, bool]
"""``(cumulative_risk, blocked_attempts, shut_down)``: the state the engine's decide reads."""
FRESH: RawState = (0, 0, False)

Decide = Callable[[RawState, str, str, Any, int, Any], tuple[Decision, RawState]]


class AgentState(NamedTuple):
    cumulative_risk: int
    blocked_attempts: int
    status: str

    @classmethod
    def from_raw(cls, raw: RawState) -> AgentState:
        return cls(raw[0], raw[1], SHUT_DOWN if raw[2] else ACTIVE)


class Store(Protocol):
    def apply(self, decide: Decide, agent_id: str, action: str, fields: Any, code: int,
              payload: Any) -> Decision:
        """Decide for one agent atomically; the decision is returned once it is recorded."""

    def reset(self, agent_id: str | None, operator: str, policy_hash: str | None) -> list[str]:
        """Return one agent (or all, for ``None``) to ``(0, 0, active)``; audited."""

    def state(self, agent_id: str) -> AgentState: ...

    def agents(self) -> list[str]: ...

    def record_policy_load(self, policy: Policy) -> None: ...

    def audit_records(self) -> Iterator[dict[str, Any]]: ...

    def verify_audit(self, *, expected_head: str | None = None) -> VerifyResult: ...

    def export_audit(self, out: IO[str]) -> int: ...

    def close(self) -> None: ...


from sentra_runtime.stores.memory import MemoryStore
from sentra_runtime.stores.sqlite import SQLiteStore

__all__ = ["FRESH", "AgentState", "Decide", "MemoryStore", "RawState", "SQLiteStore", "Store"]
