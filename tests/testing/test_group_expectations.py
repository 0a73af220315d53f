"""Suites test groups and conditions on the agent's state (docs/testing.md): the `group "NAME"`
expectation, an unknown group name is SL509 with "did you mean", both suite parsers agree, and
a group's higher threshold is no impossible expectation."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

from sentra_lang.cli import main
from tests.testing.test_suite_parser import both

POLICY = """policy st version "1" {
  risk_threshold 100
}

group new {
  agents "new-*"
}

group trusted {
  agents "ops-*"
  risk_threshold 200
}

input {
  rows: int
}

action EXPORT {
  when agent.blocked_attempts >= 1 block as NO_MORE "No more."
  when agent.group == "new" and agent.cumulative_risk > 50 block as NEW_CAP "Cap."
  allow risk 60 as OK "ok"
}

otherwise block as UNKNOWN "Not covered."
"""

SUITE = """suite "groups" for "st.sentra"

scenario "each group its own" {
  agent "new-1" EXPORT { rows: 1 } -> allowed rule OK group "new" cumulative 60
  agent "new-1" EXPORT { rows: 1 } -> blocked rule NEW_CAP group "new" strikes 1
  agent "new-1" EXPORT { rows: 1 } -> blocked rule NO_MORE strikes 2
  agent "ops-1" EXPORT { rows: 1 } -> allowed group "trusted" cumulative 60
  agent "ops-1" EXPORT { rows: 1 } -> allowed group "trusted" cumulative 120
  agent "x" EXPORT { rows: 1 } -> allowed group "" cumulative 60
  agent "x" EXPORT { rows: 1 } -> blocked rule RISK_THRESHOLD_EXCEEDED group ""
  agent "x" UNKNOWN_THING { rows: 1 } -> blocked rule UNKNOWN
}
"""


def run(tmp_path: Path, suite: str) -> tuple[int, str]:
    (tmp_path / "st.sentra").write_text(POLICY, encoding="utf-8")
    (tmp_path / "st.sentra-test").write_text(suite, encoding="utf-8")
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["test", str(tmp_path), "--color", "never"])
    return code, out.getvalue()


def test_a_suite_expects_groups_and_state_conditions(tmp_path: Path) -> None:
    code, text = run(tmp_path, SUITE)
    assert code == 0, text
    assert "rules 4/4 (100.0%)" in text


def test_a_wrong_group_fails_the_step_with_both_names(tmp_path: Path) -> None:
    code, text = run(tmp_path, SUITE.replace('cumulative 120', 'group "new"'))
    assert code == 1
    assert 'expected group: "new"' in text and 'actual group: "trusted"' in text


def test_an_unknown_group_is_sl509_with_did_you_mean(tmp_path: Path) -> None:
    code, text = run(tmp_path, SUITE.replace('group "trusted" cumulative 60',
                                             'group "trustd" cumulative 60'))
    assert code == 2
    assert "error[SL509]: the policy has no group `trustd`" in text
    assert "did you mean `trusted`?" in text


def test_both_parsers_read_the_group_expectation_alike() -> None:
    fast, reference = both(SUITE)
    assert fast is not None and fast == reference
