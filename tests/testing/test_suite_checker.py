"""The suite checker's bounds on numeric expectations (SL504): what no policy can produce."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentra_lang.testing.runner import Runner

POLICY = '''policy small version "1" {
  risk_threshold 100
  strikes 3
}
input { amount: number = 0 }
action PAY {
  when amount > 50 allow risk 60 as RISKY_PAY "Risky."
  allow as ALLOW_PAY "Ok."
}
otherwise allow risk 10 as OTHER "Other."
'''


def diagnostics(tmp_path: Path, expectation: str) -> list[str]:
    (tmp_path / "small.sentra").write_text(POLICY)
    suite = tmp_path / "s.sentra-test"
    suite.write_text(f'suite "s" for "small.sentra"\nscenario "x" {{\n'
                     f'  agent "a" PAY {{ amount: 60 }} -> {expectation}\n}}\n')
    run = Runner().run_paths([str(suite)])
    return [f"{d.code} {d.message}" for d in run.diagnostics]


@pytest.mark.parametrize("expectation, message", [
    ("allowed risk 500", "attempted risk never exceeds the threshold 100"),
    ("blocked risk 101", "attempted risk never exceeds the threshold 100"),
    ("allowed applied 500", "applied risk never exceeds the threshold 100"),
    ("allowed projected 201", "projected risk never exceeds 200, twice the threshold 100"),
    ("allowed cumulative 900", "cumulative risk never exceeds the threshold 100"),
    ("blocked strikes 7", "cannot have 7 blocked attempts"),
])
def test_impossible_amounts_are_sl504(tmp_path: Path, expectation: str, message: str) -> None:
    found = diagnostics(tmp_path, expectation)
    assert len(found) == 1 and found[0].startswith("SL504") and message in found[0], found


@pytest.mark.parametrize("expectation", [
    "allowed risk 100", "allowed applied 100", "blocked projected 200", "allowed cumulative 100",
])
def test_amounts_at_the_bounds_are_accepted(tmp_path: Path, expectation: str) -> None:
    assert diagnostics(tmp_path, expectation) == []
