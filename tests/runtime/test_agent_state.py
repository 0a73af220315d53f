"""Conditions on the agent's own state (docs/language.md, "Agent state in conditions"): known
answers from the documented rules, input can never stand in for the state, and decisions made
concurrently equal a serial replay of the same order, in every store."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sentra_runtime import Decider, Engine, MemoryStore, Store

from tests.helpers import assert_diagnostic, compile_ok
from tests.pg_fixtures import store_factory, store_target
from tests.runtime.helpers import T0, Clock, compiled_table

HOUR = 3600.0

SOURCE = """policy exports version "1" {
  risk_threshold 100
  strikes 3
  risk_decay 10 per 1h
}

group new {
  agents "new-*"
}

input {
  rows: int
}

action EXPORT_DATA {
  when agent.blocked_attempts >= 1 block as NO_MORE_EXPORTS "After one strike, no more exports."
  when agent.group == "new" and agent.cumulative_risk + rows > 40 block as NEW_AGENT_CAP
    "New agents stay under 40."
  allow risk 30 as EXPORT_OK "Export allowed."
}

action READ {
  allow as READ_OK
}

action BAD {
  block as BAD_ACTION "Never."
}

otherwise block as UNKNOWN "Not covered."
"""


def table(source: str = SOURCE) -> dict[str, Any]:
    return compiled_table(source)




def test_the_table_reads_state_and_is_version_3_without_agent_inputs() -> None:
    compiled = table()
    assert compiled["schema_version"] == 3
    assert [field["name"] for field in compiled["input"]] == ["rows"]


def test_known_answers(store: Store) -> None:
    clock = Clock()
    engine = Engine(table(), store, clock=clock)

    def rule(agent: str, action: str = "EXPORT_DATA", rows: int = 0) -> str:
        return engine.evaluate(agent, action, {"rows": rows}).rule_id

    assert rule("new-1", rows=5) == "EXPORT_OK"              # 0 + 5 <= 40
    assert rule("new-1", rows=5) == "EXPORT_OK"              # 30 + 5 <= 40
    assert rule("new-1", rows=5) == "NEW_AGENT_CAP"          # 60 + 5 > 40: a strike
    assert rule("new-1", rows=0) == "NO_MORE_EXPORTS"        # one strike: no more exports
    assert rule("new-1", "READ") == "READ_OK"                # other actions still run
    assert rule("x", rows=99) == "EXPORT_OK"                 # no group: no cap
    clock.now = T0 + 6 * HOUR                                # decay takes 60 off new-1's 60
    assert engine.state("new-1").cumulative_risk == 0
    assert rule("new-1", rows=0) == "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS"   # strikes stay: 3rd
    assert rule("y", "BAD") == "BAD_ACTION"
    assert rule("y", rows=0) == "NO_MORE_EXPORTS"


def test_a_shut_down_agent_on_rows_that_read_state_is_logged_with_its_input(
        store: Store) -> None:
    """A shut-down agent's action whose rows read the agent's state is decided without them,
    and its record keeps the input as sent (it once kept the unmatched rows, which no log could
    hold: the decision failed, and the in-memory log could no longer be read)."""
    engine = Engine(table(), store, clock=Clock())
    for _ in range(3):
        engine.evaluate("y", "BAD")
    decision = engine.evaluate("y", "EXPORT_DATA", {"rows": 5})
    assert decision.rule_id == "AGENT_ALREADY_SHUT_DOWN"
    last = list(engine.audit_records())[-1]
    assert (last["agent"], last["input"]) == ("y", {"rows": 5})
    assert engine.verify_audit().ok


def test_the_state_is_read_after_decay() -> None:
    clock = Clock()
    engine = Engine(table(), MemoryStore(), clock=clock)
    assert engine.evaluate("new-2", "EXPORT_DATA", {"rows": 0}).rule_id == "EXPORT_OK"   # 30
    assert engine.evaluate("new-2", "EXPORT_DATA", {"rows": 11}).rule_id == "NEW_AGENT_CAP"
    engine.reset("new-2", operator="test")
    assert engine.evaluate("new-2", "EXPORT_DATA", {"rows": 0}).rule_id == "EXPORT_OK"   # 30
    clock.now = T0 + 2 * HOUR                                                            # 10
    decision = engine.evaluate("new-2", "EXPORT_DATA", {"rows": 30})
    assert (decision.rule_id, decision.decayed) == ("EXPORT_OK", 20)                     # 10+30


@pytest.mark.parametrize("mode", ["refuse", "ignore"])
@pytest.mark.parametrize("sent", [{"agent": {"blocked_attempts": 0, "group": "x"}},
                                  {"agent.blocked_attempts": 0}, {"agent": "new"}])
def test_input_never_stands_in_for_the_agents_state(mode: str, sent: dict[str, Any]) -> None:
    source = SOURCE.replace("  strikes 3\n", f"  strikes 3\n  undeclared_fields {mode}\n")
    engine = Engine(table(source), MemoryStore())
    assert engine.evaluate("a", "BAD", {"rows": 1}).rule_id == "BAD_ACTION"   # one strike
    decision = engine.evaluate("a", "EXPORT_DATA", {"rows": 1, **sent})
    assert decision.rule_id == ("UNDECLARED_FIELD" if mode == "refuse" else "NO_MORE_EXPORTS")
    assert decision.group == ""


def test_a_plain_policy_keeps_matching_outside_the_state_step() -> None:
    plain = Decider(table(SOURCE.replace("agent.blocked_attempts >= 1", "rows > 1000")
                          .replace('agent.group == "new" and agent.cumulative_risk + rows > 40',
                                   "rows > 2000")))
    assert not plain.policy.reads_state and "-5, (block, values)" not in plain.matcher.source
    reading = Decider(table())
    assert reading.policy.reads_state and "-5, (block, values)" in reading.matcher.source
    code, _payload, _action = reading.match("EXPORT_DATA", {"rows": 1})
    assert code < 0   # the row waits for the state


@pytest.mark.parametrize(("src", "code", "underline"), [
    ('input { agent.group: string }\naction A {\n  when agent.group == "x" allow as X\n}\n',
     "SL222", "agent.group"),
    ("input { agent: int }\naction A {\n  when agent > 1 allow as X\n}\n", "SL222", "agent"),
    ('group trusted {\n  agents "a"\n}\naction A {\n  when agent.group == "trustd" allow as X\n}\n',
     "SL133", '"trustd"'),
    ('action A {\n  when agent.group in {"x"} allow as X\n}\n', "SL133", '"x"'),
    ("action A {\n  when agent.cumulative_risks > 1 allow as X\n}\n", "SL101",
     "agent.cumulative_risks"),
    ('action A {\n  when agent.blocked_attempts == "1" allow as X\n}\n', "SL201", None),
    ("action A {\n  when agent.group allow as X\n}\n", "SL204", "agent.group"),
])
def test_the_checker_says_what_is_wrong_with_agent_state(src: str, code: str,
                                                        underline: str | None) -> None:
    found = assert_diagnostic('policy p version "1" {}\n' + src + "otherwise allow as O\n",
                              code, underline=underline)
    if code == "SL133" and "trustd" in src:
        assert found.help == "did you mean `trusted`?"
    if code == "SL101":
        assert found.help == "did you mean `agent.cumulative_risk`?"


def test_agent_group_may_be_compared_with_no_group() -> None:
    compile_ok('policy p version "1" {}\naction A {\n  when agent.group == "" allow as X\n}\n'
               "otherwise allow as O\n")


# -- concurrency: decisions made at once equal a serial replay in the log's order -------------
LAW_SOURCE = """policy law version "1" {
  risk_threshold 1000
  strikes 1000
}

input {
  step: int
}

action ACT {
  when agent.cumulative_risk >= 90 block as FULL
  when agent.cumulative_risk >= 40 allow risk 7 as HALF
  allow risk 13 as LOW
}
"""


def run_concurrently(engine: Engine, plan: list[list[str]]) -> None:
    barrier = threading.Barrier(len(plan))

    def worker(agents: list[str]) -> None:
        barrier.wait()
        for index, agent in enumerate(agents):
            engine.evaluate(agent, "ACT", {"step": index})

    threads = [threading.Thread(target=worker, args=(agents,)) for agents in plan]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def assert_serial_replay_agrees(engine: Engine) -> None:
    """Replaying the audit log's decisions one by one, in seq order, on a fresh decider gives
    the same rule and state for each (the tests reset every agent at once)."""
    decider = Decider(engine.policy)
    states: dict[str, Any] = {}
    records = list(engine.audit_records())
    assert any(r["kind"] == "decision" for r in records)
    for record in records:
        if record["kind"] == "reset":
            states = {}
        if record["kind"] != "decision":
            continue
        agent = record["agent"]
        decision, states[agent] = decider.decide(record["action"], record["input"],
                                                 states.get(agent, (0, 0, False)), agent_id=agent)
        kept = record["decision"]
        assert (decision.rule_id, decision.cumulative_risk, decision.blocked_attempts) == (
            kept["rule_id"], kept["cumulative_risk"], kept["blocked_attempts"]), record


PLANS = st.lists(st.lists(st.sampled_from(["a", "b"]), min_size=3, max_size=12),
                 min_size=2, max_size=4)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PLANS)
def test_law_concurrent_decisions_equal_a_serial_replay_in_memory(plan: list[list[str]]) -> None:
    engine = Engine(table(LAW_SOURCE), MemoryStore())
    run_concurrently(engine, plan)
    assert_serial_replay_agrees(engine)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_law_concurrent_decisions_equal_a_serial_replay_in_durable_stores(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    target = store_target(kind, request, tmp_path)

    @settings(max_examples=6, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(PLANS)
    def law(plan: list[list[str]]) -> None:
        store = store_factory(kind, target)()
        engine = Engine(table(LAW_SOURCE), store)
        try:
            engine.reset(operator="test")   # the same database for every example
            run_concurrently(engine, plan)
            assert_serial_replay_agrees(engine)
            last = [r for r in engine.audit_records() if r["kind"] == "reset"][-1]["seq"]
            assert sum(r["kind"] == "decision" and r["seq"] > last
                       for r in engine.audit_records()) == sum(len(agents) for agents in plan)
        finally:
            engine.close()

    law()


def test_the_documented_example_decides_as_the_docs_say() -> None:
    """docs/language.md, "Agent state in conditions": the example and the walk under it."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "language.md").read_text("utf-8")
    section = text[text.index("### Agent state in conditions"):]
    source = section.split("```sentra\n")[1].split("```")[0]
    clock = Clock()
    engine = Engine(table(source), MemoryStore(), clock=clock)
    rules = [engine.evaluate("new-1", "EXPORT_DATA", {"rows": 10}).rule_id for _ in range(4)]
    assert rules == ["EXPORT_OK", "EXPORT_OK", "NEW_AGENT_CAP", "NO_MORE_EXPORTS"]
    clock.now = T0 + 24 * HOUR
    assert tuple(engine.state("new-1"))[:2] == (0, 2)          # decay never lowers strikes
    assert engine.evaluate("new-1", "EXPORT_DATA", {"rows": 0}).rule_id == \
        "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS"                  # a third block: shut down
    engine.reset("new-1", operator="ops")
    assert engine.evaluate("new-1", "EXPORT_DATA", {"rows": 0}).rule_id == "EXPORT_OK"


def test_explain_seeds_the_state_the_conditions_read(tmp_path: Path) -> None:
    """`explain --agent ID --state RISK,STRIKES` replays a witness's `agent` part."""
    import io
    from contextlib import redirect_stdout

    from sentra_lang.cli import main

    policy = tmp_path / "p.sentra"
    policy.write_text(SOURCE, encoding="utf-8")
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["explain", str(policy), "EXPORT_DATA", "--agent", "new-", "--state", "41,0",
                     "--field", "rows=0"])
    text = out.getvalue()
    assert code == 0, text
    assert "Blocked (NEW_AGENT_CAP)" in text and "group: new" in text
    assert "`agent.blocked_attempts >= 1` is false, got 0" in text   # the seeded state
