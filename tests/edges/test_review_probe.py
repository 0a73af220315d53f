"""An adversarial probe of human review (issue 15, item 1), written from the docs alone.

Every case is a claim of docs/language.md ("Review"), docs/runtime.md ("Review: decisions held
for an operator"), docs/server.md ("Review", the `/v1/reviews` rows, "GET /v1/impact"),
docs/integrations.md ("Calls held for review"), docs/testing.md and docs/cli.md, checked through
the real parts: the engine on a real SQLite file, a real server on a loopback port, the SDK, the
CLI. The expected answers are computed by hand from those pages, never read from the code.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import (
    Decision,
    Engine,
    MemoryStore,
    SQLiteStore,
    TicketClosed,
    TicketError,
    UnknownTicket,
)

from tests.edges.probe_helpers import cli, replay_round_trip
from tests.runtime.helpers import T0, Clock, compiled_table

# docs/language.md, "Review" (with the strikes and an action that takes risk without review)
REFUNDS = """policy refunds version "1" {
  risk_threshold 100
  review_timeout 1h
}

input {
  amount: number
}

action ISSUE_REFUND {
  when amount > 500
    review risk 30 as REVIEW_LARGE_REFUND threat "Financial Overreach"
      "Refund of {amount} needs a human."
      expires 2h
  when amount > 100 review risk 10 as REVIEW_REFUND "Refund of {amount} needs a human."
  allow risk 5 as SMALL_REFUND "Small refund."
}

action TAKE_RISK {
  allow risk 40 as RISKY "Risky."
}

action BAD {
  block as BAD_RULE "Never."
}

otherwise block as OTHER "{action} is not part of the refund agent's job."
"""

NO_TIMEOUT = REFUNDS.replace("  review_timeout 1h\n", "")
TICKET_ID = re.compile(r"rv_[A-Za-z0-9_-]{22}")


def sqlite_engine(path: Path, clock: Clock, source: str = REFUNDS) -> Engine:
    return Engine(compiled_table(source), SQLiteStore(path), clock=clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(tmp_path: Path, clock: Clock) -> Engine:
    return sqlite_engine(tmp_path / "review.db", clock)


def held(engine: Engine, agent: str = "a", amount: float = 700) -> Decision:
    decision = engine.evaluate(agent, "ISSUE_REFUND", {"amount": amount})
    assert decision.outcome == "review", decision
    return decision


def closed_status(engine: Engine, ticket: str, approve: bool) -> str:
    """The status a `TicketClosed` names for a verdict on a ticket no longer pending."""
    with pytest.raises(TicketClosed) as refused:
        engine.review(ticket, approve, operator="late")
    return str(refused.value.ticket.status)


def summary(decision: Decision) -> tuple[Any, ...]:
    return (decision.label, decision.rule_id, decision.applied_risk, decision.cumulative_risk,
            decision.blocked_attempts, decision.status)



def review_records(engine: Engine) -> list[dict[str, Any]]:
    return [r for r in engine.audit_records() if r["kind"] == "review"]


# --- the review decision ------------------------------------------------------------------

def test_a_held_action_changes_nothing_and_carries_a_128_bit_ticket(engine: Engine) -> None:
    engine.evaluate("a", "ISSUE_REFUND", {"amount": 50})           # cumulative 5
    decision = held(engine)
    assert (decision.label, decision.allowed, decision.rule_id, decision.threat) == \
        ("Review Required", False, "REVIEW_LARGE_REFUND", "Financial Overreach")
    assert (decision.attempted_risk, decision.applied_risk, decision.projected_risk) == (30, 0, 35)
    assert (decision.cumulative_risk, decision.blocked_attempts, decision.status) == \
        (5, 0, "active")
    assert TICKET_ID.fullmatch(decision.ticket or ""), decision.ticket


@pytest.mark.parametrize("source, amount, seconds", [
    (REFUNDS, 700, 7200),          # the rule's `expires 2h`
    (REFUNDS, 200, 3600),          # the policy's `review_timeout 1h`
    (NO_TIMEOUT, 200, 86400),      # else 24 hours
])
def test_a_ticket_expires_after_the_rules_then_the_policys_then_24_hours(
        tmp_path: Path, clock: Clock, source: str, amount: float, seconds: int) -> None:
    decision = held(sqlite_engine(tmp_path / "t.db", clock, source), amount=amount)
    assert decision.expires_at == T0 + seconds


def test_a_held_action_is_neither_over_the_threshold_nor_a_strike(engine: Engine) -> None:
    for _ in range(2):
        engine.evaluate("a", "TAKE_RISK", {"amount": 0})                       # cumulative 80
    assert held(engine).label == "Review Required"                   # 80 + 30 > 100: not checked
    assert engine.state("a").cumulative_risk == 80


# --- verdicts -----------------------------------------------------------------------------

def test_approval_is_the_rules_allow_with_its_risk_applied_now(engine: Engine) -> None:
    ticket = held(engine).ticket
    assert ticket is not None
    decision = engine.review(ticket, True, operator="alice", note="customer verified")
    assert summary(decision) == ("Allowed", "REVIEW_LARGE_REFUND", 30, 30, 0, "active")
    assert (decision.ticket, decision.reason) == \
        (ticket, "Approved by `alice` after review: customer verified")
    assert engine.ticket(ticket).status == "approved"


def test_denial_is_a_block_and_a_strike_under_the_review_rule(engine: Engine) -> None:
    ticket = held(engine).ticket
    assert ticket is not None
    decision = engine.review(ticket, False, operator="bob")
    assert summary(decision) == ("Blocked", "REVIEW_LARGE_REFUND", 0, 0, 1, "active")
    assert (decision.reason, engine.ticket(ticket).status) == \
        ("Denied by `bob` after review.", "denied")


def test_the_third_denial_shuts_the_agent_down(engine: Engine) -> None:
    decisions = [engine.review(held(engine).ticket or "", False, operator="bob", note="no")
                 for _ in range(3)]
    assert [d.status for d in decisions] == ["active", "active", "shut_down"]
    assert (decisions[-1].label, decisions[-1].rule_id) == \
        ("Agent Shut Down", "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS")
    assert decisions[-1].reason.startswith("Agent shut down after 3 blocked attempts")
    assert review_records(engine)[-1]["operator"] == "bob"           # the operator is recorded


def test_a_blocked_approval_gives_the_blocks_reason_and_carries_the_ticket(
        engine: Engine) -> None:
    ticket = held(engine).ticket or ""
    engine.evaluate("a", "TAKE_RISK", {"amount": 0})
    engine.evaluate("a", "TAKE_RISK", {"amount": 0})
    decision = engine.review(ticket, True, operator="alice", note="ok")
    assert (decision.ticket, decision.reason) == \
        (ticket, "Projected risk would reach 110/100. Action blocked before execution.")
    assert (review_records(engine)[-1]["operator"], review_records(engine)[-1]["note"]) == \
        ("alice", "ok")


def test_approval_over_the_threshold_is_blocked_and_a_strike(engine: Engine) -> None:
    ticket = held(engine).ticket or ""
    for _ in range(2):
        engine.evaluate("a", "TAKE_RISK", {"amount": 0})                       # cumulative 80 meanwhile
    decision = engine.review(ticket, True, operator="alice")
    assert summary(decision)[:5] == ("Blocked", "RISK_THRESHOLD_EXCEEDED", 0, 80, 1)
    assert engine.ticket(ticket).status == "blocked"


def test_approval_at_exactly_the_threshold_is_allowed(engine: Engine) -> None:
    ticket = held(engine).ticket or ""
    engine.evaluate("a", "TAKE_RISK", {"amount": 0})
    engine.evaluate("a", "ISSUE_REFUND", {"amount": 50})
    engine.evaluate("a", "ISSUE_REFUND", {"amount": 50})
    engine.evaluate("a", "ISSUE_REFUND", {"amount": 50})
    engine.evaluate("a", "ISSUE_REFUND", {"amount": 50})            # 40 + 4 * 5 = 60; +30 = 90
    engine.evaluate("a", "ISSUE_REFUND", {"amount": 50})
    engine.evaluate("a", "ISSUE_REFUND", {"amount": 50})            # 70; + 30 = 100, not above
    assert summary(engine.review(ticket, True, operator="alice"))[:4] == \
        ("Allowed", "REVIEW_LARGE_REFUND", 30, 100)


def test_approval_for_an_agent_shut_down_meanwhile_is_no_strike(engine: Engine) -> None:
    ticket = held(engine).ticket or ""
    for _ in range(3):
        engine.evaluate("a", "BAD", {"amount": 0})                             # shut down
    decision = engine.review(ticket, True, operator="alice")
    assert (decision.label, decision.rule_id, decision.blocked_attempts) == \
        ("Agent Shut Down", "AGENT_ALREADY_SHUT_DOWN", 3)
    assert engine.ticket(ticket).status == "blocked"


@pytest.mark.parametrize("first, second", [(True, True), (False, True), (True, False),
                                           (False, False)])
def test_a_verdict_is_given_once(engine: Engine, first: bool, second: bool) -> None:
    ticket = held(engine).ticket or ""
    engine.review(ticket, first, operator="alice")
    state = engine.state("a")
    assert closed_status(engine, ticket, second) == ("approved" if first else "denied")
    assert engine.state("a") == state                               # the refused one changed nothing


def test_an_unknown_or_garbage_ticket_is_an_unknown_ticket(engine: Engine) -> None:
    held(engine)
    for ticket in ["rv_" + "A" * 22, "", "rv_", "x" * 10_000, "rv_\x00" + "a" * 21, "' OR 1=1 --"]:
        with pytest.raises(UnknownTicket):
            engine.review(ticket, True, operator="alice")
    assert issubclass(UnknownTicket, LookupError) and issubclass(UnknownTicket, TicketError)


def test_a_ticket_settles_its_own_agent_only(engine: Engine) -> None:
    ticket = held(engine, "b").ticket or ""
    held(engine, "a")
    engine.review(ticket, True, operator="alice")
    assert (engine.state("a").cumulative_risk, engine.state("b").cumulative_risk) == (0, 30)


def test_a_new_call_while_pending_is_a_new_ticket_and_approval_judges_the_held_input(
        engine: Engine) -> None:
    first = held(engine, amount=700).ticket or ""
    second = held(engine, amount=200).ticket or ""
    assert first != second and [t.status for t in engine.tickets(agent="a")] == \
        ["pending", "pending"]
    assert engine.ticket(first).input == {"amount": 700}
    decision = engine.review(first, True, operator="alice")
    assert (decision.rule_id, decision.applied_risk) == ("REVIEW_LARGE_REFUND", 30)
    assert engine.ticket(second).status == "pending"


# --- expiry and cancellation --------------------------------------------------------------

def test_expiry_is_exact_and_lazy_and_no_strike(engine: Engine, clock: Clock) -> None:
    ticket = held(engine).ticket or ""
    clock.now = T0 + 7200 - 0.001
    assert engine.ticket(ticket).status == "pending"
    clock.now = T0 + 7200
    assert closed_status(engine, ticket, True) == "expired"
    assert (engine.state("a").blocked_attempts, engine.ticket(ticket).status) == (0, "expired")


def test_an_expiry_is_recorded_once_with_no_operator(engine: Engine, clock: Clock) -> None:
    ticket = held(engine).ticket or ""
    clock.now = T0 + 7200
    engine.tickets()
    engine.ticket(ticket)
    engine.evaluate("a", "ISSUE_REFUND", {"amount": 50})
    [record] = review_records(engine)
    assert (record["verdict"], record["operator"], record["decision"]) == ("expired", None, None)


def test_the_agent_deciding_again_expires_its_ticket_first(engine: Engine, clock: Clock) -> None:
    ticket = held(engine).ticket or ""
    clock.now = T0 + 7200
    engine.evaluate("a", "ISSUE_REFUND", {"amount": 50})
    kinds = [(r["kind"], r.get("verdict")) for r in engine.audit_records()][-2:]
    assert kinds == [("review", "expired"), ("decision", None)]
    assert engine.ticket(ticket).status == "expired"


def test_a_reset_cancels_the_pending_tickets_and_records_the_operator(engine: Engine) -> None:
    ticket = held(engine).ticket or ""
    engine.reset("a", operator="carol")
    assert closed_status(engine, ticket, True) == "cancelled"
    [record] = review_records(engine)
    assert (record["verdict"], record["operator"], record["decision"]) == \
        ("cancelled", "carol", None)


def test_a_global_reset_cancels_every_agents_tickets(engine: Engine) -> None:
    tickets = [held(engine, agent).ticket or "" for agent in ("a", "b")]
    engine.reset(operator="carol")
    assert [engine.ticket(t).status for t in tickets] == ["cancelled", "cancelled"]


# --- the audit chain ----------------------------------------------------------------------

def test_every_step_is_in_the_chain_with_its_operator_and_verify_passes(
        engine: Engine, clock: Clock) -> None:
    approved = held(engine).ticket or ""
    denied = held(engine, amount=200).ticket or ""
    expired = held(engine, "b").ticket or ""
    engine.review(approved, True, operator="alice", note="ok")
    engine.review(denied, False, operator="bob")
    clock.now = T0 + 7200
    engine.tickets()
    steps = [(r["ticket"], r["verdict"], r["operator"], r["note"]) for r in review_records(engine)]
    assert steps == [(approved, "approved", "alice", "ok"), (denied, "denied", "bob", None),
                     (expired, "expired", None, None)]
    decision_records = [r for r in engine.audit_records() if r["kind"] == "decision"]
    assert [r["decision"].get("ticket") for r in decision_records] == [approved, denied, expired]
    assert engine.verify_audit().ok


@pytest.mark.parametrize("tamper, finding", [
    ("UPDATE tickets SET status = 'approved' WHERE status = 'pending'", "edited ticket"),
    ("DELETE FROM tickets WHERE status = 'pending'", "deleted ticket"),
])
def test_verify_finds_a_ticket_edited_in_the_store(tmp_path: Path, clock: Clock, tamper: str,
                                                  finding: str) -> None:
    path = tmp_path / "t.db"
    held(sqlite_engine(path, clock))
    with sqlite3.connect(path) as connection:
        connection.execute(tamper)
    result = sqlite_engine(path, clock).verify_audit()
    assert not result.ok and finding in str(result), result


BODY_EDITS = [
    ("pending", "rule_id", "REVIEW_REFUND"),    # approval would apply 10, not 30
    ("pending", "risk", 0),
    ("pending", "agent_id", "someone-else"),    # approval would charge another agent
    ("pending", "action", "TAKE_RISK"),
    ("pending", "expires", 10**17),             # never expires
    ("pending", "input", {"amount": 1}),        # the operator judges another refund
    ("settled", "operator", "mallory"),         # the queue shows who did not approve
    ("settled", "note", "forged"),
    ("settled", "decision", None),
]


def tampered_lifecycle(engine: Engine) -> tuple[str, str]:
    """A pending ticket, and a settled one (approved by alice with a note)."""
    pending = held(engine).ticket or ""
    settled = held(engine, "b").ticket or ""
    engine.review(settled, True, operator="alice", note="ok")
    return pending, settled


def edited_verify(engine: Engine) -> str:
    result = engine.verify_audit()
    assert not result.ok, "verify passed a ticket edited in the store"
    return str(result.problem)


@pytest.mark.parametrize("which, key, value", BODY_EDITS)
def test_verify_finds_a_ticket_body_edited_in_the_memory_store(
        clock: Clock, which: str, key: str, value: Any) -> None:
    import dataclasses

    engine = Engine(compiled_table(REFUNDS), MemoryStore(), clock=clock)
    tickets = dict(zip(("pending", "settled"), tampered_lifecycle(engine), strict=True))
    store: Any = engine.store
    stored = store._tickets[tickets[which]]           # what an edit of the process's memory does
    store._tickets[tickets[which]] = dataclasses.replace(stored, **{key: value})
    assert "edited ticket" in edited_verify(engine)


@pytest.mark.parametrize("which, key, value", BODY_EDITS)
def test_verify_finds_a_ticket_body_edited_in_the_sqlite_store(
        tmp_path: Path, clock: Clock, which: str, key: str, value: Any) -> None:
    import json

    path = tmp_path / "t.db"
    tickets = dict(zip(("pending", "settled"), tampered_lifecycle(sqlite_engine(path, clock)),
                       strict=True))
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE tickets SET body = json_set(body, ?, json(?)) WHERE ticket = ?",
                           (f"$.{key}", json.dumps(value), tickets[which]))
    assert "edited ticket" in edited_verify(sqlite_engine(path, clock))


def test_verify_passes_after_a_whole_lifecycle_on_the_cli(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "t.db"
    engine = sqlite_engine(path, clock)
    engine.review(held(engine).ticket or "", True, operator="alice")
    engine.review(held(engine).ticket or "", False, operator="bob")
    held(engine, "b")
    engine.reset("b", operator="carol")
    result = cli("audit", "verify", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# --- durability and races on a real SQLite file -------------------------------------------

def test_a_pending_ticket_survives_reopening_the_store(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "t.db"
    ticket = held(sqlite_engine(path, clock)).ticket or ""
    reopened = sqlite_engine(path, clock)
    assert reopened.ticket(ticket).status == "pending"
    assert reopened.review(ticket, True, operator="alice").label == "Allowed"


def test_two_operators_at_once_on_one_file_get_one_verdict(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "t.db"
    engines = [sqlite_engine(path, clock) for _ in range(4)]
    ticket = held(engines[0]).ticket or ""
    barrier, outcomes = threading.Barrier(4), []

    def judge(index: int) -> None:
        barrier.wait()
        try:
            outcomes.append(engines[index].review(ticket, index % 2 == 0,
                                                  operator=f"op{index}").label)
        except TicketClosed:
            outcomes.append("closed")

    threads = [threading.Thread(target=judge, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes).count("closed") == 3, outcomes
    assert len(review_records(engines[0])) == 1 and engines[0].verify_audit().ok


def test_the_memory_store_gives_the_same_lifecycle(clock: Clock) -> None:
    engine = Engine(compiled_table(REFUNDS), MemoryStore(), clock=clock)
    ticket = held(engine).ticket or ""
    assert summary(engine.review(ticket, True, operator="alice"))[:4] == \
        ("Allowed", "REVIEW_LARGE_REFUND", 30, 30)
    assert closed_status(engine, ticket, True) == "approved"


# --- approval against the agent's state then: decay, limits, groups -----------------------

DECAYING = REFUNDS.replace("  review_timeout 1h\n", "  review_timeout 24h\n  risk_decay 10 per 1h\n")
LIMITED = REFUNDS.replace("action ISSUE_REFUND {\n", "action ISSUE_REFUND {\n  limit 2 per 1h\n")
GROUPED = REFUNDS.replace("input {", 'group new {\n  agents "new-*"\n  risk_threshold 50\n}\n\n'
                          "input {")


def test_approval_reads_the_risk_decayed_until_then(tmp_path: Path, clock: Clock) -> None:
    engine = sqlite_engine(tmp_path / "t.db", clock, DECAYING)
    engine.evaluate("a", "TAKE_RISK", {"amount": 0})
    engine.evaluate("a", "TAKE_RISK", {"amount": 0})                 # 80
    ticket = held(engine).ticket or ""                                # 80 + 30: held, not checked
    clock.now = T0 + 3600                                             # decays to 70
    decision = engine.review(ticket, True, operator="alice")
    assert (decision.label, decision.decayed, decision.cumulative_risk) == ("Allowed", 10, 100)


def test_approval_over_a_block_limit_is_a_strike_and_the_hold_counted_none(
        tmp_path: Path, clock: Clock) -> None:
    engine = sqlite_engine(tmp_path / "t.db", clock, LIMITED)
    tickets = [held(engine).ticket or "" for _ in range(3)]           # holds count in no limit
    engine.evaluate("a", "ISSUE_REFUND", {"amount": 50})              # 1 of 2
    assert engine.review(tickets[0], True, operator="alice").label == "Allowed"   # 2 of 2
    decision = engine.review(tickets[1], True, operator="alice")
    assert (decision.label, decision.rule_id, decision.blocked_attempts) == \
        ("Blocked", "RATE_LIMIT_EXCEEDED", 1)
    assert engine.ticket(tickets[1]).status == "blocked"
    clock.now = T0 + 3600                                             # the window slid past
    assert engine.review(tickets[2], True, operator="alice").label == "Allowed"


def test_approval_uses_the_agents_group_threshold(tmp_path: Path, clock: Clock) -> None:
    engine = sqlite_engine(tmp_path / "t.db", clock, GROUPED)
    engine.evaluate("new-1", "ISSUE_REFUND", {"amount": 50})          # 5; + 30 = 35 <= 50
    engine.evaluate("new-1", "ISSUE_REFUND", {"amount": 50})
    engine.evaluate("new-1", "ISSUE_REFUND", {"amount": 50})
    engine.evaluate("new-1", "ISSUE_REFUND", {"amount": 50})          # 20; + 30 = 50
    ticket = held(engine, "new-1").ticket or ""
    engine.evaluate("new-1", "ISSUE_REFUND", {"amount": 50})          # 25; + 30 = 55 > 50
    decision = engine.review(ticket, True, operator="alice")
    assert (decision.rule_id, decision.group, decision.blocked_attempts) == \
        ("RISK_THRESHOLD_EXCEEDED", "new", 1)


# --- the bounded in-memory store ----------------------------------------------------------

@pytest.mark.parametrize("audit", [True, False])
def test_the_memory_store_keeps_a_pending_ticket_past_its_bound(clock: Clock,
                                                                 audit: bool) -> None:
    engine = Engine(compiled_table(REFUNDS), MemoryStore(audit=audit, audit_limit=5), clock=clock)
    ticket = held(engine).ticket or ""
    settled = held(engine, "b").ticket or ""
    engine.review(settled, False, operator="bob")
    for index in range(20):
        engine.review(held(engine, f"c{index}").ticket or "", True, operator="alice")
    assert engine.ticket(ticket).status == "pending"
    assert engine.review(ticket, True, operator="alice").label == "Allowed"
    with pytest.raises(UnknownTicket):                                # settled and forgotten
        engine.ticket(settled)
    if audit:
        assert engine.verify_audit().ok
    else:                                                             # no log: nothing to verify
        with pytest.raises(ValueError, match="keeps no audit log"):
            engine.verify_audit()


# --- replay gives the same decisions, and its suite passes --------------------------------

def lifecycle_log(tmp_path: Path) -> Path:
    """A SQLite log of every kind of step: approved, denied (to the shutdown), blocked at the
    threshold, approved for a shut-down agent, expired (read, and by the agent deciding again),
    cancelled by a reset."""
    path, clock = tmp_path / "t.db", Clock()
    engine = sqlite_engine(path, clock)
    engine.review(held(engine).ticket or "", True, operator="alice", note="ok")
    over = held(engine).ticket or ""
    engine.evaluate("a", "TAKE_RISK", {"amount": 0})
    engine.evaluate("a", "TAKE_RISK", {"amount": 0})
    clock.now += 60
    engine.review(over, True, operator="alice")                       # blocked: 70 + 30 > 100
    late = held(engine, "b").ticket or ""
    for _ in range(3):
        engine.review(held(engine, "b", 200).ticket or "", False, operator="bob")
    engine.review(late, True, operator="alice")                       # b is shut down
    held(engine, "c")
    held(engine, "d")
    clock.now += 7200
    engine.tickets()                                                  # c and d expire
    held(engine, "e", 200)
    clock.now += 3600
    engine.evaluate("e", "ISSUE_REFUND", {"amount": 50})              # expires e's first
    held(engine, "f")
    engine.reset("f", operator="carol")
    assert engine.verify_audit().ok
    return path


def test_replay_of_a_whole_lifecycle_changes_nothing_and_its_suite_passes(
        tmp_path: Path) -> None:
    replay_round_trip(tmp_path, REFUNDS, lifecycle_log(tmp_path))


# --- the embedded guard waiting for a verdict ----------------------------------------------

def judge_when_held(engine: Engine, verdict: Any) -> threading.Thread:
    """A thread that waits for agent `g`'s ticket, then calls ``verdict(ticket)``."""
    def judge() -> None:
        while not engine.tickets(status="pending", agent="g"):
            threading.Event().wait(0.02)
        verdict(engine.tickets(status="pending", agent="g")[0].ticket)

    thread = threading.Thread(target=judge)
    thread.start()
    return thread


def refund_guard(engine: Engine, runs: list[float], wait: float) -> Any:
    @engine.guard("g", "ISSUE_REFUND", wait=wait)
    def issue_refund(amount: float) -> str:
        runs.append(amount)
        return "refunded"
    return issue_refund


def test_a_waiting_guard_stops_at_a_cancellation_not_at_its_deadline(engine: Engine) -> None:
    from sentra_runtime import ReviewPending

    runs: list[float] = []
    judge = judge_when_held(engine, lambda _: engine.reset("g", operator="carol"))
    with pytest.raises(ReviewPending) as pending:
        refund_guard(engine, runs, wait=30)(700)
    judge.join()
    assert (pending.value.status, runs) == ("cancelled", [])


def test_a_waiting_guard_raises_the_blocked_approval_and_runs_nothing(engine: Engine) -> None:
    from sentra_runtime import ActionDenied, ReviewPending

    engine.evaluate("g", "TAKE_RISK", {"amount": 0})
    engine.evaluate("g", "TAKE_RISK", {"amount": 0})
    runs: list[float] = []
    judge = judge_when_held(engine, lambda t: engine.review(t, True, operator="alice"))
    with pytest.raises(ActionDenied) as denied:
        refund_guard(engine, runs, wait=30)(700)
    judge.join()
    assert not isinstance(denied.value, ReviewPending) and runs == []
    assert denied.value.decision.rule_id == "RISK_THRESHOLD_EXCEEDED"


def test_a_waiting_guard_runs_an_approved_call_once(engine: Engine) -> None:
    runs: list[float] = []
    guarded = refund_guard(engine, runs, wait=30)
    judge = judge_when_held(engine, lambda t: engine.review(t, True, operator="alice"))
    assert guarded(700) == "refunded"
    judge.join()
    assert runs == [700] and guarded.last_decision.label == "Allowed"


# --- a reset racing a verdict ---------------------------------------------------------------

def race_reset_and_approval(operator: Engine, resetter: Engine, agent: str) -> tuple[str, str]:
    """An approval and a reset of the ticket's agent at once: what the approval got, and the
    ticket's status after both."""
    ticket = held(operator, agent).ticket or ""
    barrier, outcome = threading.Barrier(2), []

    def approve() -> None:
        barrier.wait()
        try:
            outcome.append(operator.review(ticket, True, operator="alice").label)
        except TicketClosed as closed:
            outcome.append(closed.ticket.status)

    def reset() -> None:
        barrier.wait()
        resetter.reset(agent, operator="carol")

    threads = [threading.Thread(target=approve), threading.Thread(target=reset)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome[0], operator.ticket(ticket).status


def test_a_reset_racing_an_approval_leaves_one_consistent_story(tmp_path: Path,
                                                               clock: Clock) -> None:
    path = tmp_path / "t.db"
    operator, resetter = sqlite_engine(path, clock), sqlite_engine(path, clock)
    for round_ in range(10):
        story = race_reset_and_approval(operator, resetter, f"r{round_}")
        assert story in (("Allowed", "approved"), ("cancelled", "cancelled")), story
        assert operator.state(f"r{round_}").cumulative_risk == 0     # the reset wins either way
    assert operator.verify_audit().ok


def test_replay_writes_a_suite_it_can_read_for_any_recorded_operator(tmp_path: Path) -> None:
    path, clock = tmp_path / "t.db", Clock()
    engine = sqlite_engine(path, clock)
    engine.review(held(engine).ticket or "", False, operator="op\x00\x08\x0c", note="a\rb")
    (tmp_path / "refunds.sentra").write_text(REFUNDS, "utf-8")
    suite = tmp_path / "replayed.sentra-test"
    assert cli("replay", str(path), "--policy", str(tmp_path / "refunds.sentra"), "--to-suite",
               str(suite)).returncode == 0
    tested = cli("test", str(suite))
    assert tested.returncode == 0, tested.stdout + tested.stderr
