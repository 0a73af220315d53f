"""Time in scenario suites (docs/testing.md, "Time"): `after DURATION` moves the scenario's
clock, every scenario starts at the same time, `decayed` is expected like the other numbers,
and a bad duration is SL224 with its location."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentra_lang.cli import main

POLICY = '''policy decaying version "1" {
  risk_threshold 100
  risk_decay 10 per 1h
}
action EXPORT {
  allow risk 60 as EXPORT_OK "Export allowed."
}
otherwise block as UNKNOWN "Not covered."
'''

SUITE = '''suite "decay" for "p.sentra"
scenario "risk decays by the hour" {
  agent "a" EXPORT -> allowed cumulative 60 decayed 0
  after 59m
  state "a" -> cumulative 60
  after 60s
  state "a" -> cumulative 50
  agent "a" EXPORT -> blocked rule RISK_THRESHOLD_EXCEEDED cumulative 50 decayed 10
  after 1d
  agent "a" EXPORT -> allowed cumulative 60 decayed 50
}
scenario "the clock starts again in each scenario" {
  agent "a" EXPORT -> allowed cumulative 60
  agent "a" EXPORT -> blocked cumulative 60 decayed 0
}
'''


def run(tmp_path: Path, suite: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "p.sentra").write_text(POLICY, encoding="utf-8")
    (tmp_path / "p.sentra-test").write_text(suite, encoding="utf-8")
    code = main(["test", str(tmp_path / "p.sentra-test"), "--color", "never"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_after_moves_the_clock_and_decay_follows(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(tmp_path, SUITE, capsys)
    assert code == 0 and "2 passed" in out, out


def test_a_wrong_decayed_expectation_fails(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(tmp_path, SUITE.replace("decayed 10", "decayed 20"), capsys)
    assert code == 1 and "decayed" in out and "1 failed" in out, out


@pytest.mark.parametrize(("written", "message"), [
    ("5hr", "unknown duration unit `hr` in `5hr`"),
    ("hour", "`hour` is not a duration"),
    ("90", "duration `90` has no unit"),
    ("1.5h", "duration `1.5h` is not a whole number of `h`"),
])
def test_a_bad_duration_is_an_error_at_its_place(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                written: str, message: str) -> None:
    code, out = run(tmp_path, SUITE.replace("after 59m", f"after {written}"), capsys)
    assert code != 0 and f"p.sentra-test:4:9: error[SL224]: {message}" in out, out
