"""The scenario runner: passing, failing (golden), broken suites, filters, reports, coverage,
the pytest plugin and replay."""

from __future__ import annotations

import io
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from sentra_lang.cli import main
from sentra_lang.testing import reports
from sentra_lang.testing.runner import Runner, SelectionError, keyword_matcher

pytest_plugins = ["pytester"]

POLICY = '''policy small version "1" {
  risk_threshold 100
  strikes 2
}
input {
  amount: number = 0
  vip: bool = false
}
action PAY {
  when amount > 100 and not vip
    block risk 30 as BLOCK_BIG "Big payment."
  when amount > 50
    allow risk 60 as RISKY_PAY "Risky payment of {amount}."
  allow as ALLOW_PAY "Payment allowed."
}
action WIPE {
  shutdown as SHUTDOWN_WIPE "Wiping stops the agent."
}
otherwise allow risk 10 as OTHER "Other."
'''

PASSING = '''suite "small" for "small.sentra"
scenario "two risky payments" tags [risk] {
  agent "a" PAY { amount: 60 } -> allowed rule RISKY_PAY risk 60 cumulative 60
  agent "a" PAY { amount: 60 } -> blocked rule RISK_THRESHOLD_EXCEEDED projected 120 strikes 1
  agent "a" PAY { amount: 500 } -> shutdown rule AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS status shut_down
  reset "a"
  state "a" -> cumulative 0 strikes 0 status active
}
cases "payments" PAY tags [table] {
  with amount, vip
  10, false  -> allowed rule ALLOW_PAY
  500, true  -> allowed rule RISKY_PAY reason contains "500"
}
'''

FAILING = '''suite "small failing" for "small.sentra"
scenario "wrong expectation" {
  agent "a" PAY { amount: 60 } -> allowed rule RISKY_PAY cumulative 60
  agent "a" PAY { amount: 60 } -> allowed rule RISKY_PAY cumulative 100
}
property "payments are never blocked" PAY -> never blocked
'''

BROKEN = '''suite "small broken" for "small.sentra"
scenario "bad" {
  agent "a" PAY { amonut: 1 } -> allowed rule ALLOW_PAI
  agent "a" PAY -> allowed rule BLOCK_BIG
  agent "a" WIPE -> blocked rule SHUTDOWN_WIPE
}
'''


@pytest.fixture
def suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "small.sentra").write_text(POLICY)
    (tmp_path / "pass.sentra-test").write_text(PASSING)
    (tmp_path / "fail.sentra-test").write_text(FAILING)
    (tmp_path / "broken.sentra-test").write_text(BROKEN)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_passing_suite(suites: Path) -> None:
    run = Runner().run_paths(["pass.sentra-test"])
    assert [r.outcome for r in run.results] == ["passed"] * 3
    assert run.exit_code == 0
    assert main(["test", "pass.sentra-test"]) == 0


def test_failing_suite_report(suites: Path, golden) -> None:
    run = Runner().run_paths(["fail.sentra-test"])
    assert [r.outcome for r in run.results] == ["failed", "failed"]
    assert run.exit_code == 1
    golden.check("testing/failing_report.txt", reports.render_human(run, timing=False))


def test_broken_suite_diagnostics(suites: Path, golden) -> None:
    run = Runner().run_paths(["broken.sentra-test"])
    codes = [d.code for d in run.diagnostics]
    assert codes == ["SL502", "SL503", "SL504", "SL504"]
    assert run.exit_code == 2 and not run.results
    golden.check("testing/broken_report.txt", reports.render_human(run, timing=False))


def test_syntax_error_has_carets(suites: Path) -> None:
    (suites / "syntax.sentra-test").write_text('suite "s" for "small.sentra"\nscenario {}\n')
    run = Runner().run_paths(["syntax.sentra-test"])
    [diag] = run.diagnostics
    assert diag.code == "SL001" and diag.span.line == 2 and diag.span.text == "{"


def test_filters(suites: Path) -> None:
    def names(**kw: Any) -> list[str]:
        return [r.item.name for r in Runner(**kw).run_paths(["pass.sentra-test"]).results]

    assert names(keyword="payments") == ["two risky payments", "payments[1]", "payments[2]"]
    assert names(keyword="payments and not risky") == ["payments[1]", "payments[2]"]
    assert names(keyword="(risk or nothing) and not table") == ["two risky payments"]
    assert names(tags=["table"]) == ["payments[1]", "payments[2]"]
    run = Runner(keyword="zzz").run_paths(["pass.sentra-test"])
    assert run.exit_code == 5 and run.deselected == 3
    with pytest.raises(SelectionError):
        keyword_matcher("a and (b")
    assert names(exitfirst=True) == names()
    assert len(Runner(exitfirst=True).run_paths(["fail.sentra-test"]).results) == 1


def test_coverage_by_hand(suites: Path) -> None:
    run = Runner().run_paths(["pass.sentra-test"], min_coverage=80)
    [cov] = run.coverage
    # rules: BLOCK_BIG, RISKY_PAY, ALLOW_PAY, SHUTDOWN_WIPE, OTHER; BLOCK_BIG matched once (500)
    assert (cov.rules_covered, cov.rules_total) == (3, 5)
    assert cov.percent == 60.0
    assert sorted(r.id for r in cov.uncovered_rules()) == ["OTHER", "SHUTDOWN_WIPE"]
    # rows: PAY 3, WIPE 1, otherwise 1
    assert (cov.rows_covered, cov.rows_total) == (3, 5)
    # tests: amount > 100 (T at 500, F at 60, 10), not vip (T at 500/false, F at 500/true),
    # amount > 50 (T at 60, 500; F at 10): all 6 outcomes seen
    assert (cov.conditions_covered, cov.conditions_total) == (6, 6)
    assert cov.rules["BLOCK_BIG"].tests == {"two risky payments"}
    assert run.exit_code == 1  # 60% < 80%
    assert Runner().run_paths(["pass.sentra-test"], min_coverage=60).exit_code == 0


def test_junit_xml(suites: Path) -> None:
    assert main(["test", "pass.sentra-test", "fail.sentra-test", "--junit-xml", "r.xml"]) == 1
    root = ET.parse(suites / "r.xml").getroot()
    assert root.tag == "testsuites"
    assert root.get("tests") == "5" and root.get("failures") == "2"
    for suite in root.iter("testsuite"):
        for attr in ("name", "tests", "failures", "errors", "time"):
            assert suite.get(attr) is not None
        for case in suite.iter("testcase"):
            for attr in ("classname", "name", "file", "line", "time"):
                assert case.get(attr), attr
    failures = list(root.iter("failure"))
    assert len(failures) == 2 and all(f.get("message") for f in failures)
    assert "expected cumulative: 100" in failures[0].text


def test_json_schema_is_stable(suites: Path) -> None:
    assert main(["test", "pass.sentra-test", "fail.sentra-test", "--json", "r.json"]) == 1
    data = json.loads((suites / "r.json").read_text())
    assert sorted(data) == ["coverage", "diagnostics", "exit_code", "results", "schema_version",
                            "suites", "summary", "tool"]
    assert data["schema_version"] == 1 and data["exit_code"] == 1
    assert sorted(data["summary"]) == ["collected", "deselected", "duration", "errors", "failed",
                                       "passed", "ran", "selected", "steps"]
    result = data["results"][0]
    assert sorted(result) == ["duration", "failure", "file", "id", "kind", "line", "name",
                              "outcome", "steps", "tags"]
    failure = next(r["failure"] for r in data["results"] if r["failure"])
    assert sorted(failure) == ["column", "decision", "details", "explanation", "line",
                               "message", "mismatches", "step"]
    cov = data["coverage"]
    assert sorted(cov) == ["min_coverage", "ok", "percent", "policies", "rules",
                           "rules_covered", "rules_total"]
    rule = cov["rules"]["RISKY_PAY"]
    assert sorted(rule) == ["column", "covered", "file", "hits", "line", "outcome", "policy",
                            "scenarios"]
    assert "two risky payments" in rule["scenarios"]


def test_github_format(suites: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", "fail.sentra-test", "--format", "github"]) == 1
    out = capsys.readouterr().out
    assert "::error file=fail.sentra-test,line=4," in out


def test_usage_errors(suites: Path) -> None:
    assert main(["test", "missing-folder"]) == 2
    assert main(["test", "-k", "a and"]) == 2
    assert main(["test", "empty-dir-does-not-exist"]) == 2


def test_pytest_plugin(pytester: pytest.Pytester) -> None:
    pytester.makefile(".sentra", small=POLICY)
    pytester.makefile(".sentra-test", good=PASSING, bad=FAILING)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["*expected cumulative: 100*",
                                 "*FAILED bad.sentra-test::wrong expectation*"])


def test_policies_suites_pass_with_full_coverage() -> None:
    root = Path(__file__).resolve().parents[2] / "policies"
    run = Runner(examples=20).run_paths([root], min_coverage=100)
    assert run.exit_code == 0, reports.render_human(run)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_line_on_a_terminal_stderr_only(suites: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """`test` shows `[i/n] file::name` as each test starts, redrawn in place on a terminal's
    stderr (the progress line `check` and `diff` use) and cleared at the end; stdout never."""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["test", "pass.sentra-test"]) == 0
    drawn = terminal.getvalue()
    assert drawn.startswith("\r[1/") and "pass.sentra-test::" in drawn
    assert drawn.endswith("\r\x1b[K")
    assert "\r" not in capsys.readouterr().out
