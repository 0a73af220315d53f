"""`sentra-lang diff` on policies with groups and conditions on the agent's state: a change of
groups is a setting change, state conditions are compared exactly (witnesses with an `agent`
part replay by seeding that agent's state), and an action that reads `agent.group` is not
compared when the groups' membership changed (docs/diff.md)."""

from __future__ import annotations

from sentra_lang.semdiff import PolicyDiff, diff_policies
from tests.analysis.helpers import compiled

BASE = """policy st version "1" {}
group new {
  agents "new-*"
}
group trusted {
  agents "ops-*"
}
action EXPORT {
  when agent.blocked_attempts >= 1 block as NO_MORE
  when agent.group == "new" and agent.cumulative_risk > 50 block as NEW_CAP
  allow risk 30 as OK
}
action READ {
  when agent.cumulative_risk > 10 block as BUSY
  allow as READ_OK
}
otherwise block as UNKNOWN
"""


def diff_of(old: str, new: str) -> PolicyDiff:
    return diff_policies(compiled(old), compiled(new))


def test_a_changed_state_constant_gives_exactly_the_changed_states() -> None:
    diff = diff_of(BASE, BASE.replace("cumulative_risk > 50", "cumulative_risk > 60"))
    assert not diff.settings
    (change,) = diff.changes
    agent = change.witness["agent"]
    assert agent["group"] == "new" and 50 < agent["cumulative_risk"] <= 60
    assert agent["id"].startswith("new-") and agent["blocked_attempts"] == 0
    assert change.old is not None and change.new is not None   # replayed with the state seeded
    assert (change.old.rule_id, change.new.rule_id) == ("NEW_CAP", "OK")
    assert change.old.group == change.new.group == "new"


def test_same_policy_has_no_changes() -> None:
    diff = diff_of(BASE, BASE)
    assert not diff.changed


def test_changed_group_settings_are_a_setting_change_and_still_compared() -> None:
    diff = diff_of(BASE, BASE.replace('agents "ops-*"\n', 'agents "ops-*"\n  strikes 5\n'))
    assert [s.name for s in diff.settings] == ["groups"]
    assert "trusted (ops-*; strikes 5)" in diff.settings[0].after
    assert not diff.changes and not any(a.skipped for a in diff.actions)


def test_changed_membership_skips_only_actions_reading_the_group() -> None:
    diff = diff_of(BASE, BASE.replace('agents "ops-*"', 'agents "ops-*", "new-1"'))
    assert [s.name for s in diff.settings] == ["groups"]
    skipped = {a.action: a.skipped for a in diff.actions if a.skipped}
    assert list(skipped) == ["EXPORT"] and "membership changed" in skipped["EXPORT"]
    read = next(a for a in diff.actions if a.action == "READ")
    assert not read.changes
