"""The live event stream: server-sent events tailing the audit log by sequence number.

Writers in this process wake the streams at once; a stream also polls the log every second, so it
sees records written by other processes sharing the store file.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread

from sentra_lang.server.gate import Gate

POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
BATCH = 500


class EventStream:
    """Wakes the open streams when the gate writes a record."""

    def __init__(self, gate: Gate, view: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.gate = gate
        self.view = view
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing = False
        self._waiters: set[asyncio.Event] = set()
        gate.listeners.append(self._written)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def close(self) -> None:
        self.closing = True
        self._wake()

    def _written(self, record: dict[str, Any], seconds: float) -> None:
        if self._waiters and self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        for waiter in list(self._waiters):
            waiter.set()

    async def stream(self, after: int, agent: str | None = None,
                     label: str | None = None) -> AsyncIterator[str]:
        """``id``/``event``/``data`` messages for records after ``after``, then live ones."""
        woken = asyncio.Event()
        self._waiters.add(woken)
        idle = 0.0
        try:
            yield f"retry: 2000\n: streaming from seq {after}\n\n"
            while not self.closing:
                woken.clear()
                records = await anyio.to_thread.run_sync(functools.partial(
                    self.gate.reader.records, after=after, limit=BATCH, agent=agent,
                    label=label))
                for record in records:
                    after = record["seq"]
                    yield format_message(record["seq"], record["kind"], self.view(record))
                if records:
                    idle = 0.0
                    if len(records) == BATCH:
                        continue
                try:
                    await asyncio.wait_for(woken.wait(), POLL_SECONDS)
                except TimeoutError:
                    idle += POLL_SECONDS
                    if idle >= KEEPALIVE_SECONDS:
                        idle = 0.0
                        yield ": keepalive\n\n"
        finally:
            self._waiters.discard(woken)


def format_message(seq: int, kind: str, data: dict[str, Any]) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {seq}\nevent: {kind}\ndata: {text}\n\n"
