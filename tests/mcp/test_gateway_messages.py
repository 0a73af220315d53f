"""The gateway's handling of single messages, without processes: what is answered here, what
goes on, and what is dropped."""

from __future__ import annotations

import asyncio
import math
import os
import sqlite3
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
from sentra_runtime import Engine, SQLiteStore

from sentra_lang.mcp.gateway import Gateway, Held
from tests.helpers import compile_ok
from tests.mcp.conftest import TOOLS_POLICY


def gateway(hide: bool = False) -> Gateway:
    table = compile_ok(TOOLS_POLICY.read_text()).table
    assert table is not None
    return Gateway(Engine(table.model_dump(mode="json")), "agent",
                   (lambda tool: tool == "change_permission") if hide else None)


def request(request_id: Any, method: str, params: Any = None) -> types.JSONRPCRequest:
    return types.JSONRPCRequest(jsonrpc="2.0", id=request_id, method=method, params=params)


def test_a_refused_call_is_answered_and_its_cancellation_dropped() -> None:
    gate = gateway()
    answer = asyncio.run(gate._handle(request(7, "tools/call", {
        "name": "change_permission", "arguments": {"user": "eve", "role": "admin"}})))
    assert isinstance(answer, types.JSONRPCResponse) and answer.result["isError"] is True
    cancel = types.JSONRPCNotification(jsonrpc="2.0", method="notifications/cancelled",
                                       params={"requestId": 7})
    other = types.JSONRPCNotification(jsonrpc="2.0", method="notifications/cancelled",
                                      params={"requestId": 8})
    assert gate._dropped(cancel) and not gate._dropped(other)
    assert asyncio.run(gate._handle(request(8, "tools/call", {
        "name": "read_file", "arguments": {"path": "/home/x"}}))) is None   # goes on


def test_tool_lists_lose_hidden_tools_only_when_asked() -> None:
    listed = {"tools": [{"name": "read_file"}, {"name": "change_permission"}, {"title": "x"}],
              "nextCursor": "c"}
    assert gateway()._visible(listed) == listed
    hiding = gateway(hide=True)
    assert asyncio.run(hiding._handle(request(1, "tools/list"))) is None
    assert hiding._visible(listed) == {"tools": [{"name": "read_file"}, {"title": "x"}],
                                       "nextCursor": "c"}


def test_a_store_that_fails_refuses_the_call(tmp_path: Path) -> None:
    table = compile_ok(TOOLS_POLICY.read_text()).table
    assert table is not None
    store = SQLiteStore(tmp_path / "state.db")
    gate = Gateway(Engine(table.model_dump(mode="json"), store), "agent")
    store.close()   # the database is gone from under the gateway
    decision = gate._evaluate("read_file", {"path": "/home/x"})
    assert (decision.allowed, decision.rule_id) == (False, "FAIL_CLOSED")
    assert decision.reason.startswith("Fail closed: the gateway could not decide (")


def test_a_client_that_stops_reading_ends_the_session_quietly() -> None:
    from sentra_lang.mcp.gateway import _Upstream

    async def scenario() -> bool:
        read_end, write_end = os.pipe()
        input_read, input_write = os.pipe()
        writer = os.fdopen(write_end, "wb")
        os.close(read_end)   # the client no longer reads our output
        upstream = _Upstream(input_read, writer)
        await upstream.write(types.JSONRPCResponse(jsonrpc="2.0", id=1, result={}))
        os.close(input_write)
        assert await upstream.read() is None   # and its input ended
        return upstream.gone

    assert asyncio.run(scenario()) is True


def reviewing_engine(store: SQLiteStore | None = None) -> Engine:
    source = TOOLS_POLICY.read_text().replace("  block risk 60 as BLOCK_PERMISSION_CHANGE",
                                              "  review risk 60 as BLOCK_PERMISSION_CHANGE")
    table = compile_ok(source).table
    assert table is not None
    return Engine(table.model_dump(mode="json"), *([store] if store else []))


def test_a_held_call_waits_only_with_a_review_wait() -> None:
    arguments = {"name": "change_permission", "arguments": {"user": "eve", "role": "admin"}}
    at_once = asyncio.run(Gateway(reviewing_engine(), "agent")._handle(
        request(1, "tools/call", arguments)))
    assert isinstance(at_once, types.JSONRPCResponse) and at_once.result["isError"] is True
    held = asyncio.run(Gateway(reviewing_engine(), "agent", review_wait=5)._handle(
        request(1, "tools/call", arguments)))
    assert isinstance(held, Held) and held.decision.label == "Review Required"


def test_the_wait_reads_the_runtime_verdict_and_survives_a_failing_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    engine = reviewing_engine(store)
    gate = Gateway(engine, "agent", review_wait=5)
    ticket = engine.evaluate("agent", "change_permission", {"user": "eve", "role": "x"}).ticket
    assert ticket is not None
    assert asyncio.run(gate._lookup(ticket)) == ("pending", None)
    engine.review(ticket, True, operator="alice")
    status, verdict = asyncio.run(gate._lookup(ticket))
    assert (status, verdict is not None and verdict.allowed) == ("approved", True)

    def locked(ticket: str) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(engine, "ticket", locked)   # the store fails: the call waits on
    assert asyncio.run(gate._lookup(ticket)) == ("pending", None)
    store.close()


@pytest.mark.parametrize("wait", [-1.0, math.nan, math.inf])
def test_a_review_wait_is_a_finite_number_of_seconds(wait: float) -> None:
    with pytest.raises(ValueError, match="review_wait must be a finite number of seconds"):
        Gateway(reviewing_engine(), "agent", review_wait=wait)
