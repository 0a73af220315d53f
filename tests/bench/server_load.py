"""Load benchmark of the decision server's POST /agent-action (loopback only, bounded).

    python tests/bench/server_load.py [URL] [--requests 20000] [--threads 8]

Without URL it starts `sentra-lang serve policies/sentra.sentra` on a free loopback port with a
fresh SQLite file in a temporary folder, in a separate process. Reports req/s and p50/p99 for a
sequential run and a concurrent run over 50 agents, and compares the latency of the last 10% of
the concurrent requests with the first 10% (the audit log grows as they run).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AGENTS = 50
ACTIONS = [{"action_type": "FILE_READ"}, {"action_type": "SEND_NOTIFICATION",
                                          "notification_type": "rejection"},
           {"action_type": "EXPORT_DATA", "destination_type": "internal"},
           {"action_type": "APPROVE_TRANSACTION", "amount": 100,
            "policy_context": {"max_approval_amount": 5000}},
           {"action_type": "MODIFY_RECORD"}]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(host: str, port: int, total: int, threads: int, seed: int) -> tuple[float, list[float]]:
    """Send ``total`` requests from ``threads`` clients (kept-alive connections); latencies in
    request order of completion."""
    latencies: list[tuple[float, float]] = []
    lock = threading.Lock()
    per_thread = total // threads

    def client(number: int) -> None:
        chooser = random.Random(seed * 100 + number)
        connection = http.client.HTTPConnection(host, port, timeout=30)
        mine: list[tuple[float, float]] = []
        for _ in range(per_thread):
            body = json.dumps({"agent_id": f"bench-{chooser.randrange(AGENTS)}",
                               **chooser.choice(ACTIONS)})
            started = time.perf_counter()
            connection.request("POST", "/agent-action", body,
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

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return len(latencies) / elapsed, [latency for _, latency in latencies]


def report(name: str, rate: float, latencies: list[float]) -> None:
    print(f"{name:<28} {rate:8.0f} req/s   p50 {percentile(latencies, .5) * 1000:6.2f} ms   "
          f"p99 {percentile(latencies, .99) * 1000:6.2f} ms   ({len(latencies)} requests)")


def start_server(folder: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "sentra_lang", "serve", str(ROOT / "policies" / "sentra.sentra"),
         "--db", os.path.join(folder, "bench.db"), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", nargs="?", help="a running server (loopback only)")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--sequential", type=int, default=2_000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    if not 0 < args.requests <= 200_000 or not 0 < args.threads <= 64:
        parser.error("--requests must be 1..200000 and --threads 1..64")
    with tempfile.TemporaryDirectory() as folder:
        process = None
        url = args.url
        if url is None:
            process, url = start_server(folder)
        try:
            parts = urllib.parse.urlsplit(url)
            if parts.hostname not in LOOPBACK:
                parser.error("the benchmark only targets loopback servers")
            host, port = parts.hostname or "127.0.0.1", parts.port or 80
            print(f"server {url}, {AGENTS} agents, Python {sys.version.split()[0]}, "
                  f"{os.cpu_count()} CPUs")
            rate, latencies = run(host, port, args.sequential, 1, 1)
            report("sequential (1 client)", rate, latencies)
            rate, latencies = run(host, port, args.requests, args.threads, 2)
            report(f"concurrent ({args.threads} clients)", rate, latencies)
            tenth = len(latencies) // 10
            first, last = latencies[:tenth], latencies[-tenth:]
            print(f"first 10%: p50 {percentile(first, .5) * 1000:.2f} ms, mean "
                  f"{sum(first) / len(first) * 1000:.2f} ms; last 10%: p50 "
                  f"{percentile(last, .5) * 1000:.2f} ms, mean {sum(last) / len(last) * 1000:.2f} ms")
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
