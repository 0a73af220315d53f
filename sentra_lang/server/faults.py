"""What the server answers while its store cannot be reached: 503, at once, never 500.

A store someone edited so that a review ticket is no ticket (:class:`TicketDamaged`) is
answered 503 too, for the requests that meet that ticket, with a detail that says so and no
``Retry-After`` (it lasts until the store is repaired).

:class:`StoreFaults` is ASGI middleware around the lean path and every route. A request whose
store call fails because the database is unreachable (``StoreUnavailable``: PostgreSQL refused,
lost or timed out; a SQLite file locked past its busy timeout, unwritable or failing) gets
``503 Service Unavailable`` with ``Retry-After: 1`` and a JSON ``detail``: nothing was decided,
so the SDK and every Sentra client fail closed (blocked). The server itself keeps running and
answers again as soon as the database does (the PostgreSQL store reconnects in the background).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time

from sentra_runtime.review import TicketDamaged
from sentra_runtime.stores import StoreUnavailable
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOG = logging.getLogger("sentra_lang.server")
UNAVAILABLE = (StoreUnavailable, sqlite3.OperationalError)
"""The store errors that mean "the database cannot be used now", not "this request is wrong"."""
DETAIL = ("the state database is unavailable, so nothing was decided or recorded (fail "
          "closed); retry later")
_ANSWER = json.dumps({"detail": DETAIL}).encode()
_HEADERS = [(b"content-type", b"application/json"), (b"retry-after", b"1"),
            (b"content-length", str(len(_ANSWER)).encode())]


class FaultTally:
    """How many requests the store's unavailability answered 503 (for ``/metrics``); logs the
    first of each outage, and then at most every :data:`LOG_SECONDS`."""

    LOG_SECONDS = 10.0

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._logged = -self.LOG_SECONDS

    def failed(self, error: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            self.count += 1
            log, self._logged = now - self._logged >= self.LOG_SECONDS, now
        if log:
            LOG.error("the state database is unavailable; answering 503 while it is: %s", error)


class StoreFaults:
    """ASGI middleware: an unreachable store answers 503 (see the module docstring)."""

    def __init__(self, app: ASGIApp, tally: FaultTally) -> None:
        self.app = app
        self.tally = tally

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except UNAVAILABLE as error:
            self.tally.failed(error)
            if started:
                raise
            await send({"type": "http.response.start", "status": 503, "headers": _HEADERS})
            await send({"type": "http.response.body", "body": _ANSWER})
        except TicketDamaged as error:   # an edited store: no retry helps until it is repaired
            LOG.error("%s", error)
            if started:
                raise
            body = json.dumps({"detail": f"{error}; nothing was decided or recorded (fail "
                                         "closed)"}).encode()
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
