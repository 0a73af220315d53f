"""Load benchmark of the decision server's POST /agent-action or /v1/decide (loopback only).

    python tests/bench/server_load.py [URL] [--requests 20000] [--clients 8] [--workers N]
                                      [--client asyncio|threads] [--endpoint agent-action|v1]
                                      [--commit group|each|both] [--synchronous FULL|NORMAL]

Without URL it starts `sentra-lang serve policies/sentra.sentra` on a free loopback port with a
fresh SQLite file in a temporary folder, in a separate process, and also reports the CPU time the
server process spent per request. Reports req/s and p50/p99 for a sequential run (one client) and
a concurrent run over 50 agents, and compares the latency of the last 10% of the concurrent
requests with the first 10% (the audit log grows as they run). With ``--streams N`` it then runs
the sequential and the concurrent load again while N clients follow the live event stream
(``/v1/events/stream``, each reading everything), against the runs without streams as baseline.

``--commit`` (when it starts the server): ``group`` is the server's group commit (decisions that
arrive together share one SQLite transaction), ``each`` one transaction per decision, ``both``
(the default) runs the two servers one after the other on the same workload and prints the
ratio of their concurrent decisions/s. ``--synchronous`` is the SQLite durability both run with.

The load generator shares the machine with the server, so it is made cheap: the default client
(``asyncio``) keeps one connection per client open on one event loop (uvloop when installed),
sends pre-encoded requests and reads the answer by its Content-Length; each client has one
request in flight at a time. ``--client threads`` is the previous generator (one
``http.client`` connection per thread), kept for comparison. Both are bounded by the request
count and by ``--time-limit`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
AGENTS = 50
ACTIONS: list[dict[str, Any]] = [{"action_type": "FILE_READ"}, {"action_type": "SEND_NOTIFICATION",
                                          "notification_type": "rejection"},
           {"action_type": "EXPORT_DATA", "destination_type": "internal"},
           {"action_type": "APPROVE_TRANSACTION", "amount": 100,
            "policy_context": {"max_approval_amount": 5000}},
           {"action_type": "MODIFY_RECORD"}]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def bodies(seed: int, count: int, endpoint: str = "/agent-action") -> list[bytes]:
    chooser = random.Random(seed)
    agents = [f"bench-{chooser.randrange(AGENTS)}" for _ in range(count)]
    actions = [chooser.choice(ACTIONS) for _ in range(count)]
    if endpoint == "/agent-action":
        return [json.dumps({"agent_id": agent, **action}).encode()
                for agent, action in zip(agents, actions)]
    return [json.dumps({"agent_id": agent, "action": action["action_type"], "fields": {
        ("context" if key == "policy_context" else key): value
        for key, value in action.items() if key != "action_type"}}).encode()
        for agent, action in zip(agents, actions)]


# -- the asyncio client ------------------------------------------------------------------------

class _Connection(asyncio.Protocol):
    """One client: sends its requests one after the other on a kept-alive connection."""

    def __init__(self, requests: list[bytes], latencies: list[tuple[float, float]],
                 done: asyncio.Future[None], deadline: float) -> None:
        self.requests = requests
        self.latencies = latencies
        self.done = done
        self.deadline = deadline
        self.next = 0
        self.buffer = b""
        self.need = -1
        self.started = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        if self.next == len(self.requests) or time.perf_counter() > self.deadline:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        request = self.requests[self.next]
        self.next += 1
        self.started = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        if self.need < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            head = buffer[:end]
            if head[9:12] != b"200":
                self._fail(f"unexpected answer {head[:40]!r}")
                return
            at = head.find(b"content-length:")
            if at < 0:
                self._fail("an answer without Content-Length")
                return
            stop = head.find(b"\r\n", at)
            self.need = end + 4 + int(head[at + 15:stop if stop > 0 else len(head)])
        if len(buffer) < self.need:
            self.buffer = buffer
            return
        finished = time.perf_counter()
        self.latencies.append((finished, finished - self.started))
        self.buffer = buffer[self.need:]
        self.need = -1
        self._send()

    def _fail(self, problem: str) -> None:
        if not self.done.done():
            self.done.set_exception(SystemExit(problem))
        assert self.transport is not None
        self.transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(SystemExit(f"connection lost: {error}"))


def run_asyncio(host: str, port: int, total: int, clients: int, seed: int,
                time_limit: float, endpoint: str) -> tuple[float, list[float]]:
    per_client = total // clients
    prefix = (f"POST {endpoint} HTTP/1.1\r\nHost: {host}:{port}\r\n"
              "Content-Type: application/json\r\nContent-Length: ").encode()
    requests = [[prefix + str(len(body)).encode() + b"\r\n\r\n" + body
                 for body in bodies(seed * 100 + number, per_client, endpoint)]
                for number in range(clients)]
    latencies: list[tuple[float, float]] = []

    async def main() -> float:
        loop = asyncio.get_running_loop()
        deadline = time.perf_counter() + time_limit
        finished = [loop.create_future() for _ in range(clients)]
        began = time.perf_counter()
        def connection(number: int) -> Callable[[], _Connection]:
            return lambda: _Connection(requests[number], latencies, finished[number], deadline)

        for number in range(clients):
            await loop.create_connection(connection(number), host, port)
        await asyncio.gather(*finished)
        return time.perf_counter() - began

    try:
        import uvloop
        elapsed = uvloop.run(main())
    except ImportError:
        elapsed = asyncio.run(main())
    latencies.sort()
    return len(latencies) / elapsed, [latency for _, latency in latencies]


# -- the thread client (the previous generator) --------------------------------------------------

def run_threads(host: str, port: int, total: int, clients: int, seed: int,
                time_limit: float, endpoint: str) -> tuple[float, list[float]]:
    """``clients`` threads, one kept-alive ``http.client`` connection each."""
    latencies: list[tuple[float, float]] = []
    lock = threading.Lock()
    per_client = total // clients
    deadline = time.perf_counter() + time_limit

    def client(number: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        mine: list[tuple[float, float]] = []
        for body in bodies(seed * 100 + number, per_client, endpoint):
            if time.perf_counter() > deadline:
                break
            started = time.perf_counter()
            connection.request("POST", endpoint, body,
                               {"Content-Type": "application/json"})
            reply = connection.getresponse()
            reply.read()
            finished = time.perf_counter()
            if reply.status != 200:
                raise SystemExit(f"unexpected status {reply.status}")
            mine.append((finished, finished - started))
        with lock:
            latencies.extend(mine)
        connection.close()

    workers = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return len(latencies) / elapsed, [latency for _, latency in latencies]


# -- the server --------------------------------------------------------------------------------

SERVE = """
import sys
import sentra_lang.server.gate as gate
from sentra_lang.cli import main
gate.GROUP_COMMIT = sys.argv[1] == "group"
gate.SYNCHRONOUS = sys.argv[2]
raise SystemExit(main(sys.argv[3:]))
"""
"""`sentra-lang serve` with the gate's commit settings as the benchmark asks."""


def start_server(folder: str, workers: int, commit: str,
                 synchronous: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, commit, synchronous,
         "serve", str(ROOT / "policies" / "sentra.sentra"),
         "--db", os.path.join(folder, f"bench-{commit}.db"), "--port", str(port),
         *(["--workers", str(workers)] if workers != 1 else [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


class Streams:
    """``count`` clients of the live event stream, each reading (and counting) everything, all
    on one thread (a selector), so that the clients cost the machine as little as they can."""

    def __init__(self, host: str, port: int, count: int) -> None:
        self.received = [0] * count
        self.sockets = [socket.create_connection((host, port)) for _ in range(count)]
        self.selector = selectors.DefaultSelector()
        self.tails = [b""] * count
        for index, connection in enumerate(self.sockets):
            connection.sendall(f"GET /v1/events/stream HTTP/1.1\r\nHost: {host}\r\n\r\n"
                               .encode())
            connection.setblocking(False)
            self.selector.register(connection, selectors.EVENT_READ, index)
        self.stopping = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.stopping:
            for key, _ in self.selector.select(timeout=0.2):
                index = key.data
                try:
                    chunk = self.sockets[index].recv(262144)
                except OSError:
                    chunk = b""
                if not chunk:
                    self.selector.unregister(self.sockets[index])
                    continue
                data = self.tails[index] + chunk
                self.received[index] += data.count(b"\nid: ")
                self.tails[index] = data[-4:]   # a message start split across reads counts once

    def close(self) -> None:
        self.stopping = True
        self.thread.join()
        for connection in self.sockets:
            connection.close()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its live descendants, from /proc."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
        except OSError:
            continue
    return total


def report(name: str, rate: float, latencies: list[float], server_cpu: float | None,
           client_cpu: float) -> None:
    count = len(latencies)
    cpu = f"   client CPU {client_cpu / count * 1e6:4.0f} us/req"
    if server_cpu is not None:
        cpu = f"   server CPU {server_cpu / count * 1e6:4.0f} us/req" + cpu
    print(f"{name:<24} {rate:7.0f} req/s   p50 {percentile(latencies, .5) * 1000:6.2f} ms   "
          f"p99 {percentile(latencies, .99) * 1000:6.2f} ms   ({count} requests){cpu}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", nargs="?", help="a running server (loopback only)")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--sequential", type=int, default=2_000)
    parser.add_argument("--clients", "--threads", type=int, default=8, dest="clients")
    parser.add_argument("--client", choices=["asyncio", "threads"], default="asyncio")
    parser.add_argument("--endpoint", choices=["agent-action", "v1"], default="agent-action",
                        help="POST /agent-action (the Sentra API) or /v1/decide")
    parser.add_argument("--commit", choices=["group", "each", "both"], default="both",
                        help="the server's commit when the benchmark starts it (default: both, "
                             "one after the other)")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="NORMAL",
                        help="SQLite durability of the started server (default: NORMAL, the "
                             "server's)")
    parser.add_argument("--workers", type=int, default=1,
                        help="server worker processes when the benchmark starts the server")
    parser.add_argument("--time-limit", type=float, default=120.0,
                        help="stop each run after this many seconds")
    args = parser.parse_args()
    if not 0 < args.requests <= 200_000 or not 0 < args.clients <= 64 or \
            not 0 <= args.streams <= 1000 or not 0 < args.sequential <= 200_000:
        parser.error("--requests and --sequential must be 1..200000, --clients 1..64, "
                     "--workers 1..8")
    if args.url is not None:
        parts = urllib.parse.urlsplit(args.url)
        if parts.hostname not in LOOPBACK:
            parser.error("the benchmark only targets loopback servers")
        benchmark(args, args.url, None, "as it runs")
        return 0
    rates = {}
    for commit in (["group", "each"] if args.commit == "both" else [args.commit]):
        with tempfile.TemporaryDirectory() as folder:
            process, url = start_server(folder, args.workers, commit, args.synchronous)
            try:
                rates[commit] = benchmark(args, url, process, commit)
            finally:
                process.terminate()
                process.wait(timeout=10)
    if len(rates) == 2:
        print(f"group commit / one transaction per decision, {args.clients} clients: "
              f"{rates['group'] / rates['each']:.2f}x decisions/s")
    return 0


def benchmark(args: argparse.Namespace, url: str, process: subprocess.Popen[bytes] | None,
              commit: str) -> float:
    """The sequential and the concurrent run against ``url``; the concurrent decisions/s."""
    run = run_asyncio if args.client == "asyncio" else run_threads
    endpoint = "/agent-action" if args.endpoint == "agent-action" else "/v1/decide"
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    workers = f", {args.workers} server worker(s)" if process is not None else ""
    durability = f", synchronous={args.synchronous}" if process is not None else ""
    print(f"server {url}{workers}, commit {commit}{durability}, POST {endpoint}, "
          f"{args.client} client, {AGENTS} agents, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")

    def measured(total: int, clients: int, seed: int) -> tuple[float, list[float]]:
        server_before = None if process is None else cpu_seconds(process.pid)
        client_before = time.process_time()
        rate, latencies = run(host, port, total, clients, seed, args.time_limit, endpoint)
        client_cpu = time.process_time() - client_before
        server_cpu = (None if process is None or server_before is None
                      else cpu_seconds(process.pid) - server_before)
        name = "sequential (1 client)" if clients == 1 else f"concurrent ({clients} clients)"
        report(name, rate, latencies, server_cpu, client_cpu)
        return rate, latencies

    measured(args.sequential, 1, 1)
    rate, latencies = measured(args.requests, args.clients, 2)
    tenth = len(latencies) // 10
    first, last = latencies[:tenth], latencies[-tenth:]
    print(f"first 10%: p50 {percentile(first, .5) * 1000:.2f} ms, p99 "
          f"{percentile(first, .99) * 1000:.2f} ms, mean "
          f"{sum(first) / len(first) * 1000:.2f} ms; last 10%: p50 "
          f"{percentile(last, .5) * 1000:.2f} ms, p99 "
          f"{percentile(last, .99) * 1000:.2f} ms, mean "
          f"{sum(last) / len(last) * 1000:.2f} ms")
    return rate


if __name__ == "__main__":
    raise SystemExit(main())
