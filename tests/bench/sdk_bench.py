"""Benchmark: what the SDK adds to a decision over loopback.

    python tests/bench/sdk_bench.py [--rounds 20] [--per-round 100]

Starts ``sentra-lang serve policies/sentra.sentra`` (a separate process, a fresh SQLite file)
and times ``POST /v1/decide`` for one agent three ways, in interleaved rounds so that the
machine's noise falls on all of them alike:

* **raw**: ``http.client`` on one kept-alive connection: send the pre-encoded request, read the
  answer's bytes (the baseline: no JSON, no checks);
* **raw + json**: the same, and ``json.loads`` of the answer;
* **SDK**: ``RemoteEngine.decide``: encode and check the fields, the deadline on every socket
  operation, the bounded read, the depth check, parsing, and the Decision with its
  explanation, type-checked field by field.

Prints p50, p90 and mean per request and the SDK's ratios to the baselines. Target: the SDK at
most 1.2x the raw request.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_load  # noqa: E402
from sentra_runtime.client import RemoteEngine  # noqa: E402

FIELDS = {"destination_type": "internal", "data_classification": "internal"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        process, url = server_load.start_server(folder)
        try:
            results = measure(url, args.rounds, args.per_round)
        finally:
            process.terminate()
            process.wait(timeout=10)
    report(results)
    return 0


def measure(url: str, rounds: int, per_round: int) -> dict[str, list[float]]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port))
    body = json.dumps({"agent_id": "bench", "action": "EXPORT_DATA",
                       "fields": FIELDS}).encode()
    headers = {"Content-Type": "application/json"}
    engine = RemoteEngine(url)

    def raw() -> bytes:
        connection.request("POST", "/v1/decide", body, headers)
        return connection.getresponse().read()

    def raw_json() -> object:
        return json.loads(raw())

    def sdk() -> object:
        decision = engine.decide("bench", "EXPORT_DATA", FIELDS)
        assert decision.allowed, decision.reason
        return decision

    ways = {"raw": raw, "raw + json": raw_json, "SDK": sdk}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for function in ways.values():   # warm up: connections, caches
        for _ in range(50):
            function()
    gc.collect()
    for _ in range(rounds):
        for name, function in ways.items():
            for _ in range(per_round):
                started = time.perf_counter()
                function()
                times[name].append(time.perf_counter() - started)
    connection.close()
    engine.close()
    return times


def report(times: dict[str, list[float]]) -> None:
    def quantile(values: list[float], share: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    base = statistics.median(times["raw"])
    base_json = statistics.median(times["raw + json"])
    print(f"{'way':<12} {'requests':>8} {'p50 µs':>8} {'p90 µs':>8} {'mean µs':>8} "
          f"{'p50 / raw':>9}")
    for name, values in times.items():
        p50 = statistics.median(values)
        print(f"{name:<12} {len(values):>8} {p50 * 1e6:>8.0f} {quantile(values, 0.9) * 1e6:>8.0f} "
              f"{statistics.fmean(values) * 1e6:>8.0f} {p50 / base:>8.2f}x")
    sdk = statistics.median(times["SDK"])
    print(f"SDK p50 / raw p50: {sdk / base:.2f}x (target at most 1.2x); "
          f"SDK p50 / raw + json p50: {sdk / base_json:.2f}x; "
          f"SDK adds {(sdk - base) * 1e6:.0f} µs per decision")


if __name__ == "__main__":
    sys.exit(main())
