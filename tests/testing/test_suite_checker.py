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


TYPED = '''policy typed version "1" {}
input {
  level: enum {"low", "high"} normalize lower, trim = "low"
  count: int = 0
  share: number = 0
  tags: set<string> = {}
  flag: bool = false
}
action A {
  allow as OK
}
otherwise allow as OTHER
'''


@pytest.mark.parametrize("field, value, fits", [
    ("level", '" High "', True),        # normalised as the runtime does, then an enum value
    ("level", '"medium"', False),
    ("count", "3", True),
    ("count", "3.5", False),
    ("count", "true", False),           # a boolean is never a number
    ("share", "3.5", True),
    ("share", '"3.5"', False),          # never coerced
    ("tags", '["a", "b"]', True),
    ("tags", '["a", 1]', False),
    ("flag", "false", True),
    ("flag", "0", False),
])
def test_sl506_is_exactly_what_the_runtime_refuses(tmp_path: Path, field: str, value: str,
                                                    fits: bool) -> None:
    """The suite checker reads a step's values as the runtime does (one definition,
    sentra_runtime.inputs): SL506 when, and only when, the runtime blocks it as INVALID_INPUT."""
    (tmp_path / "typed.sentra").write_text(TYPED)
    suite = tmp_path / "s.sentra-test"
    suite.write_text(f'suite "s" for "typed.sentra"\nscenario "x" {{\n'
                     f'  agent "a" A {{ {field}: {value} }} -> allowed\n}}\n')
    run = Runner().run_paths([str(suite)])
    codes = [d.code for d in run.diagnostics]
    assert codes == ([] if fits else ["SL506"]), run.diagnostics
    if fits:
        assert [r.outcome for r in run.results] == ["passed"]


def test_a_step_may_send_an_undeclared_field_to_see_it_refused(tmp_path: Path) -> None:
    """`rule UNDECLARED_FIELD` is one of the runtime's own ids, and a step expecting it may send
    the field (SL502 otherwise: a typo in a test tests nothing)."""
    (tmp_path / "small.sentra").write_text(POLICY)
    suite = tmp_path / "s.sentra-test"
    suite.write_text('suite "s" for "small.sentra"\nscenario "typo" {\n'
                     '  agent "a" PAY { amont: 5 } -> blocked rule UNDECLARED_FIELD\n}\n'
                     'scenario "unmeant" {\n  agent "a" PAY { amont: 5 } -> allowed\n}\n')
    run = Runner().run_paths([str(suite)])
    assert [(d.code, d.span.line) for d in run.diagnostics] == [("SL502", 6)]
    suite.write_text(suite.read_text().split('scenario "unmeant"')[0])
    run = Runner().run_paths([str(suite)])
    assert not run.diagnostics and [r.outcome for r in run.results] == ["passed"]
