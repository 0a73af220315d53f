"""Suite properties are proved on every cell (and every reachable agent record for sequences)
where the cells can be built, and sampled otherwise: each case below has a known answer that
random sampling is unlikely to find."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sentra_lang.cli import main
from sentra_lang.testing.runner import Result, Runner

HEADER = 'policy p version "1" {\n  risk_threshold 100\n  strikes 3\n}\n'


def run_suite(tmp_path: Path, policy: str, suite: str) -> list[Result]:
    (tmp_path / "p.sentra").write_text(policy, encoding="utf-8")
    (tmp_path / "p.sentra-test").write_text('suite "s" for "p.sentra"\n' + suite, encoding="utf-8")
    run = Runner().run_paths([tmp_path / "p.sentra-test"])
    assert not run.diagnostics, run.diagnostics
    return run.results


NARROW = HEADER + (
    "input {\n  amount: number\n  verified: bool = false\n}\n"
    "action PAY {\n"
    "  when amount > 1234.5 and amount < 1234.75 and not verified allow as SLIP\n"
    "  when not verified block as UNVERIFIED\n"
    "  allow risk 5 as PAY_OK\n}\notherwise block as OTHER\n")


def test_a_narrow_region_that_sampling_misses_is_found(tmp_path: Path) -> None:
    (result,) = run_suite(tmp_path, NARROW, 'property "unverified never pays" PAY '
                          "where not verified -> never allowed\n")
    assert result.outcome == "failed" and result.method == "proved"
    assert result.failure is not None
    assert result.failure.decision.rule_id == "SLIP"
    assert "counterexample (found checking every cell):" in result.failure.details


def test_a_property_that_holds_is_proved(tmp_path: Path) -> None:
    results = run_suite(tmp_path, NARROW, 'property "verified pays" PAY where verified '
                        "-> always allowed\n"
                        'property "other actions never pass" "LAUNCH", "" -> never allowed\n')
    assert [(r.outcome, r.method) for r in results] == [("passed", "proved")] * 2


SEQUENCE = HEADER + (
    "input {\n  kind: string = \"read\"\n}\n"
    "action READ {\n  allow risk 9 as READ_OK\n}\n"
    "action PEEK {\n  when kind == \"secret\" block as SECRET\n  allow as PEEK_OK\n}\n"
    "otherwise block as OTHER\n")


def test_a_sequence_property_is_proved_over_every_reachable_record(tmp_path: Path) -> None:
    # the 12th read brings the cumulative risk to 108 > 100: blocked
    results = run_suite(tmp_path, SEQUENCE,
                        'property "reads never block" sequence READ -> never blocked\n'
                        'property "peeks at non-secrets never block" sequence PEEK '
                        'where kind != "secret" -> never blocked\n'
                        'property "nothing shuts an agent down before three blocks" '
                        "sequence READ, PEEK -> never shutdown\n")
    reads, peeks, shutdown = results
    assert reads.outcome == "failed" and reads.method == "proved"
    assert reads.failure is not None
    assert reads.failure.decision.rule_id == "RISK_THRESHOLD_EXCEEDED"
    assert sum(1 for line in reads.failure.details if "READ" in line) == 12
    assert (peeks.outcome, peeks.method) == ("passed", "proved")
    assert shutdown.outcome == "failed"
    assert shutdown.failure is not None
    assert shutdown.failure.decision.rule_id == "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS"


TOO_LARGE = HEADER + (
    "input {\n" + "".join(f"  n{i}: number\n" for i in range(5)) + "}\n"
    "action A {\n  when " + " and ".join(f"n{i} > n{i + 1}" for i in range(4)) +
    " and " + " and ".join(f"n0 > {j}" for j in range(8)) + " allow as X\n  allow as Y\n}\n"
    "otherwise block as OTHER\n")


def test_a_property_whose_cells_cannot_be_built_is_sampled(tmp_path: Path) -> None:
    (result,) = run_suite(tmp_path, TOO_LARGE, 'property "never blocked" A examples 20 '
                          "-> never blocked\n")
    assert (result.outcome, result.method) == ("passed", "sampled")


def test_sampling_without_hypothesis_names_the_extra(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    monkeypatch.delitem(sys.modules, "sentra_lang.testing.sampling", raising=False)
    (result,) = run_suite(tmp_path, TOO_LARGE, 'property "never blocked" A -> never blocked\n')
    assert result.outcome == "error" and result.failure is not None
    assert "pip install 'sentra-lang[properties]'" in result.failure.message
    proved = run_suite(tmp_path, NARROW, 'property "p" PAY where verified -> always allowed\n')
    assert [(r.outcome, r.method) for r in proved] == [("passed", "proved")]


def test_the_report_says_proved_or_sampled(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    run_suite(tmp_path, NARROW, 'property "verified pays" PAY where verified -> always allowed\n')
    assert main(["test", str(tmp_path), "-v"]) == 0
    out = capsys.readouterr().out
    assert "p.sentra-test::verified pays (proved)" in out
    assert "properties: 1 proved, 0 sampled" in out


STATEFUL = HEADER + (
    "input {\n  amount: number?\n}\n"
    "action PAY {\n"
    "  when agent.blocked_attempts >= 1 and amount > 100 block as AFTER_STRIKE\n"
    "  when amount > 500 allow risk 50 as BIG\n"
    "  allow as SMALL\n}\notherwise block as OTHER\n")


def test_a_property_of_a_policy_that_reads_agent_state_is_sampled(tmp_path: Path) -> None:
    """Cells of `agent.*` need a seeded agent state, which a property's fresh agents do not
    have: such properties are sampled (and say so), never a crash of the runner."""
    pytest.importorskip("hypothesis")
    results = run_suite(tmp_path, STATEFUL,
                        'property "small pays" PAY where amount <= 100 -> never blocked\n'
                        'property "big is big" PAY where amount > 500 -> always rule SMALL\n')
    assert [(r.outcome, r.method) for r in results] == [("passed", "sampled"),
                                                         ("failed", "sampled")]
    assert results[1].failure is not None and results[1].failure.decision.rule_id == "BIG"
