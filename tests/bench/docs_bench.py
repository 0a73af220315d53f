"""Benchmark: the policy reference of a generated 1,000-rule policy.

    python tests/bench/docs_bench.py [--rules N] [--repeat K]

Prints, for the same policy in the same run: compiling it (the baseline, with and without the
exact analysis), rendering the Markdown tree, and the full strict mkdocs-material build. Each
figure is the best of K runs. Figures are recorded in docs/benchmarks.md ("Docs").
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sentra_lang.compiler import compile_source
from sentra_lang.docgen import build_site, policy_docs, write_markdown

ACTIONS = 100  # rules are spread over this many action blocks


def generated_policy(rules: int) -> str:
    """`rules` rules over ACTIONS actions, each block ending with an unconditional rule."""
    per_action = max(1, rules // ACTIONS)
    lines = ['policy generated version "1" {', "  risk_threshold 100", "}",
             "input {", "  amount: number = 0", "  region: string normalize trim, lower = \"eu\"",
             "}"]
    for action in range(ACTIONS):
        lines.append(f"action ACTION_{action:03d} {{")
        for rule in range(per_action - 1):
            lines.append(f'  when amount > {rule * 10} and region == "r{rule}"')
            lines.append(f'    allow risk {rule % 50} as R_{action:03d}_{rule:03d} threat "Generated"'
                         f' "Generated rule {rule} of action {action}: amount {{amount}}."')
        lines.append(f'  allow as R_{action:03d}_DEFAULT "Default of action {action}."')
        lines.append("}")
    lines.append('otherwise block as UNKNOWN "Unknown action."')
    return "\n".join(lines) + "\n"


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    source = generated_policy(args.rules)
    compilation = compile_source(source, "generated.sentra")
    assert compilation.ok and compilation.table is not None
    rules = len(compilation.table.rules)
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        docs = policy_docs([compilation], None)
        config = write_markdown(docs, root / "md")
        figures = {
            "compile, no analysis (baseline)":
                best_of(args.repeat, lambda: compile_source(source, "g.sentra", analyse=False)),
            "compile with exact analysis (baseline)":
                best_of(args.repeat, lambda: compile_source(source, "g.sentra")),
            "render Markdown tree":
                best_of(args.repeat, lambda: write_markdown(policy_docs([compilation], None),
                                                            root / "md")),
            "mkdocs build --strict (from Markdown)":
                best_of(args.repeat, lambda: build_site(config, root / "site")),
        }
        page = root / "site" / "policies" / "generated.html"
        size = page.stat().st_size
    total = (figures["compile with exact analysis (baseline)"] + figures["render Markdown tree"]
             + figures["mkdocs build --strict (from Markdown)"])
    print(f"policy: {rules} rules in {ACTIONS} actions, {len(source.splitlines())} lines; "
          f"policy page {size / 1024:.0f} KiB; best of {args.repeat}")
    print(f"{'step':<52} {'seconds':>8}")
    for name, seconds in figures.items():
        print(f"{name:<52} {seconds:>8.3f}")
    label = "sentra-lang docs end to end (compile+render+build)"
    print(f"{label:<52} {total:>8.3f}")


if __name__ == "__main__":
    main()
