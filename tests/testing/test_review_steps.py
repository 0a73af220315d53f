"""Review in scenario suites (docs/testing.md, "Review"): the `review` decision word with its
ticket named by `as NAME`, operator steps `approve`/`deny` on a named ticket or an agent's last
one, `ticket REF -> STATUS`, what the suite checker says about them, and coverage of review
rules. Both suite parsers read the new steps alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentra_lang.cli import main
from sentra_lang.source import Source
from sentra_lang.testing.suite_parser import _parse_with_lark, parse_suite

POLICY = '''policy refunds version "1" {
  risk_threshold 100
  review_timeout 1h
}
input {
  amount: number
}
action ISSUE_REFUND {
  when amount > 500 review risk 60 as REVIEW_LARGE "Refund of {amount} needs a human." expires 2h
  when amount > 100 review risk 30 as REVIEW_MID "Refund of {amount} needs a human."
  allow risk 10 as SMALL "Small refund."
}
otherwise block as UNKNOWN "Not covered."
'''

SUITE = '''suite "review" for "p.sentra"
scenario "approval applies the risk at approval" {
  agent "a" ISSUE_REFUND { amount: 700 } -> review rule REVIEW_LARGE risk 60 applied 0 cumulative 0 as big
  agent "a" ISSUE_REFUND { amount: 50 } -> allowed cumulative 10
  approve big by "alice" note "verified" -> allowed rule REVIEW_LARGE applied 60 cumulative 70
  ticket big -> approved
}
scenario "over the threshold at approval" {
  agent "a" ISSUE_REFUND { amount: 700 } -> review as first
  agent "a" ISSUE_REFUND { amount: 700 } -> review as second
  approve first by "alice" -> allowed cumulative 60
  approve second by "alice" -> blocked rule RISK_THRESHOLD_EXCEEDED strikes 1
  ticket second -> blocked
}
scenario "denial is a strike" {
  agent "a" ISSUE_REFUND { amount: 200 } -> review rule REVIEW_MID
  deny "a" last ticket by "bob" -> blocked rule REVIEW_MID strikes 1 reason "Denied by `bob` after review."
  state "a" -> strikes 1 cumulative 0
}
scenario "tickets expire at their time" {
  agent "a" ISSUE_REFUND { amount: 200 } -> review
  after 59m
  ticket "a" last ticket -> pending
  after 1m
  ticket "a" last ticket -> expired
}
scenario "a reset cancels" {
  agent "a" ISSUE_REFUND { amount: 900 } -> review as t
  reset "a"
  ticket t -> cancelled
  agent "a" ISSUE_REFUND { amount: 20 } -> allowed rule SMALL
  agent "a" DELETE { amount: 1 } -> blocked rule UNKNOWN
}
'''


def run(tmp_path: Path, suite: str, capsys: pytest.CaptureFixture[str],
        *extra: str) -> tuple[int, str]:
    (tmp_path / "p.sentra").write_text(POLICY, encoding="utf-8")
    (tmp_path / "p.sentra-test").write_text(suite, encoding="utf-8")
    code = main(["test", str(tmp_path / "p.sentra-test"), "--color", "never", *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_documented_review_steps_pass_and_cover_review_rules(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(tmp_path, SUITE, capsys, "--min-coverage", "100")
    assert code == 0 and "5 passed" in out, out
    assert "rules 4/4 (100.0%)" in out, out


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("approve big by \"alice\" note \"verified\" -> allowed rule REVIEW_LARGE applied 60",
     "approve big by \"alice\" note \"verified\" -> blocked rule REVIEW_LARGE applied 0",
     "expected decision \"blocked\", got \"allowed\""),
    ("ticket big -> approved", "ticket big -> denied", "expected ticket \"denied\", got "
                                                       "\"approved\""),
    ("after 1m\n  ticket \"a\" last ticket -> expired", "ticket \"a\" last ticket -> expired",
     "expected ticket \"expired\", got \"pending\""),
])
def test_a_wrong_expectation_fails_at_its_step(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               old: str, new: str, expected: str) -> None:
    assert old in SUITE
    code, out = run(tmp_path, SUITE.replace(old, new), capsys)
    assert code == 1 and expected in out and "1 failed" in out, out


def test_a_verdict_on_a_closed_or_missing_ticket_fails(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    suite = ('suite "s" for "p.sentra"\nscenario "closed" {\n'
             '  agent "a" ISSUE_REFUND { amount: 200 } -> review\n  after 1h\n'
             '  approve "a" last ticket by "alice"\n}\n'
             'scenario "none" {\n  deny "b" last ticket by "bob"\n}\n')
    code, out = run(tmp_path, suite, capsys)
    assert code == 1 and "2 failed" in out, out
    assert "step 3: the last ticket of agent 'a' is expired, not pending" in out, out
    assert "step 1: no review ticket: the last ticket of agent 'b'" in out, out


@pytest.mark.parametrize(("step", "message", "underline_at"), [
    ('agent "a" ISSUE_REFUND { amount: 50 } -> allowed as t',
     "error[SL509]: `as NAME` names a review ticket", "3:52"),
    ('approve bgi by "x"', "error[SL509]: no ticket named `bgi` before this step", "3:11"),
    ('approve big by "x" -> review', "error[SL504]: an operator's verdict is never `review`",
     "3:25"),
    ("ticket big -> expird", "error[SL509]: `expird` is no ticket status", "3:17"),
    ('agent "a" ISSUE_REFUND { amount: 700 } -> allowed rule REVIEW_LARGE',
     "error[SL504]: `REVIEW_LARGE` is a review rule", "3:53"),
])
def test_the_suite_checker_says_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              step: str, message: str,
                                              underline_at: str) -> None:
    suite = ('suite "s" for "p.sentra"\nscenario "s" {\n' + f"  {step}\n"
             '  agent "a" ISSUE_REFUND { amount: 700 } -> review as big\n}\n')
    code, out = run(tmp_path, suite, capsys)
    assert code == 2 and f"p.sentra-test:{underline_at}: {message}" in out, out


def test_both_parsers_read_review_steps_alike() -> None:
    for text in (SUITE, SUITE.replace("as big", "as  big ")):
        fast, fast_diagnostics = parse_suite(text, "s.sentra-test")
        lark, lark_diagnostics = _parse_with_lark(Source("s.sentra-test", text))
        assert not fast_diagnostics and not lark_diagnostics
        assert fast is not None and lark is not None
        assert (fast.name, fast.policy, fast.defaults, fast.items) == (
            lark.name, lark.policy, lark.defaults, lark.items)


def test_the_documented_scenario_passes_on_the_documented_policy(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/testing.md's review scenario, run on docs/language.md's review example."""
    import re

    docs = Path(__file__).resolve().parents[2] / "docs"
    [policy] = [block for block in re.findall(r"```sentra\n(.*?)```",
                                              (docs / "language.md").read_text("utf-8"), re.S)
                if "policy refunds" in block and "review_timeout" in block]
    [scenario] = [block for block in re.findall(r"  ```\n(.*?)  ```",
                                                (docs / "testing.md").read_text("utf-8"), re.S)
                  if "waits for a human" in block]
    (tmp_path / "p.sentra").write_text(policy, encoding="utf-8")
    suite = 'suite "docs" for "p.sentra"\n' + "\n".join(line[2:] for line in
                                                        scenario.splitlines()) + "\n"
    (tmp_path / "p.sentra-test").write_text(suite, encoding="utf-8")
    code = main(["test", str(tmp_path / "p.sentra-test"), "--color", "never"])
    out = capsys.readouterr().out
    assert code == 0 and "1 passed" in out, out
