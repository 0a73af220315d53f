"""An adversarial probe of agent groups, rate limits, risk decay and arithmetic (issue 15, items
2-5), written from the docs alone.

Every case is a claim of docs/language.md ("Risk decay", "Agent groups", "Agent state in
conditions", "Rate limits", "Arithmetic"), docs/runtime.md ("Rate-limit windows", "Time"),
docs/testing.md ("Replay") or docs/cli.md, checked through the real parts: the engine on a real
SQLite file, the real `sentra-lang` CLI in a process of its own. The expected answers are the
docs' own examples, computed by hand, never read from the code.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import FRESH, Decider, Engine, SQLiteStore

from tests.edges.probe_helpers import GROUPS, cli, replay_round_trip
from tests.runtime.helpers import T0, Clock, compiled_table

# docs/language.md, "Risk decay"
EXPORTS = """policy exports version "1" {
  risk_threshold 100
  risk_decay 10 per 1h     # 10 off for every whole hour, never below 0
}

action EXPORT_DATA {
  allow risk 60 as EXPORT_OK "Export allowed."
}

otherwise block as UNKNOWN "Not covered."
"""


# docs/language.md, "Agent state in conditions"
STATEFUL = """policy exports version "1" {
  risk_threshold 100
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

otherwise block as UNKNOWN "Not covered."
"""

# docs/language.md, "Rate limits"
LIMITS = """policy refunds version "1" {
  risk_threshold 100
  strikes 3
}

group trusted {
  agents "ops-*"
  limit 100 per 1h                 # every action of each agent in the group
  limit ISSUE_REFUND 20 per 1h     # this action, for each agent in the group
}

input {
  amount: int
}

action ISSUE_REFUND, REFUND_PART {
  limit 10 per 1d                  # the block's actions, counted together
  when amount > 1000 block as REFUND_TOO_LARGE "Refund of {amount} is too large."
  allow risk 5 as REFUND_OK limit 5 per 1h "Refund of {amount} issued."
}

otherwise block as UNKNOWN "Not covered."
"""

# docs/language.md, "Arithmetic"
ARITHMETIC = """policy refunds version "1" {}

input {
  amount: number
  items: int
  context.order_total: number
  context.refunded_so_far: number = 0
}

action REFUND {
  when amount > context.order_total * 0.5 block as OVER_HALF "A refund of {amount} is over half the order."
  when amount + context.refunded_so_far > context.order_total block as OVER_TOTAL
  when items > 0 and amount / items > 200 block as PER_ITEM_HIGH
  when -amount >= 0 block as NOT_POSITIVE
  when items * 2 + 1 > 21 allow risk 10 as MANY_ITEMS
  when amount > 100 * 2 allow risk 5 as LARGE
  allow as SMALL
}

otherwise block as OTHER
"""

PAY_ONE_PER_HOUR = """policy p version "1" {
  risk_threshold 100
}

input {
  amount: int
}

action PAY {
  allow risk 1 as PAY_OK limit 1 per 1h "ok"
}

otherwise block as UNKNOWN "no"
"""


def at(hour: int, minute: int = 0, second: float = 0.0) -> float:
    """A time on 2024-01-01 (UTC), in seconds since the epoch."""
    moment = dt.datetime(2024, 1, 1, hour, minute, tzinfo=dt.UTC)
    return moment.timestamp() + second


def sqlite_engine(path: Path, source: str, clock: Clock) -> Engine:
    return Engine(compiled_table(source), SQLiteStore(path), clock=clock)


def step(engine: Engine, agent: str, action: str, fields: dict[str, Any] | None = None
         ) -> tuple[str, str, int, int]:
    decision = engine.evaluate(agent, action, fields or {})
    return decision.label, decision.rule_id, decision.cumulative_risk, decision.blocked_attempts


def risk(engine: Engine, agent: str) -> int:
    return engine.state(agent).cumulative_risk


# --- risk decay -----------------------------------------------------------------------------

def test_the_decay_example_of_the_docs(tmp_path: Path) -> None:
    clock = Clock(at(9))
    engine = sqlite_engine(tmp_path / "d.db", EXPORTS, clock)
    assert step(engine, "a", "EXPORT_DATA") == ("Allowed", "EXPORT_OK", 60, 0)
    clock.now = at(9, 59)
    assert risk(engine, "a") == 60
    clock.now = at(11, 30)
    assert risk(engine, "a") == 40                                   # two hours off
    decision = engine.evaluate("a", "EXPORT_DATA", {})
    assert (decision.label, decision.cumulative_risk, decision.to_dict()["decayed"]) == \
        ("Allowed", 100, 20)
    clock.now = at(20, 59, 59.999999)                                # anchor 11:00: 9 periods
    assert risk(engine, "a") == 10
    clock.now = at(21)
    assert risk(engine, "a") == 0
    assert engine.verify_audit().ok


def test_a_clock_that_goes_back_decays_nothing(tmp_path: Path) -> None:
    clock = Clock(at(9))
    engine = sqlite_engine(tmp_path / "d.db", EXPORTS, clock)
    step(engine, "a", "EXPORT_DATA")
    clock.now = at(3)
    assert risk(engine, "a") == 60
    decision = engine.evaluate("a", "EXPORT_DATA", {})
    assert (decision.rule_id, decision.to_dict()["decayed"]) == ("RISK_THRESHOLD_EXCEEDED", 0)
    clock.now = at(10)                                               # one period after 09:00
    assert risk(engine, "a") == 50
    assert engine.verify_audit().ok


# --- groups and agent state -----------------------------------------------------------------

def test_the_groups_example_of_the_docs(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "g.db", GROUPS, Clock())
    small, large = {"amount": 1}, {"amount": 5000}
    assert [step(engine, "ops-7", "ISSUE_REFUND", small)[0] for _ in range(4)] == \
        ["Allowed"] * 3 + ["Blocked"]                                # 180 of 200
    labels = [step(engine, "ops-7", "ISSUE_REFUND", large)[0] for _ in range(4)]
    assert labels == ["Blocked"] * 3 + ["Agent Shut Down"]           # the fifth block
    assert step(engine, "new-1", "ISSUE_REFUND", large)[0] == "Agent Shut Down"
    assert [step(engine, "ops-70", "ISSUE_REFUND", small)[0] for _ in range(2)] == \
        ["Allowed", "Blocked"]                                       # 60 of 100
    assert engine.group("senior-")[0] == "trusted"
    assert engine.group("ops-70") == ("", None)
    assert engine.evaluate("ops-70", "ISSUE_REFUND", small).to_dict()["group"] == ""


def test_a_group_an_agent_names_in_its_input_is_never_read(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "g.db", GROUPS, Clock())
    decision = engine.evaluate("x-1", "ISSUE_REFUND", {"amount": 1, "group": "trusted"})
    assert (decision.rule_id, decision.to_dict()["group"]) == ("UNDECLARED_FIELD", "")


def test_the_agent_state_example_of_the_docs(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "s.db", STATEFUL, Clock())
    rows = {"rows": 10}
    assert step(engine, "new-1", "EXPORT_DATA", rows) == ("Allowed", "EXPORT_OK", 30, 0)
    assert step(engine, "new-1", "EXPORT_DATA", rows) == ("Allowed", "EXPORT_OK", 60, 0)
    assert step(engine, "new-1", "EXPORT_DATA", rows) == ("Blocked", "NEW_AGENT_CAP", 60, 1)
    assert step(engine, "new-1", "EXPORT_DATA", rows) == ("Blocked", "NO_MORE_EXPORTS", 60, 2)
    assert step(engine, "new-1", "EXPORT_DATA", rows)[0] == "Agent Shut Down"
    forged = engine.evaluate("new-2", "EXPORT_DATA",
                             {"rows": 1, "agent": {"blocked_attempts": 0}})
    assert forged.rule_id == "UNDECLARED_FIELD"


# --- rate limits ----------------------------------------------------------------------------

def test_the_sliding_window_example_to_the_microsecond(tmp_path: Path) -> None:
    clock = Clock(at(10))
    engine = sqlite_engine(tmp_path / "l.db", LIMITS, clock)
    refund = {"amount": 1}
    for minute in range(5):
        clock.now = at(10, minute)
        assert step(engine, "a", "ISSUE_REFUND", refund)[0] == "Allowed"
    clock.now = at(10, 30)
    decision = engine.evaluate("a", "ISSUE_REFUND", refund)
    assert (decision.rule_id, decision.reason, decision.threat) == (
        "RATE_LIMIT_EXCEEDED",
        "Rate limit reached: 5 per 1h for `REFUND_OK`. Action blocked before execution.",
        "Rate Limit Exceeded")
    assert decision.to_dict()["limit"] == {"limit": "5 per 1h", "for": "`REFUND_OK`",
                                           "count": 5}
    clock.now = at(10, 59, 59.999999)
    assert step(engine, "a", "ISSUE_REFUND", refund)[:2] == ("Blocked", "RATE_LIMIT_EXCEEDED")
    clock.now = at(11)
    assert step(engine, "a", "ISSUE_REFUND", refund) == ("Allowed", "REFUND_OK", 30, 2)
    assert engine.limits("a") == [
        {"limit": "5 per 1h", "for": "`REFUND_OK`", "count": 5},
        {"limit": "10 per 1d", "for": "`ISSUE_REFUND`, `REFUND_PART`", "count": 6}]


def test_limit_blocks_are_strikes_and_the_third_shuts_down(tmp_path: Path) -> None:
    clock = Clock(at(12))
    engine = sqlite_engine(tmp_path / "l.db", LIMITS, clock)
    labels = []
    for minute in range(8):
        clock.now = at(12, minute)
        labels.append(step(engine, "ops-1", "REFUND_PART", {"amount": 1})[0])
    assert labels == ["Allowed"] * 5 + ["Blocked"] * 2 + ["Agent Shut Down"]
    counts = {entry["for"]: entry["count"] for entry in engine.limits("ops-1")}
    assert counts == {"`REFUND_OK`": 5, "`ISSUE_REFUND`, `REFUND_PART`": 5,
                      "all actions in group `trusted`": 5,
                      "`ISSUE_REFUND` in group `trusted`": 0}   # REFUND_PART is not counted there


def test_a_time_kept_after_now_still_counts_when_the_clock_goes_back(tmp_path: Path) -> None:
    clock = Clock(at(10))
    engine = sqlite_engine(tmp_path / "l.db", PAY_ONE_PER_HOUR, clock)
    assert step(engine, "a", "PAY", {"amount": 1})[0] == "Allowed"
    clock.now = at(6)                                                # four hours back
    assert step(engine, "a", "PAY", {"amount": 1})[1] == "RATE_LIMIT_EXCEEDED"
    clock.now = at(11)
    assert step(engine, "a", "PAY", {"amount": 1})[0] == "Allowed"


def test_a_reset_clears_the_windows(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "l.db", PAY_ONE_PER_HOUR, Clock())
    step(engine, "a", "PAY", {"amount": 1})
    engine.reset("a", operator="alice")
    assert engine.limits("a") == [{"limit": "1 per 1h", "for": "`PAY_OK`", "count": 0}]
    assert step(engine, "a", "PAY", {"amount": 1})[0] == "Allowed"


# --- arithmetic -----------------------------------------------------------------------------

def decide(source: str, fields: dict[str, Any]) -> tuple[str, str, str]:
    decision, _ = Decider(compiled_table(source)).decide("REFUND", fields, FRESH, agent_id="a",
                                                         now=T0)
    return decision.label, decision.rule_id, decision.reason


def order(amount: Any, items: Any, total: Any = 100, **context: Any) -> dict[str, Any]:
    return {"amount": amount, "items": items, "context": {"order_total": total, **context}}


@pytest.mark.parametrize("fields, rule", [
    (order(10, 0), "SMALL"),                        # the guard holds items 0
    (order(10, 11), "MANY_ITEMS"),                  # 23 > 21
    (order(10, 10), "SMALL"),                       # 21 is not > 21
    (order(51, 1), "OVER_HALF"),
    (order(201, 2, 1000), "LARGE"),
    (order(2001, 10, 5000), "PER_ITEM_HIGH"),
    (order(0, 1), "NOT_POSITIVE"),
    (order(-0.0, 1), "NOT_POSITIVE"),
    (order(8e307, 1, 1.7e308, refunded_so_far=1.7e308), "ARITHMETIC_ERROR"),   # overflow
    (order(10.5, 10 ** 400), "ARITHMETIC_ERROR"),   # an int too large to become a number
])
def test_the_arithmetic_example_of_the_docs(fields: dict[str, Any], rule: str) -> None:
    assert decide(ARITHMETIC, fields)[1] == rule


def test_division_by_zero_is_blocked_in_either_order_of_the_guard() -> None:
    swapped = ARITHMETIC.replace("items > 0 and amount / items > 200",
                                 "amount / items > 200 and items > 0")
    assert decide(swapped, order(10, 0))[1] == "SMALL"
    unguarded = ARITHMETIC.replace("items > 0 and amount / items > 200",
                                   "amount / items > 200")
    assert decide(unguarded, order(10, 0)) == (
        "Blocked", "ARITHMETIC_ERROR", "Rule `PER_ITEM_HIGH`: `amount / items` divides by zero.")


def test_a_number_field_decides_alike_whether_sent_as_10_or_10_0() -> None:
    # docs/language.md, "Arithmetic": `amount` is a `number`; an int meeting a number becomes a
    # number first, and an int too large to become one makes the comparison undetermined
    assert decide(ARITHMETIC, order(10, 10 ** 400))[1] == \
        decide(ARITHMETIC, order(10.0, 10 ** 400))[1] == "ARITHMETIC_ERROR"


# --- replay and its suite -------------------------------------------------------------------

@pytest.mark.parametrize("offsets", [
    (0.6, 3600.2),                     # 59m59.6s apart: blocked, though whole seconds say 1h
    (0.2, 3600.1, 7200.3),
])
def test_replay_suite_of_sub_second_times_at_a_window_edge_passes(
        tmp_path: Path, offsets: tuple[float, ...]) -> None:
    clock = Clock()
    engine = sqlite_engine(tmp_path / "r.db", PAY_ONE_PER_HOUR, clock)
    for offset in offsets:
        clock.now = T0 + offset
        engine.evaluate("a", "PAY", {"amount": 1})
    engine.store.close()
    replay_round_trip(tmp_path, PAY_ONE_PER_HOUR, tmp_path / "r.db")


def test_replay_suite_of_a_clock_that_went_back_passes(tmp_path: Path) -> None:
    clock = Clock(T0 + 7200)
    engine = sqlite_engine(tmp_path / "r.db", EXPORTS, clock)
    engine.evaluate("z", "EXPORT_DATA", {})
    clock.now = T0                                   # back two hours: a's anchor is T0
    engine.evaluate("a", "EXPORT_DATA", {})
    clock.now = T0 + 7200                            # two periods off a's risk
    assert engine.evaluate("a", "EXPORT_DATA", {}).to_dict()["decayed"] == 20
    engine.store.close()
    replay_round_trip(tmp_path, EXPORTS, tmp_path / "r.db")


def test_replay_suite_of_groups_limits_and_decay_passes(tmp_path: Path) -> None:
    source = GROUPS.replace('  allow risk 60 as REFUND_OK "Refund of {amount} issued."',
                            '  allow risk 60 as REFUND_OK limit 2 per 30m "Refund issued."')
    clock = Clock(T0 + 0.25)
    engine = sqlite_engine(tmp_path / "r.db", source, clock)
    engine.assign_group("x-1", "trusted", operator="alice")
    for index in range(12):
        for agent in ("x-1", "ops-7", "new-3", "y"):
            engine.evaluate(agent, "ISSUE_REFUND", {"amount": 1 if index % 5 else 5000})
        clock.now += 900.37 * (index % 3)
    engine.reset("ops-7", operator="bob")
    engine.evaluate("ops-7", "ISSUE_REFUND", {"amount": 1})
    engine.store.close()
    replay_round_trip(tmp_path, source, tmp_path / "r.db")


HOSTILE = "X\x1b[31mRED\x1b]0;title\x07\u202e\nseq 9: forged"


def test_replay_escapes_a_hostile_action_and_agent_id(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "h.db", PAY_ONE_PER_HOUR, Clock())
    engine.evaluate("ag\x1b[2Jent", HOSTILE, {"amount": 1})
    engine.store.close()
    new = tmp_path / "new.sentra"
    new.write_text(PAY_ONE_PER_HOUR.replace("as UNKNOWN", "as OTHER"), "utf-8")
    replayed = cli("replay", str(tmp_path / "h.db"), "--policy", str(new))
    assert replayed.returncode == 1, replayed.stderr
    assert "\x1b" not in replayed.stdout and "\u202e" not in replayed.stdout
    assert "\nseq 9" not in replayed.stdout, replayed.stdout


def test_audit_verify_escapes_a_hostile_agent_id(tmp_path: Path) -> None:
    import sqlite3

    engine = sqlite_engine(tmp_path / "h.db", PAY_ONE_PER_HOUR, Clock())
    engine.evaluate("a\x1b[2J\nok: forged", "OTHER", {"amount": 1})      # a strike
    engine.store.close()
    with sqlite3.connect(tmp_path / "h.db") as connection:
        connection.execute("UPDATE agents SET blocked_attempts = 0")
    verified = cli("audit", "verify", str(tmp_path / "h.db"))
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert "edited state" in verified.stdout
    assert "\x1b" not in verified.stdout and verified.stdout.count("\n") == 1, verified.stdout


def test_a_suite_may_expect_the_strikes_of_a_group_above_the_headers(tmp_path: Path) -> None:
    # docs/language.md, "Agent groups": `ops-7` (strikes 5) is shut down at its fifth block
    (tmp_path / "refunds.sentra").write_text(GROUPS, "utf-8")
    steps = "\n".join(
        f'  agent "ops-7" ISSUE_REFUND {{ amount: 5000 }} -> blocked rule REFUND_TOO_LARGE '
        f"strikes {strikes}" for strikes in range(1, 5))
    (tmp_path / "groups.sentra-test").write_text(
        'suite "groups" for "refunds.sentra"\n\nscenario "a trusted agent\'s strikes" {\n'
        f"{steps}\n"
        '  agent "ops-7" ISSUE_REFUND { amount: 5000 } -> shutdown strikes 5 status shut_down\n'
        '  state "ops-7" -> strikes 5 status shut_down\n}\n', "utf-8")
    tested = cli("test", str(tmp_path / "groups.sentra-test"))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_replay_suite_of_a_clock_that_jumped_a_century_ahead_passes(tmp_path: Path) -> None:
    clock = Clock()
    engine = sqlite_engine(tmp_path / "r.db", EXPORTS, clock)
    engine.evaluate("a", "EXPORT_DATA", {})
    clock.now += 40_000 * 86_400                     # more than the longest duration, 36500d
    engine.evaluate("a", "EXPORT_DATA", {})
    engine.store.close()
    replay_round_trip(tmp_path, EXPORTS, tmp_path / "r.db")


def test_an_export_with_assignments_decay_and_limits_verifies_and_replays(tmp_path: Path) -> None:
    source = STATEFUL.replace('  allow risk 30 as EXPORT_OK "Export allowed."',
                              '  allow risk 30 as EXPORT_OK limit 2 per 1h "Export allowed."')
    clock = Clock(T0 + 0.5)
    engine = sqlite_engine(tmp_path / "r.db", source, clock)
    engine.assign_group("old-1", "new", operator="alice")
    for _ in range(6):
        for agent in ("old-1", "new-1", "x"):
            engine.evaluate(agent, "EXPORT_DATA", {"rows": 5})
        clock.now += 1799.9
    engine.assign_group("old-1", None, operator="bob")
    engine.evaluate("old-1", "EXPORT_DATA", {"rows": 5})
    engine.store.close()
    export = tmp_path / "log.jsonl"
    exported = cli("audit", "export", str(tmp_path / "r.db"), "-o", str(export))
    assert exported.returncode == 0, exported.stderr
    verified = cli("audit", "verify", str(export))
    assert verified.returncode == 0 and "ends at the stored head" in verified.stdout, verified
    replay_round_trip(tmp_path, source, export)


def test_assignments_racing_decisions_on_one_file(tmp_path: Path) -> None:
    """docs/runtime.md: an assignment is kept beside the state, in the same transaction, and
    decisions never change it: every decision carries the group assigned before it."""
    import threading

    table = compiled_table(GROUPS.replace("strikes 5", "strikes 1000"))
    deciding = Engine(table, SQLiteStore(tmp_path / "race.db"), clock=Clock())
    assigning = Engine(table, SQLiteStore(tmp_path / "race.db"), clock=Clock())

    def decide() -> None:
        for index in range(120):
            deciding.evaluate("x-1", "ISSUE_REFUND", {"amount": 1 if index % 7 else 5000})

    def assign() -> None:
        for index in range(60):
            assigning.assign_group("x-1", "trusted" if index % 2 == 0 else None, operator="op")

    threads = [threading.Thread(target=decide), threading.Thread(target=assign)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert deciding.group("x-1") == ("", None)          # the last assignment cleared it
    assigned, seen = None, []
    for record in deciding.audit_records():
        if record["kind"] == "group":
            assigned = record["group"]
        elif record["kind"] == "decision":
            seen.append(record["decision"]["group"] == (assigned or ""))
    assert len(seen) == 120 and all(seen)
    assert deciding.verify_audit().ok
