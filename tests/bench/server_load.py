"""Load benchmark of the decision server's POST /agent-action and /v1/decide (loopback only).

    python tests/bench/server_load.py [URL] [--requests 20000] [--sequential 2000] [--clients 8]
                                      [--client asyncio|threads] [--endpoint agent-action|v1|both]
                                      [--commit group|each|both] [--synchronous FULL|NORMAL]
                                      [--rounds K] [--streams N] [--profile] [--before DIR]

Without URL it starts `sentra-lang serve policies/sentra.sentra` on a free loopback port with a
fresh SQLite file in a temporary folder, in a separate process, and also reports the CPU time the
server process spent per request. Reports req/s and p50/p99 for a sequential run (one client) and
a concurrent run over 50 agents, and compares the latency of the last 10% of the concurrent
requests with the first 10% (the audit log grows as they run).

``--commit`` (when it starts the server): ``group`` is the server's group commit (decisions that
arrive together share one SQLite transaction), ``each`` one transaction per decision, ``both``
(the default) starts the two servers side by side, runs the same workload against each, taking
turns ``--rounds`` times (the best round of each is kept: other jobs on the machine only add
time), and prints the ratio of their concurrent decisions/s. ``--synchronous`` is the SQLite
durability both run with (default: the server's own). ``--endpoint both`` does all of that for
``POST /agent-action`` and then for ``POST /v1/decide``.

``--before DIR`` also starts the same servers from another checkout (its packages first on
``PYTHONPATH``; e.g. ``git worktree add /tmp/before main``), loads them in the same turns and
prints now / before for each server, beside each checkout's group / each ratio.

``--streams N`` then runs the sequential and the concurrent load again while N clients follow the
live event stream (``/v1/events/stream``, each reading everything), against the runs without
streams as baseline, and checks that every stream received every record.

``--profile`` samples the server with py-spy (``pip install py-spy``) during the concurrent run
and splits the server's CPU per request by layer (HTTP and event loop, the edge and the routes,
the hand-off to the decision thread, the decision, the audit record, SQLite, reading the record
back, the answer).

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
if sys.argv[2] != "default":
    gate.SYNCHRONOUS = sys.argv[2]
raise SystemExit(main(sys.argv[3:]))
"""
"""`sentra-lang serve` with the gate's commit settings as the benchmark asks."""


def start_server(folder: str, commit: str, synchronous: str | None,
                 workers: int = 1, tree: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """``sentra-lang serve`` from this checkout, or from the checkout ``tree`` (its packages
    first on ``PYTHONPATH``: the code before a change, for ``--before``)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = dict(os.environ)
    if tree is not None:
        environment["PYTHONPATH"] = os.pathsep.join([str(tree), str(tree / "runtime")])
    name = f"bench-{commit}{'' if tree is None else '-before'}-{synchronous or 'default'}.db"
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, commit, synchronous or "default",
         "serve", str(ROOT / "policies" / "sentra.sentra"),
         "--db", os.path.join(folder, name), "--port", str(port),
         "--workers", str(workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tree or ROOT, env=environment)
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


# -- where the server's time goes ----------------------------------------------------------------

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("SQLite statements and commit (Python side)", ("stores/sqlite.py", "sqlite3/")),
    ("audit record (JSON, hash)", ("sentra_runtime/audit.py", "sentra_runtime/policy.py",
                                   "json/encoder.py")),
    ("decision (matcher, state step, explanation)", ("sentra_runtime/",)),
    ("record read-back", ("server/store.py",)),
    ("Sentra event and answer", ("server/compat.py", "json/")),
    ("gate, /v1 route and listeners", ("server/gate.py", "server/native.py",
                                       "server/metrics.py", "server/events.py")),
    ("lean path", ("server/lean.py",)),
    ("edge (host, type, body, JSON checks)", ("server/edge.py",)),
    ("FastAPI, Starlette, pydantic", ("fastapi/", "starlette/", "pydantic")),
    ("hand-off to and from threads", ("anyio/", "concurrent/", "threading.py", "queue.py")),
    ("HTTP (uvicorn, httptools) and event loop", ("uvicorn/", "httptools", "asyncio/",
                                                  "uvloop", "server/protocol.py")),
]
"""Each sampled stack is charged to the first layer whose file pattern any of its frames
matches, looking from the innermost frame outwards (so time in ``json`` called by the audit
code is the audit record's)."""
HTTP_LAYERS = ("HTTP (uvicorn, httptools) and event loop", "FastAPI, Starlette, pydantic",
               "edge (host, type, body, JSON checks)", "lean path")


class Profile:
    """py-spy sampling the server's thread that holds the interpreter lock (``--gil``): the
    samples measure the Python work, which one process does on one core at a time; the rest of
    the server's CPU time is SQLite's C code and the kernel (fsync, sockets), which run without
    the lock."""

    RATE = 500

    def __init__(self, pid: int, folder: str) -> None:
        self.output = os.path.join(folder, f"profile-{pid}.txt")
        spy = Path(sys.executable).with_name("py-spy")
        self.process = subprocess.Popen(
            [str(spy) if spy.exists() else "py-spy", "record", "--pid", str(pid), "--rate",
             str(self.RATE), "--gil", "--format", "raw", "--output", self.output,
             "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)   # py-spy attaches

    def stop(self) -> dict[str, int]:
        """Samples per layer."""
        self.process.send_signal(2)   # SIGINT: py-spy writes its output and exits
        self.process.wait(timeout=60)
        counts: dict[str, int] = {}
        with open(self.output) as raw:
            for line in raw:
                stack, _, number = line.rstrip().rpartition(" ")
                if stack:
                    name = layer(stack.split(";"))
                    counts[name] = counts.get(name, 0) + int(number)
        return counts


def layer(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, patterns in LAYERS:
            if any(pattern in frame for pattern in patterns):
                return name
    return "other (interpreter, idle loop)"


def report_layers(counts: dict[str, int], server_cpu: float, requests: int) -> None:
    """The Python work per request by layer, and the server's CPU time outside it."""
    each = 1e6 / Profile.RATE / requests   # microseconds per request of one sample
    python = sum(counts.values()) * each
    total = server_cpu / requests * 1e6
    print(f"  server CPU per request {total:.0f} us: Python (holding the interpreter lock, "
          f"py-spy) {python:.0f} us, by layer:")
    for name, number in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"    {name:<46} {number * each:5.0f} us")
    http = sum(counts.get(name, 0) for name in HTTP_LAYERS) * each
    print(f"  of the Python: HTTP and ASGI layers {http:.0f} us, deciding, recording and "
          f"answering {python - http:.0f} us")
    print(f"  outside the interpreter lock (SQLite's C code, the kernel: fsync, sockets, "
          f"threads): {max(total - python, 0):.0f} us")


# -- the runs ------------------------------------------------------------------------------------

def report(name: str, rate: float, latencies: list[float], server_cpu: float | None,
           client_cpu: float) -> None:
    count = len(latencies)
    cpu = f"   client CPU {client_cpu / count * 1e6:4.0f} us/req"
    if server_cpu is not None:
        cpu = f"   server CPU {server_cpu / count * 1e6:4.0f} us/req" + cpu
    print(f"{name:<34} {rate:7.0f} req/s   p50 {percentile(latencies, .5) * 1000:6.2f} ms   "
          f"p99 {percentile(latencies, .99) * 1000:6.2f} ms   ({count} requests){cpu}")


class Target:
    """One server under load: its URL, its process (``None`` when it runs elsewhere) and what
    the benchmark measured on it."""

    def __init__(self, args: argparse.Namespace, url: str, endpoint: str, name: str,
                 process: subprocess.Popen[bytes] | None, folder: str) -> None:
        self.args = args
        self.url = url
        self.endpoint = endpoint
        self.name = name
        self.process = process
        self.folder = folder
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.best: tuple[float, list[float]] | None = None

    def measured(self, total: int, clients: int, seed: int, label: str = "",
                 profile: bool = False) -> tuple[float, list[float]]:
        run = run_asyncio if self.args.client == "asyncio" else run_threads
        spy = Profile(self.process.pid, self.folder) if profile and self.process else None
        server_before = None if self.process is None else cpu_seconds(self.process.pid)
        client_before = time.process_time()
        rate, latencies = run(self.host, self.port, total, clients, seed, self.args.time_limit,
                              self.endpoint)
        client_cpu = time.process_time() - client_before
        server_cpu = (None if self.process is None or server_before is None
                      else cpu_seconds(self.process.pid) - server_before)
        name = ("sequential (1 client)" if clients == 1
                else f"concurrent ({clients} clients)") + label
        report(f"{self.name}: {name}" if self.name else name, rate, latencies, server_cpu,
               client_cpu)
        if spy is not None:
            counts = spy.stop()
            if server_cpu is not None:
                report_layers(counts, server_cpu, len(latencies))
        return rate, latencies

    def concurrent(self, seed: int, profile: bool = False) -> float:
        rate, latencies = self.measured(self.args.requests, self.args.clients, seed,
                                        profile=profile)
        if self.best is None or rate > self.best[0]:
            self.best = rate, latencies
        return rate

    def growth(self) -> None:
        """The first and the last tenth of the best concurrent run."""
        assert self.best is not None
        latencies = self.best[1]
        tenth = max(len(latencies) // 10, 1)
        first, last = latencies[:tenth], latencies[-tenth:]
        print(f"{self.name or 'the concurrent run'} as the log grows: first 10% p50 {percentile(first, .5) * 1000:.2f} "
              f"ms, p99 {percentile(first, .99) * 1000:.2f} ms; last 10% p50 "
              f"{percentile(last, .5) * 1000:.2f} ms, p99 {percentile(last, .99) * 1000:.2f} ms")

    def with_streams(self, count: int) -> None:
        """The sequential and the concurrent run again while ``count`` streams follow the log."""
        streams = Streams(self.host, self.port, count)
        try:
            time.sleep(1.0)
            head = self._head()
            label = f" +{count} streams"
            self.measured(self.args.sequential, 1, 3, label)
            self.measured(self.args.requests, self.args.clients, 4, label)
            written = self._head() - head
            time.sleep(1.0)
            complete = sum(1 for received in streams.received if received >= written)
            print(f"{complete} of {count} streams received all {written} records written "
                  f"meanwhile (the others were dropped as too slow)")
        finally:
            streams.close()

    def _head(self) -> int:
        answer = urllib.request.urlopen(self.url + "/v1/events?limit=1", timeout=10).read()
        return int(json.loads(answer)["head"])


def fsync_milliseconds(folder: str, count: int = 100) -> tuple[float, float]:
    """Median and 90th percentile of a 4 KiB append and its fsync in ``folder``: what one
    commit with ``synchronous=FULL`` waits for at least, on this disk, now."""
    path = os.path.join(folder, "fsync-probe")
    times = []
    with open(path, "ab") as probe:
        for _ in range(count):
            started = time.perf_counter()
            probe.write(b"x" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
            times.append((time.perf_counter() - started) * 1000)
    os.unlink(path)
    return percentile(times, .5), percentile(times, .9)


SERVER_NAMES = {"group": "group commit", "each": "one transaction per decision"}


def compare(args: argparse.Namespace, endpoint: str) -> None:
    """Start a server per commit and durability setting (and, with ``--before DIR``, the same
    from that checkout), side by side, and load them taking turns."""
    commits = ["group", "each"] if args.commit == "both" else [args.commit]
    modes: list[str | None] = (["FULL", "NORMAL"] if args.synchronous == "both" else
                               [args.synchronous])
    trees: list[Path | None] = [None] if args.before is None else [None, Path(args.before)]
    print(f"POST {endpoint}, {args.client} client, {AGENTS} agents, {args.clients} clients, "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as folder:
        targets: dict[tuple[str, str, str | None], Target] = {}
        try:
            for tree in trees:
                side = "" if tree is None else "before"
                for mode in modes:
                    for commit in commits:
                        process, url = start_server(folder, commit, mode, args.workers, tree)
                        name = (f"{side}: " if side else "") + SERVER_NAMES[commit] + \
                            (f", {mode}" if mode else "")
                        targets[side, commit, mode] = Target(args, url, endpoint, name, process,
                                                             folder)
            median, slow = fsync_milliseconds(folder)
            print(f"fsync of a 4 KiB append in the servers' folder: median {median:.2f} ms, "
                  f"90th percentile {slow:.2f} ms (before the runs)")
            for target in targets.values():
                target.measured(args.sequential, 1, 1)
            rates: list[dict[tuple[str, str, str | None], float]] = []
            for round_number in range(args.rounds):
                order = list(targets.items())
                rates.append({key: target.concurrent(2 + round_number,
                                                     args.profile and round_number == 0)
                              for key, target in (order if round_number % 2 == 0
                                                  else order[::-1])})
            median, slow = fsync_milliseconds(folder)
            print(f"fsync of a 4 KiB append in the servers' folder: median {median:.2f} ms, "
                  f"90th percentile {slow:.2f} ms (after the runs)")
            for target in targets.values():
                target.growth()

            def compared(name: str, top: tuple[str, str, str | None],
                         bottom: tuple[str, str, str | None]) -> None:
                if top in targets and bottom in targets:
                    ratio(name, targets[top], targets[bottom],
                          [(rate[top], rate[bottom]) for rate in rates])

            for side in ("", "before"):
                prefix = f"{side}: " if side else ""
                for mode in modes:
                    compared(f"{prefix}group commit / one transaction per decision"
                             f"{f', {mode}' if mode else ''}", (side, "group", mode),
                             (side, "each", mode))
                if len(modes) == 2:
                    for commit in commits:
                        compared(f"{prefix}{SERVER_NAMES[commit]}: FULL / NORMAL",
                                 (side, commit, "FULL"), (side, commit, "NORMAL"))
            for mode in modes:
                for commit in commits:
                    compared(f"{SERVER_NAMES[commit]}{f', {mode}' if mode else ''}: now / "
                             "before", ("", commit, mode), ("before", commit, mode))
            if args.streams:
                for target in targets.values():
                    target.with_streams(args.streams)
        finally:
            for target in targets.values():
                assert target.process is not None
                target.process.terminate()
                target.process.wait(timeout=10)


def ratio(name: str, top: Target, bottom: Target, rounds: list[tuple[float, float]]) -> None:
    """The ratio of two servers' concurrent decisions/s: of their best rounds, and per round."""
    assert top.best is not None and bottom.best is not None
    each = sorted(first / second for first, second in rounds)
    print(f"{name}: {top.best[0] / bottom.best[0]:.2f}x decisions/s (best rounds); per round "
          f"{', '.join(f'{value:.2f}x' for value in each)} (median {each[len(each) // 2]:.2f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", nargs="?", help="a running server (loopback only)")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--sequential", type=int, default=2_000)
    parser.add_argument("--clients", "--threads", type=int, default=8, dest="clients")
    parser.add_argument("--client", choices=["asyncio", "threads"], default="asyncio")
    parser.add_argument("--endpoint", choices=["agent-action", "v1", "both"],
                        default="agent-action",
                        help="POST /agent-action (the Sentra API), /v1/decide, or both in turn")
    parser.add_argument("--commit", choices=["group", "each", "both"], default="both",
                        help="the server's commit when the benchmark starts it (default: both, "
                             "side by side)")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL", "both"],
                        help="SQLite durability of the started servers (default: the server's; "
                             "both: a server of each, side by side)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="concurrent runs per server, taking turns; the best is kept")
    parser.add_argument("--streams", type=int, default=0,
                        help="then run again with this many live-stream clients open")
    parser.add_argument("--profile", action="store_true",
                        help="sample the started server with py-spy during the first "
                             "concurrent run and split its CPU per request by layer")
    parser.add_argument("--before", metavar="DIR",
                        help="also start the same servers from the checkout DIR (e.g. `git "
                             "worktree add /tmp/before main`) and compare now / before")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes of each server started (`serve --workers N`)")
    parser.add_argument("--time-limit", type=float, default=120.0,
                        help="stop each run after this many seconds")
    args = parser.parse_args()
    if not 0 < args.requests <= 200_000 or not 0 < args.clients <= 64 or \
            not 0 <= args.streams <= 1000 or not 0 < args.sequential <= 200_000 or \
            not 0 < args.rounds <= 20:
        parser.error("--requests and --sequential must be 1..200000, --clients 1..64, "
                     "--streams 0..1000, --rounds 1..20")
    endpoints = (["/agent-action", "/v1/decide"] if args.endpoint == "both" else
                 ["/agent-action" if args.endpoint == "agent-action" else "/v1/decide"])
    if args.url is not None:
        if urllib.parse.urlsplit(args.url).hostname not in LOOPBACK:
            parser.error("the benchmark only targets loopback servers")
        for endpoint in endpoints:
            print(f"server {args.url} as it runs, POST {endpoint}, {args.client} client, "
                  f"{AGENTS} agents")
            target = Target(args, args.url, endpoint, "", None, "")
            target.measured(args.sequential, 1, 1)
            for round_number in range(args.rounds):
                target.concurrent(2 + round_number)
            target.growth()
            if args.streams:
                target.with_streams(args.streams)
        return 0
    for endpoint in endpoints:
        compare(args, endpoint)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
