"""The in-memory store: thread-safe, the default for embedding, gone when the process ends.

One lock serialises state updates (the rules themselves run outside it). Audit entries are kept
as ``(time, decision)`` and turned into hash-chained records only when someone reads the log, so
the hot path stays a dict update and a list append.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import IO, Any

from sentra_runtime import audit
from sentra_runtime.decision import Decision
from sentra_runtime.policy import Policy
from sentra_runtime.stores import FRESH, AgentState, Decide, RawState


class MemoryStore:
    """Agent states in a dict, audit log in a list (``audit=False`` keeps no log)."""

    def __init__(self, *, audit: bool = True) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, RawState] = {}
        self._keep_audit = audit
        self._entries: list[tuple[float, Any]] = []
        self._sealed: list[dict[str, Any]] = []

    def apply(self, decide: Decide, agent_id: str, action: str, fields: Any, code: int,
              payload: Any) -> Decision:
        with self._lock:
            state = self._states.get(agent_id, FRESH)
            decision, new_state = decide(state, agent_id, action, fields, code, payload)
            if new_state is not state:
                self._states[agent_id] = new_state
            if self._keep_audit:
                self._entries.append((time.time(), decision))
        return decision

    def reset(self, agent_id: str | None, operator: str, policy_hash: str | None) -> list[str]:
        with self._lock:
            if agent_id is None:
                agents = sorted(self._states)
                self._states = dict.fromkeys(agents, FRESH)
            else:
                agents = [agent_id]
                self._states[agent_id] = FRESH
            self._append(audit.reset_record(time.time(), policy_hash, agent_id, operator, agents))
        return agents

    def set_state(self, agent_id: str, cumulative_risk: int, blocked_attempts: int,
                  shut_down: bool = False) -> None:
        """Seed an agent's state (for `explain --state` and tests); not an audited event."""
        with self._lock:
            self._states[agent_id] = (cumulative_risk, blocked_attempts, shut_down)

    def state(self, agent_id: str) -> AgentState:
        return AgentState.from_raw(self._states.get(agent_id, FRESH))

    def agents(self) -> list[str]:
        with self._lock:
            return sorted(self._states)

    def record_policy_load(self, policy: Policy) -> None:
        with self._lock:
            self._append(audit.policy_load_record(time.time(), policy.hash, policy.name,
                                                  policy.version, policy.schema_version))

    def _append(self, record: dict[str, Any]) -> None:
        if self._keep_audit:
            self._entries.append((0.0, record))

    def audit_records(self) -> Iterator[dict[str, Any]]:
        """The sealed records, chained on first read (incrementally, under the lock)."""
        with self._lock:
            prev = self._sealed[-1]["hash"] if self._sealed else None
            for seconds, entry in self._entries:
                record = (audit.decision_record(seconds, entry) if isinstance(entry, Decision)
                          else entry)
                prev = audit.seal(record, len(self._sealed) + 1, prev)["hash"]
                self._sealed.append(record)
            self._entries.clear()
            records = list(self._sealed)
        return iter(records)

    def verify_audit(self, *, expected_head: str | None = None) -> audit.VerifyResult:
        return audit.verify_records(self.audit_records(), expected_head=expected_head)

    def export_audit(self, out: IO[str]) -> int:
        return audit.write_jsonl(self.audit_records(), out)

    def close(self) -> None:
        """Nothing to release."""
