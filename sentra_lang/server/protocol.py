"""How the server runs on uvicorn: its configuration, and read deadlines uvicorn does not have.

uvicorn closes a kept-alive connection that stays idle after an answer, but it waits forever for
the head of a request (a client that connects and sends nothing, or one byte at a time) and for a
request's body. :func:`deadline_protocol` adds both deadlines to uvicorn's HTTP protocol classes
(httptools and h11 alike):

- the request head (the request line and the headers) must be complete ``header_timeout``
  seconds after the connection opened, or after the first byte of a following request arrived;
- the body must be complete ``body_timeout`` seconds after its head.

A connection past a deadline gets ``408 Request Timeout`` (when no answer has started) and is
closed. See docs/server.md, "Limits and timeouts".
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal, cast

HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 10.0
KEEP_ALIVE_TIMEOUT = 5
GRACEFUL_SHUTDOWN_SECONDS = 3
SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the interpreter lock while another waits (Python's default is
0.005). Decisions run on the event loop and give the lock up at each SQLite call; with the
default, a read thread rendering a page made each of those waits up to 5 ms."""

_Phase = tuple[str, object]


class _ReadDeadlines:
    """Mixin for uvicorn's HTTP protocols: the read deadlines of the module docstring."""

    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    _deadline: asyncio.TimerHandle | None = None
    _phase: _Phase | None = None

    # the protocol's own attributes, as the mixin reads them
    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writer = OneWrite(cast(asyncio.Transport, transport),
                          asyncio.get_running_loop())
        super().connection_made(writer)  # type: ignore[misc]
        self._watch(("head", None))

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        self._watch(self._reading(between_requests="head"))

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._watch(self._reading(between_requests=None))

    def connection_lost(self, exc: Exception | None) -> None:
        self._watch(None)
        super().connection_lost(exc)  # type: ignore[misc]

    def _reading(self, between_requests: str | None) -> _Phase | None:
        """What the connection is waiting for from the client now: a request head, a body, or
        nothing (the application is answering, or the connection is idle between requests,
        which uvicorn's keep-alive timeout covers)."""
        cycle = self.cycle
        if cycle is None:
            return ("head", None)
        if cycle.response_complete:
            return None if between_requests is None else (between_requests, cycle)
        if cycle.more_body:
            return ("body", cycle)
        return None

    def _watch(self, phase: _Phase | None) -> None:
        """Keep the running deadline while the phase lasts; start the next phase's deadline."""
        if phase == self._phase:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = phase
        if phase is not None and not self.transport.is_closing():
            seconds = self.header_timeout if phase[0] == "head" else self.body_timeout
            self._deadline = self.loop.call_later(seconds, self._expired, phase)

    def _expired(self, phase: _Phase) -> None:
        self._deadline = None
        if phase != self._phase or self.transport.is_closing():
            return
        cycle = phase[1]
        started = phase[0] == "body" and getattr(cycle, "response_started", False)
        if not started:
            what = "request head" if phase[0] == "head" else "request body"
            seconds = self.header_timeout if phase[0] == "head" else self.body_timeout
            self.transport.write(_timeout_answer(f"the {what} did not arrive within "
                                                 f"{seconds:g} seconds"))
        self.transport.close()


class OneWrite:
    """A connection's transport that sends an answer's head and body in one write.

    uvicorn writes a response's status line and headers when the application starts the answer,
    and its body when the application sends it: two sends on the socket, and often two wake-ups
    of the client, per answer. Here a write is held until the next one, which goes out joined
    with it, or until the event loop's next turn (a streamed answer's head is not delayed
    further); so a plain answer is one send. Everything else is the wrapped transport's.
    """

    __slots__ = ("transport", "loop", "held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self.held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self.held
        if held is not None:
            self.held = None
            self.transport.write(held + data)
        elif self.transport.is_closing():
            self.transport.write(data)   # as the transport would have it
        else:
            self.held = bytes(data)
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send the held write, if any (unless the connection closed meanwhile: it had nowhere
        to go)."""
        held = self.held
        if held is not None:
            self.held = None
            if not self.transport.is_closing():
                self.transport.write(held)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _timeout_answer(message: str) -> bytes:
    body = json.dumps({"detail": message}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
            + body)


def http_implementation() -> Literal["httptools", "h11"]:
    """httptools (``uvicorn[standard]``, about twice the speed of h11) when installed."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def event_loop() -> Literal["uvloop", "asyncio"]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def deadline_protocol(header_timeout: float, body_timeout: float,
                      implementation: Literal["httptools", "h11"] | None = None,
                      ) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class with the read deadlines of the module docstring."""
    base: type[asyncio.Protocol]
    if (implementation or http_implementation()) == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    name = f"Deadline{base.__name__}"
    return cast(type[asyncio.Protocol], type(name, (_ReadDeadlines, base), {
        "header_timeout": header_timeout, "body_timeout": body_timeout}))


def uvicorn_settings(host: str, port: int, *, header_timeout: float = HEADER_TIMEOUT,
                     body_timeout: float = BODY_TIMEOUT, log_level: str = "warning",
                     ) -> dict[str, Any]:
    """The ``uvicorn.run`` settings ``sentra-lang serve`` runs with (the tests run the same)."""
    return {"host": host, "port": port, "log_level": log_level, "access_log": False,
            "http": deadline_protocol(header_timeout, body_timeout), "loop": event_loop(),
            "lifespan": "on", "timeout_keep_alive": KEEP_ALIVE_TIMEOUT,
            "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS}
