"""A real decision server (uvicorn on a free loopback port, in a thread) for the server tests."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

from sentra_lang.server import create_app
from sentra_lang.server.protocol import uvicorn_settings

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "policies" / "sentra.sentra"
TOKEN = "test-operator-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Server:
    """One running server; ``request`` speaks HTTP/1.1 over a kept-alive connection per thread."""

    def __init__(self, policy: Path, db: Path, token: str | None, *,
                 read_token: str | None = None, header_timeout: float = 10.0,
                 body_timeout: float = 10.0, **options: Any) -> None:
        self.policy, self.db, self.token = policy, db, token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(policy, db, operator_token=token, read_token=read_token,
                              **options)
        settings = uvicorn_settings("127.0.0.1", self.port, header_timeout=header_timeout,
                                    body_timeout=body_timeout, log_level="error")
        self.server = uvicorn.Server(uvicorn.Config(self.app, **{
            **settings, "timeout_graceful_shutdown": 1}))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.local = threading.local()
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                token: str | None = None, headers: dict[str, str] | None = None) -> Response:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.local.connection = connection
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        try:
            connection.request(method, path, body=data, headers=sent)
            reply = connection.getresponse()
        except (http.client.HTTPException, OSError):
            connection.close()
            connection.request(method, path, body=data, headers=sent)
            reply = connection.getresponse()
        text = reply.read().decode("utf-8")
        return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, text)

    def get(self, path: str, **options: Any) -> Response:
        return self.request("GET", path, **options)

    def post(self, path: str, body: Any = None, **options: Any) -> Response:
        return self.request("POST", path, body, **options)

    def act(self, agent: str, action: str, **fields: Any) -> dict[str, Any]:
        response = self.post("/agent-action", {"agent_id": agent, "action_type": action, **fields})
        assert response.status == 200, response.text
        return dict(response.json())

    def decide(self, agent: str, action: str = "EXPORT",
               fields: dict[str, Any] | None = None) -> dict[str, Any]:
        """``POST /v1/decide`` (with the operator token), answered 200; its decision."""
        response = self.post("/v1/decide", {"agent_id": agent, "action": action,
                                            "fields": fields or {}}, token=self.token)
        assert response.status == 200, response.text
        return dict(response.json()["decision"])

    def head(self, token: str | None = None) -> int:
        return int(self.get("/v1/events?limit=1", token=token).json()["head"])

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The shared server: tests use their own agent ids (``agent`` fixture)."""
    running = Server(POLICY, tmp_path_factory.mktemp("server") / "sentra.db", TOKEN)
    yield running
    running.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own (global resets, reloads)."""
    running = Server(POLICY, tmp_path / "sentra.db", TOKEN)
    yield running
    running.stop()


Serve = Callable[..., Server]
"""``serve(SOURCE, NAME="policy.sentra", DB="sentra.db", **Server options)``: a server of the
test's own on a policy source (the ``serve`` fixture)."""


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Start servers of the test's own on policy sources; each is stopped after the test."""
    started: list[Server] = []

    def start(source: str, name: str = "policy.sentra", db: str = "sentra.db",
              **options: Any) -> Server:
        policy = tmp_path / name
        policy.write_text(source, encoding="utf-8")
        started.append(Server(policy, tmp_path / db, TOKEN, **options))
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def agent() -> str:
    return f"agent-{uuid.uuid4().hex[:10]}"


def raw_request(port: int, data: bytes, *, timeout: float = 10.0) -> Response:
    """Send ``data`` as it is on a new connection and read one answer (until the server closes
    the connection or the answer's Content-Length is read)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(data)
        return read_answer(connection)


def read_answer(connection: socket.socket) -> Response:
    """One HTTP answer from ``connection`` (the status 0 when the server closed without one)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            return Response(0, {}, received.decode("latin-1"))
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip()
               for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "-1"))
    while length < 0 or len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return Response(int(lines[0].split()[1]), headers, body.decode("utf-8", "replace"))


def http_request(method: str, path: str, port: int, *, body: bytes = b"",
                 headers: dict[str, str] | None = None, chunked: bool = False) -> bytes:
    """The bytes of one HTTP/1.1 request (Host, and Content-Length or chunked, filled in)."""
    sent = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    if chunked:
        sent["Transfer-Encoding"] = "chunked"
    elif body or method == "POST":
        sent["Content-Length"] = str(len(body))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in sent.items())
    if not chunked:
        return head.encode("latin-1") + b"\r\n" + body
    pieces = [body[at:at + 4096] for at in range(0, len(body), 4096)]
    framed = b"".join(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in pieces)
    return head.encode("latin-1") + b"\r\n" + framed + b"0\r\n\r\n"
