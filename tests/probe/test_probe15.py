"""Probe 15: rate limits, review tickets and operator-assigned groups together and at their
edges, checked against docs/runtime.md, docs/language.md and docs/server.md. Each known defect
is an ``xfail(strict=True)`` test that fails today and passes once the defect is fixed."""

from __future__ import annotations

from typing import Any

import pytest
from sentra_runtime import Engine, MemoryStore

from tests.runtime.helpers import Clock, compiled_table

LIMITED = """policy p version "1" {
  risk_threshold 100
}

input {
  amount: int
}

action PAY {
  allow risk 1 as PAY_OK limit 5 per 1h "ok"
}

otherwise block as UNKNOWN "no"
"""


def limited_engine() -> Engine:
    return Engine(compiled_table(LIMITED), MemoryStore(), clock=Clock())


@pytest.mark.xfail(strict=True, reason="decider.transition: `over` unbound for a refused "
                   "decision (code < 0) of an agent whose limit windows are not empty: "
                   "UnboundLocalError instead of INVALID_INPUT/UNDECLARED_FIELD")
@pytest.mark.parametrize("fields, rule_id", [
    ({}, "INVALID_INPUT"),
    ({"amount": "x"}, "INVALID_INPUT"),
    ({"amount": 1, "amout": 1}, "UNDECLARED_FIELD"),
])
def test_refused_input_after_a_counted_decision_is_blocked_not_a_crash(
        fields: dict[str, Any], rule_id: str) -> None:
    engine = limited_engine()
    assert engine.evaluate("a", "PAY", {"amount": 1}).allowed
    decision = engine.evaluate("a", "PAY", fields)     # docs/runtime.md, "Evaluate": a block
    assert (decision.label, decision.rule_id, decision.blocked_attempts) == \
        ("Blocked", rule_id, 1)
