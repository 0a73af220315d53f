"""Adversarial probes of the HTTP client SDK, the MCP gateway and the server's request edge.

The SDK is pointed at a real hostile HTTP server (stdlib ``http.server`` on a loopback port:
the adversary, not the thing under test), and the server is a real uvicorn on a free port.
Each test states the documented promise it checks (docs/integrations.md, docs/runtime.md "The
SDK", docs/server.md).
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sentra_runtime import Engine
from sentra_runtime.client import RemoteEngine, SentraError
from tests.sdk.conftest import SENTRA_POLICY, table_of

Answer = tuple[int, dict[str, str], bytes]
Respond = Callable[[str, str, bytes], Answer]


class Adversary:
    """A hostile decision server: ``respond(method, path, body)`` gives each answer."""

    def __init__(self, respond: Respond) -> None:
        self.requests: list[tuple[str, str]] = []
        adversary = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                adversary.requests.append((self.command, self.path))
                status, headers, data = respond(self.command, self.path, body)
                self.send_response(status)
                for name, value in {"Content-Type": "application/json",
                                    "Content-Length": str(len(data)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_answer(value: Any, status: int = 200) -> Answer:
    return status, {}, json.dumps(value).encode()


@pytest.fixture
def adversary() -> Iterator[Callable[[Respond], Adversary]]:
    started: list[Adversary] = []

    def start(respond: Respond) -> Adversary:
        started.append(Adversary(respond))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def allowed() -> dict[str, Any]:
    """A real allowed decision on the wire, as the server sends it."""
    return Engine(table_of(SENTRA_POLICY)).evaluate("a", "FILE_READ").to_dict(explanation=True)


# --- paging: a listing must end ------------------------------------------------------------

@pytest.mark.parametrize(("call", "page"), [
    ("agents", {"agents": [{"agent_id": "x"}], "next_after": "x"}),
    ("agents", {"agents": [], "next_after": "x"}),
    ("tickets", {"tickets": [{"ticket": "rv_x"}], "next_after": "rv_x"}),
    ("tickets", {"tickets": [], "next_after": "rv_x"}),
])
def test_a_listing_whose_pages_do_not_advance_is_an_error_not_a_hang(
        adversary: Callable[[Respond], Adversary], call: str, page: dict[str, Any]) -> None:
    """`agents()` and `tickets()` read every page; a server whose `next_after` names the page
    it just sent (or an empty page) would have them loop forever: a SentraError instead."""
    server = adversary(lambda method, path, body: json_answer(page))
    engine = RemoteEngine(server.url, timeout=2.0)
    result: list[BaseException | None] = []

    def listing() -> None:
        try:
            getattr(engine, call)()
            result.append(None)
        except BaseException as error:   # what the call raised, for the main thread to check
            result.append(error)

    worker = threading.Thread(target=listing, daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), f"{call}() still paging after 5 s"
    assert isinstance(result[0], SentraError) and "page" in str(result[0]), result
    assert len(server.requests) <= 3
    engine.close()

