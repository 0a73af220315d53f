"""`review` is a fourth outcome to the analysis and to `diff` (docs/language.md, "Review";
"Exact analysis"): findings and changed regions name it, and every witness replays through the
real runtime to a `Review Required` decision of the rule named."""

from __future__ import annotations

from tests.analysis.helpers import compiled, decided_by, findings, replay
from tests.analysis.test_diff import assert_regions_replay, diff_of, version
from tests.analysis.test_known_answers import assert_witnesses_replay, policy

RULES = ('  when amount > 100 review risk 20 as HOLD "Needs a human."\n'
         '  when amount > 500 block as BIG "Never."\n'
         '  when amount > 50 allow risk 5 as MEDIUM\n'
         "  allow as SMALL")
SOURCE = policy("  amount: number", RULES)


def test_a_rule_behind_a_review_rule_is_shadowed_with_a_witness_held_for_review() -> None:
    [shadowed] = findings(SOURCE, "SL401")
    assert shadowed.ids[0] == "BIG"
    assert shadowed.witness is not None
    decision = replay(compiled(SOURCE), "A", shadowed.witness)
    assert (decision.label, decision.rule_id) == ("Review Required", "HOLD")
    assert decision.ticket is not None


def test_review_and_allow_overlap_is_reported_and_every_witness_replays() -> None:
    assert {f.code for f in findings(SOURCE)} >= {"SL401"}
    assert_witnesses_replay(SOURCE)
    assert decided_by(compiled(SOURCE), "A", {"amount": 101}) == "HOLD"


def test_diff_reports_allow_becoming_review_with_replayed_witnesses() -> None:
    old = version("action PAY {\n  when amount > 100 allow risk 20 as HOLD\n  allow as SMALL\n}\n")
    new = version("action PAY {\n  when amount > 100 review risk 20 as HOLD\n  allow as SMALL\n}\n")
    diff = diff_of(old, new)
    [change] = diff.changes
    assert (change.action, change.before.outcome, change.after.outcome) == ("PAY", "allow",
                                                                           "review")
    assert_regions_replay(diff)
    [region] = [r for a in diff.actions for r in a.regions
                if r.before.outcome != r.after.outcome]
    assert region.new is not None and region.new.label == "Review Required"
    assert region.old is not None and region.old.label == "Allowed"


def test_diff_of_an_expiry_change_alone_changes_the_review_region() -> None:
    """The ticket's time is part of a review decision: an operator's verdict between 1h and
    2h is decided in one version and finds the ticket expired in the other."""
    old = version("action PAY {\n  review as HOLD expires 1h\n}\n")
    new = version("action PAY {\n  review as HOLD expires 2h\n}\n")
    diff = diff_of(old, new)
    [change] = diff.changes
    assert (change.before.expires, change.after.expires) == (3600, 7200)
    assert [s.name for s in diff.settings] == ["expires"]
    assert_regions_replay(diff)
