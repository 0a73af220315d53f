"""The analysis of policies that read the agent's state (docs/language.md, "Agent state in
conditions"): `agent.*` are three more dimensions, so findings stay exact; every witness
carries an `agent` part and replays by seeding that agent's state; a law against brute force
over every state the rules can tell apart."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sentra_runtime import Engine, MemoryStore

from tests.analysis.helpers import compiled, decided_by, findings

HEADER = 'policy p version "1" {}\n'
GROUPS = 'group new {\n  agents "new-*"\n}\ngroup trusted {\n  agents "ops-7", "ops-*"\n}\n'


def policy(rules: str, groups: str = GROUPS, otherwise: bool = True) -> str:
    tail = "otherwise allow as OTHER\n" if otherwise else ""
    return HEADER + groups + f"action A {{\n{rules}}}\n" + tail


def test_counts_are_never_negative_so_a_test_from_0_is_always_true() -> None:
    found = findings(policy("  when agent.cumulative_risk >= 0 allow as R1\n  allow as R2\n"))
    assert [(f.code, f.ids[0]) for f in found] == [("SL403", "R1"), ("SL401", "R2")]


def test_a_rule_no_state_reaches_never_matches() -> None:
    found = findings(policy("  when agent.blocked_attempts < 0 block as NEG\n  allow as R\n"),
                     "SL402")
    assert [f.ids[0] for f in found] == ["NEG"]


def test_every_group_and_no_group_cover_the_group_dimension() -> None:
    src = policy('  when agent.group == "new" allow as N\n  when agent.group == "trusted" '
                 'allow as T\n  when agent.group == "" allow as NONE\n', otherwise=False)
    assert not findings(src, "SL405", "SL402")
    gap = findings(policy('  when agent.group in {"new", "trusted"} allow as NT\n',
                          otherwise=False), "SL405")
    assert gap and gap[0].witness is not None
    assert gap[0].witness["agent"]["group"] == ""


def test_a_group_only_an_operator_puts_agents_in_is_a_region_and_no_group_may_be_none() -> None:
    shadowed = 'group all {\n  agents "*"\n}\ngroup late {\n  agents "x"\n}\n'
    src = policy('  when agent.group == "late" allow as LATE\n  when agent.group == "" allow as NONE'
                 '\n  allow as REST\n', groups=shadowed)
    found = findings(src, "SL402", "SL405")
    assert [(f.code, f.ids[0]) for f in found] == [("SL402", "NONE")]


def test_witnesses_carry_an_agent_part_with_an_id_in_its_group_and_replay() -> None:
    src = policy('  when agent.group == "trusted" and agent.cumulative_risk > 50 block as T50\n'
                 "  when agent.cumulative_risk > 20 allow risk 5 as ANY20\n  allow as OK\n")
    result = compiled(src)
    overlap = [f for f in findings(src, "SL404") if f.ids[0] == "T50"]
    assert overlap and overlap[0].witness is not None
    agent = overlap[0].witness["agent"]
    assert set(agent) == {"id", "group", "cumulative_risk", "blocked_attempts"}
    assert agent["group"] == "trusted" and agent["cumulative_risk"] > 50
    assert decided_by(result, "A", overlap[0].witness) == "T50"


STATE_TESTS = st.sampled_from(["agent.cumulative_risk", "agent.blocked_attempts"])
OPS = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
GROUP_TESTS = st.sampled_from(['agent.group == "new"', 'agent.group != "trusted"',
                               'agent.group == ""', 'agent.group in {"new", "trusted"}'])


@st.composite
def conditions(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 2))):
        if draw(st.booleans()):
            parts.append(f"{draw(STATE_TESTS)} {draw(OPS)} {draw(st.integers(0, 4))}")
        else:
            parts.append(draw(GROUP_TESTS))
    return f" {draw(st.sampled_from(['and', 'or']))} ".join(parts)


AGENTS = {"new": "new-1", "trusted": "ops-7", "": "zed"}


@settings(max_examples=60, deadline=None)
@given(st.lists(conditions(), min_size=1, max_size=4))
def test_law_findings_equal_brute_force_over_states(conds: list[str]) -> None:
    """A rule never matches (SL402) or is shadowed (SL401) exactly when the runtime, over every
    state the constants tell apart (counts 0..6, each group and none), never decides by it;
    SL405 exactly when some state matches no rule."""
    rules = "".join(f"  when {c} allow as R{i}\n" for i, c in enumerate(conds))
    src = policy(rules, otherwise=False)
    result = compiled(src)
    assert result.table is not None
    table = result.table.model_dump(mode="json")
    matched: set[str | None] = set()
    for group, agent in AGENTS.items():
        for risk in range(7):
            for blocked in range(7):
                store = MemoryStore(audit=False)
                store.set_state(agent, risk, blocked)
                decision = Engine(table, store).evaluate(agent, "A", {})
                assert decision.group == group
                matched.add(decision.trace.matched_rule)
    never = {f.ids[0] for f in findings(src, "SL402", "SL401")}
    assert never == {f"R{i}" for i in range(len(conds))} - matched, src
    assert bool(findings(src, "SL405")) == (None in matched), src
    for f in findings(src):
        if f.witness is not None and f.code == "SL405":
            assert decided_by(result, "A", f.witness) is None
