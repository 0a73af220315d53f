"""One-line assertion helpers and shared paths for the runtime tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sentra_runtime import Decision, MemoryStore

FIXTURES = Path(__file__).parent / "fixtures"
SENTRA_TABLE = FIXTURES / "sentra_table.json"


class ApplyingMemoryStore(MemoryStore):
    """A MemoryStore the engine drives through ``Store.apply``, as it drives any store: only an
    exact MemoryStore gets the inline fast path (``sentra_runtime.fastpath``)."""


def sentra_table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SENTRA_TABLE.read_text(encoding="utf-8"))
    return data


def assert_decision(decision: Decision, label: str, rule_id: str, *, cumulative: int | None = None,
                    blocked: int | None = None) -> None:
    """One line per expectation: label, rule id, and optionally the agent's state after it."""
    got = (decision.label, decision.rule_id, decision.cumulative_risk, decision.blocked_attempts)
    want = (label, rule_id, decision.cumulative_risk if cumulative is None else cumulative,
            decision.blocked_attempts if blocked is None else blocked)
    assert got == want, f"{decision.reason}"
