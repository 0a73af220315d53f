"""Known answers for rate limits and the review outcome, written from the documented semantics
(docs/runtime.md "Rate limits" and "Review") before reading the implementation: each case is
a sequence of timed calls with the decision the docs say it gets, run through the real engine
over every store."""

from __future__ import annotations

from typing import Any

import pytest
from sentra_runtime import Engine

from tests.runtime.helpers import T0, Clock, compiled_table

MINUTE = 60.0
HOUR = 3600.0

LIMITED = """
policy limited version "1" {
  risk_threshold 100
  strikes 3
}

input {
  amount: int = 0
}

action ISSUE_REFUND {
  when amount > 500 block as REFUND_TOO_LARGE "Too large."
  when amount > 400 allow risk 90 as BIG_REFUND "Big refund." limit 3 per 1h
  allow risk 1 as SMALL_REFUND "Refund." limit 3 per 1h
}

action LOOKUP_ORDER {
  limit 2 per 10m
  allow as LOOKUP "Lookup."
}

otherwise block as UNKNOWN "Not covered."
"""

GROUPED = """
policy grouped version "1" {
  risk_threshold 100
  strikes 3
}

group new {
  agents "new-*"
  limit 2 per 1h
  limit ISSUE_REFUND 1 per 1h
}

input {
  amount: int = 0
}

action ISSUE_REFUND, LOOKUP_ORDER {
  allow as OK "Fine."
}

otherwise block as UNKNOWN "Not covered."
"""

REVIEWED = """
policy reviewed version "1" {
  risk_threshold 100
  strikes 3
  review_timeout 1h
}

input {
  amount: int = 0
}

action ISSUE_REFUND {
  when amount > 1000
    review risk 60 as REVIEW_LARGE threat "Financial Overreach" "Refund of {amount} needs a human." expires 2h
  when amount > 100
    review risk 30 as REVIEW_MEDIUM "Refund of {amount} needs a human."
  allow risk 5 as SMALL "Small refund."
}

otherwise block as UNKNOWN "Not covered."
"""


@pytest.fixture
def clock() -> Clock:
    return Clock()


def engine_for(source: str, store: Any, clock: Clock) -> Engine:
    return Engine(compiled_table(source), store, clock=clock)


def at(clock: Clock, minutes: float) -> None:
    clock.now = T0 + minutes * MINUTE


def outcome(decision: Any) -> tuple[str, str, int, int]:
    return (decision.label, decision.rule_id, decision.cumulative_risk,
            decision.blocked_attempts)


# -- rate limits ---------------------------------------------------------------------------------

def test_rule_limit_window_is_sliding_and_half_open(store: Any, clock: Clock) -> None:
    engine = engine_for(LIMITED, store, clock)
    for minute, want in [(0, ("Allowed", "SMALL_REFUND", 1, 0)),
                         (10, ("Allowed", "SMALL_REFUND", 2, 0)),
                         (20, ("Allowed", "SMALL_REFUND", 3, 0)),
                         (30, ("Blocked", "RATE_LIMIT_EXCEEDED", 3, 1)),
                         # (now - 1h, now] at 60m no longer holds the call at 0m
                         (60, ("Allowed", "SMALL_REFUND", 4, 1)),
                         (61, ("Blocked", "RATE_LIMIT_EXCEEDED", 4, 2))]:
        at(clock, minute)
        assert outcome(engine.evaluate("a", "ISSUE_REFUND", {"amount": 10})) == want, minute


def test_limit_reason_names_the_limit(store: Any, clock: Clock) -> None:
    engine = engine_for(LIMITED, store, clock)
    for _ in range(2):
        engine.evaluate("a", "LOOKUP_ORDER", {})
    blocked = engine.evaluate("a", "LOOKUP_ORDER", {})
    assert blocked.rule_id == "RATE_LIMIT_EXCEEDED"
    assert "2 per 10m" in blocked.reason and not blocked.allowed


def test_each_rule_has_its_own_window(store: Any, clock: Clock) -> None:
    engine = engine_for(LIMITED, store, clock)
    for _ in range(3):
        assert engine.evaluate("a", "ISSUE_REFUND", {"amount": 10}).allowed
    # BIG_REFUND counts separately: it is allowed, then the threshold (1*3 + 90 <= 100) holds
    assert outcome(engine.evaluate("a", "ISSUE_REFUND", {"amount": 450})) == (
        "Allowed", "BIG_REFUND", 93, 0)


def test_blocked_decisions_do_not_count(store: Any, clock: Clock) -> None:
    engine = engine_for(LIMITED, store, clock)
    for _ in range(2):   # two blocks by the rule (strikes 1, 2), not counted by SMALL_REFUND
        assert engine.evaluate("a", "ISSUE_REFUND", {"amount": 900}).rule_id == "REFUND_TOO_LARGE"
    for _ in range(3):
        assert engine.evaluate("a", "ISSUE_REFUND", {"amount": 10}).allowed


def test_limit_is_checked_before_the_threshold(store: Any, clock: Clock) -> None:
    engine = engine_for(LIMITED, store, clock)
    assert engine.evaluate("a", "ISSUE_REFUND", {"amount": 450}).rule_id == "BIG_REFUND"   # 90
    for _ in range(2):   # 90 + 1 + 1 = 92
        assert engine.evaluate("a", "ISSUE_REFUND", {"amount": 450}).rule_id == \
            "RISK_THRESHOLD_EXCEEDED"
    # threshold blocks did not count: BIG_REFUND has one call in its window
    engine.reset("a", operator="op")
    for _ in range(2):
        assert engine.evaluate("a", "ISSUE_REFUND", {"amount": 10}).rule_id == "SMALL_REFUND"


def test_three_limit_hits_shut_the_agent_down(store: Any, clock: Clock) -> None:
    engine = engine_for(LIMITED, store, clock)
    for _ in range(2):
        engine.evaluate("a", "LOOKUP_ORDER", {})
    rules = [engine.evaluate("a", "LOOKUP_ORDER", {}).rule_id for _ in range(4)]
    assert rules == ["RATE_LIMIT_EXCEEDED", "RATE_LIMIT_EXCEEDED",
                     "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS", "AGENT_ALREADY_SHUT_DOWN"]


def test_limits_are_per_agent_and_cleared_by_reset(store: Any, clock: Clock) -> None:
    engine = engine_for(LIMITED, store, clock)
    for _ in range(2):
        engine.evaluate("a", "LOOKUP_ORDER", {})
    assert engine.evaluate("a", "LOOKUP_ORDER", {}).rule_id == "RATE_LIMIT_EXCEEDED"
    assert engine.evaluate("b", "LOOKUP_ORDER", {}).rule_id == "LOOKUP"
    engine.reset("a", operator="op")
    assert engine.evaluate("a", "LOOKUP_ORDER", {}).rule_id == "LOOKUP"


def test_group_limits_apply_to_members_only(store: Any, clock: Clock) -> None:
    engine = engine_for(GROUPED, store, clock)
    assert engine.evaluate("new-1", "ISSUE_REFUND", {}).rule_id == "OK"
    assert engine.evaluate("new-1", "ISSUE_REFUND", {}).rule_id == "RATE_LIMIT_EXCEEDED"
    assert engine.evaluate("new-1", "LOOKUP_ORDER", {}).rule_id == "OK"   # 2 of all actions
    assert engine.evaluate("new-1", "LOOKUP_ORDER", {}).rule_id == "RATE_LIMIT_EXCEEDED"
    for _ in range(5):
        assert engine.evaluate("old-1", "ISSUE_REFUND", {}).rule_id == "OK"


# -- review --------------------------------------------------------------------------------------

def test_review_decision_holds_the_action(store: Any, clock: Clock) -> None:
    engine = engine_for(REVIEWED, store, clock)
    decision = engine.evaluate("a", "ISSUE_REFUND", {"amount": 500})
    assert (decision.label, decision.outcome, decision.allowed) == (
        "Review Required", "review", False)
    assert decision.rule_id == "REVIEW_MEDIUM"
    assert decision.ticket.startswith("rv_") and len(decision.ticket) >= 20
    assert (decision.attempted_risk, decision.applied_risk) == (30, 0)
    assert (decision.cumulative_risk, decision.blocked_attempts) == (0, 0)
    assert engine.ticket(decision.ticket).status == "pending"


def test_approval_applies_the_risk_then(store: Any, clock: Clock) -> None:
    engine = engine_for(REVIEWED, store, clock)
    ticket = engine.evaluate("a", "ISSUE_REFUND", {"amount": 500}).ticket
    engine.evaluate("a", "ISSUE_REFUND", {"amount": 50})   # 5
    verdict = engine.review(ticket, True, operator="alice")
    assert outcome(verdict) == ("Allowed", "REVIEW_MEDIUM", 35, 0)
    assert verdict.applied_risk == 30
    assert engine.ticket(ticket).status == "approved"


def test_approval_over_the_threshold_is_a_block_and_a_strike(store: Any, clock: Clock) -> None:
    engine = engine_for(REVIEWED, store, clock)
    first = engine.evaluate("a", "ISSUE_REFUND", {"amount": 5000}).ticket
    second = engine.evaluate("a", "ISSUE_REFUND", {"amount": 5000}).ticket
    assert outcome(engine.review(first, True, operator="alice")) == (
        "Allowed", "REVIEW_LARGE", 60, 0)
    assert outcome(engine.review(second, True, operator="alice")) == (
        "Blocked", "RISK_THRESHOLD_EXCEEDED", 60, 1)


def test_denial_is_a_block_and_a_strike(store: Any, clock: Clock) -> None:
    engine = engine_for(REVIEWED, store, clock)
    tickets = [engine.evaluate("a", "ISSUE_REFUND", {"amount": 500}).ticket for _ in range(3)]
    got = [outcome(engine.review(t, False, operator="bob", note="no")) for t in tickets]
    assert got == [("Blocked", "REVIEW_MEDIUM", 0, 1), ("Blocked", "REVIEW_MEDIUM", 0, 2),
                   ("Agent Shut Down", "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS", 0, 3)]
    assert engine.ticket(tickets[0]).status == "denied"


def test_tickets_expire_by_the_rule_or_the_policy_timeout(store: Any, clock: Clock) -> None:
    engine = engine_for(REVIEWED, store, clock)
    large = engine.evaluate("a", "ISSUE_REFUND", {"amount": 5000}).ticket    # expires 2h
    medium = engine.evaluate("a", "ISSUE_REFUND", {"amount": 500}).ticket    # review_timeout 1h
    at(clock, 61)
    assert engine.ticket(medium).status == "expired"
    assert engine.ticket(large).status == "pending"
    at(clock, 121)
    assert engine.ticket(large).status == "expired"
    assert engine.state("a").blocked_attempts == 0      # expiry is no strike


def test_reset_cancels_pending_tickets(store: Any, clock: Clock) -> None:
    engine = engine_for(REVIEWED, store, clock)
    ticket = engine.evaluate("a", "ISSUE_REFUND", {"amount": 500}).ticket
    engine.reset("a", operator="op")
    assert engine.ticket(ticket).status == "cancelled"


def test_approval_for_a_shut_down_agent_is_no_strike(store: Any, clock: Clock) -> None:
    engine = engine_for(REVIEWED, store, clock)
    ticket = engine.evaluate("a", "ISSUE_REFUND", {"amount": 500}).ticket
    denied = [engine.evaluate("a", "ISSUE_REFUND", {"amount": 500}).ticket for _ in range(3)]
    for t in denied:
        engine.review(t, False, operator="bob")
    assert engine.state("a").status == "shut_down"
    verdict = engine.review(ticket, True, operator="alice")
    assert outcome(verdict) == ("Agent Shut Down", "AGENT_ALREADY_SHUT_DOWN", 0, 3)


def test_every_review_step_is_in_the_chain(store: Any, clock: Clock) -> None:
    engine = engine_for(REVIEWED, store, clock)
    ticket = engine.evaluate("a", "ISSUE_REFUND", {"amount": 500}).ticket
    engine.review(ticket, True, operator="alice")
    text = repr(list(engine.audit_records()))
    assert ticket in text and "alice" in text
    assert engine.verify_audit().ok


REVIEWED_AND_LIMITED = """
policy both version "1" {
  risk_threshold 100
}

input {
  amount: int = 0
}

action ISSUE_REFUND {
  limit 2 per 1h
  when amount > 100 review risk 10 as HOLD "Held."
  allow risk 1 as SMALL "Small."
}

otherwise block as UNKNOWN "Not covered."
"""


def test_an_approved_review_counts_in_the_limits_and_a_hold_keeps_them(store: Any,
                                                                        clock: Clock) -> None:
    """Limits count allowed decisions and approved reviews; a review decision itself counts
    nothing and leaves the windows as they were."""
    engine = engine_for(REVIEWED_AND_LIMITED, store, clock)
    assert engine.evaluate("a", "ISSUE_REFUND", {"amount": 5}).rule_id == "SMALL"
    ticket = engine.evaluate("a", "ISSUE_REFUND", {"amount": 500}).ticket
    assert outcome(engine.review(ticket, True, operator="alice")) == ("Allowed", "HOLD", 11, 0)
    assert engine.evaluate("a", "ISSUE_REFUND", {"amount": 5}).rule_id == "RATE_LIMIT_EXCEEDED"
    late = engine.evaluate("a", "ISSUE_REFUND", {"amount": 500}).ticket
    assert engine.review(late, True, operator="alice").rule_id == "RATE_LIMIT_EXCEEDED"
