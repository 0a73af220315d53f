"""Benchmark: reading a large audit log over HTTP must not starve decisions.

    python tests/bench/events_bench.py [--events 100000] [--readers 4] [--decisions 6000]

Writes ``--events`` decision records into a fresh SQLite store (the runtime, in this process),
starts ``sentra-lang serve`` on it (a separate process, loopback), and measures the latency of
``POST /agent-action`` (2 clients, one request in flight each) in three phases, each its own
baseline in the same run:

1. decisions alone;
2. decisions while ``--readers`` clients page through the whole log with ``GET /events``
   (1,000 events a page, following the ``Link`` header, over and over);
3. decisions while as many clients page through ``GET /v1/events?limit=1000``.

Prints p50/p99 per phase, the readers' pages and MB per second, and the server's resident
memory before and after (from /proc). The goal: the decision p99 stays under 50 ms while the
log is read.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_load  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "policies" / "sentra.sentra"
NEXT_AFTER = re.compile(rb'"next_after":(\d+)')
"""Read from the page's end: parsing each page would load the machine the server shares."""
ACTIONS = [("FILE_READ", {}), ("EXPORT_DATA", {"destination_type": "external",
                                               "data_classification": "sensitive"}),
           ("APPROVE_TRANSACTION", {"amount": 9000, "context": {"max_approval_amount": 5000}}),
           ("CHANGE_PERMISSION", {})]


def fill(db: str, count: int) -> float:
    """``count`` decision records in ``db``, written by the runtime; seconds taken."""
    from sentra_runtime import Engine, SQLiteStore

    from sentra_lang import load_policy_file

    started = time.perf_counter()
    store = SQLiteStore(db, checkpoint_interval=0.25)
    try:
        engine = Engine(load_policy_file(POLICY).table, store)
        for number in range(count):
            action, fields = ACTIONS[number % len(ACTIONS)]
            engine.evaluate(f"filler-{number % 997}", action, fields)
    finally:
        store.close()
    return time.perf_counter() - started


def resident_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Readers:
    """``count`` threads reading every page of a listing, from the start, until stopped."""

    def __init__(self, port: int, count: int, first: str, compat: bool) -> None:
        self.port, self.first, self.compat = port, first, compat
        self.pages = 0
        self.bytes = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._read, daemon=True) for _ in range(count)]

    def __enter__(self) -> Readers:
        self.started = time.perf_counter()
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()
        self.seconds = time.perf_counter() - self.started

    def _read(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        path = self.first
        while not self.stop.is_set():
            connection.request("GET", path)
            answer = connection.getresponse()
            body = answer.read()
            if answer.status != 200:
                raise SystemExit(f"{path}: {answer.status} {body[:200]!r}")
            self.pages += 1
            self.bytes += len(body)
            path = self._next(answer, body) or self.first
        connection.close()

    def _next(self, answer: http.client.HTTPResponse, body: bytes) -> str | None:
        if self.compat:
            link = answer.getheader("link")
            return None if link is None else link[1:link.index(">")]
        if body.startswith(b'{"events":[]'):
            return None
        after = NEXT_AFTER.search(body[-200:])
        assert after is not None
        return f"/v1/events?limit=1000&after={after.group(1).decode()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--decisions", type=int, default=6_000)
    parser.add_argument("--time-limit", type=float, default=120.0)
    args = parser.parse_args()
    if not 0 < args.events <= 1_000_000 or not 0 < args.readers <= 32 \
            or not 0 < args.decisions <= 100_000:
        parser.error("--events 1..1000000, --readers 1..32, --decisions 1..100000")
    with tempfile.TemporaryDirectory() as folder:
        db = os.path.join(folder, "bench.db")
        seconds = fill(db, args.events)
        print(f"{args.events} decision records written in {seconds:.1f} s; Python "
              f"{sys.version.split()[0]}, {os.cpu_count()} CPUs")
        process, url = server_load.start_server(folder, db=db)
        port = int(url.rsplit(":", 1)[1])
        try:
            def decisions(name: str, seed: int) -> None:
                rate, latencies = server_load.run_asyncio("127.0.0.1", port, args.decisions, 2,
                                                          seed, args.time_limit)
                print(f"{name:<34} {rate:6.0f} req/s   p50 "
                      f"{server_load.percentile(latencies, .5) * 1000:6.2f} ms   p99 "
                      f"{server_load.percentile(latencies, .99) * 1000:6.2f} ms   max "
                      f"{max(latencies) * 1000:6.1f} ms   ({len(latencies)} decisions)")

            before = resident_mb(process.pid)
            decisions("decisions alone (baseline)", 1)
            for name, first, compat in (("GET /events", "/events", True),
                                        ("GET /v1/events", "/v1/events?limit=1000", False)):
                with Readers(port, args.readers, first, compat) as readers:
                    time.sleep(0.5)
                    decisions(f"decisions + {args.readers} readers of {name}", 2)
                print(f"{'':<34} readers: {readers.pages / readers.seconds:6.1f} pages/s, "
                      f"{readers.bytes / readers.seconds / 1e6:6.1f} MB/s")
            print(f"server memory: {before:.0f} MB before the readers, "
                  f"{resident_mb(process.pid):.0f} MB after")
        finally:
            process.terminate()
            process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
