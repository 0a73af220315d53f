"""Arithmetic benchmark: `python tests/bench/arith_bench.py` (docs/benchmarks.md, "Arithmetic").

A decision on a policy whose rule computes (`amount > context.order_total * 0.5`, and a guarded
`amount / items > 200`) next to the same decision on a plain policy comparing two fields
(`amount > context.order_total`), measured in the same run, interleaved, on the pure
`Decider.decide` and on `Engine.evaluate` with the in-memory store. Also: a decision whose
computation fails (`ARITHMETIC_ERROR`: the generated code falls back to the definition), and
compiling each policy.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sentra_runtime import Decider, Engine, MemoryStore  # noqa: E402

from sentra_lang.compiler import compile_source  # noqa: E402

HEADER = '''policy refunds version "1" {}

input {
  amount: number
  items: int
  context.order_total: number
}

'''
PLAIN = HEADER + '''action REFUND {
  when amount > context.order_total block as OVER
  when items > 0 and amount > 200 block as PER_ITEM
  allow risk 1 as OK
}

otherwise block as OTHER
'''
COMPUTED = HEADER + '''action REFUND {
  when amount > context.order_total * 0.5 block as OVER
  when items > 0 and amount / items > 200 block as PER_ITEM
  allow risk 1 as OK
}

otherwise block as OTHER
'''
INPUTS = [{"amount": 40, "items": 2, "context": {"order_total": 100}},
          {"amount": 30, "items": 1, "context": {"order_total": 200}},
          {"amount": 90, "items": 3, "context": {"order_total": 1000}}]
FAILING = {"amount": 1, "items": 1, "context": {"order_total": 10**400}}  # too large to halve


def table(source: str) -> dict[str, Any]:
    comp = compile_source(source, "bench.sentra", analyse=False)
    assert comp.table is not None, [d.message for d in comp.diagnostics]
    return comp.table.model_dump(mode="json")


def per_call(run: Callable[[], object], calls: int) -> float:
    """Seconds per call of one batch."""
    gc.disable()
    try:
        started = time.perf_counter()
        for _ in range(calls):
            run()
        return (time.perf_counter() - started) / calls
    finally:
        gc.enable()


def compare(name: str, baseline: Callable[[], object], measured: Callable[[], object],
            batches: int, calls: int) -> None:
    """Interleaved batches; the median per call of each, and the ratio."""
    base, other = [], []
    for _ in range(batches):
        base.append(per_call(baseline, calls))
        other.append(per_call(measured, calls))
    b, o = statistics.median(base), statistics.median(other)
    print(f"{name:<46} plain {b * 1e6:7.2f} µs  computed {o * 1e6:7.2f} µs  ratio {o / b:5.2f}x")


def decide_cycle(decider: Decider) -> Callable[[], object]:
    index = [0]

    def run() -> object:
        index[0] = (index[0] + 1) % len(INPUTS)
        return decider.decide("REFUND", INPUTS[index[0]], agent_id="a")

    return run


def evaluate_cycle(engine: Engine) -> Callable[[], object]:
    index = [0]

    def run() -> object:
        index[0] = (index[0] + 1) % len(INPUTS)
        return engine.evaluate("agent", "REFUND", INPUTS[index[0]])

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    plain, computed = table(PLAIN), table(COMPUTED)
    assert (plain["schema_version"], computed["schema_version"]) == (2, 3)
    plain_decider, computed_decider = Decider(plain), Decider(computed)
    for fields in INPUTS:  # the two policies decide these inputs alike
        assert plain_decider.decide("REFUND", fields)[0].rule_id == \
            computed_decider.decide("REFUND", fields)[0].rule_id
    compare("Decider.decide", decide_cycle(plain_decider), decide_cycle(computed_decider),
            args.batches, args.calls)
    plain_engine = Engine(plain, MemoryStore())
    computed_engine = Engine(computed, MemoryStore())
    compare("Engine.evaluate, memory store", evaluate_cycle(plain_engine),
            evaluate_cycle(computed_engine), args.batches, args.calls)
    assert computed_decider.decide("REFUND", FAILING)[0].rule_id == "ARITHMETIC_ERROR"
    compare("Decider.decide, computation fails (fallback)",
            lambda: plain_decider.decide("REFUND", FAILING),
            lambda: computed_decider.decide("REFUND", FAILING), args.batches, args.calls // 4)
    compare("compile (check, lower, table; no analysis)",
            lambda: table(PLAIN), lambda: table(COMPUTED), 5, 20)


if __name__ == "__main__":
    main()
