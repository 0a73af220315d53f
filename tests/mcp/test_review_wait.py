"""`mcp-proxy --review-wait SECONDS` (docs/integrations.md, "The MCP gateway"): a call the policy
holds for review waits for the operator's verdict, then runs once (approved) or is refused with
the verdict's decision; without a verdict in time it gets the review answer. Real processes: the
`mcp` SDK's client, the gateway, the fake tools server, and an operator on the gateway's SQLite
file (an `Engine`) or on the decision server (`sentra-lang serve`, over HTTP)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import Engine, SQLiteStore
from sentra_runtime.client import RemoteEngine

from sentra_lang.policy_file import load_policy_file
from tests.mcp.conftest import (
    OPERATOR_TOKEN,
    ROOT,
    RawClient,
    Setup,
    reviewing_policy,
    serve,
    session,
    text_of,
)

pytestmark = pytest.mark.slow

EVE = {"user": "eve", "role": "admin"}
REASON = "Giving eve the role admin needs a human."


def held_text(ticket: str, why: str, reason: str = REASON) -> str:
    """The review answer's text (docs/integrations.md, the review bullet)."""
    return (f"Review Required: {reason} (rule BLOCK_PERMISSION_CHANGE) Ticket: {ticket}. "
            f"The call did not run: {why}. A new call is decided anew.")


def meta(result: Any) -> dict[str, Any]:
    return dict((result.meta or {})["sentra/decision"])


def pending(find: Callable[[], list[str]], count: int = 1, timeout: float = 30) -> list[str]:
    """The ids of the pending tickets, once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while len(found := find()) < count:
        assert time.monotonic() < deadline, f"no {count} pending tickets within {timeout} s"
        time.sleep(0.05)
    return found


class Operator:
    """An operator judging tickets in the gateway's SQLite file, as `sentra-lang serve --db`
    on the same file would: an engine of the same policy on that store."""

    def __init__(self, db: Path, policy: Path) -> None:
        self.db, self.policy = db, policy

    def pending(self, count: int = 1) -> list[str]:
        store = SQLiteStore(self.db)
        try:
            return pending(lambda: [held.ticket for held in store.tickets(status="pending")],
                           count)
        finally:
            store.close()

    def judge(self, ticket: str, approve: bool) -> None:
        table = load_policy_file(self.policy).table
        assert table is not None
        engine = Engine(table, SQLiteStore(self.db))
        try:
            engine.review(ticket, approve, operator="alice")
        finally:
            engine.close()

    def status(self, ticket: str) -> str:
        store = SQLiteStore(self.db)
        try:
            found = store.ticket(ticket)
            assert found is not None
            return found.status
        finally:
            store.close()


def embedded(setup: Setup, policy: Path, wait: float) -> Any:
    return setup.proxy("--db", str(setup.db), "--review-wait", str(wait), policy=policy)


def judged_while_waiting(setup: Setup, policy: Path, operator: Operator,
                         approve: bool) -> tuple[str, Any]:
    """A held call through a gateway that waits 30 s, judged by ``operator`` meanwhile: the
    ticket and the call's result."""
    async def scenario() -> tuple[str, Any]:
        async with session(embedded(setup, policy, 30)) as client:
            call = asyncio.create_task(client.call_tool("change_permission", EVE))
            [ticket] = await asyncio.to_thread(operator.pending)
            await asyncio.to_thread(operator.judge, ticket, approve)
            return ticket, await call

    return asyncio.run(scenario())


def test_an_approval_within_the_wait_runs_the_call_once(setup: Setup, tmp_path: Path) -> None:
    policy = reviewing_policy(tmp_path)
    operator = Operator(setup.db, policy)

    ticket, result = judged_while_waiting(setup, policy, operator, True)
    assert (result.isError, text_of(result)) == (False, "eve is now admin")
    assert setup.calls() == [("change_permission", EVE)]
    store = SQLiteStore(setup.db)
    steps = [(record["kind"], record["decision"]["label"],   # docs/runtime.md, "Review"
              record.get("ticket", record["decision"].get("ticket")), record.get("verdict"),
              record.get("operator"))
             for record in store.audit_records() if record["kind"] != "policy_load"]
    assert steps == [("decision", "Review Required", ticket, None, None),
                     ("review", "Allowed", ticket, "approved", "alice")]
    assert store.verify_audit().ok
    assert tuple(store.state("agent")) == (60, 0, "active")   # the risk, applied at approval
    store.close()


def test_a_denial_within_the_wait_is_the_block_of_the_review_rule(setup: Setup,
                                                                  tmp_path: Path) -> None:
    policy = reviewing_policy(tmp_path)
    operator = Operator(setup.db, policy)

    ticket, result = judged_while_waiting(setup, policy, operator, False)
    assert result.isError and text_of(result) == (
        f"Blocked: Denied by `alice` after review. (rule BLOCK_PERMISSION_CHANGE) "
        f"Ticket: {ticket}.")
    assert (meta(result)["label"], meta(result)["rule_id"], meta(result)["ticket"]) == (
        "Blocked", "BLOCK_PERMISSION_CHANGE", ticket)
    assert setup.calls() == []
    store = SQLiteStore(setup.db)
    assert tuple(store.state("agent")) == (0, 1, "active")   # a denial is a strike
    store.close()


def test_an_approval_over_the_threshold_is_refused(setup: Setup, tmp_path: Path) -> None:
    """Two calls wait at once; each approval is decided when given: 60 of risk, then 120 > 100
    (docs/language.md, "Review")."""
    policy = reviewing_policy(tmp_path)
    operator = Operator(setup.db, policy)
    root = {"user": "eve", "role": "root"}

    async def scenario() -> tuple[list[str], list[Any]]:
        async with session(embedded(setup, policy, 30)) as client:
            calls = [asyncio.create_task(client.call_tool("change_permission", arguments))
                     for arguments in (EVE, root)]
            tickets = await asyncio.to_thread(operator.pending, 2)
            for ticket in tickets:   # oldest first: admin, then root
                await asyncio.to_thread(operator.judge, ticket, True)
            return tickets, list(await asyncio.gather(*calls))

    [first, second], [admin, over] = asyncio.run(scenario())
    assert (admin.isError, text_of(admin)) == (False, "eve is now admin")
    assert over.isError and (meta(over)["label"], meta(over)["rule_id"]) == (
        "Blocked", "RISK_THRESHOLD_EXCEEDED")
    assert text_of(over).startswith("Blocked: ")
    assert text_of(over).endswith(f"(rule RISK_THRESHOLD_EXCEEDED) Ticket: {second}.")
    assert setup.calls() == [("change_permission", EVE)]
    assert Operator(setup.db, policy).status(second) == "blocked"


def timed_call(setup: Setup, policy: Path, wait: float) -> tuple[Any, float]:
    """One held `change_permission` call through an embedded gateway waiting ``wait`` seconds
    for a verdict nobody gives: its result, and how long the call took."""
    async def scenario() -> tuple[Any, float]:
        async with session(embedded(setup, policy, wait)) as client:
            started = time.monotonic()
            result = await client.call_tool("change_permission", EVE)
            return result, time.monotonic() - started

    return asyncio.run(scenario())


def test_no_verdict_within_the_wait_is_the_review_answer(setup: Setup, tmp_path: Path) -> None:
    policy = reviewing_policy(tmp_path)
    result, took = timed_call(setup, policy, 1)
    ticket = meta(result)["ticket"]
    assert result.isError and text_of(result) == held_text(
        ticket, "no operator's verdict came within the gateway's 1 s wait, and a later "
                "approval will not run it")
    assert took >= 0.9 and setup.calls() == []
    assert Operator(setup.db, policy).status(ticket) == "pending"


def test_a_ticket_that_expires_during_the_wait_ends_it(setup: Setup, tmp_path: Path) -> None:
    policy = reviewing_policy(tmp_path, expires="1s")
    result, took = timed_call(setup, policy, 30)
    ticket = meta(result)["ticket"]
    assert result.isError and text_of(result) == held_text(
        ticket, "the ticket expired before an operator's verdict")
    assert took < 20 and setup.calls() == []   # not the 30 s of the wait
    assert Operator(setup.db, policy).status(ticket) == "expired"


def test_other_messages_flow_while_a_call_waits(setup: Setup, tmp_path: Path) -> None:
    """A ping, a tool list and an allowed call sent after the held call are answered before
    its verdict: the waiting call is overtaken, the gateway does not stall."""
    policy = reviewing_policy(tmp_path)
    operator = Operator(setup.db, policy)

    async def scenario() -> tuple[list[Any], Any]:
        async with session(embedded(setup, policy, 30)) as client:
            call = asyncio.create_task(client.call_tool("change_permission", EVE))
            [ticket] = await asyncio.to_thread(operator.pending)
            answered = [(await client.send_ping()).model_dump(),
                        [tool.name for tool in (await client.list_tools()).tools],
                        text_of(await client.call_tool("read_file", {"path": "/srv/a.py"}))]
            assert not call.done()
            await asyncio.to_thread(operator.judge, ticket, True)
            return answered, await call

    answered, result = asyncio.run(scenario())
    assert answered == [{"meta": None}, ["read_file", "change_permission", "delete_repository",
                                         "summarize", "echo", "count"], "contents of /srv/a.py"]
    assert text_of(result) == "eve is now admin"
    assert setup.calls() == [("read_file", {"path": "/srv/a.py"}), ("change_permission", EVE)]


def test_a_cancelled_wait_is_never_answered(setup: Setup, tmp_path: Path) -> None:
    """MCP's cancellation: the client's `notifications/cancelled` for the waiting call ends
    the wait; no answer for its id, nothing forwarded, the ticket stays pending."""
    policy = reviewing_policy(tmp_path)
    raw = RawClient(setup, "--db", str(setup.db), "--review-wait", "3", policy=policy)
    try:
        sent = time.monotonic()
        raw.send({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                  "params": {"name": "change_permission", "arguments": EVE}})
        [ticket] = Operator(setup.db, policy).pending()
        raw.send({"jsonrpc": "2.0", "id": 5, "method": "tools/call",   # its id, in use
                  "params": {"name": "read_file", "arguments": {"path": "/srv/a.py"}}})
        assert raw.answer(5)["error"]["code"] == -32600
        raw.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                  "params": {"requestId": 5, "reason": "the user gave up"}})
        time.sleep(max(0.0, sent + 4 - time.monotonic()))   # past the 3 s wait: a wait
        # still running would have answered by now
        assert raw.alive()
        [refusal] = [message for message in raw.seen if message.get("id") == 5]
        assert "error" in refusal   # the refusal of the second call, and nothing else
    finally:
        raw.close()
    assert setup.calls() == []
    assert Operator(setup.db, policy).status(ticket) == "pending"


def test_waiting_calls_end_with_the_session(setup: Setup, tmp_path: Path) -> None:
    """The client closes its end while a call waits: the gateway exits at once (0, the client
    ended the session), the call unanswered, its ticket pending."""
    policy = reviewing_policy(tmp_path)
    raw = RawClient(setup, "--db", str(setup.db), "--review-wait", "60", policy=policy)
    raw.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
              "params": {"name": "change_permission", "arguments": EVE}})
    [ticket] = Operator(setup.db, policy).pending()
    started = time.monotonic()
    raw.close()   # waits for the gateway to exit (20 s at most)
    assert raw.process.returncode == 0 and time.monotonic() - started < 20
    assert [message for message in raw.seen if message.get("id") == 1] == []
    assert Operator(setup.db, policy).status(ticket) == "pending"


def test_with_a_decision_server(setup: Setup, tmp_path: Path) -> None:
    """`--server`: the gateway polls `GET /v1/reviews/{ticket}`; the operator judges over
    HTTP with the operator token."""
    policy = reviewing_policy(tmp_path)
    with serve(tmp_path, policy) as server:
        operator = RemoteEngine(server.url, token=OPERATOR_TOKEN)

        def judged(approve: bool) -> str:
            [ticket] = pending(lambda: [item["ticket"] for item in
                                        operator.tickets(status="pending")])
            operator.review(ticket, approve, operator="bob")
            return ticket

        async def scenario() -> list[Any]:
            params = setup.proxy("--server", server.url, "--review-wait", "30", policy=policy)
            async with session(params) as client:
                results = []
                for approve in (True, False):
                    call = asyncio.create_task(client.call_tool("change_permission", EVE))
                    ticket = await asyncio.to_thread(judged, approve)
                    results.append((ticket, await call))
                return results

        [(_, approved), (denied_ticket, denied)] = asyncio.run(scenario())
        operator.close()
    assert (approved.isError, text_of(approved)) == (False, "eve is now admin")
    assert denied.isError and text_of(denied) == (
        f"Blocked: Denied by `bob` after review. (rule BLOCK_PERMISSION_CHANGE) "
        f"Ticket: {denied_ticket}.")
    assert setup.calls() == [("change_permission", EVE)]


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon", ""])
def test_a_wait_that_is_not_a_number_of_seconds_is_a_usage_error(value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sentra_lang", "mcp-proxy", str(ROOT / "tests" / "mcp" /
                                                               "tools.sentra"),
         "--review-wait", value, "--", "true"], capture_output=True, text=True, timeout=60,
        cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr == ("sentra-lang mcp-proxy: error: --review-wait must be a number of "
                             f"seconds, at least 0, not `{value}`\n")


def test_a_wait_on_a_store_in_memory_is_warned_of() -> None:
    """Nobody can judge tickets kept in the gateway's memory: the wait would always run out."""
    result = subprocess.run(
        [sys.executable, "-m", "sentra_lang", "mcp-proxy", str(ROOT / "tests" / "mcp" /
                                                               "tools.sentra"),
         "--review-wait", "5", "--", "true"], capture_output=True, text=True, timeout=60,
        cwd=ROOT, stdin=subprocess.DEVNULL)
    assert "warning: no operator can judge the review tickets of a store in memory" in \
        result.stderr
