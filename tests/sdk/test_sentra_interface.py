"""The Sentra reference interface over a policy of one's own: the embedded client and the server
give the policy the same input (sentra_runtime.sentra_api.policy_input, one definition), so a
policy that refuses undeclared fields works through both, its own top-level fields reach it, and
a misspelt one is refused rather than read past."""

from __future__ import annotations

from typing import Any

import pytest
from sentra_runtime.client import EmbeddedSentra, Sentra, SentraResult

CASES: list[tuple[str, dict[str, Any], str]] = [
    # (action, fields, the rule that decides: known from tests/sdk/refund.sentra)
    ("LOOKUP_ORDER", {}, "ALLOW_LOOKUP"),
    ("LOOKUP_ORDER", {"context": {}}, "ALLOW_LOOKUP"),
    ("ISSUE_REFUND", {"refund_amount": 20, "order_id": "o-1"}, "ALLOW_REFUND"),
    ("ISSUE_REFUND", {"refund_amount": 700, "order_id": "o-1"}, "BLOCK_LARGE_REFUND"),
    ("ISSUE_REFUND", {"order_id": "o-1"}, "BLOCK_INCOMPLETE_REFUND"),
    ("ISSUE_REFUND", {"refund_amount": 20, "order_id": "o-1", "target": "t"}, "ALLOW_REFUND"),
]


def rule(result: SentraResult) -> str:
    return str(result.raw.get("rule_id") or result.raw.get("policy_triggered"))


@pytest.mark.parametrize(("action", "fields", "expected"), CASES)
def test_embedded_and_remote_decide_a_policy_of_ones_own_alike(
        refund_table: dict[str, Any], refund_server: Any, agent: str, action: str,
        fields: dict[str, Any], expected: str) -> None:
    embedded = EmbeddedSentra(refund_table).evaluate(agent, action, **fields)
    remote = Sentra(refund_server.url).evaluate(agent, action, **fields)
    assert (rule(embedded), rule(remote)) == (expected, expected), (embedded, remote)
    assert embedded.decision == remote.decision


def test_a_misspelt_field_is_refused_not_read_past(refund_table: dict[str, Any],
                                                   refund_server: Any, agent: str) -> None:
    embedded = EmbeddedSentra(refund_table).evaluate(agent, "ISSUE_REFUND", order_id="o-1",
                                                     refund_amout=700)
    assert (embedded.allowed, rule(embedded)) == (False, "UNDECLARED_FIELD")
    assert "did you mean `refund_amount`?" in embedded.reason
    remote = Sentra(refund_server.url).evaluate(agent, "ISSUE_REFUND", order_id="o-1",
                                                refund_amout=700)
    assert not remote.allowed and "refund_amout" in remote.reason, remote
