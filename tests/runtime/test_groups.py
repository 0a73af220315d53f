"""Agent groups (docs/language.md, "Agent groups"): membership declared in the policy, per-group
settings, and the decision's `group`; known answers and a law against an oracle written from
the documented rules, in every store."""

from __future__ import annotations

import io
import json
import random
import re
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sentra_runtime import Engine, MemoryStore, Store
from sentra_runtime.policy import PolicyLoadError, load_policy
from sentra_runtime.wire import decision_from_wire

from sentra_lang.cli import main
from tests.runtime.helpers import T0, Clock, compiled_table

HOUR = 3600.0

SOURCE = """policy refunds version "1" {
  risk_threshold 100
  strikes 3
}

group trusted {
  agents "ops-7", "senior-*"
  risk_threshold 200
  strikes 5
  risk_decay 50 per 1h
}

group new {
  agents "new-*", "senior-trainee"
  strikes 1
}

input {
  amount: int
}

action REFUND {
  when amount > 1000 block as TOO_BIG "Too big."
  allow risk 60 as REFUND_OK "Refund allowed."
}

otherwise block as UNKNOWN "Not covered."
"""

GROUPS = (("trusted", ("ops-7", "senior-*"), 200, 5, (50, 3600)),
          ("new", ("new-*", "senior-trainee"), 100, 1, None))
"""The oracle's copy of the groups above: name, patterns, threshold, strikes, decay."""
HEADER = ("", (), 100, 3, None)


def table(source: str = SOURCE) -> dict[str, Any]:
    return compiled_table(source)




# -- the oracle, from the docs --------------------------------------------------------------
def oracle_group(agent: str) -> tuple[str, tuple[str, ...], int, int, tuple[int, int] | None]:
    """The first group, in declaration order, with a pattern matching the id: an exact id, or
    a prefix ending in `*`."""
    for group in GROUPS:
        for pattern in group[1]:
            exact = not pattern.endswith("*")
            if (exact and agent == pattern) or (not exact and agent.startswith(pattern[:-1])):
                return group
    return HEADER


class Oracle:
    """The documented semantics, written independently of the runtime."""

    def __init__(self) -> None:
        self.states: dict[str, list[Any]] = {}

    def decide(self, agent: str, amount: int, now: float) -> tuple[str, str, int, int, str]:
        name, _, threshold, strikes, decay = oracle_group(agent)
        risk, blocked, down, anchor = self.states.setdefault(agent, [0, 0, False, None])
        if decay is not None and risk > 0 and anchor is not None:
            periods = int((now - anchor) // decay[1])
            if periods > 0:
                risk = max(0, risk - periods * decay[0])
                anchor = None if risk == 0 else anchor + periods * decay[1]
        if down:
            result = ("Agent Shut Down", "AGENT_ALREADY_SHUT_DOWN")
        elif amount <= 1000 and risk + 60 <= threshold:
            if risk == 0:
                anchor = now
            risk += 60
            result = ("Allowed", "REFUND_OK")
        else:
            blocked += 1
            rule = "TOO_BIG" if amount > 1000 else "RISK_THRESHOLD_EXCEEDED"
            if blocked >= strikes:
                down = True
                result = ("Agent Shut Down", "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS")
            else:
                result = ("Blocked", rule)
        self.states[agent] = [risk, blocked, down, anchor]
        return (*result, risk, blocked, name)


def observed(decision: Any) -> tuple[str, str, int, int, str]:
    return (decision.label, decision.rule_id, decision.cumulative_risk,
            decision.blocked_attempts, decision.group)


# -- known answers ----------------------------------------------------------------------------
@pytest.mark.parametrize(("agent", "group"), [
    ("ops-7", "trusted"), ("ops-70", ""), ("senior-1", "trusted"), ("senior-", "trusted"),
    ("senior-trainee", "trusted"),   # "senior-*" comes first in declaration order
    ("new-1", "new"), ("new", ""), ("", ""), ("NEW-1", ""),
])
def test_membership_is_the_first_matching_group(agent: str, group: str) -> None:
    engine = Engine(table(), MemoryStore())
    assert engine.evaluate(agent, "REFUND", {"amount": 1}).group == group
    assert load_policy(table()).settings_of(agent).group == group


def test_each_group_has_its_own_threshold_strikes_and_decay(store: Store) -> None:
    clock = Clock()
    engine = Engine(table(), store, clock=clock)
    trusted = [observed(engine.evaluate("ops-7", "REFUND", {"amount": 1}))[:3] for _ in range(4)]
    assert trusted == [("Allowed", "REFUND_OK", 60), ("Allowed", "REFUND_OK", 120),
                       ("Allowed", "REFUND_OK", 180), ("Blocked", "RISK_THRESHOLD_EXCEEDED", 180)]
    plain = [observed(engine.evaluate("x", "REFUND", {"amount": 1}))[:3] for _ in range(2)]
    assert plain == [("Allowed", "REFUND_OK", 60), ("Blocked", "RISK_THRESHOLD_EXCEEDED", 60)]
    assert observed(engine.evaluate("new-1", "REFUND", {"amount": 5000}))[:2] == (
        "Agent Shut Down", "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS")   # strikes 1
    clock.now = T0 + 2 * HOUR                                          # trusted decays 50 per 1h
    assert engine.state("ops-7").cumulative_risk == 80
    assert engine.state("x").cumulative_risk == 60                      # the header has no decay
    again = engine.evaluate("ops-7", "REFUND", {"amount": 1})
    assert (again.decayed, again.cumulative_risk) == (100, 140)


def test_the_group_is_on_the_decision_its_dict_the_audit_record_and_the_wire() -> None:
    engine = Engine(table(), MemoryStore())
    decision = engine.evaluate("senior-2", "REFUND", {"amount": 1})
    assert decision.to_dict()["group"] == "trusted"
    assert decision_from_wire({"decision": decision.to_dict(explanation=True)}).group == "trusted"
    assert engine.evaluate("zed", "REFUND", {"amount": 1}).to_dict()["group"] == ""
    records = [r for r in engine.audit_records() if r["kind"] == "decision"]
    assert [r["decision"]["group"] for r in records] == ["trusted", ""]
    assert engine.verify_audit().ok


def test_a_policy_without_groups_decides_without_a_group() -> None:
    plain = table(SOURCE.replace(SOURCE[SOURCE.index("group trusted"):SOURCE.index("input {")],
                                 ""))
    assert plain["schema_version"] == 2 and "groups" not in plain
    decision = Engine(plain, MemoryStore()).evaluate("ops-7", "REFUND", {"amount": 1})
    assert decision.group is None and "group" not in decision.to_dict()


@pytest.mark.parametrize("mode", ["refuse", "ignore"])
def test_an_agent_cannot_choose_its_group_through_its_input(mode: str) -> None:
    source = SOURCE.replace("  strikes 3\n}", f"  strikes 3\n  undeclared_fields {mode}\n}}", 1)
    engine = Engine(table(source), MemoryStore())
    for key in ("agent", "group", "agent.group"):
        agent = f"x-{key}"
        decision = engine.evaluate(agent, "REFUND", {"amount": 1, key: {"group": "trusted"}
                                                     if key == "agent" else "trusted"})
        assert decision.group == ""
        assert decision.rule_id == ("UNDECLARED_FIELD" if mode == "refuse" else "REFUND_OK")
        second = engine.evaluate(agent, "REFUND", {"amount": 1})   # the header's threshold
        assert second.rule_id == ("REFUND_OK" if mode == "refuse" else "RISK_THRESHOLD_EXCEEDED")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ops-7", "ops-8", "senior-a", "senior-trainee",
                                           "new-1", "new", "x"]),
                          st.sampled_from([1, 5000]), st.integers(0, 3 * 3600)), max_size=40))
def test_law_decisions_equal_the_oracle(steps: list[tuple[str, int, int]]) -> None:
    clock = Clock()
    engine = Engine(table(), MemoryStore(), clock=clock)
    oracle = Oracle()
    for agent, amount, wait in steps:
        clock.now += wait
        assert observed(engine.evaluate(agent, "REFUND", {"amount": amount})) == \
            oracle.decide(agent, amount, clock.now)


def test_law_in_sqlite_and_postgres_equal_the_oracle(store: Store) -> None:
    clock = Clock()
    engine = Engine(table(), store, clock=clock)
    oracle = Oracle()
    chooser = random.Random(15)
    for _ in range(120):
        agent = chooser.choice(["ops-7", "senior-a", "new-1", "x"])
        amount = chooser.choice([1, 1, 1, 5000])
        clock.now += chooser.choice([0, 600, 3600])
        assert observed(engine.evaluate(agent, "REFUND", {"amount": amount})) == \
            oracle.decide(agent, amount, clock.now)


# -- the table --------------------------------------------------------------------------------
def test_the_table_keeps_groups_in_order_with_only_the_settings_they_give() -> None:
    compiled = table()
    assert compiled["schema_version"] == 3
    assert compiled["groups"] == [
        {"name": "trusted", "agents": ["ops-7", "senior-*"], "risk_threshold": 200,
         "strikes": 5, "risk_decay": {"amount": 50, "period": 3600}},
        {"name": "new", "agents": ["new-*", "senior-trainee"], "strikes": 1}]


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.update(schema_version=2), "groups need table schema version 3"),
    (lambda t: t["groups"][0].update(agents=["a*b"]), "groups[0].agents[0]: `a*b` is not"),
    (lambda t: t["groups"][0].update(agents=[""]), "groups[0].agents[0]"),
    (lambda t: t["groups"][1].update(name="trusted"), "group `trusted` is declared twice"),
    (lambda t: t["groups"][0].update(strikes=0), "groups[0].strikes: expected a positive"),
    (lambda t: t["groups"][0].update(colour="red"), "colour"),
    (lambda t: t["groups"][0].update(agents="ops-7"), "groups[0].agents: expected array"),
])
def test_the_loader_refuses_bad_groups_with_their_path(change: Any, message: str) -> None:
    bad = table()
    change(bad)
    with pytest.raises(PolicyLoadError, match=re.escape(message)):
        load_policy(bad, verify_hash=False)


# -- explain ----------------------------------------------------------------------------------
def test_explain_picks_the_group_by_agent_id(tmp_path: Path) -> None:
    policy = tmp_path / "p.sentra"
    policy.write_text(SOURCE, encoding="utf-8")
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["explain", str(policy), "REFUND", "--agent", "senior-9", "--state",
                     "130,0", "--field", "amount=1"])
    text = out.getvalue()
    assert code == 0, text
    assert "Allowed (REFUND_OK)" in text and "group: trusted" in text
    assert "cumulative 190/200" in text and "130 + 60 = 190 <= 200: applied" in text
    assert "agent `senior-9` (group `trusted`)" in text
    out = io.StringIO()
    with redirect_stdout(out):
        main(["explain", str(policy), "REFUND", "--agent", "x", "--state", "50,0",
              "--field", "amount=1", "--format", "json"])
    assert json.loads(out.getvalue())["group"] == ""


def test_the_documented_example_decides_as_the_docs_say() -> None:
    """docs/language.md, "Agent groups": the example and the claims under it."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "language.md").read_text("utf-8")
    section = text[text.index("### Agent groups"):text.index("## Input declarations")]
    source = section.split("```sentra\n")[1].split("```")[0]
    engine = Engine(table(source), MemoryStore())

    def labels(agent: str, amount: int, times: int) -> list[str]:
        return [engine.evaluate(agent, "ISSUE_REFUND", {"amount": amount}).label
                for _ in range(times)]

    assert labels("ops-7", 1, 4) == ["Allowed"] * 3 + ["Blocked"]
    assert engine.state("ops-7").cumulative_risk == 180
    assert labels("ops-7", 5000, 4) == ["Blocked"] * 3 + ["Agent Shut Down"]   # the fifth block
    assert labels("new-1", 5000, 1) == ["Agent Shut Down"]
    assert labels("ops-70", 1, 2) == ["Allowed", "Blocked"]
    assert {engine.evaluate(a, "ISSUE_REFUND", {"amount": 1}).group
            for a in ("senior-1", "senior-")} == {"trusted"}
