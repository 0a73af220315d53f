"""Fuzzing every command a user can feed a file to (issue 11): 0 tracebacks and 0 hangs on
2,000 fuzzed policies and 500 fuzzed suites, seeded so a failure replays, each case bounded
in time. Slow tests (they run in CI); the figures are in docs/benchmarks.md."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fuzzing import POLICIES, Report, fuzz

pytestmark = pytest.mark.slow

POLICY_CASES = 2000
SUITE_CASES = 500
SEED = 20240611
CASE_LIMIT = 20.0  # seconds a single command may take before it counts as a hang


def workspace(tmp_path: Path) -> Path:
    """The shipped policies, suites and libraries, copied: fuzzed inputs import and name them."""
    work = tmp_path / "work"
    shutil.copytree(POLICIES, work)
    return work


def assert_clean(report: Report) -> None:
    print(report.summary())
    assert not report.findings, report.summary()


def policy_commands(path: Path, index: int, code: int | None) -> list[list[str]]:
    """`check` first; a policy without errors also goes through `fmt`, `compile`, `explain`
    and (one in ten) the docs build step; one with errors, one in eight, through `fmt`,
    `compile` and `explain` too (their error paths are `check`'s, so fewer suffice)."""
    file = str(path)
    commands = [["check", file]]
    if code is None:
        return commands
    explain = ["explain", file, "EXPORT_DATA", "-f", "amount=5", "-f", "destination_type=x"]
    if code == 0 or index % 8 == 0:
        commands += [["fmt", "--diff", file], ["compile", file], explain]
    if code == 0 and index % 10 == 0:
        site = str(path.parent / "site")
        commands.append(["docs", file, "-o", site, "--markdown-only", "--force"])
    return commands


def suite_commands(path: Path, index: int, code: int | None) -> list[list[str]]:
    return [["test", "--examples", "2", str(path)]]


def policy_samples(work: Path) -> list[str]:
    """The shipped policies and library (each twice as likely), and the test suite's own
    small policies: fixtures of diagnostics and brackets, formatter inputs."""
    shipped = sorted(work.glob("*.sentra")) + sorted((work / "lib").glob("*.sentra"))
    tests = Path(__file__).resolve().parents[1]
    small = (sorted((tests / "fixtures").glob("*/*.sentra"))
             + sorted((tests / "formatter" / "cases").glob("*.sentra.in")))
    return [p.read_text("utf-8") for p in shipped * 2 + small]


def test_fuzzed_policies_never_crash_or_hang(tmp_path: Path) -> None:
    work = workspace(tmp_path)
    samples = policy_samples(work)
    report = fuzz(POLICY_CASES, SEED, samples, work, ".sentra", policy_commands, CASE_LIMIT)
    assert report.cases == POLICY_CASES
    assert_clean(report)


def test_fuzzed_suites_never_crash_or_hang(tmp_path: Path) -> None:
    work = workspace(tmp_path)
    samples = []
    for suite in sorted(work.glob("*.sentra-test")):
        samples += scenario_chunks(suite.read_text("utf-8"))
    report = fuzz(SUITE_CASES, SEED, samples, work, ".sentra-test", suite_commands, CASE_LIMIT)
    assert report.cases == SUITE_CASES
    assert_clean(report)


def scenario_chunks(text: str, size: int = 4) -> list[str]:
    """The suite's header with a few of its items at a time: every construct of the shipped
    suites is mutated, and a mutant runs in milliseconds rather than seconds."""
    header, _, body = text.partition("\n\n")
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines)
              if line.startswith(("scenario ", "cases ", "property ", "defaults "))]
    suite_line = next(line for line in lines if line.startswith("suite "))
    items = ["".join(lines[a:b]) for a, b in zip(starts, [*starts[1:], len(lines)])]
    return [suite_line + "".join(items[i:i + size]) for i in range(0, len(items), size)]
