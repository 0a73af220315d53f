"""Real processes for the gateway tests: `sentra-lang mcp-proxy` wrapping the FastMCP server in
fake_tools_server.py, driven by the `mcp` SDK's ClientSession over stdio."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

HERE = Path(__file__).resolve().parent
TOOLS_POLICY = HERE / "tools.sentra"
FAKE_SERVER = HERE / "fake_tools_server.py"
ROOT = HERE.parents[1]


@dataclass
class Setup:
    """One gateway's files: the fake server's call log and the state database."""

    folder: Path
    agent: str = "agent"

    @property
    def log(self) -> Path:
        return self.folder / "calls.jsonl"

    @property
    def db(self) -> Path:
        return self.folder / "gateway.db"

    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        """The tool calls that reached the wrapped server."""
        if not self.log.exists():
            return []
        return [(item["tool"], item["arguments"]) for item in
                map(json.loads, self.log.read_text().splitlines())]

    def proxy(self, *options: str, policy: Path = TOOLS_POLICY,
              command: tuple[str, ...] | None = None) -> StdioServerParameters:
        """The gateway's command line, wrapping the fake server (or ``command``)."""
        wrapped = command or (sys.executable, str(FAKE_SERVER))
        return StdioServerParameters(
            command=sys.executable,
            args=["-m", "sentra_lang", "mcp-proxy", str(policy), "--agent-id", self.agent,
                  *options, "--", *wrapped],
            env={**os.environ, "FAKE_TOOLS_LOG": str(self.log), "PYTHONPATH": str(ROOT)},
            cwd=str(ROOT))

    def direct(self) -> StdioServerParameters:
        """The fake server on its own, for comparison."""
        return StdioServerParameters(command=sys.executable, args=[str(FAKE_SERVER)],
                                     env={**os.environ, "FAKE_TOOLS_LOG": str(self.log)})


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def reviewing_policy(folder: Path, expires: str | None = None) -> Path:
    """The gateway tests' policy, with permission changes held for review (tickets that
    expire after ``expires``, a duration, when given)."""
    policy = folder / "reviewing.sentra"
    reason = '"Giving {user} the role {role} needs a human."'
    policy.write_text(TOOLS_POLICY.read_text().replace(
        "  block risk 60 as BLOCK_PERMISSION_CHANGE",
        "  review risk 60 as BLOCK_PERMISSION_CHANGE").replace(
        reason, reason + (f"\n    expires {expires}" if expires else "")), encoding="utf-8")
    return policy


@asynccontextmanager
async def session(params: StdioServerParameters) -> AsyncIterator[ClientSession]:
    """An initialised MCP client session with the process ``params`` start."""
    with open(os.devnull, "w") as quiet:
        async with stdio_client(params, errlog=quiet) as (read, write), \
                ClientSession(read, write) as client:
            await client.initialize()
            yield client


def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]


OPERATOR_TOKEN = "operator-secret"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """A real `sentra-lang serve` process on the tools policy (loopback, a free port)."""
    with serve(tmp_path, TOOLS_POLICY) as server:
        yield server


@contextmanager
def serve(folder: Path, policy: Path, db: Path | None = None) -> Iterator[Served]:
    """A real `sentra-lang serve` process on ``policy`` and the SQLite file ``db`` (default:
    a new one in ``folder``), its operator token :data:`OPERATOR_TOKEN`."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = folder / "operator.token"
    token.write_text(OPERATOR_TOKEN + "\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "sentra_lang", "serve", str(policy), "--db",
         str(db or folder / "server.db"), "--port", str(port), "--operator-token-file",
         str(token)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as answer:
                if answer.status == 200:
                    break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("sentra-lang serve did not start") from None
            time.sleep(0.1)
    try:
        yield Served(url, process)
    finally:
        process.terminate()
        process.wait(timeout=10)


class RawClient:
    """JSON-RPC lines to a real gateway's standard input (agent `mcp`, wrapping the fake
    server; ``options`` before `--`); its answers read by id."""

    def __init__(self, setup: Setup, *options: str, policy: Path = TOOLS_POLICY) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sentra_lang", "mcp-proxy", str(policy), *options, "--",
             sys.executable, str(FAKE_SERVER)], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={**os.environ, "FAKE_TOOLS_LOG": str(setup.log)})
        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        """Every message read so far, in order."""
        threading.Thread(target=self._read, daemon=True).start()
        self.send({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "probe", "version": "1"}}})
        assert "result" in self.answer("init")
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            self.seen.append(message)
            self.answers.put(message)

    def send(self, message: Any) -> None:
        self.line(json.dumps(message).encode())

    def line(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data + b"\n")
        self.process.stdin.flush()

    def answer(self, request_id: Any, timeout: float = 20) -> dict[str, Any]:
        while True:
            message = self.answers.get(timeout=timeout)
            if message.get("id") == request_id:
                return message

    def alive(self) -> bool:
        self.send({"jsonrpc": "2.0", "id": "ping", "method": "ping"})
        return self.answer("ping").get("result") == {}

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=20)
