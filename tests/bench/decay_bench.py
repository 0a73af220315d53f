"""Risk-decay benchmark: `python tests/bench/decay_bench.py` (docs/benchmarks.md, "Risk decay").

A decision on a policy with `risk_decay` next to the same decision on the same policy without
it, in the same run, on the in-memory store (its default bounded log) and on a SQLite file
(synchronous NORMAL, one transaction per decision). The policy is the Sentra-compatible table
with its threshold and strikes out of reach (agents keep deciding), the decaying one adds
`risk_decay 10 per 1h`; a clock moves 1 minute per decision, so risk really decays (every
agent's anchor moves about every 60 of its decisions). Rounds alternate between the two
policies; each figure is the median over rounds of the time per decision. Targets (issue 15):
at most 1.5x the plain decision in memory, 1.2x on SQLite.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


from tests.bench.pair import Step, run  # noqa: E402
from tests.runtime.helpers import sentra_table  # noqa: E402
from tests.runtime.tables import reseal  # noqa: E402

WORKLOAD: list[tuple[str, dict[str, Any]]] = [
    ("FILE_READ", {}),
    ("APPROVE_TRANSACTION", {"amount": 1200, "context": {"max_approval_amount": 5000}}),
    ("EXPORT_DATA", {"destination_type": "internal", "data_classification": "internal"}),
    ("DELETE_RECORD", {}),                                   # risky allow: the state changes
    ("EXPORT_DATA", {"destination_type": "external", "data_classification": "Sensitive"}),
    ("CHANGE_PERMISSION", {}),                               # the rule blocks
    ("APPROVE_TRANSACTION", {"amount": "1200"}),             # invalid input: blocked
]
AGENTS = [f"agent-{n}" for n in range(50)]


def tables() -> tuple[dict[str, Any], dict[str, Any]]:
    """The plain table (schema 2) and the same with `risk_decay 10 per 1h` (schema 3)."""
    plain = copy.deepcopy(sentra_table())
    plain["schema_version"] = 2
    plain["settings"].update(risk_threshold=10**12, strikes=10**12)
    decaying = copy.deepcopy(plain)
    decaying["schema_version"] = 3
    decaying["settings"]["risk_decay"] = {"amount": 10, "period": 3600}
    return reseal(plain), reseal(decaying)


class Clock:
    """One minute per call."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 60.0
        return self.now


def steps(count: int) -> list[Step]:
    """``count`` decisions of the workload, agents in turn."""
    return [(AGENTS[i % len(AGENTS)], *WORKLOAD[i % len(WORKLOAD)]) for i in range(count)]


if __name__ == "__main__":
    run(__doc__.splitlines()[0], "with risk_decay", tables(), steps, clock=Clock)
