"""Benchmark (not a test): 10,000 scenario steps run and reported, parsing their 1.1 MiB suite,
and replay of a 100,000-record audit log, each next to a baseline measured in the same run (a raw
Engine.evaluate loop; for parsing, the reference Lark parser on the same file).

    python tests/bench/scenario_bench.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from sentra_runtime import Engine, MemoryStore

from sentra_lang.source import Source
from sentra_lang.testing import reports, suite_parser
from sentra_lang.testing.policies import load
from sentra_lang.testing.replay import read_records, replay
from sentra_lang.testing.runner import Runner

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "policies" / "sentra.sentra"
STEPS = [
    ('FILE_READ', {}, 'allowed rule ALLOW_INTERNAL_WORKFLOW'),
    ('EXPORT_DATA', {"destination_type": "external", "data_classification": "sensitive"},
     'allowed rule RISKY_SENSITIVE_EXTERNAL_EXPORT cumulative 80'),
    ('EXPORT_DATA', {"destination_type": "external", "data_classification": "sensitive"},
     'blocked rule RISK_THRESHOLD_EXCEEDED strikes 1'),
    ('SEND_NOTIFICATION', {"notification_type": "rejection"},
     'allowed rule ALLOW_REJECTION_NOTIFICATION'),
    ('CHANGE_PERMISSION', {}, 'blocked rule BLOCK_PERMISSION_CHANGE strikes 2'),
]


def _fields(fields: dict) -> str:
    return ", ".join(f"{k}: {json.dumps(v)}" for k, v in fields.items())


def write_suite(folder: Path, scenarios: int) -> Path:
    lines = [f'suite "bench" for {json.dumps(str(POLICY))}']
    for n in range(scenarios):
        lines.append(f'scenario "s{n}" {{')
        for action, fields, expect in STEPS:
            body = f" {{ {_fields(fields)} }}" if fields else ""
            lines.append(f'  agent "a" {action}{body} -> {expect}')
        lines.append("}")
    path = folder / "bench.sentra-test"
    path.write_text("\n".join(lines) + "\n")
    return path


def bench_steps(folder: Path) -> None:
    suite = write_suite(folder, 2000)  # 10,000 steps
    policy = load(POLICY).policy
    start = time.perf_counter()
    engine = Engine(policy, MemoryStore(audit=False))
    for n in range(2000):
        for action, fields, _ in STEPS:
            engine.evaluate(f"a{n}", action, fields)
    baseline = time.perf_counter() - start
    runner = Runner()
    start = time.perf_counter()
    runner.collect([suite])  # parse + check (+ the policy compile, cached for the run)
    parsed = time.perf_counter() - start
    start = time.perf_counter()
    run = runner.run_paths([suite])
    ran = time.perf_counter() - start - parsed  # run_paths collects again: subtract it
    start = time.perf_counter()
    reports.render_human(run)
    reports.write_json(run, folder / "r.json")
    reports.write_junit(run, folder / "r.xml")
    reported = time.perf_counter() - start
    assert run.exit_code == 0, reports.render_human(run)
    steps = sum(r.steps for r in run.results)
    print(f"scenario steps: {steps} steps in {len(run.results)} scenarios: run {ran:.2f}s + "
          f"reports (human+JSON+JUnit) {reported:.2f}s = {ran + reported:.2f}s (goal < 2 s); "
          f"parsing+checking the {suite.stat().st_size // 1024} KiB suite {parsed:.2f}s; "
          f"baseline raw Engine.evaluate loop {baseline:.3f}s")


def bench_parse(folder: Path) -> None:
    suite = write_suite(folder, 2000)
    text = suite.read_text("utf-8")
    suite_parser.parse_suite('suite "warm" for "x.sentra"')  # imports, compiled patterns
    start = time.perf_counter()
    parsed, diagnostics = suite_parser.parse_suite(text, str(suite))
    fast = time.perf_counter() - start
    assert parsed is not None and not diagnostics
    start = time.perf_counter()
    reference, _ = suite_parser._parse_with_lark(Source(str(suite), text))  # grammar built too
    lark = time.perf_counter() - start
    assert reference is not None and reference.items == parsed.items
    print(f"suite parsing: {len(text) // 1024} KiB, {len(parsed.items)} scenarios: {fast:.2f}s "
          f"(fast path); baseline reference Lark parser + tree builder {lark:.2f}s")


def bench_replay(folder: Path) -> None:
    policy = load(POLICY).policy
    engine = Engine(policy, MemoryStore())
    for n in range(100_000 - 1):  # + the policy_load record = 100,000 records
        action, fields, _ = STEPS[n % len(STEPS)]
        engine.evaluate(f"agent-{n % 500}", action, fields)
    log = folder / "audit.jsonl"
    with open(log, "w") as out:
        count = engine.store.export_audit(out)
    start = time.perf_counter()
    fresh = Engine(policy, MemoryStore(audit=False))
    for record in read_records(log):
        if record.get("kind") == "decision":
            fresh.evaluate(record["agent"], record["action"], record["input"])
    baseline = time.perf_counter() - start
    start = time.perf_counter()
    result = replay(read_records(log), policy)
    elapsed = time.perf_counter() - start
    print(f"replay: {count} records ({result.decisions} decisions, {result.changed} changed) "
          f"in {elapsed:.2f}s (goal < 10 s); baseline read + raw evaluate loop {baseline:.2f}s")


def main() -> int:
    print(f"python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        bench_steps(Path(tmp))
        bench_parse(Path(tmp))
        bench_replay(Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
