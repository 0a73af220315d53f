"""Runtime benchmark: `python tests/bench/runtime_bench.py` (see docs/benchmarks.md, "Runtime").

Every figure is printed next to a baseline measured in the same run:

* in memory, on the Sentra-compatible table: the pure `Decider.decide` next to a hand-written
  dict dispatch of the same table with the same contract (the floor), and `Engine.evaluate`
  with the in-memory store (bounded log, no log, unbounded log) next to the hand-written one
  keeping states in a dict; input that is never empty, and risky, blocked and invalid actions;
* generated tables of 10, 100 and 1,000 rules in blocks of ten (only the table grows);
* one action of N rules each testing one field for equality (10 to 10,000): p50 against the
  10-rule case, with the rows compiled to a dict lookup and, for reference, tried in order;
* loading (validating and compiling) 1,000- and 10,000-rule tables;
* the SQLite store: decisions/s with synchronous NORMAL and FULL, per decision on a 10- and a
  10,000-rule table, and 8 threads (and 8 tasks on an event loop, ``evaluate_async``) with
  group commit against one transaction per decision.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# imported after the path set-up above, so the script runs from any directory
from sentra_runtime import (  # noqa: E402
    FRESH,
    Decider,
    Engine,
    MemoryStore,
    SQLiteStore,
)
from sentra_runtime.codegen import compile_matcher  # noqa: E402

from tests.runtime.helpers import sentra_table  # noqa: E402
from tests.runtime.tables import equality_table, generate_table, reseal  # noqa: E402

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

    def decide(self, action: str, fields: dict[str, Any],
               state: tuple[int, int, bool]) -> tuple[dict[str, Any], tuple[int, int, bool]]:
        """The pure decision, as ``Decider.decide``: ``(result, new state)``."""
        cumulative, blocked, down = state
        if down:
            return {"label": "Agent Shut Down", "rule_id": "AGENT_ALREADY_SHUT_DOWN"}, state
        handler = self.handlers.get(action.strip().upper())
        outcome, rule_id, risk = (handler(fields) if handler
                                  else ("allow", "RISKY_UNKNOWN_ACTION", 20))
        projected = cumulative + risk
        if outcome == "allow" and projected <= 100:
            return ({"label": "Allowed", "rule_id": rule_id, "cumulative_risk": projected},
                    (projected, blocked, False))
        blocked += 1
        return ({"label": "Blocked", "rule_id": rule_id, "cumulative_risk": cumulative},
                (cumulative, blocked, blocked >= 3))

    def evaluate(self, agent_id: str, action: str, fields: dict[str, Any]) -> dict[str, Any]:
        """With the agents' states in a dict, as ``Engine.evaluate`` with a memory store."""
        result, self.states[agent_id] = self.decide(action, fields,
                                                    self.states.get(agent_id, (0, 0, False)))
        return result


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


def interleaved(rounds: int,
                cases: dict[str, Callable[[], dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Each case measured ``rounds`` times, the cases taking turns, and its best round kept
    (lowest p50, highest rate): on a shared, noisy machine the other jobs only add time, so the
    best round is the closest to the code's own cost, and taking turns spreads the noise."""
    best: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for name, measure in cases.items():
            result = measure()
            kept = best.setdefault(name, result)
            if result["p50"] < kept["p50"]:
                kept.update(p50=result["p50"], p99=result["p99"])
            kept["rate"] = max(kept["rate"], result["rate"])
    return best


def stateless_latencies(decide: Callable[[str, dict[str, Any], Any], Any],
                        workload: list[tuple[str, dict[str, Any]]],
                        count: int) -> dict[str, float]:
    """:func:`latencies` of a pure decision function ``decide(action, fields, state)``, called
    directly, from a fresh state."""
    return latencies(lambda _agent, action, fields: decide(action, fields, FRESH), workload,
                     count)


def equality_workload(rules: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(11)
    return [("A", {"kind": f"k{rng.randrange(rules)}"}) for _ in range(255)] + [
        ("A", {"kind": "none of them"})]


def load_seconds(table: dict[str, Any]) -> tuple[float, float]:
    """Best of three, wall and CPU seconds: validate the table, check its hash, generate and
    compile its matcher."""
    wall, cpu = float("inf"), float("inf")
    for _ in range(3):
        start, start_cpu = time.perf_counter(), time.process_time()
        Engine(table, MemoryStore(audit=False))
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def sqlite_rate(table: dict[str, Any], synchronous: str, count: int,
                checkpoint_interval: float | None = None,
                workload: list[tuple[str, dict[str, Any]]] | None = None) -> float:
    with tempfile.TemporaryDirectory() as folder:
        engine = Engine(table, SQLiteStore(Path(folder) / "bench.db", synchronous=synchronous,
                                           checkpoint_interval=checkpoint_interval))
        rng = random.Random(3)
        calls = [(f"agent-{rng.randrange(200)}", *rng.choice(workload or SENTRA_WORKLOAD))
                 for _ in range(count)]
        start = time.perf_counter()
        for agent, action, fields in calls:
            engine.evaluate(agent, action, fields)
        elapsed = time.perf_counter() - start
        engine.close()
    return count / elapsed


def sqlite_by_table_size(count: int, rounds: int = 6) -> dict[int, tuple[float, float]]:
    """Per table size (one action of 10 and of 10,000 equality rules): the best decisions/s of
    a SQLite store and its lowest CPU time per decision in microseconds. The two stores take
    turns, ``count / rounds`` decisions at a time, in alternating order."""
    best = {10: (0.0, float("inf")), 10_000: (0.0, float("inf"))}
    with tempfile.TemporaryDirectory() as folder:
        engines = {rules: Engine(equality_table(rules),
                                 SQLiteStore(Path(folder) / f"{rules}.db",
                                             checkpoint_interval=CHECKPOINT_SECONDS))
                   for rules in best}
        for round_number in range(rounds):
            order = list(engines.items())
            for rules, engine in order[::-1] if round_number % 2 else order:
                rng = random.Random(round_number)
                workload = equality_workload(rules)
                calls = [(f"agent-{rng.randrange(200)}", *rng.choice(workload))
                         for _ in range(count // rounds)]
                start, start_cpu = time.perf_counter(), time.process_time()
                for agent, action, fields in calls:
                    engine.evaluate(agent, action, fields)
                rate = len(calls) / (time.perf_counter() - start)
                cpu = (time.process_time() - start_cpu) / len(calls) * 1e6
                best[rules] = (max(best[rules][0], rate), min(best[rules][1], cpu))
        for engine in engines.values():
            engine.close()
    return best


def sqlite_threads(table: dict[str, Any], synchronous: str, group_commit: bool, threads: int,
                   count: int) -> tuple[float, float, float]:
    """``threads`` threads deciding ``count`` decisions in all on one store (the server's
    settings: background checkpoints): decisions/s, p99 latency in ms, decisions per commit."""
    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteStore(Path(folder) / "bench.db", synchronous=synchronous,
                            checkpoint_interval=CHECKPOINT_SECONDS, group_commit=group_commit)
        engine = Engine(table, store)
        samples: list[float] = []

        def work(number: int) -> None:
            rng = random.Random(number)
            mine = []
            for _ in range(count // threads):
                agent = f"agent-{rng.randrange(200)}"
                action, fields = rng.choice(SENTRA_WORKLOAD)
                started = time.perf_counter()
                engine.evaluate(agent, action, fields)
                mine.append(time.perf_counter() - started)
            samples.extend(mine)

        workers = [threading.Thread(target=work, args=(number,)) for number in range(threads)]
        commits = store.commits
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - start
        per_commit = len(samples) / max(store.commits - commits, 1)
        engine.close()
    samples.sort()
    return len(samples) / elapsed, samples[len(samples) * 99 // 100] * 1000, per_commit


def sqlite_tasks(table: dict[str, Any], synchronous: str, group_commit: bool, tasks: int,
                 count: int) -> tuple[float, float, float]:
    """:func:`sqlite_threads` with ``tasks`` tasks on one event loop (``evaluate_async``: the
    loop decides, the store's commit thread commits)."""
    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteStore(Path(folder) / "bench.db", synchronous=synchronous,
                            checkpoint_interval=CHECKPOINT_SECONDS, group_commit=group_commit)
        engine = Engine(table, store)
        samples: list[float] = []

        async def work(number: int) -> None:
            rng = random.Random(number)
            for _ in range(count // tasks):
                agent = f"agent-{rng.randrange(200)}"
                action, fields = rng.choice(SENTRA_WORKLOAD)
                started = time.perf_counter()
                await engine.evaluate_async(agent, action, fields)
                samples.append(time.perf_counter() - started)

        async def main() -> None:
            await asyncio.gather(*(work(number) for number in range(tasks)))

        commits = store.commits
        start = time.perf_counter()
        asyncio.run(main())
        elapsed = time.perf_counter() - start
        per_commit = len(samples) / max(store.commits - commits, 1)
        engine.close()
    samples.sort()
    return len(samples) / elapsed, samples[len(samples) * 99 // 100] * 1000, per_commit


def print_rows(rows: list[tuple[str, dict[str, float], dict[str, float]]]) -> None:
    print(f"{'case':46} {'p50 us':>8} {'p99 us':>8} {'decisions/s':>12} {'p50 / its floor':>16}")
    for name, result, floor in rows:
        print(f"{name:46} {result['p50']:8.2f} {result['p99']:8.2f} {result['rate']:12,.0f} "
              f"{result['p50'] / floor['p50']:15.2f}x")


def in_memory(count: int, rounds: int) -> None:
    sentra = sentra_table()
    hand = HandWritten()
    decider = Decider(sentra)
    engines = {"default": fresh_engine(sentra), "off": fresh_engine(sentra, audit=False),
               "unbounded": Engine(sentra, MemoryStore(audit_limit=None)),
               "mixed": fresh_engine(unreachable_limits(sentra))}
    results = interleaved(rounds, {
        "pure": lambda: stateless_latencies(hand.decide, SENTRA_WORKLOAD, count),
        "decide": lambda: stateless_latencies(decider.decide, SENTRA_WORKLOAD, count),
        "hand": lambda: latencies(HandWritten().evaluate, SENTRA_WORKLOAD, count),
        "default": lambda: latencies(engines["default"].evaluate, SENTRA_WORKLOAD, count),
        "off": lambda: latencies(engines["off"].evaluate, SENTRA_WORKLOAD, count),
        "unbounded": lambda: latencies(engines["unbounded"].evaluate, SENTRA_WORKLOAD, count),
        "non-empty": lambda: latencies(engines["default"].evaluate, NON_EMPTY_WORKLOAD, count),
        "mixed": lambda: latencies(engines["mixed"].evaluate, MIXED_WORKLOAD, count),
    })
    pure, floor = results["pure"], results["hand"]
    print_rows([
        ("hand-written dispatch, pure (stateless floor)", pure, pure),
        ("Decider.decide (pure)", results["decide"], pure),
        ("hand-written, states in a dict (floor)", floor, floor),
        ("Engine, memory store (bounded log, default)", results["default"], floor),
        ("Engine, memory store, audit=False", results["off"], floor),
        ("Engine, memory store, audit_limit=None", results["unbounded"], floor),
        ("Engine, non-empty input only", results["non-empty"], floor),
        ("Engine, mixed outcomes", results["mixed"], floor),
    ])
    tables = {size: scaled_table(size) for size in (10, 100, 1000)}
    sized = interleaved(rounds, {
        str(size): (lambda table=table: latencies(fresh_engine(table).evaluate,
                                                  generated_workload(table), count))
        for size, table in tables.items()})
    print_rows([(f"generated, {size} rules in blocks of ten", sized[str(size)], floor)
                for size in tables])
    print(f"p50 at 1,000 rules / p50 at 10 rules: {sized['1000']['p50'] / sized['10']['p50']:.2f}")


def one_action(count: int, rounds: int) -> None:
    print("one action, N rules each testing `kind` for equality:")
    engines = {rules: fresh_engine(equality_table(rules), audit=False)
               for rules in (10, 1000, 10_000)}
    results = interleaved(rounds, {
        str(rules): (lambda rules=rules: latencies(engines[rules].evaluate,
                                                   equality_workload(rules), count))
        for rules in engines})
    for rules, engine in engines.items():
        compiled = results[str(rules)]
        in_order = compile_matcher(engine.policy, min_run=10**9).match
        linear = latencies(lambda _agent, action, fields, match=in_order: match(action, fields),
                           equality_workload(rules), max(count // 20, 1000))
        print(f"  {rules:6,} rules: Engine p50 {compiled['p50']:6.2f} us "
              f"({compiled['p50'] / results['10']['p50']:.2f}x the 10-rule case), p99 "
              f"{compiled['p99']:6.2f} us; matcher with the rows tried in order: p50 "
              f"{linear['p50']:8.2f} us")
    for rules in (1000, 10_000):
        for name, table in (("one action", equality_table(rules)),
                            ("blocks of ten", scaled_table(rules))):
            wall, cpu = load_seconds(table)
            print(f"  load of a {rules:,}-rule table ({name}): {wall:.3f} s ({cpu:.3f} s CPU)")


def sqlite(count: int) -> None:
    sentra = sentra_table()
    for mode, n in (("NORMAL", count), ("FULL", count // 10)):
        print(f"sqlite store, synchronous={mode}: {sqlite_rate(sentra, mode, n):,.0f} "
              f"decisions/s ({n} decisions, one process)")
    rate = sqlite_rate(sentra, "NORMAL", count, checkpoint_interval=CHECKPOINT_SECONDS)
    print(f"sqlite store, synchronous=NORMAL, checkpoint_interval={CHECKPOINT_SECONDS}: "
          f"{rate:,.0f} decisions/s ({count} decisions, one process)")
    sizes = sqlite_by_table_size(count)
    (small, small_cpu), (large, large_cpu) = sizes[10], sizes[10_000]
    print(f"sqlite store, one action of 10 / 10,000 equality rules: {small:,.0f} / "
          f"{large:,.0f} decisions/s ({small / large:.2f}x), CPU per decision {small_cpu:.1f} / "
          f"{large_cpu:.1f} us ({large_cpu / small_cpu:.2f}x at 10,000)")
    for mode in ("NORMAL", "FULL"):
        for callers, run in (("8 threads", sqlite_threads), ("8 tasks, evaluate_async", sqlite_tasks)):
            each = run(sentra, mode, False, 8, count // 2)
            group = run(sentra, mode, True, 8, count // 2)
            print(f"sqlite store, {callers}, synchronous={mode}: one transaction per decision "
                  f"{each[0]:,.0f}/s (p99 {each[1]:.1f} ms), group commit {group[0]:,.0f}/s "
                  f"(p99 {group[1]:.1f} ms, {group[2]:.1f} decisions per commit): "
                  f"{group[0] / each[0]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200_000,
                        help="calls per in-memory row (default 200,000)")
    parser.add_argument("--sqlite", type=int, default=20_000,
                        help="decisions per SQLite row (default 20,000)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per in-memory row, taking turns; the best is kept")
    parser.add_argument("--only", choices=["memory", "rules", "sqlite"],
                        help="one section only")
    args = parser.parse_args()
    sections = {"memory": lambda: in_memory(args.count, args.rounds),
                "rules": lambda: one_action(args.count, args.rounds),
                "sqlite": lambda: sqlite(args.sqlite)}
    for name, section in sections.items():
        if args.only in (None, name):
            section()


if __name__ == "__main__":
    main()
