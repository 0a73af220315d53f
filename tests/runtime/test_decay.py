"""Risk decay (docs/language.md, "Risk decay"): known answers written from the documented rule,
a law against a reference oracle, and the anchor kept durably in every store, recorded in the
audit log and checked by verification."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sentra_runtime import AgentState, Decider, Engine, MemoryStore, SQLiteStore, Store
from sentra_runtime.audit import timestamp

from tests.runtime.helpers import T0, Clock, compiled_table

HOUR = 3600.0

SOURCE = """policy decaying version "1" {
  risk_threshold 100
  strikes 1000
  risk_decay 10 per 1h
}

action A {
  allow risk 60 as A_OK "A allowed."
}

action B {
  allow risk 35 as B_OK "B allowed."
}

action C {
  allow as C_OK "C allowed."
}

otherwise block as UNKNOWN "Not covered."
"""


def table(source: str = SOURCE) -> dict[str, Any]:
    return compiled_table(source)




def decided(decision: Any) -> tuple[str, int, int]:
    return decision.label, decision.cumulative_risk, decision.decayed


def test_the_table_says_the_setting_and_is_version_3() -> None:
    compiled = table()
    assert compiled["schema_version"] == 3
    assert compiled["settings"]["risk_decay"] == {"amount": 10, "period": 3600}


def test_a_policy_without_decay_keeps_table_version_2_and_no_setting() -> None:
    plain = table(SOURCE.replace("  risk_decay 10 per 1h\n", ""))
    assert plain["schema_version"] == 2 and "risk_decay" not in plain["settings"]


def test_known_answers(store: Store) -> None:
    """10 per 1h from the anchor: the decision that raised the risk from 0."""
    clock = Clock()
    engine = Engine(table(), store, clock=clock)
    assert decided(engine.evaluate("a", "A")) == ("Allowed", 60, 0)          # anchor T0
    clock.now = T0 + HOUR - 1
    assert engine.state("a") == AgentState(60, 0, "active")                 # no whole hour
    clock.now = T0 + HOUR
    assert engine.state("a") == AgentState(50, 0, "active")
    clock.now = T0 + 1.5 * HOUR                                              # 50 + 60 > 100
    assert decided(engine.evaluate("a", "A")) == ("Blocked", 50, 10)        # anchor T0 + 1h
    clock.now = T0 + 2 * HOUR                                                # remainder kept
    assert decided(engine.evaluate("a", "B")) == ("Allowed", 75, 10)        # 40 + 35
    clock.now = T0 + 9.5 * HOUR                                              # 7 hours: 70 off
    assert decided(engine.evaluate("a", "C")) == ("Allowed", 5, 70)
    clock.now = T0 + 100 * HOUR                                              # never below 0
    assert decided(engine.evaluate("a", "C")) == ("Allowed", 0, 5)
    clock.now = T0 + 100.5 * HOUR                                            # new anchor here
    assert decided(engine.evaluate("a", "B")) == ("Allowed", 35, 0)
    clock.now = T0 + 101.4 * HOUR
    assert engine.state("a").cumulative_risk == 35
    clock.now = T0 + 101.5 * HOUR
    assert engine.state("a").cumulative_risk == 25
    result = engine.verify_audit()
    assert result.ok, str(result)


def test_reading_the_state_writes_nothing(store: Store) -> None:
    clock = Clock()
    engine = Engine(table(), store, clock=clock)
    engine.evaluate("a", "A")
    before = store.raw_state("a")
    clock.now += 5 * HOUR
    assert engine.state("a").cumulative_risk == 10
    assert store.raw_state("a") == before == (60, 0, False, round(T0 * 1e6))


def test_the_audit_record_keeps_decayed_and_the_anchor(store: Store) -> None:
    clock = Clock()
    engine = Engine(table(), store, clock=clock)
    engine.evaluate("a", "A")
    clock.now += 2.25 * HOUR
    decision = engine.evaluate("a", "C")
    record = store.read_records(after_seq=decision.seq - 1, limit=1)[0]
    assert record["time"] == timestamp(T0 + 2.25 * HOUR)
    assert {key: record["decision"][key] for key in ("cumulative_risk", "decayed",
                                                     "decay_anchor")} == {
        "cumulative_risk": 40, "decayed": 20, "decay_anchor": timestamp(T0 + 2 * HOUR)}
    assert "risk decay took off 20 (60 to 40)" in record["explanation"]
    assert decision.to_dict()["decayed"] == 20
    assert "risk decay (10 per 1h): 20 taken off since the last decision, from 60 to 40" in \
        decision.explanation.steps
    clock.now += 10 * HOUR
    engine.evaluate("a", "C")   # decays to 0: no anchor
    assert list(engine.audit_records())[-1]["decision"]["decay_anchor"] is None
    assert engine.verify_audit().ok


def test_a_reset_clears_the_anchor(store: Store) -> None:
    clock = Clock()
    engine = Engine(table(), store, clock=clock)
    engine.evaluate("a", "A")
    engine.reset("a", operator="ops")
    assert store.raw_state("a") == (0, 0, False)
    clock.now += 0.5 * HOUR
    engine.evaluate("a", "B")      # a new anchor: T0 + 30m
    clock.now += HOUR
    assert engine.state("a").cumulative_risk == 25
    engine.reset(None, operator="ops")
    assert store.raw_state("a") == (0, 0, False)
    assert engine.verify_audit().ok


def test_a_plain_policy_on_a_store_with_anchors_drops_them(store: Store) -> None:
    clock = Clock()
    Engine(table(), store, clock=clock).evaluate("a", "A")
    plain = Engine(table(SOURCE.replace("  risk_decay 10 per 1h\n", "")), store, clock=clock)
    clock.now += 5 * HOUR
    assert decided(plain.evaluate("a", "B")) == ("Allowed", 95, 0)   # no decay: 60 + 35
    assert store.raw_state("a") == (95, 0, False)
    assert "decayed" not in list(plain.audit_records())[-1]["decision"]
    assert plain.verify_audit().ok


def test_a_clock_that_goes_back_decays_nothing(store: Store) -> None:
    clock = Clock()
    engine = Engine(table(), store, clock=clock)
    engine.evaluate("a", "A")
    clock.now -= 3 * HOUR
    assert decided(engine.evaluate("a", "C")) == ("Allowed", 60, 0)
    assert engine.verify_audit().ok


def test_the_anchor_survives_reopening_the_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    clock = Clock()
    Engine(table(), SQLiteStore(path), clock=clock).evaluate("a", "A")
    clock.now += 3 * HOUR
    reopened = Engine(table(), SQLiteStore(path), clock=clock)
    assert reopened.state("a") == AgentState(30, 0, "active")
    assert decided(reopened.evaluate("a", "C")) == ("Allowed", 30, 30)


def test_an_edited_anchor_is_found_by_verification(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    clock = Clock()
    engine = Engine(table(), SQLiteStore(path), clock=clock)
    engine.evaluate("a", "A")
    assert engine.verify_audit().ok
    with sqlite3.connect(path) as connection:   # an older anchor would decay the risk sooner
        connection.execute("UPDATE agents SET decay_anchor = decay_anchor - 86400000000")
    result = engine.verify_audit()
    assert not result.ok and "edited state" in result.problem and "decay anchor" in \
        result.problem, str(result)


def test_the_export_carries_the_anchor_and_verifies(tmp_path: Path) -> None:
    from sentra_runtime.audit import read_jsonl, verify_export

    clock = Clock()
    engine = Engine(table(), MemoryStore(), clock=clock)
    engine.evaluate("a", "A")
    out = tmp_path / "audit.jsonl"
    with out.open("w", encoding="utf-8") as file:
        engine.export_audit(file)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line for line in lines if line["kind"] == "state"][0]["decay_anchor"] == \
        timestamp(T0)
    assert verify_export(read_jsonl(out)).ok
    edited = out.read_text().replace(f'"decay_anchor":"{timestamp(T0)}","kind":"state"',
                                     '"decay_anchor":"2000-01-01T00:00:00.000000Z",'
                                     '"kind":"state"')
    assert edited != out.read_text()
    out.write_text(edited)
    assert not verify_export(read_jsonl(out)).ok


def test_the_pure_decider_takes_now() -> None:
    decider = Decider(table())
    decision, state = decider.decide("A", {}, now=T0)
    assert state == (60, 0, False, round(T0 * 1e6))
    decision, state = decider.decide("C", {}, state, now=T0 + 4 * HOUR)
    assert (decision.decayed, state) == (40, (20, 0, False, round((T0 + 4 * HOUR) * 1e6)))


# ---------------------------------------------------------------------------- the law

RISKS = {"A": 60, "B": 35, "C": 0}


def oracle(events: list[tuple[int, str]], amount: int, period_us: int,
           threshold: int = 100) -> list[tuple[bool, int, int]]:
    """The documented rule, literally, on whole microseconds: at each decision, k = floor((now
    - anchor) / D); risk -= k * N (min 0); anchor += k * D; anchor = now when the risk is 0;
    then the action's risk is applied when it keeps the risk within the threshold."""
    risk, anchor, now = 0, 0, T0_US
    out = []
    for step, action in events:
        now += step
        taken = 0
        if risk == 0:
            anchor = now
        else:
            periods = max((now - anchor) // period_us, 0)
            taken = min(periods * amount, risk)
            risk -= taken
            anchor += periods * period_us
            if risk == 0:
                anchor = now
        allowed = risk + RISKS[action] <= threshold
        if allowed:
            risk += RISKS[action]
        out.append((allowed, risk, taken))
    return out


T0_US = round(T0 * 1e6)


@settings(max_examples=150, deadline=None)
@given(amount=st.integers(1, 40), period_s=st.integers(1, 7200),
       events=st.lists(st.tuples(st.integers(0, 30_000_000_000), st.sampled_from("ABC")),
                       min_size=1, max_size=25))
def test_decay_equals_the_reference_oracle(amount: int, period_s: int,
                                           events: list[tuple[int, str]]) -> None:
    source = SOURCE.replace("risk_decay 10 per 1h", f"risk_decay {amount} per {period_s}s")
    now = [T0_US]
    engine = Engine(table(source), MemoryStore(audit=False), clock=lambda: now[0] / 1e6)
    got = []
    for step, action in events:
        now[0] += step
        decision = engine.evaluate("a", action)
        got.append((decision.allowed, decision.cumulative_risk, decision.decayed))
    assert got == oracle(events, amount, period_s * 1_000_000)


def test_the_documented_example() -> None:
    """docs/language.md, "Risk decay": its policy and its timeline, replayed."""
    text = Path(__file__).resolve().parents[2].joinpath("docs", "language.md").read_text()
    source = text.split("```sentra\npolicy exports")[1].split("```")[0]
    nine = 1_700_038_800.0   # 2023-11-15T09:00:00Z
    clock = Clock(nine)
    engine = Engine(table("policy exports" + source), clock=clock)
    assert decided(engine.evaluate("a", "EXPORT_DATA")) == ("Allowed", 60, 0)
    clock.now = nine + 59 * 60
    assert engine.state("a").cumulative_risk == 60
    clock.now = nine + 2.5 * HOUR
    assert engine.state("a").cumulative_risk == 40
    assert decided(engine.evaluate("a", "EXPORT_DATA")) == ("Allowed", 100, 20)
    clock.now = nine + 12 * HOUR
    assert engine.state("a").cumulative_risk == 0
    assert timestamp(nine) == "2023-11-15T09:00:00.000000Z"


@pytest.mark.parametrize("anchor", ["'yesterday'", "x'00'", "1.5e300"])
def test_a_stored_anchor_edited_into_garbage_is_found_not_a_crash(tmp_path: Path,
                                                                  anchor: str) -> None:
    path = tmp_path / "s.db"
    engine = Engine(table(), SQLiteStore(path), clock=Clock())
    engine.evaluate("a", "A")
    with sqlite3.connect(path) as connection:
        connection.execute(f"UPDATE agents SET decay_anchor = {anchor}")
    result = engine.verify_audit()
    assert not result.ok and "edited state" in result.problem, str(result)


def test_an_export_of_a_garbage_anchor_does_not_verify(tmp_path: Path) -> None:
    from sentra_runtime.audit import read_jsonl, verify_export

    path = tmp_path / "s.db"
    engine = Engine(table(), SQLiteStore(path), clock=Clock())
    engine.evaluate("a", "A")
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE agents SET decay_anchor = 1.5e300")
    out = tmp_path / "audit.jsonl"
    with out.open("w", encoding="utf-8") as file:
        engine.export_audit(file)
    assert not verify_export(read_jsonl(out)).ok


def test_the_decayed_state_keeps_the_windows_and_the_assignment() -> None:
    decider = Decider(table(SOURCE.replace("action C {", "group ops {\n  agents \"ops-*\"\n}\n\n"
                                           "action C {\n  limit 3 per 1h")))
    _, state = decider.decide("A", agent_id="a", now=T0)
    _, state = decider.decide("C", state=state, agent_id="a", now=T0 + 60)
    assigned = (*state, "ops")
    later = decider.decayed_state(assigned, T0 + 2 * HOUR + 60, "a")
    assert later == (40, 0, False, round(T0 * 1e6) + round(2 * HOUR * 1e6),
                     {"action C per 3600": (round((T0 + 60) * 1e6),)}, "ops")
    assert decider.decayed_state(state, T0 + 7 * HOUR, "a") == (
        0, 0, False, None, {"action C per 3600": (round((T0 + 60) * 1e6),)})
    assert decider.decayed_state(state[:4], T0 + 7 * HOUR, "a") == (0, 0, False)
