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

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


from sentra_lang.compiler import compile_source  # noqa: E402
from tests.bench.pair import Step, run  # noqa: E402

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


def steps(count: int) -> list[Step]:
    """``count`` decisions of the workload, agents in turn."""
    return [(AGENTS[i % len(AGENTS)], *WORKLOAD[i % len(WORKLOAD)]) for i in range(count)]


if __name__ == "__main__":
    run(__doc__.splitlines()[0], "groups + agent.*", tables(), steps)
