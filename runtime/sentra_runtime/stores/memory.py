"""The in-memory store: thread-safe, the default for embedding, gone when the process ends.

One lock serialises state updates (the rules themselves run outside it). Audit entries are kept
as ``(time, decision, annotation)`` and turned into hash-chained records only when someone reads
the log, so the hot path stays a dict update and a list append.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

from sentra_runtime import audit
from sentra_runtime.decision import Decision
from sentra_runtime.policy import Policy
from sentra_runtime.stores import FRESH, AgentState, Decide, RawState, Reset

_clock = time.time


class MemoryStore:
    """Agent states in a dict, audit log in a list (``audit=False`` keeps no log)."""

    def __init__(self, *, audit: bool = True) -> None:
        self._lock = threading.Lock()
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        self._states: dict[str, RawState] = {}
        self._keep_audit = audit
        self._next_seq = 1
        self._entries: list[tuple[float, Any, dict[str, Any] | None]] = []
        """Unsealed entries in seq order: ``(time, decision, annotation)`` or ``(0, record,
        None)``; sealed on first read."""
        self._sealed: list[dict[str, Any]] = []

    def apply(self, decide: Decide, agent_id: str, action: str, fields: Any, code: int,
              payload: Any, *, annotations: audit.Annotations | None = None) -> Decision:
        self._acquire()
        try:
            state = self._states.get(agent_id, FRESH)
            if self._keep_audit:
                seq = self._next_seq
                decision, new_state = decide(state, agent_id, action, fields, code, payload, seq)
                extra = None if annotations is None else audit.annotation(annotations, decision)
                self._entries.append((_clock(), decision, extra))
                self._next_seq = seq + 1
            else:
                decision, new_state = decide(state, agent_id, action, fields, code, payload)
            if new_state is not state:
                self._states[agent_id] = new_state
        finally:
            self._release()
        return decision

    def reset(self, agent_id: str | None, operator: str, policy_hash: str | None) -> Reset:
        with self._lock:
            if agent_id is None:
                agents = sorted(self._states)
                self._states = dict.fromkeys(agents, FRESH)
            else:
                agents = [agent_id]
                self._states[agent_id] = FRESH
            seq = self._append(audit.reset_record(time.time(), policy_hash, agent_id, operator,
                                                  agents))
        return Reset(agents, seq)

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

    def record_policy_load(self, policy: Policy) -> int | None:
        with self._lock:
            return self._append(audit.policy_load_record(
                time.time(), policy.hash, policy.name, policy.version, policy.schema_version))

    def _append(self, record: dict[str, Any]) -> int | None:
        if not self._keep_audit:
            return None
        seq = self._next_seq
        self._entries.append((0.0, record, None))
        self._next_seq = seq + 1
        return seq

    def _seal(self) -> None:
        """Chain the pending entries (under the lock), in seq order."""
        prev = self._sealed[-1]["hash"] if self._sealed else None
        for seconds, entry, extra in self._entries:
            record = entry
            if isinstance(entry, Decision):
                record = audit.decision_record(seconds, entry)
                if extra is not None:
                    record.update(extra)
            prev = audit.seal(record, len(self._sealed) + 1, prev)["hash"]
            self._sealed.append(record)
        self._entries.clear()

    def audit_records(self) -> Iterator[dict[str, Any]]:
        """The sealed records, chained on first read (incrementally, under the lock)."""
        with self._lock:
            self._seal()
            records = list(self._sealed)
        return iter(records)

    def read_records(self, after_seq: int = 0, limit: int = 100, *, agent: str | None = None,
                     label: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            self._seal()
            selected: list[dict[str, Any]] = []
            for record in itertools.islice(self._sealed, max(after_seq, 0), None):
                if len(selected) >= limit:
                    break
                if audit.matches(record, agent, label, kind):
                    selected.append(record)
        return selected

    def last_seq(self) -> int:
        with self._lock:
            return self._next_seq - 1 if self._keep_audit else 0

    def verify_audit(self, *, expected_head: str | None = None) -> audit.VerifyResult:
        return audit.verify_records(self.audit_records(), expected_head=expected_head)

    def export_audit(self, out: IO[str]) -> int:
        return audit.write_jsonl(self.audit_records(), out)

    def close(self) -> None:
        """Nothing to release."""
