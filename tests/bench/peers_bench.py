"""Peers benchmark: `python tests/bench/peers_bench.py` (see docs/benchmarks.md, "Peers").

The same workload (the six Sentra actions of tests/bench/runtime_bench.py, over 200 agents)
through:

* `Decider.decide`, the runtime's pure decision (stateless), and `Engine.evaluate` with the
  default in-memory store (state and a bounded audit log);
* a hand-written dict dispatch of the Sentra table (`HandWritten` in runtime_bench.py), pure and
  with its states in a dict: the floor;
* cedarpy (`pip install cedarpy`; a development-only benchmark dependency), with the policies
  and entities parsed once (its fastest use), one `is_authorized` per request and in batches of
  100. Cedar has no first match, no risk and no per-agent state, so its policy set is the
  Sentra table's allow/block rules as `permit`/`forbid` policies with the same conditions; it
  answers allow or deny.

Prints p50/p99 and decisions/s per row, the ratios the issue's targets name (stateless p50
against the hand-written dispatch, throughput against cedarpy), and each against its baseline
from the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# imported after the path set-up above, so the script runs from any directory
from sentra_runtime import Decider, Engine  # noqa: E402

from tests.bench.runtime_bench import (  # noqa: E402
    SENTRA_WORKLOAD,
    HandWritten,
    interleaved,
    latencies,
    stateless_latencies,
)
from tests.runtime.helpers import sentra_table  # noqa: E402

CEDAR_POLICIES = """
@id("ALLOW_ANY") permit(principal, action, resource);
@id("BLOCK_PERMISSION_CHANGE")
forbid(principal, action == Action::"CHANGE_PERMISSION", resource);
@id("BLOCK_UNSAFE_APPROVAL_NOTIFICATION")
forbid(principal, action == Action::"SEND_NOTIFICATION", resource) when {
  context.notification_type == "approval" && context.approval_requires_verified_eligibility &&
  !(context.eligibility_verified && context.required_documents_present)
};
@id("RISKY_SENSITIVE_EXTERNAL_EXPORT")
permit(principal, action == Action::"EXPORT_DATA", resource) when {
  context.destination_type == "external" &&
  ["sensitive", "confidential", "restricted"].contains(context.data_classification)
};
@id("RISKY_UNAUTHORIZED_TRANSACTION")
permit(principal, action == Action::"APPROVE_TRANSACTION", resource) when {
  context.approval_requires_verified_eligibility &&
  !(context.eligibility_verified && context.required_documents_present)
};
@id("RISKY_SENSITIVE_RECORD_MODIFICATION")
permit(principal, action == Action::"MODIFY_RECORD", resource) when {
  ["sensitive", "confidential", "restricted"].contains(context.data_classification) &&
  context.sensitive_record_update_requires_review
};
"""
"""The Sentra table's decisions as Cedar policies (allow unless a block rule forbids)."""

CONTEXT_DEFAULTS: dict[str, Any] = {
    "notification_type": "", "data_classification": "internal", "destination_type": "internal",
    "approval_requires_verified_eligibility": False, "eligibility_verified": False,
    "required_documents_present": False, "sensitive_record_update_requires_review": False,
}


def cedar_request(agent: str, action: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The Cedar request for one call: the fields flattened into the context, with defaults
    (Cedar has no optional attributes without `has`, so they are filled in beforehand)."""
    context = {**CONTEXT_DEFAULTS, **{key: value for key, value in fields.items()
                                      if key != "context"}, **fields.get("context", {})}
    context = {key: value for key, value in context.items() if key in CONTEXT_DEFAULTS}
    return {"principal": f'Agent::"{agent}"', "action": f'Action::"{action}"',
            "resource": 'Tool::"gate"', "context": context}


def cedar_rates(calls: list[tuple[str, str, dict[str, Any]]]) -> tuple[dict[str, float], float]:
    """cedarpy's latencies (one request per call) and its decisions/s in batches of 100."""
    import cedarpy

    policies = cedarpy.PolicySet.from_str(CEDAR_POLICIES)
    entities = cedarpy.Entities.from_json_str("[]")
    requests = [cedar_request(agent, action, fields) for agent, action, fields in calls]
    allowed = cedarpy.is_authorized(requests[0], policies, entities).allowed
    assert allowed, "the Sentra workload is all allowed"
    by_request = {id(fields): request for (_, _, fields), request in zip(calls, requests)}
    single = latencies(lambda agent, action, fields: cedarpy.is_authorized(
        by_request.get(id(fields)) or cedar_request(agent, action, fields), policies, entities),
        [(action, fields) for _, action, fields in calls], len(calls))
    start = time.perf_counter()
    for index in range(0, len(requests), 100):
        cedarpy.is_authorized_batch(requests[index:index + 100], policies, entities)
    return single, len(requests) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200_000,
                        help="calls per runtime row (default 200,000)")
    parser.add_argument("--cedar-count", type=int, default=20_000,
                        help="calls per cedarpy row (default 20,000)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per runtime row, taking turns; the best is kept")
    args = parser.parse_args()
    table = sentra_table()
    hand, decider, engine = HandWritten(), Decider(table), Engine(table)
    results = interleaved(args.rounds, {
        "pure": lambda: stateless_latencies(hand.decide, SENTRA_WORKLOAD, args.count),
        "decide": lambda: stateless_latencies(decider.decide, SENTRA_WORKLOAD, args.count),
        "hand": lambda: latencies(HandWritten().evaluate, SENTRA_WORKLOAD, args.count),
        "engine": lambda: latencies(engine.evaluate, SENTRA_WORKLOAD, args.count),
    })
    rows: list[tuple[str, dict[str, float]]] = [
        ("hand-written dispatch, pure (stateless)", results["pure"]),
        ("Decider.decide (stateless)", results["decide"]),
        ("hand-written dispatch, states in a dict", results["hand"]),
        ("Engine.evaluate, memory store", results["engine"]),
    ]
    try:
        calls = [(f"agent-{number % 200}", *SENTRA_WORKLOAD[number % len(SENTRA_WORKLOAD)])
                 for number in range(args.cedar_count)]
        single, batch_rate = cedar_rates(calls)
        rows.append(("cedarpy, one is_authorized per request", single))
    except ImportError:
        batch_rate = None
        print("cedarpy is not installed (pip install cedarpy): its rows are left out")
    print(f"{'case':42} {'p50 us':>8} {'p99 us':>8} {'decisions/s':>12}")
    for name, result in rows:
        print(f"{name:42} {result['p50']:8.2f} {result['p99']:8.2f} {result['rate']:12,.0f}")
    if batch_rate is not None:
        print(f"{'cedarpy, is_authorized_batch of 100':42} {'':8} {'':8} {batch_rate:12,.0f}")
    hand_pure, decide, hand_state, engine = (result for _, result in rows[:4])
    print(f"stateless p50, Decider.decide / hand-written: {decide['p50'] / hand_pure['p50']:.2f}x"
          " (target: at most 3x)")
    print(f"with state, Engine p50 / hand-written: {engine['p50'] / hand_state['p50']:.2f}x")
    if batch_rate is not None:
        cedar = rows[4][1]
        best = max(cedar["rate"], batch_rate)
        print(f"throughput, Engine / cedarpy: {engine['rate'] / best:.1f}x (against cedarpy's "
              f"best, {'batches' if batch_rate > cedar['rate'] else 'single calls'}; target: "
              f"at least 25x); Decider / cedarpy: {decide['rate'] / best:.1f}x")


if __name__ == "__main__":
    main()
