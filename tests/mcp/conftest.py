"""Real processes for the gateway tests: `sentra-lang mcp-proxy` wrapping the FastMCP server in
fake_tools_server.py, driven by the `mcp` SDK's ClientSession over stdio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
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


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """A real `sentra-lang serve` process on the tools policy (loopback, a free port)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = tmp_path / "operator.token"
    token.write_text("operator-secret\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "sentra_lang", "serve", str(TOOLS_POLICY), "--db",
         str(tmp_path / "server.db"), "--port", str(port), "--operator-token-file", str(token)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    yield Served(url, process)
    process.terminate()
    process.wait(timeout=10)
