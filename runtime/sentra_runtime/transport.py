"""HTTP for the SDK: one deadline per call, bounded answers, kept-alive connections shared by
threads, and a retry only where it cannot make a second decision.

Standard library only (``http.client`` frames the messages). What this module adds:

* **A total deadline.** Every socket operation of a call (connect, TLS handshake, send, each
  read) waits at most for what is left of the call's deadline, so a server that sends one byte
  at a time cannot hold a call past its timeout. (Name resolution is the exception: the
  operating system's resolver cannot be interrupted; give an address or a name in
  ``/etc/hosts`` when that matters.)
* **Bounded answers.** At most ``max_response_bytes`` of body, at most 100 headers of at most
  64 KiB each (``http.client``'s limits), JSON nested at most ``max_depth`` deep and without
  ``NaN`` or ``Infinity``.
* **Kept-alive connections**, at most ``max_idle`` of them idle, handed to one thread at a time.
  An idle connection the server has closed (or sent anything on) is dropped before reuse; a
  forked child starts without its parent's.
* **Retries only where safe.** A request whose sending failed on a reused connection did not
  reach the server whole, so it is sent again on a new connection; after a request was sent,
  only an idempotent one (a read) is retried, once, and only on a reused connection. A decision
  is never sent twice.

Every failure is a :class:`TransportError` whose message says what went wrong, in words fit
for a fail-closed reason.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import select
import socket
import ssl
import threading
import time
import urllib.parse
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sentra_runtime import jsontext

DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_IDLE = 8
IDLE_SECONDS = 4.0
"""Idle connections older than this are not reused (the server closes its own after 5 s)."""

_NESTING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class TransportError(Exception):
    """No usable answer; ``str(error)`` says why."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer read whole: status, headers (names in lower case) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def printable(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters with control characters escaped, so that what a
    server sends cannot forge log lines or terminal output."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], cut)


def read_json(body: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """The JSON value of ``body`` (UTF-8); ``ValueError`` saying why when it is not JSON, is
    nested deeper than ``max_depth``, holds ``NaN``/``Infinity`` or an integer too long to
    read."""
    check_depth(body, max_depth)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"the answer is not UTF-8 (byte {error.start})") from None
    try:
        return jsontext.loads(text, constants=False)
    except jsontext.JSONTextError as error:
        if error.position is None:   # JSON, but holding what Python will not read
            raise ValueError(f"the answer holds {error.problem}") from None
        raise ValueError(f"the answer is not JSON ({error})") from None


def check_depth(body: bytes, max_depth: int) -> None:
    """``ValueError`` when ``body`` nests arrays and objects deeper than ``max_depth`` (counted
    outside strings, before parsing, so a hostile answer cannot exhaust the parser's stack)."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return
    depth = 0
    for match in _NESTING.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise ValueError(f"the answer is nested deeper than {max_depth} levels")
        elif token in (b"]", b"}"):
            depth -= 1


class _DeadlineReader(io.RawIOBase):
    """The socket's input, each read waiting at most until the call's deadline."""

    def __init__(self, sock: _DeadlineSocket) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._sock.reader_closed()
        super().close()


class _DeadlineSocket:
    """What ``http.client`` uses of a socket (``sendall``, ``makefile``, ``close``), with every
    wait bounded by the connection's deadline. As with a socket's own ``makefile``, the socket
    closes when it is closed and its last reader is (``http.client`` closes the connection of
    an answer that ends it before reading that answer's body)."""

    def __init__(self, sock: socket.socket, connection: _Deadlined) -> None:
        self.sock = sock
        self._connection = connection
        self._readers = 0
        self._closed = False

    def sendall(self, data: bytes) -> None:
        self.sock.settimeout(self._connection.left())
        self.sock.sendall(data)

    def recv_into(self, buffer: Any) -> int:
        self.sock.settimeout(self._connection.left())
        return self.sock.recv_into(buffer)

    def makefile(self, mode: str) -> io.BufferedReader:
        self._readers += 1
        return io.BufferedReader(_DeadlineReader(self))

    def reader_closed(self) -> None:
        self._readers -= 1
        self._close_when_done()

    def close(self) -> None:
        self._closed = True
        self._close_when_done()

    def _close_when_done(self) -> None:
        if self._closed and self._readers <= 0:
            self.sock.close()


class _Deadlined(http.client.HTTPConnection):
    """An HTTP connection whose every wait ends at ``deadline`` (a ``time.monotonic`` time)."""

    deadline = 0.0
    idle_since = 0.0
    sock: _DeadlineSocket | None
    _outgoing: bytearray | None = None

    def send_whole(self, method: str, url: str, body: bytes | None,
                   headers: Mapping[str, str | bytes]) -> None:
        """Send the request line, the headers and the body in one write (``http.client`` writes
        the body apart, so the server would read the head, then wait for the rest)."""
        self._outgoing = bytearray()
        try:
            self.request(method, url, body=body, headers=headers)
            data = bytes(self._outgoing)
        finally:
            self._outgoing = None
        assert self.sock is not None
        self.sock.sendall(data)

    def send(self, data: Any) -> None:
        if self._outgoing is None:
            super().send(data)
            return
        if self.sock is None:
            self.connect()
        self._outgoing += data

    def left(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the deadline passed")
        return remaining

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.left())
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = _DeadlineSocket(self.secure(sock), self)

    def secure(self, sock: socket.socket) -> socket.socket:
        return sock

    def stale(self) -> bool:
        """Whether the server closed this idle connection, or sent something unasked."""
        if self.sock is None or time.monotonic() - self.idle_since > IDLE_SECONDS:
            return True
        try:
            readable, _, _ = select.select([self.sock.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)


class _DeadlinedTLS(_Deadlined):
    """The same over TLS, checking the server's certificate and name."""

    default_port = http.client.HTTPS_PORT

    def __init__(self, host: str, port: int | None, context: ssl.SSLContext) -> None:
        super().__init__(host, port)
        self.context = context

    def secure(self, sock: socket.socket) -> socket.socket:
        sock.settimeout(self.left())
        try:
            return self.context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


_TRANSPORTS: weakref.WeakSet[Transport] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked process must not use its parent's connections: two processes reading one
    socket could each read the other's answer."""
    for transport in list(_TRANSPORTS):
        transport.forget_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Transport:
    """Requests to one server (``url``: ``http://`` or ``https://``, with an optional path
    prefix), each within its own deadline, over a pool of kept-alive connections (not shared
    with a forked child)."""

    def __init__(self, url: str, *, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
                 max_depth: int = DEFAULT_MAX_DEPTH, max_idle: int = DEFAULT_MAX_IDLE,
                 ssl_context: ssl.SSLContext | None = None, user_agent: str = "sentra-runtime"
                 ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the server URL must be http:// or https:// with a host, not "
                             f"{url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"the server URL may not have a query or fragment: {url!r}")
        self.url = url.rstrip("/")
        self.prefix = parts.path.rstrip("/")
        self.max_response_bytes = max_response_bytes
        self.max_depth = max_depth
        self.user_agent = user_agent
        self._host = parts.hostname
        self._port = parts.port
        self._context = None if parts.scheme == "http" else (
            ssl_context or ssl.create_default_context())
        self._max_idle = max_idle
        self._idle: list[_Deadlined] = []
        self._lock = threading.Lock()
        _TRANSPORTS.add(self)

    def forget_connections(self) -> None:
        """Drop the idle connections without closing them (after a fork, they are the
        parent's), and the lock another thread may have held at the fork."""
        self._lock = threading.Lock()
        self._idle = []

    def request(self, method: str, path: str, *, body: Any = None,
                headers: Mapping[str, str | bytes] | None = None, timeout: float,
                idempotent: bool) -> Answer:
        """Send one request and read its answer whole, within ``timeout`` seconds in all.

        ``body`` is sent as JSON; a header value given as bytes is sent as it is (a token's
        UTF-8 bytes). Raises :class:`TransportError`.
        """
        deadline = time.monotonic() + timeout
        try:
            data = None if body is None else json.dumps(body, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as error:
            raise TransportError(f"the request cannot be sent as JSON ({error})") from None
        sent_headers: dict[str, str | bytes] = {"Accept": "application/json", "User-Agent": self.user_agent,
                        **({} if data is None else {"Content-Type": "application/json"}),
                        **(headers or {})}
        retried = False
        while True:
            connection, reused = self._take()
            connection.deadline = deadline
            try:
                connection.send_whole(method, self.prefix + path, data, sent_headers)
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                if reused and not retried and time.monotonic() < deadline:
                    retried = True    # the request did not leave whole: no decision was made
                    continue
                raise TransportError(self._failure(error, timeout)) from None
            try:
                answer = self._read(connection)
            except (OSError, http.client.HTTPException, ValueError) as error:
                connection.close()
                if idempotent and reused and not retried and time.monotonic() < deadline:
                    retried = True
                    continue
                raise TransportError(self._failure(error, timeout)) from None
            return answer

    def close(self) -> None:
        """Close the idle connections (connections in use close when their call ends)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _take(self) -> tuple[_Deadlined, bool]:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._new(), False
            if not connection.stale():
                return connection, True
            connection.close()

    def _new(self) -> _Deadlined:
        if self._context is not None:
            return _DeadlinedTLS(self._host, self._port, self._context)
        return _Deadlined(self._host, self._port)

    def _give(self, connection: _Deadlined) -> None:
        connection.idle_since = time.monotonic()
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(connection)
                return
        connection.close()

    def _read(self, connection: _Deadlined) -> Answer:
        response = connection.getresponse()
        limit = self.max_response_bytes
        if response.length is not None and response.length > limit:   # its Content-Length
            raise ValueError(f"the answer is larger than {limit} bytes ({response.length})")
        body = bytearray()
        while True:
            chunk = response.read(min(65536, limit + 1 - len(body)))
            if not chunk:
                break
            body += chunk
            if len(body) > limit:
                raise ValueError(f"the answer is larger than {limit} bytes")
        if response.length:   # http.client's read(n) ends quietly where the connection did
            raise http.client.IncompleteRead(bytes(body), response.length)
        headers = {name.lower(): value for name, value in response.getheaders()}
        if response.will_close or response.status < 200:
            # an informational answer (http.client reads none but 100) is not the request's
            # last: its real answer may still come, and must never be read as the next one's
            connection.close()
        else:
            self._give(connection)
        return Answer(response.status, headers, bytes(body))

    def _failure(self, error: BaseException, timeout: float) -> str:
        """What went wrong, in words (the server's text escaped and cut)."""
        where = f"the decision server at {self.url}"
        if isinstance(error, TimeoutError):
            return f"{where} did not answer within the {timeout:g} s deadline"
        if isinstance(error, ConnectionRefusedError):
            return f"{where} is unreachable (connection refused)"
        if isinstance(error, http.client.RemoteDisconnected):
            return f"{where} closed the connection without answering"
        if isinstance(error, ConnectionResetError):
            return f"{where} reset the connection"
        if isinstance(error, http.client.IncompleteRead):
            return (f"{where} sent an incomplete answer (its body ended early, or its chunked "
                    "framing is broken)")
        if isinstance(error, http.client.LineTooLong):
            return f"{where} sent a header line that is too long"
        if isinstance(error, http.client.BadStatusLine):
            return (f"{where} did not answer in HTTP (status line "
                    f"{printable(str(error), 80)})")
        if isinstance(error, ssl.SSLError):
            return f"{where}: TLS failed ({printable(error.reason or str(error))})"
        if isinstance(error, http.client.HTTPException):
            return f"{where} sent a malformed answer ({printable(str(error) or type(error).__name__)})"
        if isinstance(error, ValueError):
            return f"{where} sent an unusable answer: {printable(str(error))}"
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        return f"{where} is unreachable ({printable(reason)})"
