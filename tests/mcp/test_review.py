"""A call the policy holds for review, through the MCP gateway (docs/integrations.md): the agent
gets a tool error carrying the ticket and how to follow it, the wrapped server never sees the
call, and the ticket is in the gateway's store for an operator."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import Engine, SQLiteStore

from tests.mcp.conftest import Setup, reviewing_policy, session, text_of

pytestmark = pytest.mark.slow


def test_a_held_call_is_a_tool_error_with_its_ticket(setup: Setup, tmp_path: Path) -> None:
    policy = reviewing_policy(tmp_path)

    async def scenario() -> Any:
        async with session(setup.proxy("--db", str(setup.db), policy=policy)) as client:
            return await client.call_tool("change_permission", {"user": "eve", "role": "admin"})

    held = asyncio.run(scenario())
    meta = (held.meta or {})["sentra/decision"]
    ticket = meta["ticket"]
    assert held.isError and meta["label"] == "Review Required" and ticket.startswith("rv_")
    assert text_of(held) == (
        "Review Required: Giving eve the role admin needs a human. (rule "
        f"BLOCK_PERMISSION_CHANGE) Ticket: {ticket}. The call did not run: this gateway answers "
        "without waiting for an operator's verdict (it waits with --review-wait), so an "
        "approval will not run it. A new call is decided anew.")
    assert setup.calls() == []
    store = SQLiteStore(setup.db)
    [pending] = store.tickets(status="pending")
    assert (pending.ticket, pending.agent_id, pending.input) == (
        ticket, "agent", {"role": "admin", "user": "eve"})
    from sentra_lang.policy_file import load_policy_file
    operator = Engine(load_policy_file(policy).table, store)   # an operator on the same store
    assert operator.review(ticket, True, operator="alice").allowed
    assert store.verify_audit().ok
    store.close()
