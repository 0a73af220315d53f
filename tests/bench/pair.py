"""What the same-run comparison benchmarks share (decay_bench.py, groups_bench.py): a policy
with a feature against the same policy without it, decisions alternating between the two
engines round by round, on the in-memory store and on SQLite files; each prints its medians
and their ratio next to its target."""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sentra_runtime import Engine, MemoryStore, SQLiteStore, Store

Step = tuple[str, str, dict[str, Any]]
"""One decision of a workload: agent, action, fields."""


def per_decision(engine: Engine, steps: Sequence[Step]) -> float:
    """Seconds per decision over ``steps``, the garbage collector off."""
    evaluate = engine.evaluate
    gc.disable()
    try:
        start = time.perf_counter()
        for agent, action, fields in steps:
            evaluate(agent, action, fields)
        return (time.perf_counter() - start) / len(steps)
    finally:
        gc.enable()


def compare(tables: tuple[dict[str, Any], dict[str, Any]], make_store: Callable[[], Store],
            steps: Callable[[int], list[Step]], count: int, rounds: int,
            clock: Callable[[], Callable[[], float]] | None = None) -> tuple[float, float]:
    """Median seconds per decision of (the plain table, the table with the feature), the two
    engines taking turns ``rounds`` times after a warm-up (agents exist, code paths taken)."""
    engines = [Engine(table, make_store(), clock=None if clock is None else clock())
               for table in tables]
    for engine in engines:
        per_decision(engine, steps(min(count, 2000)))
    workload = steps(count)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for index, engine in enumerate(engines):
            times[index].append(per_decision(engine, workload))
    for engine in engines:
        engine.close()
    return statistics.median(times[0]), statistics.median(times[1])


def run(description: str, feature: str, tables: tuple[dict[str, Any], dict[str, Any]],
        steps: Callable[[int], list[Step]],
        clock: Callable[[], Callable[[], float]] | None = None) -> None:
    """The command line (``--count``, ``--rounds``): memory (target 1.5x), then SQLite (1.2x)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--count", type=int, default=20_000, help="decisions per round (memory)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    plain, featured = compare(tables, MemoryStore, steps, args.count, args.rounds, clock)
    _report("memory", feature, plain, featured, 1.5)
    with tempfile.TemporaryDirectory() as folder:
        files = iter(range(1000))
        plain, featured = compare(tables, lambda: SQLiteStore(Path(folder) / f"{next(files)}.db"),
                                  steps, max(args.count // 10, 100), args.rounds, clock)
    _report("sqlite", feature, plain, featured, 1.2)


def _report(name: str, feature: str, plain: float, featured: float, target: float) -> None:
    print(f"{name:8} plain {plain * 1e6:8.2f} us/decision   {feature} "
          f"{featured * 1e6:8.2f} us/decision   ratio {featured / plain:.2f}x "
          f"(target <= {target}x)")
