"""The review outcome (docs/runtime.md, "Review: decisions held for an operator"): known answers
written from the documented lifecycle, in every store; a law over random sequences of
decisions, verdicts, waits and resets against an oracle written from the same text; tickets
durable across a restart; every step in the verified audit chain."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sentra_runtime import Engine, MemoryStore, SQLiteStore, Store
from sentra_runtime.review import TicketClosed, TicketError, UnknownTicket

from tests.runtime.helpers import T0, Clock, compiled_table

HOUR = 3600.0

SOURCE = """policy refunds version "1" {
  risk_threshold 100
  strikes 3
  review_timeout 1h
}

input {
  amount: number
}

action ISSUE_REFUND {
  when amount > 500 review risk 60 as REVIEW_LARGE threat "Financial Overreach" "Refund of {amount} needs a human." expires 2h
  when amount > 100 review risk 30 as REVIEW_MID "Refund of {amount} needs a human."
  allow risk 10 as SMALL_REFUND "Small refund."
}

action READ {
  allow as READ_OK "Read."
}

otherwise block as UNKNOWN "Not covered."
"""


@pytest.fixture(scope="module")
def table() -> dict[str, Any]:
    return compiled_table(SOURCE)


def engine_on(table: dict[str, Any], store: Store | None = None,
              clock: Clock | None = None) -> tuple[Engine, Clock]:
    clock = clock or Clock()
    return Engine(table, store, clock=clock), clock


def state(engine: Engine, agent: str) -> tuple[int, int, str]:
    return tuple(engine.state(agent))  # type: ignore[return-value]


# -- the table ---------------------------------------------------------------------------------

def test_a_policy_with_review_has_table_version_4_its_timeout_and_expiries(
        table: dict[str, Any]) -> None:
    assert table["schema_version"] == 4
    assert table["settings"]["review_timeout"] == 3600
    rules = {rule["id"]: rule for rule in table["rules"]}
    assert rules["REVIEW_LARGE"]["outcome"] == "review"
    assert rules["REVIEW_LARGE"]["expires"] == 7200
    assert "expires" not in rules["REVIEW_MID"]
    assert "expires" not in rules["SMALL_REFUND"]


def test_a_plain_policy_keeps_version_2_and_an_older_runtime_refuses_version_4(
        table: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    plain = compiled_table('policy p version "1" {}\naction A {\n  allow as OK "ok"\n}\n'
                           'otherwise block as NO "no"\n')
    assert plain["schema_version"] == 2
    from sentra_runtime import policy
    monkeypatch.setattr(policy, "SCHEMA_VERSION", 3)
    with pytest.raises(policy.PolicyLoadError, match="schema_version 4 is newer than this "
                                                     "runtime supports"):
        policy.load_policy(table)


# -- the review decision -----------------------------------------------------------------------

def test_a_review_decision_holds_the_action_with_a_ticket_and_changes_no_state(
        table: dict[str, Any], store: Store) -> None:
    engine, clock = engine_on(table, store)
    engine.evaluate("a", "ISSUE_REFUND", {"amount": 50})          # risk 10 applied
    decision = engine.evaluate("a", "ISSUE_REFUND", {"amount": 700})
    assert (decision.outcome, decision.label, decision.allowed) == ("review", "Review Required",
                                                                   False)
    assert (decision.rule_id, decision.threat, decision.reason) == (
        "REVIEW_LARGE", "Financial Overreach", "Refund of 700 needs a human.")
    assert (decision.attempted_risk, decision.applied_risk, decision.projected_risk,
            decision.cumulative_risk, decision.blocked_attempts, decision.status) == (
        60, 0, 70, 10, 0, "active")
    assert decision.ticket is not None and decision.ticket.startswith("rv_")
    assert len(decision.ticket) == 25
    assert decision.expires_at == T0 + 2 * HOUR
    assert decision.to_dict()["ticket"] == decision.ticket
    assert state(engine, "a") == (10, 0, "active")
    [ticket] = engine.tickets()
    assert (ticket.ticket, ticket.status, ticket.agent_id, ticket.rule_id, ticket.risk,
            ticket.input, ticket.seq) == (decision.ticket, "pending", "a", "REVIEW_LARGE", 60,
                                          {"amount": 700}, decision.seq)
    assert "held for review" in str(decision.explanation)


def test_tickets_are_unguessable_and_distinct(table: dict[str, Any]) -> None:
    engine, _ = engine_on(table)
    ids = {engine.evaluate(f"a{i}", "ISSUE_REFUND", {"amount": 200}).ticket for i in range(200)}
    assert len(ids) == 200


def test_the_threshold_is_not_checked_at_request_time(table: dict[str, Any]) -> None:
    engine, _ = engine_on(table)
    for _ in range(5):   # 50 of 100
        engine.evaluate("a", "ISSUE_REFUND", {"amount": 60})
    decision = engine.evaluate("a", "ISSUE_REFUND", {"amount": 900})   # 50 + 60 > 100
    assert decision.label == "Review Required" and decision.projected_risk == 110


def test_the_default_timeout_is_24h_without_review_timeout() -> None:
    table = compiled_table(SOURCE.replace("  review_timeout 1h\n", ""))
    engine, _ = engine_on(table)
    assert engine.evaluate("a", "ISSUE_REFUND", {"amount": 200}).expires_at == T0 + 24 * HOUR


# -- verdicts ----------------------------------------------------------------------------------

def test_approval_applies_the_risk_at_approval_time(table: dict[str, Any], store: Store) -> None:
    engine, clock = engine_on(table, store)
    held = engine.evaluate("a", "ISSUE_REFUND", {"amount": 700})
    clock.now += 60
    engine.evaluate("a", "ISSUE_REFUND", {"amount": 50})      # 10 while it waits
    decision = engine.review(held.ticket, True, operator="alice", note="verified")
    assert (decision.label, decision.rule_id, decision.allowed, decision.applied_risk,
            decision.cumulative_risk, decision.ticket) == (
        "Allowed", "REVIEW_LARGE", True, 60, 70, held.ticket)
    assert decision.reason == "Approved by `alice` after review: verified"
    assert state(engine, "a") == (70, 0, "active")
    ticket = engine.ticket(held.ticket)
    assert (ticket.status, ticket.operator, ticket.note, ticket.settled) == (
        "approved", "alice", "verified", round((T0 + 60) * 1e6))
    assert ticket.decision is not None and ticket.decision["label"] == "Allowed"


def test_approval_over_the_threshold_is_blocked_with_a_strike(table: dict[str, Any],
                                                              store: Store) -> None:
    engine, _ = engine_on(table, store)
    held = engine.evaluate("a", "ISSUE_REFUND", {"amount": 700})     # 60
    for _ in range(5):
        engine.evaluate("a", "ISSUE_REFUND", {"amount": 60})         # 50 by now
    decision = engine.review(held.ticket, True, operator="alice")
    assert (decision.label, decision.rule_id, decision.projected_risk,
            decision.cumulative_risk, decision.blocked_attempts) == (
        "Blocked", "RISK_THRESHOLD_EXCEEDED", 110, 50, 1)
    assert engine.ticket(held.ticket).status == "blocked"
    assert state(engine, "a") == (50, 1, "active")


def test_approval_for_a_shut_down_agent_is_blocked_without_a_strike(
        table: dict[str, Any], store: Store) -> None:
    engine, _ = engine_on(table, store)
    held = engine.evaluate("a", "ISSUE_REFUND", {"amount": 700})
    for _ in range(3):
        engine.evaluate("a", "DELETE_EVERYTHING")
    assert state(engine, "a") == (0, 3, "shut_down")
    decision = engine.review(held.ticket, True, operator="alice")
    assert (decision.label, decision.rule_id, decision.blocked_attempts) == (
        "Agent Shut Down", "AGENT_ALREADY_SHUT_DOWN", 3)
    assert engine.ticket(held.ticket).status == "blocked"


def test_denial_is_a_block_with_the_rule_id_and_a_strike_that_can_shut_down(
        table: dict[str, Any], store: Store) -> None:
    engine, _ = engine_on(table, store)
    tickets = [engine.evaluate("a", "ISSUE_REFUND", {"amount": 200}).ticket for _ in range(3)]
    first = engine.review(tickets[0], False, operator="bob", note="duplicate")
    assert (first.label, first.rule_id, first.blocked_attempts, first.reason) == (
        "Blocked", "REVIEW_MID", 1, "Denied by `bob` after review: duplicate")
    engine.review(tickets[1], False, operator="bob")
    third = engine.review(tickets[2], False, operator="bob")
    assert (third.label, third.rule_id, third.status) == (
        "Agent Shut Down", "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS", "shut_down")
    assert [engine.ticket(t).status for t in tickets] == ["denied"] * 3


def test_a_verdict_is_given_once(table: dict[str, Any], store: Store) -> None:
    engine, _ = engine_on(table, store)
    held = engine.evaluate("a", "ISSUE_REFUND", {"amount": 200})
    engine.review(held.ticket, True, operator="alice")
    with pytest.raises(TicketClosed) as closed:
        engine.review(held.ticket, False, operator="bob")
    assert closed.value.ticket.status == "approved"
    with pytest.raises(UnknownTicket):
        engine.review("rv_nosuchticketxxxxxxxxxx", True, operator="alice")
    assert state(engine, "a") == (30, 0, "active")


def test_two_operators_at_once_get_one_verdict(table: dict[str, Any], store: Store) -> None:
    engine, _ = engine_on(table, store)
    held = engine.evaluate("a", "ISSUE_REFUND", {"amount": 200})
    outcomes: list[str] = []

    def judge(approve: bool) -> None:
        try:
            outcomes.append(engine.review(held.ticket, approve, operator="x").label)
        except TicketClosed:
            outcomes.append("closed")

    threads = [threading.Thread(target=judge, args=(i % 2 == 0,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes).count("closed") == 5
    assert engine.verify_audit().ok


def test_bad_review_arguments_are_refused(table: dict[str, Any]) -> None:
    engine, _ = engine_on(table)
    held = engine.evaluate("a", "ISSUE_REFUND", {"amount": 200})
    with pytest.raises(ValueError, match="operator"):
        engine.review(held.ticket, True, operator="")
    with pytest.raises(TypeError):
        engine.review(held.ticket, 1, operator="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        engine.review(held.ticket, True, operator="x", note=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="status"):
        engine.tickets(status="open")
    assert engine.ticket(held.ticket).status == "pending"


def test_a_verdict_under_a_policy_without_the_rule_is_refused(table: dict[str, Any]) -> None:
    store = MemoryStore()
    engine, clock = engine_on(table, store)
    held = engine.evaluate("a", "ISSUE_REFUND", {"amount": 200})
    other = Engine(compiled_table(SOURCE.replace("REVIEW_MID", "REVIEW_MEDIUM")), store,
                   clock=clock)
    with pytest.raises(TicketError, match="no review rule `REVIEW_MID`"):
        other.review(held.ticket, True, operator="alice")
    assert other.ticket(held.ticket).status == "pending"


# -- expiry and cancellation -------------------------------------------------------------------

def test_expiry_is_at_the_expiry_time_exactly_and_recorded_once(table: dict[str, Any],
                                                                 store: Store) -> None:
    engine, clock = engine_on(table, store)
    held = engine.evaluate("a", "ISSUE_REFUND", {"amount": 200})    # expires after 1h
    clock.now += HOUR - 0.000001
    assert engine.ticket(held.ticket).status == "pending"
    clock.now = T0 + HOUR
    assert engine.ticket(held.ticket).status == "expired"
    assert engine.tickets(status="expired")[0].ticket == held.ticket
    with pytest.raises(TicketClosed) as closed:
        engine.review(held.ticket, True, operator="alice")
    assert closed.value.ticket.status == "expired"
    expiries = [r for r in engine.audit_records() if r.get("verdict") == "expired"]
    assert len(expiries) == 1 and expiries[0]["operator"] is None
    assert state(engine, "a") == (0, 0, "active")


def test_a_review_after_the_expiry_time_expires_the_ticket(table: dict[str, Any],
                                                           store: Store) -> None:
    engine, clock = engine_on(table, store)
    held = engine.evaluate("a", "ISSUE_REFUND", {"amount": 900})    # expires after 2h
    clock.now += 2 * HOUR
    with pytest.raises(TicketClosed):
        engine.review(held.ticket, True, operator="alice")
    assert engine.ticket(held.ticket).status == "expired"
    assert state(engine, "a") == (0, 0, "active")


def test_the_agent_deciding_again_expires_its_due_tickets(table: dict[str, Any],
                                                          store: Store) -> None:
    engine, clock = engine_on(table, store)
    held = engine.evaluate("a", "ISSUE_REFUND", {"amount": 200})
    other = engine.evaluate("b", "ISSUE_REFUND", {"amount": 200})
    clock.now += HOUR
    engine.evaluate("a", "READ")
    by_id = {t.ticket: t.status for t in engine.store.tickets()}  # type: ignore[attr-defined]
    assert by_id == {held.ticket: "expired", other.ticket: "pending"}   # as stored


def test_a_reset_cancels_the_agents_pending_tickets(table: dict[str, Any],
                                                    store: Store) -> None:
    engine, _ = engine_on(table, store)
    held = engine.evaluate("a", "ISSUE_REFUND", {"amount": 200})
    done = engine.evaluate("a", "ISSUE_REFUND", {"amount": 200})
    engine.review(done.ticket, True, operator="alice")
    other = engine.evaluate("b", "ISSUE_REFUND", {"amount": 200})
    engine.reset("a", operator="carol")
    assert engine.ticket(held.ticket).status == "cancelled"
    assert engine.ticket(held.ticket).operator == "carol"
    assert engine.ticket(done.ticket).status == "approved"
    assert engine.ticket(other.ticket).status == "pending"
    engine.reset(operator="carol")
    assert engine.ticket(other.ticket).status == "cancelled"
    kinds = [(r["kind"], r.get("verdict")) for r in engine.audit_records()][-4:]
    assert kinds == [("reset", None), ("review", "cancelled"), ("reset", None),
                     ("review", "cancelled")]


# -- the audit chain ---------------------------------------------------------------------------

def test_every_step_is_in_the_verified_chain(table: dict[str, Any], store: Store) -> None:
    engine, clock = engine_on(table, store)
    approved = engine.evaluate("a", "ISSUE_REFUND", {"amount": 700})
    denied = engine.evaluate("a", "ISSUE_REFUND", {"amount": 200})
    expiring = engine.evaluate("b", "ISSUE_REFUND", {"amount": 200})
    engine.review(approved.ticket, True, operator="alice", note="ok")
    engine.review(denied.ticket, False, operator="bob")
    clock.now += HOUR
    engine.tickets()
    records = list(engine.audit_records())
    held = [r for r in records if r["kind"] == "decision"
            and r["decision"]["label"] == "Review Required"]
    assert [r["decision"]["ticket"] for r in held] == [approved.ticket, denied.ticket,
                                                       expiring.ticket]
    steps = [(r["ticket"], r["verdict"], r["operator"], r["note"],
              r["decision"] and r["decision"]["label"])
             for r in records if r["kind"] == "review"]
    assert steps == [(approved.ticket, "approved", "alice", "ok", "Allowed"),
                     (denied.ticket, "denied", "bob", None, "Blocked"),
                     (expiring.ticket, "expired", None, None, None)]
    result = engine.verify_audit()
    assert result.ok, result


def test_verification_finds_a_state_a_verdict_did_not_leave(table: dict[str, Any],
                                                           tmp_path: Path) -> None:
    import sqlite3
    path = tmp_path / "s.db"
    engine, _ = engine_on(table, SQLiteStore(path))
    held = engine.evaluate("a", "ISSUE_REFUND", {"amount": 700})
    engine.review(held.ticket, True, operator="alice")
    engine.close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE agents SET cumulative_risk = 0")
    result = SQLiteStore(path).verify_audit()
    assert not result.ok and "state" in result.problem


def test_pending_tickets_survive_a_restart(table: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    engine, clock = engine_on(table, SQLiteStore(path))
    held = engine.evaluate("a", "ISSUE_REFUND", {"amount": 700})
    engine.close()
    again, _ = engine_on(table, SQLiteStore(path), clock)
    [ticket] = again.tickets(status="pending")
    assert (ticket.ticket, ticket.input, ticket.expires) == (held.ticket, {"amount": 700},
                                                             round((T0 + 2 * HOUR) * 1e6))
    decision = again.review(held.ticket, True, operator="alice")
    assert decision.cumulative_risk == 60
    assert again.verify_audit().ok


# -- the law -----------------------------------------------------------------------------------

class Oracle:
    """The lifecycle as docs/runtime.md states it, for one policy (threshold 100, 3 strikes,
    REVIEW_LARGE risk 60 for 2h, REVIEW_MID risk 30 for 1h, SMALL_REFUND risk 10)."""

    def __init__(self) -> None:
        self.now = T0
        self.agents: dict[str, list[Any]] = {}
        self.tickets: dict[str, dict[str, Any]] = {}

    def agent(self, name: str) -> list[Any]:
        return self.agents.setdefault(name, [0, 0, False])

    def strike(self, agent: list[Any]) -> None:
        agent[1] += 1
        agent[2] = agent[2] or agent[1] >= 3

    def expire(self, agent: str | None = None) -> None:
        for ticket in self.tickets.values():
            if (ticket["status"] == "pending" and self.now >= ticket["expires"]
                    and agent in (None, ticket["agent"])):
                ticket["status"] = "expired"

    def decide(self, agent_name: str, amount: int) -> tuple[str, str | None]:
        self.expire(agent_name)
        agent = self.agent(agent_name)
        if agent[2]:
            return "Agent Shut Down", None
        if amount > 100:
            risk, hours = (60, 2) if amount > 500 else (30, 1)
            return "Review Required", f"{risk}:{self.now + hours * HOUR}"
        if agent[0] + 10 <= 100:
            agent[0] += 10
            return "Allowed", None
        self.strike(agent)
        return ("Agent Shut Down" if agent[2] else "Blocked"), None

    def hold(self, ticket: str, agent: str, spec: str) -> None:
        risk, expires = spec.split(":")
        self.tickets[ticket] = {"agent": agent, "risk": int(risk), "expires": float(expires),
                                "status": "pending"}

    def review(self, ticket_id: str, approve: bool) -> str:
        ticket = self.tickets[ticket_id]
        if ticket["status"] == "pending" and self.now >= ticket["expires"]:
            ticket["status"] = "expired"
        if ticket["status"] != "pending":
            return "closed"
        agent = self.agent(ticket["agent"])
        if not approve:
            ticket["status"] = "denied"
            self.strike(agent)
            return "Agent Shut Down" if agent[2] else "Blocked"
        if agent[2]:
            ticket["status"] = "blocked"
            return "Agent Shut Down"
        if agent[0] + ticket["risk"] <= 100:
            agent[0] += ticket["risk"]
            ticket["status"] = "approved"
            return "Allowed"
        ticket["status"] = "blocked"
        self.strike(agent)
        return "Agent Shut Down" if agent[2] else "Blocked"

    def reset(self, agent: str) -> None:
        self.agents[agent] = [0, 0, False]
        for ticket in self.tickets.values():
            if ticket["status"] == "pending" and ticket["agent"] == agent:
                ticket["status"] = "cancelled"


STEPS = st.lists(st.one_of(
    st.tuples(st.just("decide"), st.sampled_from("ab"), st.sampled_from([50, 200, 900])),
    st.tuples(st.just("review"), st.integers(0, 20), st.booleans()),
    st.tuples(st.just("wait"), st.sampled_from([60.0, 1800.0, 3600.0])),
    st.tuples(st.just("reset"), st.sampled_from("ab")),
), max_size=40)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
def test_the_lifecycle_follows_the_documented_rules(table: dict[str, Any],
                                                    steps: list[tuple[Any, ...]]) -> None:
    follow_the_oracle(Engine(table, MemoryStore(), clock=Clock()), steps)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
def test_the_lifecycle_follows_the_documented_rules_on_sqlite(
        table: dict[str, Any], steps: list[tuple[Any, ...]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        engine = Engine(table, SQLiteStore(Path(folder) / "law.db"), clock=Clock())
        try:
            follow_the_oracle(engine, steps)
        finally:
            engine.close()


def follow_the_oracle(engine: Engine, steps: list[tuple[Any, ...]]) -> None:
    """Run ``steps`` on ``engine`` and on the oracle; every decision, verdict, state and ticket
    status agrees, and the chain verifies."""
    clock = engine.clock
    assert isinstance(clock, Clock)
    oracle = Oracle()
    made: list[str] = []
    for step in steps:
        if step[0] == "decide":
            _, agent, amount = step
            expected, spec = oracle.decide(agent, amount)
            decision = engine.evaluate(agent, "ISSUE_REFUND", {"amount": amount})
            assert decision.label == expected
            if spec is not None:
                assert decision.ticket is not None
                oracle.hold(decision.ticket, agent, spec)
                made.append(decision.ticket)
        elif step[0] == "review" and made:
            ticket = made[step[1] % len(made)]
            expected = oracle.review(ticket, step[2])
            try:
                label = engine.review(ticket, step[2], operator="op").label
            except TicketClosed:
                label = "closed"
            assert label == expected
        elif step[0] == "wait":
            clock.now += step[1]
            oracle.now = clock.now
        elif step[0] == "reset":
            oracle.reset(step[1])
            engine.reset(step[1], operator="op")
        for name, (risk, blocked, down) in oracle.agents.items():
            assert state(engine, name) == (risk, blocked, "shut_down" if down else "active")
    oracle.expire()
    assert {t.ticket: t.status for t in engine.tickets()} == {
        ticket: spec["status"] for ticket, spec in oracle.tickets.items()}
    assert engine.verify_audit().ok


def test_async_decisions_keep_their_tickets_in_every_store(table: dict[str, Any],
                                                           store: Store) -> None:
    import asyncio

    engine, _ = engine_on(table, store)

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(engine.evaluate_async(f"a{i}", "ISSUE_REFUND",
                                                                 {"amount": 200 + i})
                                           for i in range(8))))

    decisions = asyncio.run(main())
    tickets = {t.ticket: t for t in engine.tickets(status="pending")}
    assert set(tickets) == {d.ticket for d in decisions}
    for decision in decisions:
        assert tickets[decision.ticket].seq == decision.seq
        assert tickets[decision.ticket].input == {"amount": 200 + int(decision.agent_id[1:])}
    assert engine.verify_audit().ok


@pytest.mark.parametrize(("edit", "problem"), [
    ("UPDATE tickets SET status = 'denied' WHERE status = 'pending'", "edited ticket"),
    ("DELETE FROM tickets WHERE status = 'approved'", "deleted ticket"),
    ("INSERT INTO tickets VALUES ('rv_forged', 'a', 'pending', 0, 0, '{}')", "inserted ticket"),
])
def test_verification_finds_an_edited_ticket(table: dict[str, Any], tmp_path: Path,
                                             edit: str, problem: str) -> None:
    import sqlite3

    path = tmp_path / "s.db"
    engine, _ = engine_on(table, SQLiteStore(path))
    approved = engine.evaluate("a", "ISSUE_REFUND", {"amount": 700})
    engine.review(approved.ticket, True, operator="alice")  # type: ignore[arg-type]
    engine.evaluate("b", "ISSUE_REFUND", {"amount": 200})
    assert engine.verify_audit().ok
    engine.close()
    with sqlite3.connect(path) as connection:
        connection.execute(edit)
    result = SQLiteStore(path).verify_audit()
    assert not result.ok and problem in result.problem, result


def test_verification_checks_tickets_in_memory_and_postgres(table: dict[str, Any],
                                                            store: Store) -> None:
    engine, _ = engine_on(table, store)
    held = engine.evaluate("a", "ISSUE_REFUND", {"amount": 700})
    engine.evaluate("b", "ISSUE_REFUND", {"amount": 200})
    engine.review(held.ticket, False, operator="bob")  # type: ignore[arg-type]
    assert engine.verify_audit().ok
    if isinstance(store, MemoryStore):
        from dataclasses import replace
        store._tickets[held.ticket] = replace(  # type: ignore[index]
            store._tickets[held.ticket], status="approved")  # type: ignore[index]
        result = engine.verify_audit()
        assert not result.ok and "edited ticket" in result.problem


@pytest.mark.parametrize("audit", [True, False])
def test_the_memory_store_forgets_settled_tickets_and_keeps_pending_ones(
        table: dict[str, Any], audit: bool) -> None:
    """A long-running in-memory store stays bounded: a settled ticket is kept while its log
    holds the record of its last step (without a log: the last `audit_limit` settled tickets);
    a pending ticket is kept until it is settled, however old."""
    engine, _ = engine_on(table, MemoryStore(audit=audit, audit_limit=4))
    waiting = engine.evaluate("a", "ISSUE_REFUND", {"amount": 200}).ticket
    settled = []
    for number in range(6):
        ticket = engine.evaluate(f"b{number}", "ISSUE_REFUND", {"amount": 200}).ticket
        engine.review(ticket, approve=True, operator="alice")
        settled.append(ticket)
    for _ in range(4):
        engine.evaluate("c", "READ")
    kept = {ticket.ticket for ticket in engine.tickets()}
    assert waiting in kept and engine.ticket(waiting).status == "pending"
    if audit:   # the last verdicts' records have left the 4-record log too
        assert not kept & set(settled)
        assert engine.verify_audit().ok
    else:
        assert kept & set(settled) == set(settled[-4:])
    with pytest.raises(UnknownTicket):
        engine.ticket(settled[0])
    engine.review(waiting, approve=False, operator="bob")
    assert engine.state("a").blocked_attempts == 1
