"""The gateway as an attacker sees it: raw JSON-RPC lines written to a real `sentra-lang
mcp-proxy` process. Whatever the line, no tool runs undecided, every request gets an answer,
and the gateway keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.mcp.conftest import RawClient, Setup

pytestmark = pytest.mark.slow


@pytest.fixture
def raw(setup: Setup) -> Iterator[RawClient]:
    client = RawClient(setup)
    yield client
    client.close()


def call(request_id: int, params: Any, method: str = "tools/call") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def test_malformed_tool_calls_are_refused_not_forwarded(raw: RawClient, setup: Setup) -> None:
    raw.send(call(1, {"arguments": {"user": "eve", "role": "admin"}}))
    assert raw.answer(1)["error"]["code"] == -32602
    raw.send(call(2, {"name": "change_permission", "arguments": ["eve", "admin"]}))
    assert raw.answer(2)["error"]["code"] == -32602
    raw.send(call(3, {"name": 5}))
    assert raw.answer(3)["error"]["code"] == -32602
    raw.send(call(4, {"name": "change_permission", "arguments": {"user": "eve", "role": "x"}},
                  method="Tools/Call"))
    assert raw.answer(4)["error"]["code"] == -32601
    raw.send({"jsonrpc": "2.0", "method": "tools/call",            # a notification: no answer
              "params": {"name": "change_permission", "arguments": {"user": "eve", "role": "x"}}})
    raw.line(b'{"jsonrpc": "2.0", "id": 5, "method": 7}')
    assert raw.answer(5)["error"]["code"] == -32600
    raw.line(b"[" * 100_000)
    raw.line(b"\xff\xfe not text")
    assert raw.alive() and setup.calls() == []


def test_a_duplicate_key_cannot_split_the_decision_from_the_call(raw: RawClient,
                                                                 setup: Setup) -> None:
    """JSON with the tool name twice: the gateway forwards what it decided on, whichever
    name its parser kept, so the server never runs a call the policy did not see."""
    raw.line(b'{"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": '
             b'"read_file", "name": "change_permission", "arguments": {"path": "/home/x", '
             b'"user": "eve", "role": "admin"}}}')
    answer = raw.answer(6)
    assert answer["result"]["isError"] is True
    assert "change_permission" not in [tool for tool, _ in setup.calls()]
    assert raw.alive()


def test_a_refused_call_is_answered_with_the_decision(raw: RawClient, setup: Setup) -> None:
    raw.send(call(7, {"name": "read_file", "arguments": {"path": "/etc/passwd"}}))
    result = raw.answer(7)["result"]
    assert result["isError"] is True
    assert result["content"] == [{"type": "text", "text": "Blocked: Reading /etc/passwd is not "
                                                          "allowed. (rule BLOCK_SYSTEM_FILES)"}]
    decision = result["_meta"]["sentra/decision"]
    assert (decision["label"], decision["agent_id"], decision["action"], decision["seq"]) == (
        "Blocked", "mcp", "READ_FILE", 2)
    raw.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
              "params": {"requestId": 7, "reason": "too late"}})
    assert raw.alive() and setup.calls() == []
