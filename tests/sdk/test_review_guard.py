"""A guarded call held for review (docs/runtime.md, "Review"; docs/integrations.md): without
`wait` the guard raises `ReviewPending` carrying the ticket; with `wait` it polls for the
operator's verdict, runs the body once on approval, raises `ActionDenied` on denial and
`ReviewPending` at its deadline or when the ticket expires first. The embedded engine and the
remote one over a real server behave alike (one guard implementation serves both)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import ActionDenied, Engine, ReviewPending
from sentra_runtime.client import PolicyEngine, RemoteEngine
from sentra_runtime.guard import POLL_SECONDS

from tests.server.conftest import TOKEN, Server

POLICY = '''policy refunds version "1" {
  risk_threshold 100
  review_timeout 1h
}
input {
  amount: number
}
action ISSUE_REFUND {
  when amount > 500 review risk 60 as REVIEW_LARGE "Refund of {amount} needs a human."
  allow risk 10 as SMALL "Small refund."
}
otherwise block as OTHER "Not covered."
'''


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["embedded", "remote"])
def gate(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[PolicyEngine, Any]]:
    """The engine the agent's guard uses, and the operator's: ``judge(ticket, approve)`` and
    ``clock`` (the gate's)."""
    source = tmp_path / "refunds.sentra"
    source.write_text(POLICY, encoding="utf-8")
    clock = Clock()
    if request.param == "embedded":
        from sentra_lang.policy_file import load_policy_file
        table = load_policy_file(source).table
        engine = Engine(table, clock=clock)
        yield engine, (engine, clock)
        return
    server = Server(source, tmp_path / "sentra.db", TOKEN)
    server.app.state.gate.clock = clock
    remote = RemoteEngine(server.url, timeout=5)
    try:
        yield remote, (server.app.state.gate.engine, clock)
    finally:
        remote.close()
        server.stop()


def judge_later(engine: Engine, approve: bool, delay: float = 0.3) -> threading.Thread:
    """An operator who approves (or denies) the agent's pending ticket after ``delay``, or as
    soon as there is one after that (on a loaded machine the agent's call may come later)."""
    def run() -> None:
        time.sleep(delay)
        deadline = time.monotonic() + 10
        while not (pending := engine.tickets(status="pending")) and time.monotonic() < deadline:
            time.sleep(0.02)
        [ticket] = pending
        engine.review(ticket.ticket, approve, operator="alice", note="checked")

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_without_wait_a_held_call_raises_review_pending_with_the_ticket(gate: Any) -> None:
    engine, (operator, _) = gate
    ran: list[int] = []

    @engine.guard("a", "ISSUE_REFUND")
    def refund(amount: int) -> int:
        ran.append(amount)
        return amount

    assert refund(50) == 50
    with pytest.raises(ReviewPending) as held:
        refund(700)
    assert held.value.ticket.startswith("rv_") and held.value.status == "pending"
    assert isinstance(held.value, ActionDenied) and held.value.decision.label == "Review Required"
    assert refund.last_decision.ticket == held.value.ticket
    assert ran == [50]
    [ticket] = operator.tickets(status="pending")
    assert ticket.ticket == held.value.ticket


def test_wait_runs_the_body_once_after_approval(gate: Any) -> None:
    engine, (operator, _) = gate
    ran: list[int] = []

    @engine.guard("a", "ISSUE_REFUND", wait=10)
    def refund(amount: int) -> int:
        ran.append(amount)
        return amount

    judge = judge_later(operator, True)
    assert refund(700) == 700
    judge.join()
    assert ran == [700]
    assert (refund.last_decision.label, refund.last_decision.rule_id,
            refund.last_decision.cumulative_risk) == ("Allowed", "REVIEW_LARGE", 60)
    with pytest.raises(ReviewPending):   # a new call is a new decision, held again
        engine.guard("a", "ISSUE_REFUND")(lambda amount: amount)(700)


def test_wait_raises_action_denied_after_a_denial(gate: Any) -> None:
    engine, (operator, _) = gate

    @engine.guard("a", "ISSUE_REFUND", wait=10)
    def refund(amount: int) -> int:
        raise AssertionError("the body ran")

    judge = judge_later(operator, False)
    with pytest.raises(ActionDenied) as denied:
        refund(700)
    judge.join()
    assert not isinstance(denied.value, ReviewPending)
    assert (denied.value.decision.label, denied.value.decision.rule_id,
            denied.value.decision.blocked_attempts) == ("Blocked", "REVIEW_LARGE", 1)


def test_wait_ends_at_its_deadline_with_review_pending(gate: Any) -> None:
    engine, _ = gate

    @engine.guard("a", "ISSUE_REFUND", wait=0.3)
    def refund(amount: int) -> int:
        raise AssertionError("the body ran")

    started = time.monotonic()
    with pytest.raises(ReviewPending) as held:
        refund(700)
    assert 0.3 <= time.monotonic() - started < 0.3 + POLL_SECONDS + 2
    assert held.value.status == "pending"


def test_a_ticket_that_expires_while_waiting_ends_the_wait(gate: Any) -> None:
    engine, (operator, clock) = gate

    @engine.guard("a", "ISSUE_REFUND", wait=10)
    def refund(amount: int) -> int:
        raise AssertionError("the body ran")

    def later() -> None:   # once the ticket exists (on a loaded machine the call may come late)
        time.sleep(0.3)
        deadline = time.monotonic() + 10
        while not operator.tickets(status="pending") and time.monotonic() < deadline:
            time.sleep(0.02)
        clock.now += 3600

    mover = threading.Thread(target=later)
    mover.start()
    with pytest.raises(ReviewPending) as held:
        refund(700)
    mover.join()
    assert held.value.status == "expired" and "expired" in str(held.value)


def test_a_coroutine_waits_without_holding_the_loop(gate: Any) -> None:
    engine, (operator, _) = gate

    @engine.guard("a", "ISSUE_REFUND", wait=10)
    async def refund(amount: int) -> int:
        return amount

    async def main() -> tuple[int, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        ticker = asyncio.create_task(tick())
        result = await refund(700)
        ticker.cancel()
        return result, ticks

    judge = judge_later(operator, True)
    result, ticks = asyncio.run(main())
    judge.join()
    assert result == 700 and ticks >= 5


@pytest.mark.parametrize("wait", [-1, float("nan"), "10", True])
def test_a_bad_wait_is_refused(gate: Any, wait: Any) -> None:
    engine, _ = gate
    with pytest.raises(ValueError, match="wait"):
        engine.guard("a", "ISSUE_REFUND", wait=wait)


def test_verdict_says_where_a_ticket_stands_on_either_engine(gate: Any) -> None:
    """docs/integrations.md: `engine.verdict(ticket)` is the status and the decision the
    verdict made, `None` while pending and after an expiry."""
    engine, (operator, clock) = gate
    held = [engine.evaluate("bot", "ISSUE_REFUND", {"amount": 700 + n}).ticket for n in range(3)]
    assert engine.verdict(held[0]) == ("pending", None)
    operator.review(held[0], True, operator="alice")
    operator.review(held[1], False, operator="bob")
    approved, denied = engine.verdict(held[0]), engine.verdict(held[1])
    assert (approved[0], approved[1].label, approved[1].rule_id) == (
        "approved", "Allowed", "REVIEW_LARGE")
    assert (denied[0], denied[1].label, denied[1].rule_id) == ("denied", "Blocked",
                                                               "REVIEW_LARGE")
    clock.now += 3601
    assert engine.verdict(held[2]) == ("expired", None)
