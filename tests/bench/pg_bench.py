"""Two decision servers on one PostgreSQL database, beside one server on SQLite, in one run.

    python tests/bench/pg_bench.py [--url postgresql://...] [--requests 20000] [--clients 8]
                                   [--instances 2] [--workers 1] [--sqlite-workers 1]
                                   [--endpoint agent-action|v1]

Without ``--url`` it starts a throwaway PostgreSQL cluster (tests/pg_cluster.py: PostgreSQL's
server binaries must be installed; its settings are PostgreSQL's defaults, fsync on). It then
runs, one after the other, the same load against:

1. one `sentra-lang serve` on a fresh SQLite file (the baseline);
2. ``--instances`` `sentra-lang serve` processes (each with ``--workers``) on one fresh
   PostgreSQL schema, the clients spread over them evenly.

Each run is ``--clients`` kept-alive connections on one asyncio loop (the load generator of
tests/bench/server_load.py), each with one request in flight, posting `/agent-action` (or,
with ``--endpoint v1``, `/v1/decide`, which decides in the server's thread pool, so that
requests arriving together share a transaction) over 50 agents: a warm-up of 1,000 requests,
then ``--requests`` measured. It prints decisions/s, p50 and
p99 of each run, the servers' CPU time per decision (all their processes), the ratio of the
two runs, and how long `sentra-lang audit verify` takes on the PostgreSQL log afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from server_load import AGENTS, _Connection, bodies, cpu_seconds, percentile  # noqa: E402

from tests.pg_cluster import Cluster, free_port  # noqa: E402
from tests.pg_fixtures import with_schema  # noqa: E402

POLICY = ROOT / "policies" / "sentra.sentra"


def start(db: str, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sentra_lang", "serve", str(POLICY), "--db", db, "--port",
         str(port), "--workers", str(workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("a server did not start")


def load(ports: list[int], total: int, clients: int, seed: int, time_limit: float,
         endpoint: str) -> tuple[float, list[float]]:
    """``clients`` connections, client ``i`` on ``ports[i % len(ports)]``; decisions/s and the
    sorted latencies."""
    per_client = total // clients
    latencies: list[tuple[float, float]] = []

    def requests(port: int, number: int) -> list[bytes]:
        prefix = (f"POST {endpoint} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  "Content-Type: application/json\r\nContent-Length: ").encode()
        return [prefix + str(len(body)).encode() + b"\r\n\r\n" + body
                for body in bodies(seed * 100 + number, per_client, endpoint)]

    async def main() -> float:
        loop = asyncio.get_running_loop()
        deadline = time.perf_counter() + time_limit
        finished = [loop.create_future() for _ in range(clients)]
        began = time.perf_counter()

        def connection(number: int, port: int) -> Callable[[], _Connection]:
            mine = requests(port, number)
            return lambda: _Connection(mine, latencies, finished[number], deadline)

        for number in range(clients):
            port = ports[number % len(ports)]
            await loop.create_connection(connection(number, port), "127.0.0.1", port)
        await asyncio.gather(*finished)
        return time.perf_counter() - began

    try:
        import uvloop
        elapsed = uvloop.run(main())
    except ImportError:
        elapsed = asyncio.run(main())
    latencies.sort()
    return len(latencies) / elapsed, [latency for _, latency in latencies]


def measure(name: str, dbs: list[str], workers: int, args: argparse.Namespace) -> float:
    servers = [start(db, workers) for db in dbs]
    ports = [port for _, port in servers]
    try:
        load(ports, 1000, args.clients, 1, args.time_limit, args.endpoint)   # warm-up
        before = sum(cpu_seconds(process.pid) for process, _ in servers)
        rate, latencies = load(ports, args.requests, args.clients, 2, args.time_limit,
                               args.endpoint)
        cpu = sum(cpu_seconds(process.pid) for process, _ in servers) - before
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait(timeout=20)
    print(f"{name:<44} {rate:7.0f} decisions/s   p50 {percentile(latencies, .5) * 1000:6.2f} "
          f"ms   p99 {percentile(latencies, .99) * 1000:6.2f} ms   server CPU "
          f"{cpu / len(latencies) * 1e6:4.0f} us/decision   ({len(latencies)} decisions)")
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a PostgreSQL server to use (a fresh schema is made)")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="workers per PostgreSQL instance")
    parser.add_argument("--sqlite-workers", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--endpoint", choices=["agent-action", "v1"], default="agent-action")
    args = parser.parse_args()
    args.endpoint = "/agent-action" if args.endpoint == "agent-action" else "/v1/decide"
    if not (0 < args.requests <= 500_000 and 0 < args.clients <= 64
            and 0 < args.instances <= 8 and 0 < args.workers <= 8):
        parser.error("--requests 1..500000, --clients 1..64, --instances and --workers 1..8")
    cluster = None if args.url else Cluster().start()
    server = args.url or cluster.url   # type: ignore[union-attr]
    folder = tempfile.mkdtemp(prefix="sentra-pg-bench-")
    try:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
            version = admin.execute("SHOW server_version").fetchone()[0]
        url = with_schema(server, schema)
        print(f"PostgreSQL {version}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
              f"{args.clients} clients, {AGENTS} agents, POST {args.endpoint}, load average "
              f"{os.getloadavg()[0]:.1f}")
        baseline = measure(f"SQLite, 1 instance, {args.sqlite_workers} worker(s)",
                           [os.path.join(folder, "bench.db")], args.sqlite_workers, args)
        rate = measure(f"PostgreSQL, {args.instances} instances x {args.workers} worker(s)",
                       [url] * args.instances, args.workers, args)
        print(f"PostgreSQL / SQLite: {rate / baseline:.2f}x decisions/s")
        started = time.perf_counter()
        verified = subprocess.run([sys.executable, "-m", "sentra_lang", "audit", "verify", url],
                                  capture_output=True, text=True, cwd=ROOT)
        print(f"audit verify of the PostgreSQL log: {time.perf_counter() - started:.2f} s: "
              f"{verified.stdout.strip().split(': ', 1)[-1]}")
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if cluster is not None:
            cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
