"""One-line assertion helpers and shared paths for the runtime tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sentra_runtime import Decision, MemoryStore

FIXTURES = Path(__file__).parent / "fixtures"
SENTRA_TABLE = FIXTURES / "sentra_table.json"


class CountingMemoryStore(MemoryStore):
    """A subclass of the in-memory store, as tools built on the runtime write them: the engine
    drives it through the same path (its ``apply``) as any store."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.applied = 0

    def apply(self, *args: Any, **kwargs: Any) -> Decision:
        self.applied += 1
        return super().apply(*args, **kwargs)


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
