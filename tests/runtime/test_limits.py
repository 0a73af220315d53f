"""Rate limits (docs/language.md, "Rate limits"; docs/runtime.md, "Rate-limit windows"): known
answers written from the docs, in every store; the sliding window against a brute-force oracle;
durability across a restart and the store upgrade from version 3."""

from __future__ import annotations

import itertools
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sentra_runtime import Decider, Engine, SQLiteStore, Store

from tests.runtime.helpers import T0, Clock, assert_decision, compiled_table

HOUR = 3600
LIMITED = '''policy refunds version "1" {
  risk_threshold 100
  strikes 3
}

input {
  amount: number
}

group trusted {
  agents "ops-*"
  limit 4 per 1h
  limit ISSUE_REFUND 3 per 1h
}

action ISSUE_REFUND, REFUND_PART {
  limit 6 per 1d
  when amount > 100 block as BIG_REFUND threat "Financial Overreach" "Too big."
  when amount > 50 allow risk 30 as LARGE_REFUND limit 2 per 1h
  allow as SMALL_REFUND limit 5 per 1h
}

otherwise allow as OTHER
'''
TABLE = compiled_table(LIMITED)


def engine_on(store: Store, clock: Clock) -> Engine:
    return Engine(TABLE, store, clock=clock)


def refund(engine: Engine, agent: str, amount: int = 10, action: str = "ISSUE_REFUND") -> Any:
    return engine.evaluate(agent, action, {"amount": amount})


def test_the_sixth_in_the_hour_is_blocked_and_at_exactly_one_hour_the_first_leaves(
        store: Store) -> None:
    clock = Clock()
    engine = engine_on(store, clock)
    for _ in range(5):
        assert_decision(refund(engine, "a"), "Allowed", "SMALL_REFUND")
        clock.now += 60
    sixth = refund(engine, "a")
    assert_decision(sixth, "Blocked", "RATE_LIMIT_EXCEEDED", blocked=1)
    assert sixth.reason == ("Rate limit reached: 5 per 1h for `SMALL_REFUND`. Action blocked "
                            "before execution.")
    assert sixth.threat == "Rate Limit Exceeded"
    clock.now = T0 + HOUR - 0.000001   # the first is still in (now - 1h, now]
    assert_decision(refund(engine, "a"), "Blocked", "RATE_LIMIT_EXCEEDED", blocked=2)
    clock.now = T0 + HOUR              # the first is at now - 1h: out of the window
    assert_decision(refund(engine, "a"), "Allowed", "SMALL_REFUND", blocked=2)


def test_a_limit_block_is_a_strike_and_the_third_shuts_the_agent_down(store: Store) -> None:
    clock = Clock()
    engine = engine_on(store, clock)
    for _ in range(2):
        assert_decision(refund(engine, "a", 60), "Allowed", "LARGE_REFUND")
    assert_decision(refund(engine, "a", 60), "Blocked", "RATE_LIMIT_EXCEEDED", blocked=1)
    assert_decision(refund(engine, "a", 60), "Blocked", "RATE_LIMIT_EXCEEDED", blocked=2)
    last = refund(engine, "a", 60)
    assert_decision(last, "Agent Shut Down", "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS", blocked=3)
    assert engine.state("a").status == "shut_down"


def test_blocked_decisions_never_count_and_a_blocking_rule_never_reaches_limits(
        store: Store) -> None:
    clock = Clock()
    engine = engine_on(store, clock)
    assert_decision(refund(engine, "a", 500), "Blocked", "BIG_REFUND", blocked=1)
    for _ in range(5):
        assert_decision(refund(engine, "a"), "Allowed", "SMALL_REFUND")
    assert_decision(refund(engine, "a", 500), "Blocked", "BIG_REFUND", blocked=2)


def test_limits_come_before_the_threshold() -> None:
    decider = Decider(TABLE)
    state: Any = (90, 0, False)
    for _ in range(2):
        decision, _ = decider.decide("ISSUE_REFUND", {"amount": 60}, (0, 0, False),
                                     agent_id="a", now=T0)
    decision, state = decider.decide("ISSUE_REFUND", {"amount": 60}, state, agent_id="a",
                                     now=T0)
    assert decision.rule_id == "RISK_THRESHOLD_EXCEEDED"   # a threshold block does not count
    assert len(state) == 3
    first, state = decider.decide("ISSUE_REFUND", {"amount": 60}, (0, 0, False), agent_id="a",
                                  now=T0)
    second, state = decider.decide("ISSUE_REFUND", {"amount": 60}, state, agent_id="a", now=T0)
    risky = (90, state[1], state[2], None, state[4])
    third, _ = decider.decide("ISSUE_REFUND", {"amount": 60}, risky, agent_id="a", now=T0)
    assert (first.allowed, second.allowed, third.rule_id) == (True, True, "RATE_LIMIT_EXCEEDED")


def test_an_action_block_limit_counts_its_actions_together(store: Store) -> None:
    clock = Clock()
    engine = engine_on(store, clock)
    for index in range(6):
        action = "ISSUE_REFUND" if index % 2 else "REFUND_PART"
        assert refund(engine, "a", action=action).allowed
        clock.now += 20 * 60    # 5 per 1h of SMALL_REFUND never reached
    blocked = refund(engine, "a", action="REFUND_PART")
    assert blocked.rule_id == "RATE_LIMIT_EXCEEDED"
    assert blocked.reason == ("Rate limit reached: 6 per 1d for `ISSUE_REFUND`, `REFUND_PART`. "
                              "Action blocked before execution.")


def test_group_limits_apply_to_its_agents_only(store: Store) -> None:
    clock = Clock()
    engine = engine_on(store, clock)
    for _ in range(3):
        assert refund(engine, "ops-1").allowed
    over = refund(engine, "ops-1")
    assert over.reason == ("Rate limit reached: 3 per 1h for `ISSUE_REFUND` in group `trusted`. "
                           "Action blocked before execution.")
    assert refund(engine, "ops-1", action="REFUND_PART").allowed   # 4 of all actions
    all_over = engine.evaluate("ops-1", "PING", {"amount": 1})
    assert (all_over.rule_id, all_over.reason) == (
        "RATE_LIMIT_EXCEEDED", "Rate limit reached: 4 per 1h for all actions in group "
        "`trusted`. Action blocked before execution.")
    for _ in range(4):
        assert refund(engine, "someone").allowed   # not in the group


def test_an_allowed_decision_no_limit_counts_keeps_the_windows(store: Store) -> None:
    """A decision that no limit counts (here `otherwise allow`) leaves the agent's windows as
    they were: refunds past the limit stay blocked (they were allowed again before the fix;
    the window law below covers an unlimited rule with risk)."""
    clock = Clock()
    engine = engine_on(store, clock)
    for _ in range(2):
        assert_decision(refund(engine, "a", 60), "Allowed", "LARGE_REFUND")
        clock.now += 60
    assert_decision(engine.evaluate("a", "SEND_NOTICE", {"amount": 1}), "Allowed", "OTHER")
    assert_decision(refund(engine, "a", 60), "Blocked", "RATE_LIMIT_EXCEEDED", blocked=1)
    assert [usage["count"] for usage in engine.limits("a")
            if usage["for"] == "`LARGE_REFUND`"] == [2]


def test_reset_clears_the_windows(store: Store) -> None:
    clock = Clock()
    engine = engine_on(store, clock)
    for _ in range(2):
        refund(engine, "a", 60)
    assert refund(engine, "a", 60).rule_id == "RATE_LIMIT_EXCEEDED"
    engine.reset("a", operator="ops")
    assert store.raw_state("a") == (0, 0, False)
    assert_decision(refund(engine, "a", 60), "Allowed", "LARGE_REFUND", blocked=0)


def test_the_usage_shows_each_limit_with_its_count() -> None:
    clock = Clock()
    from sentra_runtime import MemoryStore

    engine = engine_on(MemoryStore(), clock)
    refund(engine, "ops-1", 60)
    usage = {limit.key: (str(limit), count) for limit, count in
             engine.decider.limit_usage(engine.store.raw_state("ops-1"), clock.now, "ops-1")}
    assert engine.limits("ops-1")[0] == {"limit": "2 per 1h", "for": "`LARGE_REFUND`", "count": 1}
    assert usage == {"rule LARGE_REFUND per 3600": ("2 per 1h", 1),
                     "rule SMALL_REFUND per 3600": ("5 per 1h", 0),
                     "action ISSUE_REFUND,REFUND_PART per 86400": ("6 per 1d", 1),
                     "group trusted * per 3600": ("4 per 1h", 1),
                     "group trusted ISSUE_REFUND per 3600": ("3 per 1h", 1)}


def test_windows_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "s.db"
    engine = engine_on(SQLiteStore(path), clock)
    for _ in range(2):
        refund(engine, "a", 60)
    engine.close()
    engine = engine_on(SQLiteStore(path), clock)
    assert refund(engine, "a", 60).rule_id == "RATE_LIMIT_EXCEEDED"
    assert engine.verify_audit().ok
    engine.close()


def test_windows_edited_in_the_file_are_read_as_edited(tmp_path: Path) -> None:
    """The store decodes a windows text once and keeps it for the next read of the same text;
    an edited text is another text, read as edited (and text that is no windows counts as
    none), so the cache never hides a change to the file."""
    path = tmp_path / "limits.db"
    clock = Clock()
    engine = engine_on(SQLiteStore(path), clock)
    for _ in range(2):
        assert_decision(refund(engine, "a", 60), "Allowed", "LARGE_REFUND")
    key = "rule LARGE_REFUND per 3600"

    def edit(text: str) -> None:
        with sqlite3.connect(path) as connection:
            connection.execute("UPDATE agents SET limit_windows = ? WHERE agent_id = 'a'",
                               (text,))

    edit(f'{{"{key}":[{round(T0 * 1_000_000)}]}}')   # one of the two taken out
    assert_decision(refund(engine, "a", 60), "Allowed", "LARGE_REFUND")
    assert_decision(refund(engine, "a", 60), "Blocked", "RATE_LIMIT_EXCEEDED", blocked=1)
    edit("not windows")
    assert [usage["count"] for usage in engine.limits("a")
            if usage["for"] == "`LARGE_REFUND`"] == [0]
    engine.close()


def test_a_version_3_file_is_upgraded_and_keeps_its_agents(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy-v3.db"
    shutil.copy(Path(__file__).parents[1] / "fixtures" / "stores" / "legacy-v3.db", legacy)
    with sqlite3.connect(legacy) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (3,)
    clock = Clock(2e9)
    engine = Engine(TABLE, SQLiteStore(legacy), clock=clock)
    assert engine.store.raw_state("carol") == (80, 0, False, 2_000_000_000_000_000)
    assert engine.state("mallory").status == "shut_down"
    for _ in range(2):
        assert refund(engine, "carol").allowed
    assert engine.store.raw_state("carol")[:3] == (80, 0, False)
    engine.close()
    with sqlite3.connect(legacy) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (4,)
        windows = connection.execute("SELECT limit_windows FROM agents WHERE agent_id = "
                                     "'carol'").fetchone()[0]
    assert '"rule SMALL_REFUND per 3600":[2000000000000000,2000000000000000]' in windows


ORACLE_POLICY = compiled_table('''policy p version "1" {
  strikes 1000000
}

action A {
  allow as A limit 3 per 1m
}

action B {
  allow risk 1 as B
}

otherwise block as NO
''')


STEPS = st.lists(st.tuples(st.integers(min_value=0, max_value=90_000_000),
                           st.sampled_from("AAB")), min_size=1, max_size=40)
"""An agent's decisions: microseconds since its last (0 to 90 s, around the 60 s window) and
the action, `A` (limited) or `B` (allowed, no limit: it must leave A's window as it is)."""


def oracle_allows(allowed: list[int], now_us: int) -> bool:
    """The window by brute force: fewer than 3 allowed decisions in (now - 60 s, now]."""
    return sum(1 for moment in allowed if now_us - 60_000_000 < moment <= now_us) < 3


@settings(max_examples=150, deadline=None)
@given(STEPS)
def test_the_window_is_the_brute_force_one(steps: list[tuple[int, str]]) -> None:
    decider = Decider(ORACLE_POLICY)
    state: Any = (0, 0, False)
    allowed: list[int] = []
    now_us = 1_700_000_000_000_000
    for gap, action in steps:
        now_us += gap
        decision, state = decider.decide(action, {}, state, now=now_us / 1_000_000)
        expected = action == "B" or oracle_allows(allowed, now_us)
        assert decision.allowed == expected, (allowed, now_us, action)
        if expected and action == "A":
            allowed.append(now_us)
        assert len(state) < 5 or len(state[4]["rule A per 60"]) <= 3   # bounded memory


def test_the_window_is_the_brute_force_one_in_every_store(store: Store) -> None:
    """The same law through the engine and a store (each example its own agent)."""
    agents = itertools.count()
    clock = Clock(1_700_000_000.0)
    engine = Engine(ORACLE_POLICY, store, clock=clock)

    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(STEPS)
    def law(steps: list[tuple[int, str]]) -> None:
        agent = f"agent-{next(agents)}"
        allowed: list[int] = []
        now_us = round(clock.now * 1_000_000)
        for gap, action in steps:
            now_us += gap
            clock.now = now_us / 1_000_000
            expected = action == "B" or oracle_allows(allowed, round(clock.now * 1_000_000))
            assert engine.evaluate(agent, action).allowed == expected, (allowed, now_us, action)
            if expected and action == "A":
                allowed.append(round(clock.now * 1_000_000))
        clock.now += 3600

    law()


def test_the_decision_and_its_explanation_say_which_limit_and_its_count() -> None:
    from sentra_runtime import MemoryStore

    clock = Clock()
    engine = engine_on(MemoryStore(), clock)
    for _ in range(2):
        refund(engine, "a", 60)
    over = refund(engine, "a", 60)
    assert over.to_dict()["limit"] == {"limit": "2 per 1h", "for": "`LARGE_REFUND`", "count": 2}
    steps = over.explanation.steps
    assert "rate limit 2 per 1h for `LARGE_REFUND`: 2 allowed decisions already in the window, " \
           "so it is reached before the risk threshold" in steps
    assert over.explanation.risk.startswith("over a rate limit: attempted risk 30 not applied")


def test_a_version_3_postgres_database_is_upgraded(postgres_url: str) -> None:
    """A database of the version-3 layout (no windows column, the version-3 `sentra_begin`),
    with agents in it, gets the windows column and the new function; its agents are kept."""
    import psycopg
    from sentra_runtime.stores import open_store, postgres

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        for statement in (*postgres.SCHEMA, *postgres.UPGRADE_TO_3, *postgres.FUNCTIONS):
            connection.execute(statement)
        connection.execute("DROP FUNCTION sentra_begin(text, boolean)")
        connection.execute(V3_BEGIN)
        connection.execute("INSERT INTO sentra_meta VALUES ('schema_version', '3')")
        connection.execute("INSERT INTO sentra_agents VALUES ('carol', 80, 1, false, NULL)")
    clock = Clock()
    engine = Engine(TABLE, open_store(postgres_url), clock=clock)
    try:
        assert engine.state("carol").cumulative_risk == 80
        for _ in range(5):
            assert refund(engine, "carol").allowed
        assert refund(engine, "carol").rule_id == "RATE_LIMIT_EXCEEDED"
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            assert connection.execute("SELECT value FROM sentra_meta WHERE key = "
                                      "'schema_version'").fetchone() == ("4",)
            assert connection.execute("SELECT blocked_attempts, limit_windows IS NOT NULL FROM "
                                      "sentra_agents").fetchone() == (2, True)
    finally:
        engine.close()


V3_BEGIN = """CREATE FUNCTION sentra_begin(agents text, every boolean)
    RETURNS TABLE (agent_id bytea, cumulative_risk bigint, blocked_attempts bigint,
                   shut_down boolean, decay_anchor bigint)
    LANGUAGE sql AS $$ SELECT NULL::bytea, 0::bigint, 0::bigint, false, 0::bigint WHERE false $$"""
"""The version-3 ``sentra_begin`` (its signature and result type; the upgrade replaces it)."""
