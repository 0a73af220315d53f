"""An answer's head and body leave in one write (`protocol.OneWrite`), on real sockets: what
the peer receives is every write, in order, whatever the pattern of writes and loop turns; a
held write leaves on the loop's next turn (a streamed answer's head is not delayed) and before
the connection closes; and the real server writes through it."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentra_lang.server.protocol import OneWrite
from tests.server.conftest import Server


class Receiver(asyncio.Protocol):
    """The peer: keeps what arrives, and whether the connection ended."""

    def __init__(self) -> None:
        self.data = b""
        self.ended = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended.set_result(None)


class Counted:
    """A real transport, with the writes that reach it counted."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def connected() -> tuple[OneWrite, Counted, Receiver]:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    _, peer = await loop.connect_accepted_socket(Receiver, theirs)
    counted = Counted(transport)   # type: ignore[arg-type]
    return OneWrite(counted, loop), counted, peer   # type: ignore[arg-type]


async def received(peer: Receiver, size: int) -> bytes:
    for _ in range(200):
        if len(peer.data) >= size:
            break
        await asyncio.sleep(0.005)
    return peer.data


def test_a_head_and_body_written_together_are_one_write() -> None:
    async def run() -> None:
        writer, counted, peer = await connected()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        writer.write(b"{}")
        assert counted.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
        assert await received(peer, 40) == counted.writes[0]
        writer.close()

    asyncio.run(run())


def test_a_lone_write_leaves_on_the_next_turn_and_before_a_close() -> None:
    async def run() -> None:
        writer, counted, peer = await connected()
        writer.write(b"head")
        assert counted.writes == []
        await asyncio.sleep(0)
        assert counted.writes == [b"head"]
        writer.write(b"last")
        writer.close()
        await asyncio.wait_for(peer.ended, 5)
        assert peer.data == b"headlast"

    asyncio.run(run())


def test_a_write_held_when_the_connection_is_lost_goes_nowhere() -> None:
    async def run() -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _, context: errors.append(context))
        writer, counted, peer = await connected()
        writer.write(b"head")
        counted.transport.close()   # the client left before the loop's next turn
        await asyncio.wait_for(peer.ended, 5)
        await asyncio.sleep(0)
        assert counted.writes == [] and peer.data == b""
        return errors

    assert asyncio.run(run()) == []
    uvloop = pytest.importorskip("uvloop")   # the server's loop: a write after close raises
    assert uvloop.run(run()) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.binary(min_size=1, max_size=64), st.just(None)), max_size=12))
def test_the_peer_receives_every_write_in_order(steps: list[bytes | None]) -> None:
    """``None`` is a turn of the loop between writes."""
    async def run() -> None:
        writer, counted, peer = await connected()
        for step in steps:
            if step is None:
                await asyncio.sleep(0)
            else:
                writer.write(step)
        writer.close()
        await asyncio.wait_for(peer.ended, 5)
        sent = b"".join(step for step in steps if step is not None)
        assert peer.data == sent == b"".join(counted.writes)
        assert len(counted.writes) <= max(1, len(steps))

    asyncio.run(run())


def test_the_server_answers_through_one_write(server: Server) -> None:
    """Every connection of the real server writes through :class:`OneWrite` (whose writes the
    tests above check on real sockets)."""
    body = b'{"agent_id": "one-write", "action_type": "FILE_READ"}'
    request = (b"POST /agent-action HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
               b"application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
               + body)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(request)
        assert connection.recv(65536).startswith(b"HTTP/1.1 200 ")
        connections = list(server.server.server_state.connections)
        assert connections
        assert all(isinstance(protocol.transport, OneWrite) for protocol in connections)
