"""Compiler benchmark: parse, check (+ analysis) and compile generated policies.

    python tests/bench/compile_bench.py [--repeat 3]

Policies of 10, 100 and 1,000 rules, ten rules per action (bounded), each rule reading two of
a handful of fields. Prints the best of `--repeat` runs per stage and the cost per rule, so the
growth with the rule count is visible next to the 10-rule baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import time

from sentra_lang.compiler import compile_program
from sentra_lang.loader import load_text
from sentra_lang.parser import parse
from sentra_lang.table import dump_table

RULES_PER_ACTION = 10


def generate(rules: int) -> str:
    lines = ['policy bench version "1" {', "  risk_threshold 100", "}", "", "input {",
             "  amount: number?", "  kind: string normalize lower = \"internal\"",
             "  verified: bool = false", "  tags: set<string> = {}", "}", "",
             'let SENSITIVE = {"sensitive", "confidential", "restricted"}', ""]
    for action in range(rules // RULES_PER_ACTION):
        lines.append(f"action ACTION_{action} {{")
        for rule in range(RULES_PER_ACTION - 1):
            threshold = (rule + 1) * 100
            cond = (f"amount > {threshold} and not verified" if rule % 3 == 0 else
                    f"kind in SENSITIVE and amount <= {threshold}" if rule % 3 == 1 else
                    f'tags contains "t{rule}" or kind == "k{rule}"')
            lines.append(f"  when {cond}")
            lines.append(f'    allow risk {rule % 50} as R_{action}_{rule} "Rule {rule}."')
        lines.append(f'  allow as R_{action}_DEFAULT "Default."')
        lines.append("}")
    lines.append('otherwise block as UNKNOWN "Unknown action."')
    return "\n".join(lines) + "\n"


def best(function, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    parse("policy warm {}\n")  # build the parser once, outside the timings
    print(f"{'rules':>6} {'parse s':>9} {'check+analyse s':>16} {'compile s':>10} "
          f"{'total s':>8} {'us/rule':>8} {'vs 10':>6}")
    baseline = None
    for rules in (10, 100, 1000):
        source = generate(rules)
        # each timed lambda runs inside best() in this iteration, so late binding is harmless
        t_parse = best(lambda: parse(source, "bench.sentra"), args.repeat)  # noqa: B023
        t_all = best(lambda: compile_program(load_text(source, "bench.sentra")),  # noqa: B023
                     args.repeat)
        t_noanalysis = best(lambda: compile_program(load_text(source, "bench.sentra"),  # noqa: B023
                                                    analyse=False), args.repeat)
        result = compile_program(load_text(source, "bench.sentra"))
        assert result.ok and result.table is not None
        table = result.table
        t_dump = best(lambda: dump_table(table), args.repeat)  # noqa: B023
        per_rule = t_all / rules * 1e6
        baseline = baseline or per_rule
        print(f"{rules:>6} {t_parse:>9.3f} {t_all - t_noanalysis + (t_noanalysis - t_parse):>16.3f} "
              f"{t_noanalysis - t_parse + t_dump:>10.3f} {t_all + t_dump:>8.3f} "
              f"{per_rule:>8.0f} {per_rule / baseline:>6.2f}")


if __name__ == "__main__":
    main()
