"""The browser tests' websocket framing (tests/browser.py), without a browser: RFC 6455 frames
encoded and decoded, client masking, the three length encodings, fragmented messages and control
frames in between, over a socket pair."""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from tests.browser import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    BrowserError,
    WebSocket,
    decode_frame,
    encode_frame,
    mask_bytes,
)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 200_000])
@pytest.mark.parametrize("mask", [True, False])
def test_round_trip(size: int, mask: bool) -> None:
    payload = os.urandom(size)
    data = encode_frame(OP_BINARY, payload, mask=mask)
    frame, used = decode_frame(data)
    assert used == len(data)
    assert (frame.fin, frame.opcode, frame.payload, frame.masked) == (True, OP_BINARY, payload, mask)


@pytest.mark.parametrize(("size", "marker", "header"), [
    (125, 125, 2), (126, 126, 4), (65535, 126, 4), (65536, 127, 10)])
def test_length_encodings(size: int, marker: int, header: int) -> None:
    data = encode_frame(OP_TEXT, b"a" * size, mask=False)
    assert data[0] == 0x80 | OP_TEXT
    assert data[1] == marker  # mask bit clear: a server's frame
    assert len(data) == header + size
    if marker == 126:
        assert struct.unpack("!H", data[2:4])[0] == size
    elif marker == 127:
        assert struct.unpack("!Q", data[2:10])[0] == size


def test_client_frames_are_masked_with_the_key() -> None:
    key = b"\x37\xfa\x21\x3d"
    data = encode_frame(OP_TEXT, b"Hello", mask_key=key)
    # RFC 6455 5.7: a single-frame masked text message "Hello"
    assert data == bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
    frame, _ = decode_frame(data)
    assert frame.masked and frame.payload == b"Hello"


def test_masked_large_frame_carries_key_after_the_64_bit_length() -> None:
    key = b"\x01\x02\x03\x04"
    payload = bytes(range(256)) * 256  # 65536 bytes
    data = encode_frame(OP_BINARY, payload, mask_key=key)
    assert data[1] == 0x80 | 127
    assert data[10:14] == key
    assert data[14:] == mask_bytes(payload, key) != payload
    assert decode_frame(data)[0].payload == payload


def test_masking_is_its_own_inverse() -> None:
    key = os.urandom(4)
    for size in (0, 1, 3, 4, 5, 1000):
        payload = os.urandom(size)
        assert mask_bytes(mask_bytes(payload, key), key) == payload
    assert mask_bytes(b"\x00\x00\x00\x00\x00", b"abcd") == b"abcda"


def test_fragment_flag_and_control_frame_limits() -> None:
    frame, _ = decode_frame(encode_frame(OP_TEXT, b"part", fin=False))
    assert not frame.fin and frame.opcode == OP_TEXT
    with pytest.raises(ValueError):
        encode_frame(OP_PING, b"x" * 126)
    with pytest.raises(ValueError):
        encode_frame(OP_CLOSE, b"", fin=False)
    with pytest.raises(EOFError):
        decode_frame(encode_frame(OP_TEXT, b"abc")[:-1])
    with pytest.raises(BrowserError):
        decode_frame(bytes([0xC1, 0x00]))  # RSV1 without an extension


class Peer:
    """A socket pair: the client side wrapped in WebSocket, the server side written raw."""

    def __init__(self) -> None:
        self.server, client = socket.socketpair()
        self.server.settimeout(5)
        self.client = WebSocket.from_socket(client)
        self.threads: list[threading.Thread] = []

    def send(self, *frames: bytes) -> None:
        # from a thread, so large messages do not fill the socket buffer before anyone reads
        thread = threading.Thread(target=self.server.sendall, args=(b"".join(frames),))
        thread.start()
        self.threads.append(thread)

    def read_frame(self) -> tuple[int, bytes, bool]:
        buffer = b""
        while True:
            try:
                frame, used = decode_frame(buffer)
            except EOFError:
                buffer += self.server.recv(65536)
                continue
            assert used == len(buffer)
            return frame.opcode, frame.payload, frame.masked

    def close(self) -> None:
        for thread in self.threads:
            thread.join(5)
        self.client.close()
        self.server.close()


@pytest.fixture
def peer() -> Iterator[Peer]:
    running = Peer()
    yield running
    running.close()


def test_fragmented_message_with_a_ping_in_between(peer: Peer) -> None:
    text = "é" * 40_000  # 80,000 bytes of UTF-8, split inside a character
    data = text.encode()
    peer.send(encode_frame(OP_TEXT, data[:33_333], fin=False, mask=False),
              encode_frame(OP_PING, b"still there?", mask=False),
              encode_frame(OP_CONTINUATION, data[33_333:70_000], fin=False, mask=False),
              encode_frame(OP_CONTINUATION, data[70_000:], mask=False),
              encode_frame(OP_TEXT, b"next", mask=False))
    assert peer.client.recv_text(timeout=5) == text
    assert peer.read_frame() == (OP_PONG, b"still there?", True)
    assert peer.client.recv_text(timeout=5) == "next"


def test_large_single_frame_message(peer: Peer) -> None:
    payload = ("x" * 3_000_000).encode()
    peer.send(encode_frame(OP_TEXT, payload, mask=False))
    assert peer.client.recv_text(timeout=10) == payload.decode()


def test_client_sends_masked_text(peer: Peer) -> None:
    for size in (5, 126, 65536):
        peer.client.send_text("y" * size)
        assert peer.read_frame() == (OP_TEXT, b"y" * size, True)


def test_close_and_timeouts(peer: Peer) -> None:
    with pytest.raises(TimeoutError):
        peer.client.recv_message(timeout=0.2)
    peer.send(encode_frame(OP_CLOSE, struct.pack("!H", 1001) + b"bye", mask=False))
    with pytest.raises(BrowserError, match="1001"):
        peer.client.recv_message(timeout=5)
    assert peer.read_frame()[0] == OP_CLOSE  # the close is answered
    assert peer.client.closed


def test_continuation_without_a_start_is_an_error(peer: Peer) -> None:
    peer.send(encode_frame(OP_CONTINUATION, b"orphan", mask=False))
    with pytest.raises(BrowserError, match="continuation"):
        peer.client.recv_message(timeout=5)
