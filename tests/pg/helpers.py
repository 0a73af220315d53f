"""Real `sentra-lang serve` processes for the multi-instance tests, and small HTTP clients."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "policies" / "sentra.sentra"
TOKEN = "multi-instance-operator-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Answer:
    status: int
    body: Any
    seconds: float


class Instance:
    """One `sentra-lang serve POLICY --db DB` process on a free loopback port."""

    def __init__(self, policy: Path, db: str, *, workers: int = 1, name: str = "") -> None:
        self.policy, self.db, self.workers, self.name = policy, db, workers, name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = b""

    def start(self, timeout: float = 60) -> Instance:
        env = {**os.environ, "SENTRA_OPERATOR_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sentra_lang", "serve", str(self.policy), "--db", self.db,
             "--port", str(self.port), "--workers", str(self.workers), "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve {self.name} exited: "
                                   f"{self.process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if request(self.port, "GET", "/health", timeout=2).status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"serve {self.name} did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def post(self, path: str, body: Any, **options: Any) -> Answer:
        return request(self.port, "POST", path, body, **options)

    def get(self, path: str, **options: Any) -> Answer:
        return request(self.port, "GET", path, **options)


def request(port: int, method: str, path: str, body: Any = None, *, token: str | None = None,
            timeout: float = 30) -> Answer:
    """One request on a new connection (a killed instance fails it with ``OSError``)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    started = time.perf_counter()
    try:
        connection.request(method, path, None if body is None else json.dumps(body), headers)
        reply = connection.getresponse()
        text = reply.read().decode("utf-8")
    except http.client.HTTPException as error:
        raise OSError(f"no answer: {error!r}") from error
    finally:
        connection.close()
    try:
        parsed: Any = json.loads(text)
    except json.JSONDecodeError:
        parsed = text
    return Answer(reply.status, parsed, time.perf_counter() - started)


class Persistent:
    """A kept-alive connection per client thread, reconnecting after a failure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection: http.client.HTTPConnection | None = None

    def post(self, path: str, body: Any) -> Answer:
        started = time.perf_counter()
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.connection.request("POST", path, json.dumps(body),
                                        {"Content-Type": "application/json"})
                reply = self.connection.getresponse()
                text = reply.read().decode("utf-8")
                return Answer(reply.status, json.loads(text) if text.startswith(("{", "["))
                              else text, time.perf_counter() - started)
            except (OSError, http.client.HTTPException) as error:
                self.connection.close()
                self.connection = None
                if attempt == 2 or not isinstance(error, http.client.RemoteDisconnected):
                    raise OSError(f"no answer: {error!r}") from error
        raise AssertionError("unreachable")


def decide_body(agent: str, action: dict[str, Any]) -> dict[str, Any]:
    """A /v1/decide body from an /agent-action style action."""
    fields = {("context" if key == "policy_context" else key): value
              for key, value in action.items() if key != "action_type"}
    return {"agent_id": agent, "action": action["action_type"], "fields": fields}
