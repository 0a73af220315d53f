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


T0 = 1_700_000_000.0   # 2023-11-14T22:13:20Z
"""The time the clock of the time-dependent runtime tests starts at."""


class Clock:
    """A clock a test moves by hand (``clock.now += 3600``): an engine's injectable clock."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def compiled_table(source: str) -> dict[str, Any]:
    """The decision table of a policy source that compiles (as the runtime loads it)."""
    from tests.helpers import compile_ok

    compiled = compile_ok(source).table
    assert compiled is not None
    return compiled.model_dump(mode="json")

