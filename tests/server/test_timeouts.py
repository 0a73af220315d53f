"""Read deadlines with real slow sockets: a client that is slow to send a request's head or body
gets 408 and its connection is closed; decisions go on meanwhile (docs/server.md, "Limits and
timeouts")."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import POLICY, TOKEN, Server, read_answer

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5
SLACK = 2.0


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(POLICY, tmp_path_factory.mktemp("timeouts") / "s.db", TOKEN,
                     header_timeout=HEADER_TIMEOUT, body_timeout=BODY_TIMEOUT)
    yield running
    running.stop()


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=HEADER_TIMEOUT * 10)


def closed_after(connection: socket.socket) -> tuple[int, float]:
    """The status the server sends before it closes the connection, and when it closed."""
    answer = read_answer(connection)
    while connection.recv(4096):
        pass
    return answer.status, time.monotonic()


def test_a_client_that_sends_nothing_is_closed(strict_server: Server) -> None:
    started = time.monotonic()
    with connect(strict_server) as connection:
        status, ended = closed_after(connection)
    assert status == 408
    assert HEADER_TIMEOUT * 0.9 <= ended - started <= HEADER_TIMEOUT + SLACK


def test_a_head_sent_one_byte_at_a_time_is_cut_off(strict_server: Server) -> None:
    """Each byte arrives well within any idle timeout; the head as a whole does not."""
    head = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{strict_server.port}\r\n".encode()
    started = time.monotonic()
    with connect(strict_server) as connection:
        for byte in head:
            try:
                connection.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.1)
        status, ended = closed_after(connection)
    assert status == 408
    assert ended - started <= HEADER_TIMEOUT + SLACK + 0.2


def test_a_body_sent_slowly_is_cut_off_and_nothing_is_written(strict_server: Server) -> None:
    body = b'{"agent_id":"slow-body","action_type":"CHANGE_PERMISSION"}'
    head = (f"POST /agent-action HTTP/1.1\r\nHost: 127.0.0.1:{strict_server.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    before = strict_server.head()
    with connect(strict_server) as connection:
        connection.sendall(head)
        started = time.monotonic()
        for byte in body[:20]:
            try:
                connection.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.1)
        status, ended = closed_after(connection)
    assert status == 408
    assert ended - started <= BODY_TIMEOUT + SLACK
    assert strict_server.head() == before
    assert strict_server.get("/v1/agents/slow-body").json()["known"] is False


def test_the_next_request_on_a_kept_alive_connection_has_a_deadline(strict_server: Server) -> None:
    request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{strict_server.port}\r\n\r\n".encode()
    with connect(strict_server) as connection:
        connection.sendall(request)
        assert read_answer(connection).status == 200
        connection.sendall(b"GET /hea")     # the start of a second request, never finished
        started = time.monotonic()
        status, ended = closed_after(connection)
    assert status == 408
    assert ended - started <= HEADER_TIMEOUT + SLACK


@pytest.mark.slow
def test_fifty_slow_connections_are_closed_and_decisions_go_on(strict_server: Server,
                                                                agent: str) -> None:
    """50 slow connections used to stay open for 60 s and more."""
    slow = [connect(strict_server) for _ in range(50)]
    try:
        for connection in slow[::2]:
            connection.sendall(b"POST /agent-action HTTP/1.1\r\n")
        assert strict_server.act(agent, "FILE_READ")["decision"] == "Allowed"
        deadline = time.monotonic() + HEADER_TIMEOUT + SLACK
        for connection in slow:
            connection.settimeout(max(0.1, deadline - time.monotonic()))
            status, _ = closed_after(connection)
            assert status == 408
        assert time.monotonic() <= deadline + 0.5
        assert strict_server.act(agent, "FILE_READ")["decision"] == "Allowed"
    finally:
        for connection in slow:
            connection.close()


@pytest.mark.slow
def test_a_streaming_answer_is_not_cut_off(strict_server: Server) -> None:
    """The deadlines cover what the client sends, not how long an answer lasts."""
    with connect(strict_server) as connection:
        connection.sendall(f"GET /v1/events/stream HTTP/1.1\r\nHost: 127.0.0.1:"
                           f"{strict_server.port}\r\n\r\n".encode())
        connection.settimeout(HEADER_TIMEOUT + BODY_TIMEOUT + SLACK)
        received = b""
        while b"\r\n\r\n" not in received:
            received += connection.recv(4096)
        assert received.startswith(b"HTTP/1.1 200")
        time.sleep(HEADER_TIMEOUT + BODY_TIMEOUT)
        strict_server.act("streamed-agent", "FILE_READ")
        while b"streamed-agent" not in received:
            chunk = connection.recv(65536)
            assert chunk, "the stream was closed"
            received += chunk


def test_serve_takes_the_timeouts_as_options(tmp_path: Path) -> None:
    from sentra_lang.cli import main

    for option in ("--header-timeout", "--body-timeout"):
        assert main(["serve", str(POLICY), "--db", str(tmp_path / "x.db"), option, "0"]) == 2
