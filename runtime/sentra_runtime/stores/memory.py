"""The in-memory store: thread-safe, the default for embedding, gone when the process ends.

One lock serialises state updates (the rules themselves run outside it). The audit log is one
list whose position is the seq: a decision is appended as ``(time, decision, annotation)`` and
turned into its hash-chained record only when someone reads the log, so the hot path stays a
dict update and a list append.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, NamedTuple

from sentra_runtime import audit
from sentra_runtime.decision import Decision
from sentra_runtime.policy import Policy
from sentra_runtime.stores import FRESH, AgentState, Decide, RawState, Reset

_clock = time.time
Entry = "tuple[float, Decision, dict[str, Any] | None] | dict[str, Any]"
"""An item of the log: a decision not yet sealed, ``(time, decision, annotation)``, or a
record (sealed, or a reset or policy load waiting to be)."""


class InlineStep(NamedTuple):
    """What the engine's in-process fast path (:mod:`sentra_runtime.fastpath`) needs to do
    :meth:`MemoryStore.apply`'s work itself: under ``lock``, read and write ``states``; give the
    decision seq ``len(log) + 1`` and append ``(time, decision, None)`` to ``log`` (``None``
    when the store keeps no log); or hand the decision to ``step``, which is ``apply`` without
    taking the lock or reading the state."""

    lock: threading.Lock
    states: dict[str, RawState]
    log: list[Any] | None
    step: Callable[..., Decision]


class MemoryStore:
    """Agent states in a dict, audit log in a list (``audit=False`` keeps no log)."""

    def __init__(self, *, audit: bool = True) -> None:
        self._lock = threading.Lock()
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        self._states: dict[str, RawState] = {}
        self._keep_audit = audit
        self._log: list[Any] = []
        """Seq ``n`` is ``_log[n - 1]``; items before ``_sealed`` are sealed records, the rest
        are entries (see :data:`Entry`), sealed in order on first read."""
        self._sealed = 0

    def apply(self, decide: Decide, agent_id: str, action: str, fields: Any, code: int,
              payload: Any, *, annotations: audit.Annotations | None = None) -> Decision:
        self._acquire()
        try:
            return self._step(decide, self._states.get(agent_id, FRESH), agent_id, action,
                              fields, code, payload, annotations)
        finally:
            self._release()

    def _step(self, decide: Decide, state: RawState, agent_id: str, action: str, fields: Any,
              code: int, payload: Any, annotations: audit.Annotations | None = None) -> Decision:
        """:meth:`apply`'s work, for a caller that holds the lock and has read ``state``."""
        if self._keep_audit:
            decision, new_state = decide(state, agent_id, action, fields, code, payload,
                                         len(self._log) + 1)
            extra = None if annotations is None else audit.annotation(annotations, decision)
            self._log.append((_clock(), decision, extra))
        else:
            decision, new_state = decide(state, agent_id, action, fields, code, payload)
        if new_state is not state or state is FRESH:
            self._states[agent_id] = new_state
        return decision

    def inline_step(self) -> InlineStep:
        """This store's parts for the engine's fast path (see :class:`InlineStep`)."""
        return InlineStep(self._lock, self._states, self._log if self._keep_audit else None,
                          self._step)

    def reset(self, agent_id: str | None, operator: str, policy_hash: str | None) -> Reset:
        with self._lock:
            if agent_id is None:
                agents = sorted(self._states)
                # in place: the engine's fast path holds this dict (inline_step)
                self._states.update(dict.fromkeys(agents, FRESH))
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
        self._log.append(record)
        return len(self._log)

    def _seal(self) -> None:
        """Chain the pending entries (under the lock), in seq order, replacing each with its
        record."""
        log = self._log
        prev = log[self._sealed - 1]["hash"] if self._sealed else None
        for index in range(self._sealed, len(log)):
            record = log[index]
            if record.__class__ is tuple:
                seconds, decision, extra = record
                record = audit.decision_record(seconds, decision)
                if extra is not None:
                    record.update(extra)
            prev = audit.seal(record, index + 1, prev)["hash"]
            log[index] = record
        self._sealed = len(log)

    def audit_records(self) -> Iterator[dict[str, Any]]:
        """The sealed records, chained on first read (incrementally, under the lock)."""
        with self._lock:
            self._seal()
            records = self._log[:]
        return iter(records)

    def read_records(self, after_seq: int = 0, limit: int = 100, *, agent: str | None = None,
                     label: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            self._seal()
            selected: list[dict[str, Any]] = []
            for record in itertools.islice(self._log, max(after_seq, 0), None):
                if len(selected) >= limit:
                    break
                if audit.matches(record, agent, label, kind):
                    selected.append(record)
        return selected

    def last_seq(self) -> int:
        with self._lock:
            return len(self._log)

    def verify_audit(self, *, expected_head: str | None = None) -> audit.VerifyResult:
        return audit.verify_records(self.audit_records(), expected_head=expected_head)

    def export_audit(self, out: IO[str]) -> int:
        return audit.write_jsonl(self.audit_records(), out)

    def close(self) -> None:
        """Nothing to release."""
