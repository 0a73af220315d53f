"""AsyncEngine: either engine from asyncio, the event loop never held by a slow server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest
from sentra_runtime import ActionDenied, Engine
from sentra_runtime.client import FAIL_CLOSED, AsyncEngine, RemoteEngine

from tests.sdk.hostile import HostileServer, silent
from tests.server.conftest import Server

T = TypeVar("T")


async def while_ticking(work: Awaitable[T]) -> tuple[T, int]:
    """Run ``work`` and count how often a 20 ms ticker ran meanwhile (a held loop: 0)."""
    ticks = 0
    done = asyncio.Event()

    async def tick() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.02)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        return await work, ticks
    finally:
        done.set()
        await ticker


def test_concurrent_decisions_match_the_embedded_engine(
        sentra_server: Server, sentra_table: dict[str, Any], agent: str) -> None:
    actions = ["DELETE_RECORD"] * 6   # the same action: the outcome counts are order-free

    async def decide_all(decider: AsyncEngine) -> list[str]:
        decisions = await asyncio.gather(*(decider.evaluate(agent, action)
                                           for action in actions))
        state = await decider.state(agent)
        return sorted(decision.label for decision in decisions) + [state.status]

    remote = asyncio.run(decide_all(AsyncEngine(RemoteEngine(sentra_server.url))))
    embedded = asyncio.run(decide_all(AsyncEngine(Engine(sentra_table))))
    assert remote == embedded
    assert remote == ["Agent Shut Down", "Allowed", "Allowed", "Allowed", "Blocked", "Blocked",
                      "shut_down"]   # 30 + 30 + 30, then 120 > 100 three times


def test_a_slow_server_does_not_hold_the_event_loop(hostile: HostileServer) -> None:
    hostile.respond = silent
    decider = AsyncEngine(RemoteEngine(hostile.url, timeout=1.0))
    decision, ticks = asyncio.run(while_ticking(decider.evaluate("agent", "FILE_READ")))
    assert decision.rule_id == FAIL_CLOSED and "within the 1 s deadline" in decision.reason
    assert ticks >= 10


def test_a_guarded_coroutine_is_checked_in_a_worker_thread(hostile: HostileServer) -> None:
    hostile.respond = silent
    engine = RemoteEngine(hostile.url, timeout=1.0)
    ran: list[str] = []

    @AsyncEngine(engine).guard("agent", "FILE_READ")
    async def read(path: str) -> str:
        ran.append(path)
        return path

    with pytest.raises(ActionDenied) as denied:
        asyncio.run(while_ticking(read("/etc/passwd")))
    assert denied.value.decision.rule_id == FAIL_CLOSED and ran == []
    assert read.last_decision is denied.value.decision


def test_the_ticker_would_see_a_held_loop() -> None:
    """The measure above can fail: a blocking call in a coroutine gets no ticks."""
    import time

    async def blocking() -> None:
        time.sleep(0.3)

    assert asyncio.run(while_ticking(blocking()))[1] <= 1
