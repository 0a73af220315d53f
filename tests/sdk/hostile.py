"""A misbehaving decision server: real sockets on a loopback port, one failure mode at a time.

``GET /v1/policy`` is answered correctly (so a remote guard knows the declared fields; unless
``answers_policy`` is false) and every other request gets the failure under test. The server counts the connections it accepted and the
requests it read, so a test can tell that a decision was never sent twice.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sentra_runtime import Engine

Respond = Callable[[socket.socket, "Request"], None]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes


def http_answer(status: int, body: bytes, headers: dict[str, str] | None = None,
                reason: str = "X") -> bytes:
    head = {"Content-Type": "application/json", "Content-Length": str(len(body)),
            **(headers or {})}
    lines = "".join(f"{name}: {value}\r\n" for name, value in head.items())
    return f"HTTP/1.1 {status} {reason}\r\n{lines}\r\n".encode("latin-1") + body


class Answers:
    """The correct answers of a decision server on ``table``, for the modes to spoil."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.table = table
        engine = Engine(table)
        self.decision = engine.evaluate("agent", "FILE_READ").to_dict(explanation=True)

    def correct(self, request: Request, agent: str = "agent") -> bytes:
        """The body a real server would send for ``request`` (for agent ``agent``)."""
        if request.path == "/v1/policy":
            return json.dumps({"hash": self.table["hash"], "table": self.table}).encode()
        if request.path == "/v1/decide":
            return json.dumps({"seq": 7, "decision": {**self.decision, "agent_id": agent}}).encode()
        return json.dumps({"agent_id": agent, "decision": "Allowed", "reason": "Routine.",
                           "attempted_risk": 0}).encode()


def _reset(connection: socket.socket) -> None:
    """Close with a TCP reset (linger 0) rather than a clean end."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


class HostileServer:
    """Serves ``respond(connection, request)`` for every POST on a loopback port."""

    def __init__(self, answers: Answers, tls: ssl.SSLContext | None = None) -> None:
        self.answers = answers
        self.tls = tls
        self.respond: Respond = close_at_once
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.answers_policy = True
        self.connections = 0
        self.spoiled: list[Request] = []
        """The requests that got the failure under test."""
        self._open: list[socket.socket] = []
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            if self.tls is not None:
                connection = self.tls.wrap_socket(connection, server_side=True)
            while not self._stopped:
                request = self._read(connection)
                if request is None:
                    return
                if request.path == "/v1/policy" and self.answers_policy:
                    connection.sendall(http_answer(200, self.answers.correct(request)))
                    continue
                self.spoiled.append(request)
                self.respond(connection, request)
                if connection.fileno() == -1:
                    return
        except OSError:
            return

    def _read(self, connection: socket.socket) -> Request | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                return None
            if data == b"" and chunk[:1] == b"\x16":   # a TLS handshake: not HTTP
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                connection.close()
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        while len(body) < length:
            chunk = connection.recv(65536)
            if not chunk:
                return None
            body += chunk
        return Request(method, path, body)

    def stop(self) -> None:
        self._stopped = True
        self.listener.close()
        for connection in self._open:
            with contextlib.suppress(OSError):
                connection.close()


# -- the failure modes ------------------------------------------------------------------------


def silent(connection: socket.socket, request: Request) -> None:
    time.sleep(30)


def drip(answers: Answers) -> Respond:
    def respond(connection: socket.socket, request: Request) -> None:
        for byte in http_answer(200, answers.correct(request)):
            connection.sendall(bytes([byte]))
            time.sleep(0.3)
    return respond


def endless_continue(connection: socket.socket, request: Request) -> None:
    for _ in range(300):
        connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        time.sleep(0.1)


def raw(data: bytes, *, then_reset: bool = False) -> Respond:
    def respond(connection: socket.socket, request: Request) -> None:
        connection.sendall(data)
        if then_reset:
            time.sleep(0.05)
            _reset(connection)
        else:
            connection.close()
    return respond


def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> Respond:
    def respond(connection: socket.socket, request: Request) -> None:
        connection.sendall(http_answer(status, body, headers))
    return respond


def close_at_once(connection: socket.socket, request: Request) -> None:
    connection.close()


def huge_chunked(connection: socket.socket, request: Request) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n")
    piece = b"[" + b"0," * 32767 + b"0]"
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    for _ in range(200):   # 13 MB, more than the client reads
        connection.sendall(chunk)


def wrong_agent(answers: Answers) -> Respond:
    def respond(connection: socket.socket, request: Request) -> None:
        connection.sendall(http_answer(200, answers.correct(request, agent="someone-else")))
    return respond


def wrong_shape(connection: socket.socket, request: Request) -> None:
    body = {"/v1/decide": b'{"seq": 1, "decision": {"allowed": true, "label": "Allowed"}}',
            "/v1/policy": b'{"hash": "sha256:0", "table": {"policy": 5}}',
            }.get(request.path, b'{"agent_id": "agent", "decision": 5}')
    connection.sendall(http_answer(200, body))


def fixed(respond: Respond) -> Callable[[Answers], Respond]:
    return lambda answers: respond


DETAIL = json.dumps({"detail": "boom"}).encode()
MODES: dict[str, tuple[Callable[[Answers], Respond], str]] = {
    "slow drip": (drip, "did not answer within the 2 s deadline"),
    "silent": (fixed(silent), "did not answer within"),
    "endless 100 Continue": (fixed(endless_continue), "did not answer within"),
    "bad status line": (fixed(raw(b"SPEAK FRIEND AND ENTER\r\n\r\n")), "did not answer in HTTP"),
    "truncated body": (fixed(raw(http_answer(200, b'{"seq": 1}')[:-4])), "its body ended early"),
    "over-long header": (fixed(raw(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n")),
                         "header line that is too long"),
    "too many headers": (fixed(raw(b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 150 + b"\r\n")),
                         "more than 100 headers"),
    "200,000 nested [": (fixed(raw(http_answer(200, b"[" * 200_000))), "nested deeper than 64"),
    "body over the size limit": (fixed(huge_chunked), "larger than 8388608 bytes"),
    "Content-Length over the size limit": (
        fixed(raw(b"HTTP/1.1 200 OK\r\nContent-Length: 20000000\r\n\r\n[")),
        "larger than 8388608 bytes (20000000)"),
    "reset mid-body": (fixed(raw(http_answer(200, b"x" * 5000)[:2000], then_reset=True)),
                       "reset the connection"),
    "closed without an answer": (fixed(close_at_once), "closed the connection without answering"),
    "500": (fixed(answer(500, DETAIL)), "answered 500: boom"),
    "503 without a body": (fixed(answer(503, b"")), "answered 503: no body"),
    "not JSON": (fixed(answer(200, b"<html>not a decision</html>")), "is not JSON"),
    "not UTF-8": (fixed(answer(200, b'{"reason": "\xff\xfe"}')), "not UTF-8"),
    "NaN in JSON": (fixed(answer(200, b'{"seq": NaN}')), "holds `NaN`, which is not JSON"),
    "wrong JSON shape": (fixed(wrong_shape), "decision"),
    "another agent's decision": (wrong_agent, "someone-else"),
    "redirect": (fixed(answer(307, b"", {"Location": "http://evil.example/steal"})),
                 "redirect to http://evil.example/steal (not followed)"),
    "401": (fixed(answer(401, json.dumps({"detail": "token missing"}).encode())),
            "answered 401: the token is missing or wrong"),
    "403": (fixed(answer(403, b'{"detail": "no"}')), "answered 403"),
    "bad chunk size": (fixed(raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")),
                       "its chunked framing is broken"),
}
"""Each failure mode: how the server misbehaves, and what the fail-closed reason says."""
