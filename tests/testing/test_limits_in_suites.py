"""Rate limits in scenario suites: `after` moves the window, `RATE_LIMIT_EXCEEDED` is an
expectation like any built-in id, and coverage counts every limit, reached or not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentra_lang.cli import main

POLICY = '''policy limited version "1" {
  risk_threshold 100
}

group trusted {
  agents "ops-*"
  limit 10 per 1d
}

action ISSUE_REFUND {
  allow risk 10 as REFUND_OK "Refund issued." limit 2 per 1h
}

otherwise block as UNKNOWN "Not covered."
'''

SUITE = '''suite "limits" for "p.sentra"
scenario "two refunds an hour" {
  agent "a" ISSUE_REFUND -> allowed rule REFUND_OK
  after 10m
  agent "a" ISSUE_REFUND -> allowed rule REFUND_OK
  agent "a" ISSUE_REFUND -> blocked rule RATE_LIMIT_EXCEEDED cumulative 20 strikes 1
  after 50m
  agent "a" ISSUE_REFUND -> allowed rule REFUND_OK cumulative 30
}
'''


def run(tmp_path: Path, suite: str, capsys: pytest.CaptureFixture[str],
        *options: str) -> tuple[int, str]:
    (tmp_path / "p.sentra").write_text(POLICY, encoding="utf-8")
    (tmp_path / "p.sentra-test").write_text(suite, encoding="utf-8")
    code = main(["test", str(tmp_path / "p.sentra-test"), "--color", "never", *options])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_limit_is_reached_and_the_window_slides(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(tmp_path, SUITE, capsys)
    assert code == 0 and "1 passed" in out, out
    assert "limits reached 1/2" in out, out
    assert "limits no test reached:\n    10 per 1d for all actions in group `trusted` " \
           "(counted 0)" in out, out


def test_coverage_json_lists_each_limit_with_its_counts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.json"
    code, out = run(tmp_path, SUITE, capsys, "--json", str(report))
    assert code == 0, out
    [policy] = json.loads(report.read_text("utf-8"))["coverage"]["policies"]
    assert policy["limits"] == [
        {"limit": "2 per 1h", "for": "`REFUND_OK`", "counted": 3, "reached": 1},
        {"limit": "10 per 1d", "for": "all actions in group `trusted`", "counted": 0,
         "reached": 0}]


def test_a_wrong_expectation_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(tmp_path, SUITE.replace("after 50m", "after 49m"), capsys)
    assert code == 1 and "RATE_LIMIT_EXCEEDED" in out and "1 failed" in out, out


GROUPED = '''policy grouped version "1" {
  risk_threshold 100
}

group trusted {
  agents "ops-*"
  risk_threshold 200
}

action EXPORT {
  allow risk 60 as EXPORT_OK "Export allowed."
}

otherwise block as UNKNOWN "Not covered."
'''

GROUP_SUITE = '''suite "groups" for "g.sentra"
scenario "an operator trusts an agent" {
  agent "new-1" EXPORT -> allowed group ""
  assign "new-1" group "trusted"
  agent "new-1" EXPORT -> allowed group "trusted" cumulative 120
  reset "new-1"
  state "new-1" -> cumulative 0
  agent "new-1" EXPORT -> allowed group "trusted"
  assign "new-1" group none
  agent "new-1" EXPORT -> blocked rule RISK_THRESHOLD_EXCEEDED group "" cumulative 60
}
'''


def run_groups(tmp_path: Path, suite: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "g.sentra").write_text(GROUPED, encoding="utf-8")
    (tmp_path / "g.sentra-test").write_text(suite, encoding="utf-8")
    code = main(["test", str(tmp_path / "g.sentra-test"), "--color", "never"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_group_step_assigns_and_a_reset_keeps_the_assignment(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_groups(tmp_path, GROUP_SUITE, capsys)
    assert code == 0 and "1 passed" in out, out


def test_a_group_step_with_an_undeclared_group_is_sl509(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_groups(tmp_path, GROUP_SUITE.replace('group "trusted"', 'group "trustd"'), capsys)
    assert code != 0 and "g.sentra-test:4:24: error[SL509]: the policy has no group `trustd`" \
        in out and "did you mean `trusted`" in out, out
