"""Runtime benchmark: `python tests/bench/runtime_bench.py` (see docs/benchmarks.md, "Runtime").

Measures `Engine.evaluate` with the in-memory store on the Sentra-compatible table and on
generated tables of 10, 100 and 1,000 rules, next to a hand-written dict-dispatch implementation
of the Sentra policy (the practical floor), and the SQLite store's decisions/s (NORMAL and FULL).
Two more rows show the cases the main workload spares: input that is never empty, and risky,
blocked and invalid actions (which leave the engine's fast path).
"""

from __future__ import annotations

import copy
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# imported after the path set-up above, so the script runs from any directory
from sentra_runtime import Engine, MemoryStore, SQLiteStore  # noqa: E402

from tests.runtime.helpers import sentra_table  # noqa: E402
from tests.runtime.tables import generate_table, reseal  # noqa: E402

SENTRA_WORKLOAD = [
    ("FILE_READ", {}),
    ("SEND_NOTIFICATION", {"notification_type": "approval",
                           "context": {"approval_requires_verified_eligibility": True,
                                       "eligibility_verified": True,
                                       "required_documents_present": True}}),
    ("APPROVE_TRANSACTION", {"amount": 1200, "context": {"max_approval_amount": 5000}}),
    ("EXPORT_DATA", {"destination_type": "internal", "data_classification": "internal"}),
    ("MODIFY_RECORD", {"data_classification": "internal"}),
    ("REVIEW_CASE", {}),
]
SENSITIVE = frozenset({"sensitive", "confidential", "restricted"})
CHECKPOINT_SECONDS = 0.25
"""``sentra_lang/server/gate.py``'s CHECKPOINT_SECONDS (not imported: this script needs only the
runtime)."""
NON_EMPTY_WORKLOAD = [(action, fields) for action, fields in SENTRA_WORKLOAD if fields]
MIXED_WORKLOAD = SENTRA_WORKLOAD + [
    ("DELETE_RECORD", {}),                                   # risky allow: the state changes
    ("EXPORT_DATA", {"destination_type": "external", "data_classification": "Sensitive"}),
    ("CHANGE_PERMISSION", {}),                               # the rule blocks
    ("APPROVE_TRANSACTION", {"amount": "1200"}),             # invalid input: blocked
]
"""The Sentra actions plus risky, blocked and invalid ones, on a table whose threshold and
strikes are out of reach (so agents keep deciding instead of shutting down for good)."""


class HandWritten:
    """The Sentra policy written by hand: dict dispatch, the same input checks, risk, strikes."""

    def __init__(self) -> None:
        self.states: dict[str, tuple[int, int, bool]] = {}
        self.handlers: dict[str, Callable[[dict[str, Any]], tuple[str, str, int]]] = {
            "FILE_READ": self.internal, "FILE_WRITE": self.internal,
            "READ_RECORD": self.internal, "REVIEW_CASE": self.internal,
            "SEND_NOTIFICATION": self.notification, "APPROVE_TRANSACTION": self.transaction,
            "EXPORT_DATA": self.export, "MODIFY_RECORD": self.modify,
            "ACCESS_EXTERNAL_SERVICE": self.service,
            "DELETE_RECORD": lambda f: ("allow", "RISKY_DELETE_RECORD", 30),
            "CHANGE_PERMISSION": lambda f: ("block", "BLOCK_PERMISSION_CHANGE", 60),
        }

    @staticmethod
    def internal(fields: dict[str, Any]) -> tuple[str, str, int]:
        return "allow", "ALLOW_INTERNAL_WORKFLOW", 0

    @staticmethod
    def _lower(fields: dict[str, Any], name: str, default: str | None) -> str | None:
        value = fields.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(name)
        return value.strip().lower()

    def notification(self, fields: dict[str, Any]) -> tuple[str, str, int]:
        kind = self._lower(fields, "notification_type", None)
        context = fields.get("context") or {}
        if kind == "rejection":
            return "allow", "ALLOW_REJECTION_NOTIFICATION", 0
        if kind == "approval":
            if context.get("approval_requires_verified_eligibility") and not (
                    context.get("eligibility_verified")
                    and context.get("required_documents_present")):
                return "block", "BLOCK_UNSAFE_APPROVAL_NOTIFICATION", 40
            return "allow", "ALLOW_APPROVAL_NOTIFICATION", 0
        return "allow", "ALLOW_GENERAL_NOTIFICATION", 0

    def transaction(self, fields: dict[str, Any]) -> tuple[str, str, int]:
        context = fields.get("context") or {}
        amount, limit = fields.get("amount"), context.get("max_approval_amount")
        if amount is not None and not isinstance(amount, (int, float)):
            raise ValueError("amount")
        if context.get("approval_requires_verified_eligibility") and not (
                context.get("eligibility_verified") and context.get("required_documents_present")):
            return "allow", "RISKY_UNAUTHORIZED_TRANSACTION", 50
        if amount is not None and limit is not None and amount > limit:
            return "allow", "RISKY_OVER_LIMIT_TRANSACTION", 25
        return "allow", "ALLOW_TRANSACTION", 0

    def export(self, fields: dict[str, Any]) -> tuple[str, str, int]:
        if (self._lower(fields, "destination_type", "internal") == "external"
                and self._lower(fields, "data_classification", "internal") in SENSITIVE):
            return "allow", "RISKY_SENSITIVE_EXTERNAL_EXPORT", 80
        return "allow", "ALLOW_INTERNAL_EXPORT", 0

    def service(self, fields: dict[str, Any]) -> tuple[str, str, int]:
        if self._lower(fields, "data_classification", "internal") in SENSITIVE:
            return "allow", "RISKY_SENSITIVE_EXTERNAL_SERVICE_ACCESS", 70
        return "allow", "ALLOW_EXTERNAL_SERVICE_ACCESS", 0

    def modify(self, fields: dict[str, Any]) -> tuple[str, str, int]:
        context = fields.get("context") or {}
        if (self._lower(fields, "data_classification", "internal") in SENSITIVE
                and context.get("sensitive_record_update_requires_review")):
            return "allow", "RISKY_SENSITIVE_RECORD_MODIFICATION", 20
        return "allow", "ALLOW_RECORD_MODIFICATION", 0

    def evaluate(self, agent_id: str, action: str, fields: dict[str, Any]) -> dict[str, Any]:
        cumulative, blocked, down = self.states.get(agent_id, (0, 0, False))
        if down:
            return {"label": "Agent Shut Down", "rule_id": "AGENT_ALREADY_SHUT_DOWN"}
        handler = self.handlers.get(action.strip().upper())
        outcome, rule_id, risk = (handler(fields) if handler
                                  else ("allow", "RISKY_UNKNOWN_ACTION", 20))
        projected = cumulative + risk
        if outcome == "allow" and projected <= 100:
            self.states[agent_id] = (projected, blocked, False)
            return {"label": "Allowed", "rule_id": rule_id, "cumulative_risk": projected}
        blocked += 1
        self.states[agent_id] = (cumulative, blocked, blocked >= 3)
        return {"label": "Blocked", "rule_id": rule_id, "cumulative_risk": cumulative}


def latencies(evaluate: Callable[[str, str, dict[str, Any]], Any],
              workload: list[tuple[str, dict[str, Any]]], count: int) -> dict[str, float]:
    """Per-call latency percentiles (timer overhead subtracted) and batch decisions/s."""
    rng = random.Random(1)
    calls = [(f"agent-{rng.randrange(200)}", *rng.choice(workload)) for _ in range(count)]
    clock = time.perf_counter_ns
    overhead = statistics.median(-(clock() - clock()) for _ in range(10_000))
    samples = []
    gc.disable()
    try:
        for agent, action, fields in calls:
            start = clock()
            evaluate(agent, action, fields)
            samples.append(clock() - start - overhead)
        start = time.perf_counter()
        for agent, action, fields in calls:
            evaluate(agent, action, fields)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    samples.sort()
    return {"p50": samples[len(samples) // 2] / 1000, "p99": samples[len(samples) * 99 // 100] / 1000,
            "rate": count / elapsed}


def fresh_engine(table: dict[str, Any], *, audit: bool = True) -> Engine:
    return Engine(table, MemoryStore(audit=audit))


def unreachable_limits(table: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(table)
    changed["settings"]["risk_threshold"] = changed["settings"]["strikes"] = 10**12
    return reseal(changed)


def scaled_table(rules: int) -> dict[str, Any]:
    """``rules // 10`` copies of one generated 10-rule action block (zero risk, allow only), so
    every size does the same work per decision and only the table grows."""
    block = generate_table(10, seed=5, actions=1, outcomes=("allow",))
    table = copy.deepcopy(block)
    table["rules"], table["actions"] = [], []
    for copy_index in range(rules // 10):
        suffix = f"_{copy_index}"
        for rule in block["rules"]:
            if rule["id"] != "FALLBACK":
                table["rules"].append({**rule, "id": rule["id"] + suffix, "risk": 0})
        table["actions"].append({"names": [f"ACTION_{copy_index}"], "rows": [
            {**row, "rule": row["rule"] + suffix} for row in block["actions"][0]["rows"]]})
    table["rules"].append(next(r for r in block["rules"] if r["id"] == "FALLBACK"))
    table["policy"]["name"] = f"scaled{rules}"
    return reseal(table)


def generated_workload(table: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    names = [name for block in table["actions"] for name in block["names"]]
    rng = random.Random(7)
    return [(rng.choice(names), {"amount": rng.choice([5, 50, 150]), "kind": rng.choice("abc"),
                                 "flag": rng.random() < 0.5, "limits": {"max": 60}})
            for _ in range(64)]


def sqlite_rate(table: dict[str, Any], synchronous: str, count: int,
                checkpoint_interval: float | None = None) -> float:
    with tempfile.TemporaryDirectory() as folder:
        engine = Engine(table, SQLiteStore(Path(folder) / "bench.db", synchronous=synchronous,
                                           checkpoint_interval=checkpoint_interval))
        rng = random.Random(3)
        calls = [(f"agent-{rng.randrange(200)}", *rng.choice(SENTRA_WORKLOAD))
                 for _ in range(count)]
        start = time.perf_counter()
        for agent, action, fields in calls:
            engine.evaluate(agent, action, fields)
        elapsed = time.perf_counter() - start
        engine.close()
    return count / elapsed


def main() -> None:
    count = 200_000
    sentra = sentra_table()
    rows: list[tuple[str, dict[str, float]]] = []
    floor = latencies(HandWritten().evaluate, SENTRA_WORKLOAD, count)
    rows.append(("hand-written dict dispatch (floor)", floor))
    rows.append(("sentra table, memory store", latencies(fresh_engine(sentra).evaluate,
                                                         SENTRA_WORKLOAD, count)))
    rows.append(("sentra table, memory store, audit=False",
                 latencies(fresh_engine(sentra, audit=False).evaluate, SENTRA_WORKLOAD, count)))
    for size in (10, 100, 1000):
        table = scaled_table(size)
        rows.append((f"generated, {size} rules", latencies(
            fresh_engine(table).evaluate, generated_workload(table), count)))
    rows.append(("sentra table, non-empty input only", latencies(
        fresh_engine(sentra).evaluate, NON_EMPTY_WORKLOAD, count)))
    rows.append(("sentra table, mixed outcomes", latencies(
        fresh_engine(unreachable_limits(sentra)).evaluate, MIXED_WORKLOAD, count)))
    print(f"{'case':44} {'p50 us':>8} {'p99 us':>8} {'decisions/s':>12} {'p50 / floor':>12}")
    for name, result in rows:
        print(f"{name:44} {result['p50']:8.2f} {result['p99']:8.2f} {result['rate']:12,.0f} "
              f"{result['p50'] / floor['p50']:12.1f}x")
    ten, thousand = rows[3][1]["p50"], rows[5][1]["p50"]
    print(f"p50 at 1000 rules / p50 at 10 rules: {thousand / ten:.2f}")
    for mode, n in (("NORMAL", 20_000), ("FULL", 2_000)):
        print(f"sqlite store, synchronous={mode}: {sqlite_rate(sentra, mode, n):,.0f} decisions/s "
              f"({n} decisions, one process)")
    rate = sqlite_rate(sentra, "NORMAL", 20_000, checkpoint_interval=CHECKPOINT_SECONDS)
    print(f"sqlite store, synchronous=NORMAL, checkpoint_interval={CHECKPOINT_SECONDS} "
          "(the server's setting): "
          f"{rate:,.0f} decisions/s (20000 decisions, one process)")


if __name__ == "__main__":
    main()
