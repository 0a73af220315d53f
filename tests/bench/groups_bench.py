"""Agent-groups benchmark: `python tests/bench/groups_bench.py` (docs/benchmarks.md, "Agent
groups and agent state").

A decision on a policy with agent groups (per-group threshold and strikes) whose rules read
the agent's state (`agent.group`, `agent.cumulative_risk`, `agent.blocked_attempts`: matched
inside the store's lock) next to the same decision on the same policy without groups or state
conditions, in the same run, on the in-memory store (its default bounded log) and on a SQLite
file (one transaction per decision). Thresholds and strikes are out of reach, so agents keep
deciding; the agents are spread over two groups and none. Rounds alternate between the two
policies; each figure is the median over rounds of the time per decision. Targets (issue 15):
at most 1.5x the plain decision in memory, 1.2x on SQLite.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sentra_runtime import Engine, MemoryStore, SQLiteStore  # noqa: E402

from sentra_lang.compiler import compile_source  # noqa: E402

PLAIN = """policy bench version "1" {
  risk_threshold 1000000000
  strikes 1000000000
}

input {
  amount: int = 0
  destination: string = "internal"
}

action EXPORT_DATA {
  when amount > 100000 block as TOO_LARGE "Too large."
  when destination == "external" allow risk 5 as EXTERNAL_EXPORT "External export."
  allow risk 1 as EXPORT_OK "Export allowed."
}

action FILE_READ {
  allow as READ_OK
}

otherwise block as UNKNOWN "Not covered."
"""

GROUPS = """group trusted {
  agents "ops-*"
  risk_threshold 2000000000
  strikes 2000000000
}

group new {
  agents "new-*"
}

"""

STATE_RULES = """  when agent.blocked_attempts >= 1000000000 block as NO_MORE_EXPORTS "No more."
  when agent.group == "new" and agent.cumulative_risk > 999999999 block as NEW_CAP "Cap."
"""

WORKLOAD: list[tuple[str, dict[str, Any]]] = [
    ("FILE_READ", {}),
    ("EXPORT_DATA", {"amount": 10}),
    ("EXPORT_DATA", {"amount": 500, "destination": "external"}),
    ("EXPORT_DATA", {"amount": 1_000_000}),                  # the rule blocks
    ("DELETE_RECORD", {}),                                   # otherwise: blocked
]
AGENTS = [f"{prefix}-{n}" for prefix in ("ops", "new", "agent") for n in range(17)]


def tables() -> tuple[dict[str, Any], dict[str, Any]]:
    """The plain table (schema 2) and the one with groups and state conditions (schema 3)."""
    grouped = PLAIN.replace("input {", GROUPS + "input {").replace(
        '  when amount > 100000', STATE_RULES + '  when amount > 100000')
    out = []
    for source in (PLAIN, grouped):
        table = compile_source(source, "bench.sentra", analyse=False).table
        assert table is not None
        out.append(table.model_dump(mode="json"))
    assert "groups" in out[1] and out[1]["schema_version"] == 3
    return out[0], out[1]


def per_decision(engine: Engine, count: int) -> float:
    """Seconds per decision over ``count`` decisions of the workload, agents in turn."""
    steps = [(AGENTS[i % len(AGENTS)], *WORKLOAD[i % len(WORKLOAD)]) for i in range(count)]
    evaluate = engine.evaluate
    gc.disable()
    try:
        start = time.perf_counter()
        for agent, action, fields in steps:
            evaluate(agent, action, fields)
        return (time.perf_counter() - start) / count
    finally:
        gc.enable()


def compare(make_store: Any, count: int, rounds: int) -> tuple[float, float]:
    """Median seconds per decision: (plain, grouped), rounds alternating."""
    engines = [Engine(table, make_store()) for table in tables()]
    for engine in engines:   # warm up: agents exist, code paths taken
        per_decision(engine, min(count, 2000))
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for index, engine in enumerate(engines):
            times[index].append(per_decision(engine, count))
    for engine in engines:
        engine.close()
    return statistics.median(times[0]), statistics.median(times[1])


def report(name: str, plain: float, grouped: float, target: float) -> None:
    print(f"{name:8} plain {plain * 1e6:8.2f} us/decision   groups + agent.* "
          f"{grouped * 1e6:8.2f} us/decision   ratio {grouped / plain:.2f}x (target <= {target}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="decisions per round (memory)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    plain, grouped = compare(MemoryStore, args.count, args.rounds)
    report("memory", plain, grouped, 1.5)
    with tempfile.TemporaryDirectory() as folder:
        files = iter(range(1000))
        plain, grouped = compare(lambda: SQLiteStore(Path(folder) / f"{next(files)}.db"),
                                 max(args.count // 10, 100), args.rounds)
    report("sqlite", plain, grouped, 1.2)


if __name__ == "__main__":
    main()
