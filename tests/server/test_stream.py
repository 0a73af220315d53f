"""The live stream: one broadcaster pushes each record to every open stream, in order, with
nothing missed or repeated between a stream's reading of the log and the live part; a client
that falls behind is dropped, not waited for (docs/server.md, "The live stream")."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import Engine, SQLiteStore

from sentra_lang import load_policy_file
from tests.server.conftest import POLICY, TOKEN, Server


@dataclass
class Stream:
    """A stream client on a raw socket, reading its messages in a thread."""

    server: Server
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)
    read: bool = True

    def __post_init__(self) -> None:
        self.socket = socket.socket()
        if not self.read:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.socket.connect(("127.0.0.1", self.server.port))
        head = (f"GET /v1/events/stream{self.query} HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                "".join(f"{k}: {v}\r\n" for k, v in self.headers.items()) + "\r\n")
        self.socket.sendall(head.encode())
        self.opened = threading.Event()
        if self.read:
            threading.Thread(target=self._read, daemon=True).start()
            assert self.opened.wait(10)

    def _read(self) -> None:
        buffer = b""
        try:
            while True:
                chunk = self.socket.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                if not self.opened.is_set() and b"\r\n\r\n" in buffer:
                    self.opened.set()
                for line in buffer.split(b"\n")[:-1]:
                    self._line(line.decode("utf-8").rstrip("\r"))
                buffer = buffer.rsplit(b"\n", 1)[-1]
        except OSError:
            pass
        finally:
            self.opened.set()
            self.closed.set()

    def _line(self, line: str) -> None:
        if line.startswith("data: "):
            self.messages.append(json.loads(line[6:]))
        elif line.startswith(": "):
            self.comments.append(line[2:])

    def seqs(self) -> list[int]:
        return [message["seq"] for message in self.messages]

    def wait_for(self, count: int, seconds: float = 20.0) -> list[int]:
        deadline = time.monotonic() + seconds
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.seqs()

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def streams() -> Iterator[list[Stream]]:
    opened: list[Stream] = []
    yield opened
    for stream in opened:
        stream.close()


def test_every_stream_gets_every_record_once_in_order(own_server: Server,
                                                      streams: list[Stream]) -> None:
    head = own_server.head()
    everyone = [Stream(own_server, f"?after={head}") for _ in range(30)]
    mine = Stream(own_server, f"?after={head}&agent=a-1")
    blocked = Stream(own_server, f"?after={head}&decision=Blocked")
    streams.extend([*everyone, mine, blocked])
    for number in range(60):
        own_server.act(f"a-{number % 3}", "CHANGE_PERMISSION" if number % 10 == 0 else "FILE_READ")
    own_server.post("/v1/reset", token=TOKEN)
    expected = list(range(head + 1, head + 62))
    for stream in everyone:
        assert stream.wait_for(61) == expected
    mine.wait_for(20)
    assert [m["agent"] for m in mine.messages] == ["a-1"] * 20
    blocked.wait_for(6)
    assert {m["decision"]["label"] for m in blocked.messages} == {"Blocked"}
    assert len(blocked.messages) == 6
    assert everyone[0].messages[-1]["kind"] == "reset"


@pytest.mark.slow
def test_a_stream_reads_the_log_then_joins_live_without_gaps(own_server: Server,
                                                             streams: list[Stream]) -> None:
    """More records than one read of the log, written while streams join."""
    start = own_server.head()
    writer = threading.Thread(target=lambda: [own_server.act(f"w-{n % 7}", "FILE_READ")
                                              for n in range(1500)])
    writer.start()
    time.sleep(0.3)
    late = []
    for _ in range(5):
        late.append(Stream(own_server, f"?after={start}"))
        streams.append(late[-1])
        time.sleep(0.2)
    writer.join()
    total = own_server.head() - start
    for stream in late:
        assert resumed(stream, total) == list(range(start + 1, start + total + 1))


def resumed(stream: Stream, total: int) -> list[int]:
    """The seqs a client gets as a browser does: when the server drops it as too slow, it
    reconnects with `Last-Event-ID` and goes on."""
    seqs: list[int] = []
    while True:
        stream.wait_for(total - len(seqs))
        seqs.extend(stream.seqs())
        if len(seqs) >= total or not stream.closed.wait(1):
            return seqs
        assert any(comment.startswith("dropped") for comment in stream.comments)
        stream.close()
        stream = Stream(stream.server, headers={"Last-Event-ID": str(seqs[-1])})


def test_a_stream_resumes_from_last_event_id(own_server: Server, streams: list[Stream]) -> None:
    first = own_server.act("resumer", "FILE_READ")
    assert first["decision"] == "Allowed"
    seen = own_server.head()
    own_server.act("resumer", "DELETE_RECORD")
    own_server.act("resumer", "FILE_READ")
    resumed = Stream(own_server, headers={"Last-Event-ID": str(seen)})
    streams.append(resumed)
    assert resumed.wait_for(2) == [seen + 1, seen + 2]
    own_server.act("resumer", "FILE_READ")
    assert resumed.wait_for(3) == [seen + 1, seen + 2, seen + 3]
    assert resumed.messages[0]["event"]["policy_triggered"] == "RISKY_DELETE_RECORD"


def test_records_another_process_writes_reach_the_stream(own_server: Server,
                                                         streams: list[Stream]) -> None:
    stream = Stream(own_server)
    streams.append(stream)
    head = own_server.head()
    other = SQLiteStore(own_server.db)
    try:
        Engine(load_policy_file(POLICY).table, other).evaluate("elsewhere", "FILE_READ", {})
    finally:
        other.close()
    # the other engine's policy load, then its decision, within the one-second poll
    assert stream.wait_for(2, seconds=5) == [head + 1, head + 2]
    assert stream.messages[1]["agent"] == "elsewhere"


@pytest.mark.slow
def test_a_client_that_does_not_read_is_dropped_and_the_others_go_on(
        own_server: Server, streams: list[Stream]) -> None:
    head = own_server.head()
    stuck = Stream(own_server, f"?after={head}", read=False)
    reader = Stream(own_server, f"?after={head}")
    streams.extend([stuck, reader])
    broadcast = own_server.app.state.broadcast
    deadline = time.monotonic() + 60
    count = 0
    while broadcast.dropped == 0 and time.monotonic() < deadline:
        for _ in range(100):
            own_server.act(f"load-{count % 5}", "FILE_READ", target="x" * 2000)
            count += 1
    assert broadcast.dropped == 1, "the stuck client was never dropped"
    stuck.socket.settimeout(10)
    ending = b""
    while chunk := stuck.socket.recv(65536):   # the server closes the connection once drained
        ending = (ending + chunk)[-200:]
    assert b": dropped: this client fell behind; reconnect to resume" in ending
    assert reader.wait_for(count) == list(range(head + 1, head + count + 1))
    assert len(broadcast.subscribers) == 1


def test_the_stream_ends_when_the_server_stops(tmp_path: Path) -> None:
    running = Server(POLICY, tmp_path / "s.db", TOKEN)
    stream = Stream(running)
    started = time.monotonic()
    running.stop()
    assert stream.closed.wait(10)
    assert time.monotonic() - started < 10
