"""The live event stream: server-sent events, pushed to every open stream by one broadcaster.

One task (:meth:`EventBroadcast.run`) follows the audit log and renders each new record once; it
pushes the rendered message to every stream that wants it, at most every :data:`FAN_OUT_SECONDS`
(all records since in one write per stream). The records this process writes reach
it at once (the gate tells it); records other processes write to the shared store (workers, other
instances on one PostgreSQL database) are read from the log when the log follower sees the head
move (:class:`~sentra_lang.server.store.LogFollower`, every 0.2 s), and at the latest within
:data:`POLL_SECONDS`. A stream starts by reading the log from its start
position (in read threads), then joins the broadcast where its reading ended, so no record is
missed or repeated.

Each stream has a bounded queue (:data:`QUEUE_LIMIT` messages): a client that does not keep up is
dropped, not waited for, and the decisions never wait for any client. A dropped browser
reconnects on its own with ``Last-Event-ID`` and reads what it missed from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from sentra_lang.server.gate import Gate
from sentra_lang.server.store import Reads

POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
BATCH = 500
QUEUE_LIMIT = 256
"""Messages a stream may have waiting; one more and the stream is dropped."""
CHUNK = 64
"""At most this many messages are written to a client at once."""
RETRY_MILLISECONDS = 2000
FAN_OUT_SECONDS = 0.025
"""After handing records out, the broadcaster waits this long before the next hand-out, so under
load each stream is woken (and written to) at most 40 times a second, with every record since;
a record after a quiet spell goes out at once."""

LOG = logging.getLogger("sentra_lang.server")

View = Callable[[dict[str, Any]], dict[str, Any]]


class Subscriber:
    """One open stream: its filters, where its reading of the log ended, and its queue."""

    def __init__(self, cursor: int, agent: str | None, label: str | None) -> None:
        self.cursor = cursor
        self.agent = agent
        self.label = label
        self.messages: deque[bytes] = deque()
        self.ready = asyncio.Event()
        self.dropped = False

    def wants(self, record: dict[str, Any]) -> bool:
        """The same filter as the store's ``read_records(agent=, label=)``."""
        if record["seq"] <= self.cursor:
            return False
        if self.agent is not None and record.get("agent") != self.agent:
            return False
        decision = record.get("decision")
        return self.label is None or (isinstance(decision, dict)
                                      and decision.get("label") == self.label)

    def push(self, message: bytes) -> bool:
        """Queue ``message``; ``False`` (and the stream is dropped) when the queue is full."""
        if len(self.messages) >= QUEUE_LIMIT:
            self.dropped = True
            self.messages.clear()
            self.ready.set()
            return False
        self.messages.append(message)
        self.ready.set()
        return True


class EventBroadcast:
    """Follows the audit log and pushes each new record to the open streams."""

    def __init__(self, gate: Gate, view: View, reads: Reads) -> None:
        self.gate = gate
        self.view = view
        self.reads = reads
        self.subscribers: set[Subscriber] = set()
        self.position = 0
        """The last seq the broadcaster handed out (meaningful while anyone subscribes)."""
        self.dropped = 0
        self.closing = False
        self._pending: dict[int, dict[str, Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._look = False
        self._task: asyncio.Task[None] | None = None
        gate.listeners.append(self._written)

    def start(self) -> None:
        """Start following the log (in the server's event loop)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = self._loop.create_task(self.run(), name="sentra event broadcast")

    async def close(self) -> None:
        self.closing = True
        for subscriber in list(self.subscribers):
            subscriber.ready.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- the broadcaster ----------------------------------------------------------------------

    def _written(self, record: dict[str, Any], seconds: float) -> None:
        """The gate wrote ``record`` (called in the deciding thread)."""
        loop = self._loop
        if loop is not None and self.subscribers and not loop.is_closed():
            loop.call_soon_threadsafe(self._arrived, record)

    def log_moved(self, head: int) -> None:
        """The log's head is at ``head`` (called by the log follower, in its thread): read the
        records other processes wrote."""
        loop = self._loop
        if loop is not None and self.subscribers and not loop.is_closed():
            loop.call_soon_threadsafe(self._moved, head)

    def _moved(self, head: int) -> None:
        if self.subscribers and head > self.position and any(
                seq not in self._pending for seq in range(self.position + 1, head + 1)):
            self._wakeup(look=True)

    def _arrived(self, record: dict[str, Any]) -> None:
        if self.subscribers and record["seq"] > self.position:
            self._pending[record["seq"]] = record
            self._wakeup(look=False)

    def _wakeup(self, look: bool) -> None:
        self._look = self._look or look
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Hand out new records until the server closes."""
        assert self._wake is not None
        while not self.closing:
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            except TimeoutError:
                self._look = True
            self._wake.clear()
            if not self.subscribers:
                self._pending.clear()
                self._look = False
                continue
            look, self._look = self._look, False
            try:
                await self._hand_out(look)
            except Exception:   # a failed read: log it, and read again at the next wake-up
                LOG.exception("the event broadcast could not read the audit log")
                self._look = True
            await asyncio.sleep(FAN_OUT_SECONDS)

    async def _hand_out(self, look: bool) -> None:
        """Hand out records in seq order: the told ones while they follow on, and where one is
        missing (a record another process wrote, or one whose writer has not told yet) the
        log's next records."""
        while True:
            while self.position + 1 in self._pending:
                self._fan_out(self._pending.pop(self.position + 1))
            if not look and not self._pending:
                return
            start = self.position
            records = await self.reads.run(self._next_records, start)
            if self.position != start:
                continue   # a stream joined and rewound the broadcast meanwhile: read again
            for record in records:
                self._pending.pop(record["seq"], None)
                self._fan_out(record)
            look = len(records) == BATCH
            if not records:
                self._pending.clear()
                return

    def _next_records(self, after: int) -> list[dict[str, Any]]:
        return self.gate.reader.records(after=after, limit=BATCH)

    def _fan_out(self, record: dict[str, Any]) -> None:
        self.position = record["seq"]
        message: bytes | None = None
        for subscriber in list(self.subscribers):
            if not subscriber.wants(record):
                continue
            if message is None:
                message = format_message(record["seq"], record["kind"], self.view(record))
            if not subscriber.push(message):
                self.subscribers.discard(subscriber)
                self.dropped += 1

    # -- one stream ---------------------------------------------------------------------------

    async def stream(self, after: int, agent: str | None = None,
                     label: str | None = None) -> AsyncIterator[bytes]:
        """``id``/``event``/``data`` messages for the records after ``after``, then live ones."""
        yield f"retry: {RETRY_MILLISECONDS}\n: streaming from seq {after}\n\n".encode()
        subscriber = Subscriber(after, agent, label)
        while not self.closing:
            text, covered = await self.reads.run(self._history, subscriber)
            if text:
                yield text
            subscriber.cursor = covered
            if self._join(subscriber):
                break
        try:
            while not self.closing:
                try:
                    await asyncio.wait_for(subscriber.ready.wait(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                subscriber.ready.clear()
                if subscriber.dropped:
                    yield b": dropped: this client fell behind; reconnect to resume\n\n"
                    return
                while subscriber.messages:
                    count = min(CHUNK, len(subscriber.messages))
                    yield b"".join(subscriber.messages.popleft() for _ in range(count))
        finally:
            self.subscribers.discard(subscriber)

    def _history(self, subscriber: Subscriber) -> tuple[bytes, int]:
        """The next messages the stream wants from the log, rendered, and the seq up to which
        the log has been read for it (in a read thread)."""
        head = self.gate.reader.head()
        records = self.gate.reader.records(after=subscriber.cursor, limit=BATCH,
                                           agent=subscriber.agent, label=subscriber.label)
        text = b"".join(format_message(record["seq"], record["kind"], self.view(record))
                        for record in records)
        if len(records) == BATCH:
            return text, records[-1]["seq"]
        return text, max(head, subscriber.cursor, *(record["seq"] for record in records[-1:]))

    def _join(self, subscriber: Subscriber) -> bool:
        """Join the broadcast when the stream's reading has reached it (on the event loop, so
        nothing is handed out in between)."""
        if not self.subscribers:
            self.position = subscriber.cursor
            self._pending.clear()
        elif subscriber.cursor < self.position:
            return False
        self.subscribers.add(subscriber)
        self._wakeup(look=True)
        return True


def format_message(seq: int, kind: str, data: dict[str, Any]) -> bytes:
    """One server-sent event, encoded once for every stream that gets it."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {seq}\nevent: {kind}\ndata: {text}\n\n".encode()
