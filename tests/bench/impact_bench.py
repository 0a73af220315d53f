"""Benchmark of the dashboard's Impact view (``GET /v1/impact``) over a large audit log.

    python tests/bench/impact_bench.py [--decisions 100000] [--db PATH]

Writes a log of N decisions with the Sentra policy (a third allowed, the rest blocked or shut
down, amounts on all) into a SQLite store (kept with ``--db`` for later runs), then measures in
the same run:

- baseline: paging through every record with ``read_records`` and doing nothing with them;
- loading every record at once (what the Impact view must not do), for its memory;
- the Impact view counted from nothing (what the first request does), and again after 1,000 more
  decisions (what later requests do: only the new records are read).

Times are the best of 3; peak memory is Python's (tracemalloc), each measured separately.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sentra_lang.server.gate import Gate
from sentra_lang.server.impact import PAGE, Impact, Settings

ROOT = Path(__file__).resolve().parents[2]


def write_decisions(gate: Gate, count: int, start: int = 0) -> None:
    for number in range(start, start + count):
        if number % 3:
            gate.engine.evaluate(f"agent-{number % 2000}", "CHANGE_PERMISSION",
                                 {"amount": number % 997})
        else:
            gate.engine.evaluate(f"reader-{number % 50}", "FILE_READ", {"amount": 1})


def page_through(gate: Gate) -> int:
    after, seen = 0, 0
    while True:
        page = gate.reader.records(after=after, limit=PAGE)
        seen += len(page)
        if len(page) < PAGE:
            return seen
        after = page[-1]["seq"]


def best_of(runs: int, work: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def peak_mb(work: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--db", type=Path, help="store file to reuse (written when short)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        gate = Gate(ROOT / "policies" / "sentra.sentra", args.db or Path(folder) / "bench.db")
        try:
            have = gate.reader.head()
            if have < args.decisions:
                started = time.perf_counter()
                write_decisions(gate, args.decisions - have, have)
                print(f"wrote {args.decisions - have:,} decisions in "
                      f"{time.perf_counter() - started:.1f} s")
            run(gate)
        finally:
            gate.close()


def run(gate: Gate) -> None:
    records = gate.reader.head()
    settings = Settings()
    baseline = best_of(3, lambda: page_through(gate))
    full = best_of(3, lambda: Impact(gate).report(settings))
    kept = Impact(gate)
    kept.report(settings)
    write_decisions(gate, 1_000, records)
    incremental = best_of(1, lambda: kept.report(settings))
    print(f"log: {records:,} records (Sentra policy), page size {PAGE}")
    print(f"page through every record (baseline): {baseline:.2f} s")
    print(f"Impact view from nothing:             {full:.2f} s  "
          f"({full / baseline:.2f}x the baseline, {records / full:,.0f} records/s)")
    print(f"Impact view after 1,000 more:         {incremental * 1000:.1f} ms  "
          f"({incremental / baseline:.3f}x the baseline)")
    everything = peak_mb(lambda: gate.reader.records(after=0, limit=records + 1_000))
    impact_peak = peak_mb(lambda: Impact(gate).report(Settings(bucket="hour")))
    print(f"peak memory, every record at once:    {everything:.0f} MB")
    print(f"peak memory, Impact view:             {impact_peak:.1f} MB  "
          f"({impact_peak / everything:.3f}x)")


if __name__ == "__main__":
    main()
