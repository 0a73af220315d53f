"""Analysis and diff benchmark: the policy shapes of issue 10, each beside its 10-rule case.

Run from the repository root: `python tests/bench/analysis_bench.py` (add `--quick` for the
1,000-rule cases only). For every shape it measures, at 10 rules and at the target size:

- analysis alone: `analysis.analyse` on the compiled table (the compile is not counted);
- `check` end to end: `python -m sentra_lang check FILE --format json` in a fresh process
  (interpreter start, parsing, checking, compiling, analysis and output);
- for the diff shape, `diff_policies` alone and `python -m sentra_lang diff OLD NEW` end to end.

The machine is shared and noisy, so each figure is printed next to the same measurement of the
10-rule policy of the same shape in the same run; compare those ratios. The policies are
generated with a fixed seed, so every run measures the same texts.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sentra_lang.analysis import analyse
from sentra_lang.compiler import Compilation, compile_source
from sentra_lang.semdiff import diff_policies

HEAD = '''policy bench version "1" {}
input {
  tool: string normalize trim, lower
  amount: number = 0
  score: number = 0
  role: enum {"viewer", "editor", "admin"} = "viewer"
  verified: bool = false
  path: string normalize trim = ""
  command: string = ""
}
'''
TAIL = "otherwise block as UNKNOWN\n"


def tool_table(rules: int, seed: int = 1) -> str:
    """One action, one rule per tool name: an allow list with per-tool limits and roles."""
    rnd = random.Random(seed)
    lines = ['  when amount > 1000000 block risk 50 as HUGE_AMOUNT "Too large."']
    for i in range(rules - 2):
        kind, tool = rnd.random(), f"tool_{i}"
        risk = rnd.randrange(0, 60, 5)
        if kind < 0.5:
            limit = rnd.randrange(0, 5000, 50)
            lines.append(f'  when tool == "{tool}" and amount > {limit} block risk {risk} as R{i}')
        elif kind < 0.8:
            lines.append(f'  when tool == "{tool}" and role == "admin" and not verified '
                         f"allow risk {risk} as R{i}")
        else:
            lines.append(f'  when tool == "{tool}" allow risk {risk // 2} as R{i}')
    lines.append("  allow as DEFAULT")
    return HEAD + "action CALL_TOOL {\n" + "\n".join(lines) + "\n}\n" + TAIL


def two_numbers(rules: int, seed: int = 2) -> str:
    """One action, every rule on two numeric fields with its own thresholds."""
    rnd = random.Random(seed)
    lines = []
    for i in range(rules - 1):
        low, score = rnd.randrange(0, 100_000, 100), rnd.randrange(0, 101)
        outcome = rnd.choice(["allow risk 10", "allow risk 20", "block risk 30"])
        lines.append(f"  when amount >= {low} and score < {score} {outcome} as R{i}")
    lines.append("  allow as DEFAULT")
    return HEAD + "action PAY {\n" + "\n".join(lines) + "\n}\n" + TAIL


def affixes(rules: int, seed: int = 4) -> str:
    """One action, one string affix test per rule: path prefixes and suffixes, command texts."""
    rnd = random.Random(seed)
    lines = []
    for i in range(rules - 1):
        kind = rnd.random()
        outcome = rnd.choice(["allow risk 5", "block risk 20", "allow"])
        if kind < 0.6:
            lines.append(f'  when path starts_with "/srv/app{i}/" {outcome} as R{i}')
        elif kind < 0.85:
            lines.append(f'  when path ends_with ".e{i}" {outcome} as R{i}')
        else:
            lines.append(f'  when command contains "w{i}x" {outcome} as R{i}')
    lines.append("  allow as DEFAULT")
    return HEAD + "action RUN {\n" + "\n".join(lines) + "\n}\n" + TAIL


def edited(source: str, seed: int = 5) -> str:
    """A new version: 5% of the rules flip allow/block, 2% change risk, 1% are dropped."""
    rnd = random.Random(seed)
    out = []
    for line in source.split("\n"):
        if " as R" in line:
            roll = rnd.random()
            if roll < 0.05:
                line = line.replace(" allow", " block", 1) if " allow" in line else \
                    line.replace(" block", " allow", 1)
            elif roll < 0.07:
                line = re.sub(r"risk (\d+)", lambda m: f"risk {min(100, int(m[1]) + 5)}", line,
                              count=1)
            elif roll < 0.08:
                continue
        out.append(line)
    return "\n".join(out)


SHAPES: dict[str, tuple[Callable[[int], str], int, float]] = {
    "one action, tool table": (tool_table, 10_000, 10.0),
    "two numeric fields": (two_numbers, 1_000, 2.0),
    "string affix tests": (affixes, 1_000, 5.0),
}
"""name: (generator, target rules, target seconds for `check` end to end)."""


def compiled(source: str) -> Compilation:
    result = compile_source(source, "bench.sentra", analyse=False)
    assert result.ok and result.table is not None, "generated policy does not compile"
    return result


def best(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def cli(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sentra_lang", *args], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure_check(source: str, folder: Path, repeat: int) -> tuple[float, float]:
    comp = compiled(source)
    assert comp.table is not None and comp.model is not None
    table, model = comp.table, comp.model
    alone = best(lambda: analyse(table, model), repeat)
    path = folder / "policy.sentra"
    path.write_text(source, encoding="utf-8")
    end_to_end = min(cli("check", str(path), "--format", "json") for _ in range(repeat))
    return alone, end_to_end


def measure_diff(old: str, new: str, folder: Path, repeat: int) -> tuple[float, float]:
    first, second = compiled(old), compiled(new)
    alone = best(lambda: diff_policies(first, second), repeat)
    (folder / "old.sentra").write_text(old, encoding="utf-8")
    (folder / "new.sentra").write_text(new, encoding="utf-8")
    end_to_end = min(cli("diff", str(folder / "old.sentra"), str(folder / "new.sentra"),
                         "--format", "json") for _ in range(repeat))
    return alone, end_to_end


def row(name: str, rules: int, alone: float, base_alone: float, whole: float,
        base_whole: float, target: float | None) -> str:
    """Analysis per rule against the 10-rule case's per-rule cost (1.0 = linear), and the
    whole command against the 10-rule command (mostly interpreter start at 10 rules)."""
    verdict = "" if target is None else ("met" if whole < target else "NOT met")
    goal = "" if target is None else f"< {target:g} s: {verdict}"
    per_rule = alone / rules * 1e6
    linear = (alone / rules) / (base_alone / 10)
    return (f"| {name} | {rules:,} | {alone:.3f} | {per_rule:.0f} | {linear:.1f} | "
            f"{whole:.2f} | {whole / base_whole:.1f}x | {goal} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 rules for every shape")
    args = parser.parse_args()
    print("| shape | rules | analysis s | µs per rule | per rule vs 10 rules | end to end s "
          "| vs 10 rules | target |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as folder:
        place = Path(folder)
        for name, (generate, target_rules, seconds) in SHAPES.items():
            rules = min(target_rules, 1_000) if args.quick else target_rules
            base = measure_check(generate(10), place, 5)
            big = measure_check(generate(rules), place, 2 if rules > 1_000 else 3)
            print(row(f"{name}: check", 10, *base[:1], base[0], base[1], base[1], None))
            print(row(f"{name}: check", rules, big[0], base[0], big[1], base[1], seconds))
        source = tool_table(10)
        base = measure_diff(source, edited(source), place, 5)
        source = tool_table(1_000)
        big = measure_diff(source, edited(source), place, 3)
        print(row("tool table: diff", 10, base[0], base[0], base[1], base[1], None))
        print(row("tool table: diff", 1_000, big[0], base[0], big[1], base[1], 5.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
