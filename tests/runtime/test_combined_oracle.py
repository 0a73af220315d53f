"""Agent groups, rate limits and risk decay together: an oracle of the state step written from
the docs alone (docs/language.md "Risk decay", "Agent groups", "Agent state in conditions",
"Rate limits", "Decisions"; docs/runtime.md "Evaluate", "Reset, state, agents", "Rate-limit
windows", "Time: the engine's clock"), never from the runtime's code. Known answers for the
interactions, and Hypothesis laws that every decision of the engine, and the state, limits and
group it reports afterwards, equal the oracle's, in memory, in a SQLite file reopened mid-way
and in PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sentra_runtime import Decision, Engine, MemoryStore, Store

from tests.pg_fixtures import SQL_KINDS, store_factory, store_target
from tests.runtime.helpers import T0, Clock, compiled_table

SOURCE = """policy combined version "1" {
  risk_threshold 100
  strikes 3
  risk_decay 5 per 1m
}

group trusted {
  agents "ops-*"
  risk_threshold 150
  strikes 4
  risk_decay 20 per 2m
  limit 4 per 10m
  limit LOOKUP 3 per 5m
}

group new {
  agents "new-*", "temp"
  risk_threshold 90
  strikes 2
  limit REFUND 2 per 2m
  limit 3 per 5m
}

input {
  amount: int = 0
}

action REFUND, REFUND_PART {
  limit 3 per 5m
  when amount > 500 block risk 10 as TOO_BIG threat "Financial Overreach"
    "Refund of {amount} is too large."
  when agent.blocked_attempts >= 2 and amount > 100 block as NO_BIG_AFTER_STRIKES
    "No big refunds after two strikes."
  when amount > 100 allow risk 40 as BIG_REFUND threat "Financial Overreach" limit 2 per 3m
    "Big refund of {amount}."
  allow risk 15 as SMALL_REFUND "Small refund of {amount}."
}

action LOOKUP {
  when agent.group == "new" and agent.cumulative_risk >= 30 block as NEW_LOOKUP_CAP
    "New agents look up under 30."
  allow risk 5 as LOOKUP_OK limit 3 per 1m "Lookup."
}

action WIPE {
  shutdown as WIPE_NOW threat "Destructive Action" "Wiping is never tried twice."
}

otherwise allow as PING_OK "Ping."
"""
TABLE = compiled_table(SOURCE)
US = 1_000_000
OPERATOR = "oracle"


class _Anything:
    """What the docs leave open (a rule's threat when it gives none, the `limit` of a shutdown
    that a limit caused): equal to every value."""

    def __eq__(self, other: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Anything()


# -- the oracle's copy of the policy ----------------------------------------------------------
def duration(seconds: int) -> str:
    """A duration in its largest exact unit (docs/runtime.md, `RATE_LIMIT_EXCEEDED`)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Limit:
    key: str          # the oracle's own name for the window
    count: int
    seconds: int
    target: str       # the decision's `for`

    @property
    def text(self) -> str:
        return f"{self.count} per {duration(self.seconds)}"

    def held(self, window: list[int], now: int) -> int:
        """Kept times in `(now - D, now]`, and kept times after `now` (a clock that went back)."""
        return sum(t > now - self.seconds * US for t in window)


@dataclass(frozen=True)
class Group:
    name: str
    patterns: tuple[str, ...]
    threshold: int
    strikes: int
    decay: tuple[int, int]                  # amount, period in seconds
    on_action: tuple[tuple[str, Limit], ...]
    on_all: Limit | None


HEADER = Group("", (), 100, 3, (5, 60), (), None)
GROUPS = {
    "trusted": Group("trusted", ("ops-*",), 150, 4, (20, 120),
                     (("LOOKUP", Limit("trusted:LOOKUP", 3, 300,
                                       "`LOOKUP` in group `trusted`")),),
                     Limit("trusted:*", 4, 600, "all actions in group `trusted`")),
    "new": Group("new", ("new-*", "temp"), 90, 2, (5, 60),
                 (("REFUND", Limit("new:REFUND", 2, 120, "`REFUND` in group `new`")),),
                 Limit("new:*", 3, 300, "all actions in group `new`")),
}
BIG_LIMIT = Limit("rule:BIG_REFUND", 2, 180, "`BIG_REFUND`")
LOOKUP_LIMIT = Limit("rule:LOOKUP_OK", 3, 60, "`LOOKUP_OK`")
BLOCK_LIMIT = Limit("block:REFUND", 3, 300, "`REFUND`, `REFUND_PART`")


@dataclass(frozen=True)
class Rule:
    outcome: str
    rule_id: str
    risk: int
    threat: Any
    reason: str
    limits: tuple[Limit, ...] = ()          # the rule's, then its block's


def match(action: str, amount: int, risk: int, blocked: int, group: str) -> Rule:
    """The first rule whose `when` holds, reading the agent's state before the decision, after
    decay (docs/language.md, "Agent state in conditions")."""
    if action in ("REFUND", "REFUND_PART"):
        if amount > 500:
            return Rule("block", "TOO_BIG", 10, "Financial Overreach",
                        f"Refund of {amount} is too large.")
        if blocked >= 2 and amount > 100:
            return Rule("block", "NO_BIG_AFTER_STRIKES", 0, ANY,
                        "No big refunds after two strikes.")
        if amount > 100:
            return Rule("allow", "BIG_REFUND", 40, "Financial Overreach",
                        f"Big refund of {amount}.", (BIG_LIMIT, BLOCK_LIMIT))
        return Rule("allow", "SMALL_REFUND", 15, ANY, f"Small refund of {amount}.",
                    (BLOCK_LIMIT,))
    if action == "LOOKUP":
        if group == "new" and risk >= 30:
            return Rule("block", "NEW_LOOKUP_CAP", 0, ANY, "New agents look up under 30.")
        return Rule("allow", "LOOKUP_OK", 5, ANY, "Lookup.", (LOOKUP_LIMIT,))
    if action == "WIPE":
        return Rule("shutdown", "WIPE_NOW", 0, "Destructive Action",
                    "Wiping is never tried twice.")
    return Rule("allow", "PING_OK", 0, ANY, "Ping.")


def by_patterns(agent: str) -> Group:
    """The first group, in declaration order, one of whose patterns matches the id."""
    for group in GROUPS.values():
        for pattern in group.patterns:
            if agent == pattern or (pattern.endswith("*") and agent.startswith(pattern[:-1])):
                return group
    return HEADER


# -- the oracle -------------------------------------------------------------------------------
class Outcome(NamedTuple):
    label: str
    rule_id: str
    threat: Any
    reason: str
    attempted: int
    applied: int
    projected: int
    cumulative: int
    blocked: int
    status: str
    decayed: int
    group: str
    limit: Any


def observed(decision: Decision) -> Outcome:
    return Outcome(decision.label, decision.rule_id, decision.threat, decision.reason,
                   decision.attempted_risk, decision.applied_risk, decision.projected_risk,
                   decision.cumulative_risk, decision.blocked_attempts, decision.status,
                   decision.decayed, decision.group, decision.to_dict().get("limit"))


@dataclass
class Agent:
    risk: int = 0
    blocked: int = 0
    down: bool = False
    anchor: int | None = None                               # microseconds
    windows: dict[str, list[int]] = field(default_factory=dict)


class Oracle:
    """Per agent: cumulative risk, blocked attempts, shut down, decay anchor and the counted
    allowed times per limit; per agent too, the operator's assignment (kept by resets)."""

    def __init__(self) -> None:
        self.agents: dict[str, Agent] = {}
        self.assigned: dict[str, str] = {}

    def group(self, agent: str) -> Group:
        """An operator's assignment wins; otherwise the patterns decide."""
        name = self.assigned.get(agent)
        return GROUPS[name] if name is not None else by_patterns(agent)

    def assign(self, agent: str, group: str | None) -> None:
        if group is None:
            self.assigned.pop(agent, None)
        else:
            self.assigned[agent] = group

    def reset(self, agent: str | None) -> None:
        """Back to (0, 0, active), no anchor, windows cleared; assignments are kept."""
        if agent is None:
            self.agents.clear()
        else:
            self.agents.pop(agent, None)

    @staticmethod
    def decay(state: Agent, group: Group, now: int) -> int:
        """Whole periods since the anchor come off the risk (never below 0); the anchor moves on
        by them; a clock before the anchor decays nothing; a risk of 0 has no anchor."""
        if state.risk == 0 or state.anchor is None or now <= state.anchor:
            return 0
        amount, period = group.decay[0], group.decay[1] * US
        periods = (now - state.anchor) // period
        if periods == 0:
            return 0
        left = max(0, state.risk - periods * amount)
        taken, state.risk = state.risk - left, left
        state.anchor = None if left == 0 else state.anchor + periods * period
        return taken

    def decide(self, agent: str, action: str, amount: int, now: int) -> Outcome:
        group = self.group(agent)
        state = self.agents.setdefault(agent, Agent())
        decayed = self.decay(state, group, now)

        def outcome(label: str, rule_id: str, threat: Any, reason: str, attempted: int,
                    projected: int, limit: Any = None) -> Outcome:
            applied = attempted if label == "Allowed" else 0
            status = "shut_down" if state.down else "active"
            return Outcome(label, rule_id, threat, reason, attempted, applied, projected,
                           state.risk, state.blocked, status, decayed, group.name, limit)

        def strike(rule_id: str, threat: Any, reason: str, attempted: int, projected: int,
                   limit: Any = None) -> Outcome:
            state.blocked += 1
            if state.blocked < group.strikes:
                return outcome("Blocked", rule_id, threat, reason, attempted, projected, limit)
            state.down = True
            return outcome("Agent Shut Down", "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS",
                           "Agent Shutdown",
                           f"Agent shut down after {state.blocked} blocked attempts. "
                           f"Cumulative risk remains {state.risk}/{group.threshold}.",
                           attempted, projected, ANY if limit is not None else None)

        if state.down:
            return outcome("Agent Shut Down", "AGENT_ALREADY_SHUT_DOWN", "Agent Shutdown",
                           "Agent is already shut down.", 0, state.risk)
        rule = match(action, amount, state.risk, state.blocked, group.name)
        projected = state.risk + rule.risk
        if rule.outcome == "shutdown":
            state.blocked += 1
            state.down = True
            return outcome("Agent Shut Down", rule.rule_id, rule.threat, rule.reason, rule.risk,
                           projected)
        if rule.outcome == "block":
            return strike(rule.rule_id, rule.threat, rule.reason, rule.risk, projected)
        limits = self.limits_of(rule, action, group)
        for limit in limits:
            held = limit.held(state.windows.get(limit.key, []), now)
            if held >= limit.count:
                return strike("RATE_LIMIT_EXCEEDED",
                              "Rate Limit Exceeded" if rule.threat is ANY else rule.threat,
                              f"Rate limit reached: {limit.text} for {limit.target}. Action "
                              f"blocked before execution.", rule.risk, projected,
                              {"limit": limit.text, "for": limit.target, "count": held})
        if projected > group.threshold:
            return strike("RISK_THRESHOLD_EXCEEDED",
                          "Risk Threshold Exceeded" if rule.threat is ANY else rule.threat,
                          f"Projected risk would reach {projected}/{group.threshold}. Action "
                          f"blocked before execution.", rule.risk, projected)
        if state.risk == 0 and projected > 0:
            state.anchor = now
        state.risk = projected
        for limit in limits:   # drop the times that left the window, add this one
            kept = [t for t in state.windows.get(limit.key, []) if t > now - limit.seconds * US]
            state.windows[limit.key] = [*kept, now]
        return outcome("Allowed", rule.rule_id, rule.threat, rule.reason, rule.risk, projected)

    @staticmethod
    def limits_of(rule: Rule, action: str, group: Group) -> list[Limit]:
        """The limits an allowed decision meets, in the documented order: the rule's, the
        block's, the group's on the action, the group's on all actions."""
        on_action = [limit for name, limit in group.on_action if name == action]
        return [*rule.limits, *on_action, *([group.on_all] if group.on_all else [])]

    def state(self, agent: str, now: int) -> tuple[int, int, str]:
        """What `engine.state` reads: the state now, decayed, nothing written."""
        current = self.agents.get(agent, Agent())
        copy = Agent(current.risk, current.blocked, current.down, current.anchor)
        self.decay(copy, self.group(agent), now)
        return copy.risk, copy.blocked, "shut_down" if copy.down else "active"

    def limits(self, agent: str, now: int) -> list[dict[str, Any]]:
        """What `engine.limits` lists: every limit that applies to the agent (the rules', the
        blocks', its group's), with its count now."""
        group = self.group(agent)
        applying = [BIG_LIMIT, LOOKUP_LIMIT, BLOCK_LIMIT,
                    *(limit for _, limit in group.on_action),
                    *([group.on_all] if group.on_all else [])]
        windows = self.agents.get(agent, Agent()).windows
        return sorted(({"limit": limit.text, "for": limit.target,
                        "count": limit.held(windows.get(limit.key, []), now)}
                       for limit in applying), key=lambda row: (row["for"], row["limit"]))


# -- driving both -----------------------------------------------------------------------------
AGENTS = ("ops-1", "new-1", "temp", "x", "opsx")
ACTIONS = ("REFUND", "REFUND_PART", "LOOKUP", "PING")
AMOUNTS = (0, 0, 50, 50, 150, 150, 150, 600)
WAITS = (0,) * 24 + (1,) * 6 + (2, 59, 60, 61, 119, 120, 179, 180, 299, 300, 600, -60, -1)
"""Seconds between steps: mostly 0 or 1 (so that limits and thresholds are reached), the decay
periods and windows exactly, a second either side, and a clock that goes back."""

Step = tuple[int, str, str, int, int, int]
"""(kind, agent, action, amount, wait, choice): kind 0 resets every agent, 1-7 resets the
agent, 8-11 assigns it `trusted`, `new` or no group (choice), 12 sends `WIPE`, the rest send
the action, each decision `wait` seconds after the step before."""


def steps_of(agents: list[str]) -> st.SearchStrategy[list[Step]]:
    return st.lists(st.tuples(st.integers(0, 99), st.sampled_from(agents),
                              st.sampled_from(ACTIONS), st.sampled_from(AMOUNTS),
                              st.sampled_from(WAITS), st.integers(0, 2)),
                    min_size=15, max_size=60)


STEPS = st.lists(st.sampled_from(AGENTS), min_size=1, max_size=3, unique=True).flatmap(steps_of)
"""A sequence of steps among two or three of the agents (so each is seen often)."""


class Run:
    """One engine and the oracle, fed the same steps; the engine may be reopened on its store."""

    def __init__(self, make_store: Any, clock: Clock) -> None:
        self.make_store, self.clock = make_store, clock
        self.engine = Engine(TABLE, make_store(), clock=clock)
        self.oracle = Oracle()

    def now(self) -> int:
        return round(self.clock.now * US)

    def reopen(self) -> None:
        self.engine.close()
        self.engine = Engine(TABLE, self.make_store(), clock=self.clock)

    def step(self, step: Step) -> None:
        kind, agent, action, amount, wait, choice = step
        if kind < 8:                                   # an operator reset, of one or of all
            target = None if kind == 0 else agent
            self.engine.reset(target, operator=OPERATOR)
            self.oracle.reset(target)
        elif kind < 12:                                # an operator (un)assigns a group
            group = ("trusted", "new", None)[choice]
            self.engine.assign_group(agent, group, operator=OPERATOR)
            self.oracle.assign(agent, group)
        else:
            self.clock.now += wait
            action = "WIPE" if kind == 12 else action
            got = observed(self.engine.evaluate(agent, action, {"amount": amount}))
            assert got == self.oracle.decide(agent, action, amount, self.now()), step

    def check_views(self) -> None:
        """state(), limits() and group() of every agent equal the oracle's, by the clock now."""
        for agent in AGENTS:
            assert tuple(self.engine.state(agent)) == self.oracle.state(agent, self.now()), agent
            limits = sorted(self.engine.limits(agent), key=lambda r: (r["for"], r["limit"]))
            assert limits == self.oracle.limits(agent, self.now()), agent
            assigned = self.oracle.assigned.get(agent)
            assert self.engine.group(agent) == (self.oracle.group(agent).name, assigned), agent
        assert self.engine.verify_audit().ok   # the stored states, anchors included, = the log's


@settings(max_examples=120, deadline=None)
@given(STEPS)
def test_law_every_decision_and_view_equals_the_oracle_in_memory(steps: list[Step]) -> None:
    run = Run(MemoryStore, Clock())
    for step in steps:
        run.step(step)
    run.check_views()


@pytest.mark.parametrize("kind", SQL_KINDS)
def test_law_every_decision_equals_the_oracle_in_a_reopened_database(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The same law on a SQLite file and on PostgreSQL, the store closed and opened again in
    the middle of every sequence (and now and then besides): state, windows, anchors and
    assignments are all in the database."""
    make_store = store_factory(kind, store_target(kind, request, tmp_path))
    clock = Clock()
    run = Run(make_store, clock)

    @settings(max_examples=20, deadline=None, database=None, phases=(Phase.generate,),
              suppress_health_check=[HealthCheck.too_slow])   # the memory law shrinks
    @given(STEPS, st.integers(0, 99))
    def law(steps: list[Step], reopen_every: int) -> None:
        clock.now += 86400                             # the same database for every example
        run.engine.reset(operator=OPERATOR)
        for agent in AGENTS:
            run.engine.assign_group(agent, None, operator=OPERATOR)
        run.oracle = Oracle()
        for index, step in enumerate(steps):
            if index == len(steps) // 2 or index % (reopen_every % 15 + 5) == 4:
                run.reopen()
            run.step(step)
        run.check_views()

    try:
        law()
    finally:
        run.engine.close()


# -- known answers ----------------------------------------------------------------------------
def test_decay_brings_a_decision_back_under_the_threshold(store: Store) -> None:
    """`x` is in no group: threshold 100, 5 off per whole minute. At 100 the next lookup would
    reach 105; a minute after the first allowed decision it is 95 + 5 = 100, allowed."""
    clock = Clock()
    engine = Engine(TABLE, store, clock=clock)
    steps = [(0, "REFUND", 150, "Allowed", "BIG_REFUND", 40, 0, 0),
             (1, "REFUND", 150, "Allowed", "BIG_REFUND", 80, 0, 0),
             (2, "REFUND", 10, "Allowed", "SMALL_REFUND", 95, 0, 0),
             (3, "LOOKUP", 0, "Allowed", "LOOKUP_OK", 100, 0, 0),     # exactly the threshold
             (59, "LOOKUP", 0, "Blocked", "RISK_THRESHOLD_EXCEEDED", 100, 1, 0),
             (60, "LOOKUP", 0, "Allowed", "LOOKUP_OK", 100, 1, 5)]    # 95 after decay, + 5
    for at, action, amount, label, rule, cumulative, blocked, decayed in steps:
        clock.now = T0 + at
        got = observed(engine.evaluate("x", action, {"amount": amount}))
        assert (got.label, got.rule_id, got.cumulative, got.blocked, got.decayed) == \
            (label, rule, cumulative, blocked, decayed), (at, got.reason)
    clock.now = T0 + 60 + 119                         # anchor T0 + 60: one whole minute more
    assert tuple(engine.state("x")) == (95, 1, "active")


def test_a_grouped_agents_window_slides_exactly_at_its_boundary() -> None:
    """`new-1` (group `new`: `REFUND` 2 per 2m, all actions 3 per 5m, threshold 90, strikes 2,
    the header's decay 5 per 1m). The T0 refund is in the window until exactly T0 + 2m."""
    clock = Clock()
    engine = Engine(TABLE, MemoryStore(), clock=clock)

    def refund(at: float, action: str = "REFUND") -> Outcome:
        clock.now = T0 + at
        return observed(engine.evaluate("new-1", action, {"amount": 10}))

    assert refund(0)[:2] == ("Allowed", "SMALL_REFUND")
    assert refund(30)[:2] == ("Allowed", "SMALL_REFUND")
    over = refund(119.999999)                          # T0 is in (now - 2m, now]: 2 held
    assert over == Outcome("Blocked", "RATE_LIMIT_EXCEEDED", "Rate Limit Exceeded",
                           "Rate limit reached: 2 per 2m for `REFUND` in group `new`. Action "
                           "blocked before execution.", 15, 0, 40, 25, 1, "active", 5, "new",
                           {"limit": "2 per 2m", "for": "`REFUND` in group `new`", "count": 2})
    assert refund(120)[:2] == ("Allowed", "SMALL_REFUND")   # T0 = now - 2m has left
    limits = {row["for"]: row["count"] for row in engine.limits("new-1")}
    assert limits == {"`BIG_REFUND`": 0, "`LOOKUP_OK`": 0, "`REFUND`, `REFUND_PART`": 3,
                      "`REFUND` in group `new`": 2, "all actions in group `new`": 3}
    ping = refund(121, "PING")                         # all actions: 3 in 5m, the 2nd strike
    assert ping[:4] == ("Agent Shut Down", "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS", "Agent Shutdown",
                        "Agent shut down after 2 blocked attempts. Cumulative risk remains "
                        "35/90.")
    later = refund(400)                                # decay goes on while it is shut down
    assert later == Outcome("Agent Shut Down", "AGENT_ALREADY_SHUT_DOWN", "Agent Shutdown",
                            "Agent is already shut down.", 0, 0, 15, 15, 2, "shut_down", 20,
                            "new", None)


def test_an_assigned_group_has_its_limits_and_threshold_not_the_patterns(store: Store) -> None:
    """`new-2`'s id puts it in `new` (threshold 90, `REFUND` 2 per 2m); the operator puts it in
    `trusted` (threshold 150, all actions 4 per 10m) and takes it out again."""
    clock = Clock()
    engine = Engine(TABLE, store, clock=clock)
    engine.assign_group("new-2", "trusted", operator="alice")

    def decide(at: int, action: str, amount: int = 0) -> Outcome:
        clock.now = T0 + at
        return observed(engine.evaluate("new-2", action, {"amount": amount}))

    assert [decide(at, "REFUND", amount)[7] for at, amount in ((0, 150), (1, 150), (2, 10))] == \
        [40, 80, 95]                                   # over new's 90, and 3 refunds in 2m
    assert decide(3, "LOOKUP")[:2] == ("Allowed", "LOOKUP_OK")     # 100 of 150
    over = decide(4, "LOOKUP")
    assert (over.rule_id, over.blocked, over.group, over.limit) == (
        "RATE_LIMIT_EXCEEDED", 1, "trusted",
        {"limit": "4 per 10m", "for": "all actions in group `trusted`", "count": 4})
    assert {row["for"] for row in engine.limits("new-2")} >= {"`LOOKUP` in group `trusted`"}
    engine.assign_group("new-2", None, operator="alice")
    back = decide(5, "LOOKUP")                         # `new` again: 100 >= 30, strike 2 of 2
    assert (back.label, back.rule_id, back.group, back.blocked) == (
        "Agent Shut Down", "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS", "new", 2)
    assert back.reason.endswith("Cumulative risk remains 100/90.")


# -- two bugs this oracle found (both fixed; each failed before its fix) -----------------------
def test_an_allow_counted_in_no_limit_keeps_the_windows(store: Store) -> None:
    """docs/language.md, "Rate limits": a limit of N per D blocks a decision when the agent
    already has N counted decisions in (now - D, now]. `x` (no group) has 3 refunds in this
    second (the block's `limit 3 per 5m`); a `PING` (otherwise, no limit of its own, no group)
    is allowed and counts nowhere; the next refund is still the fourth in 5m."""
    engine = Engine(TABLE, store, clock=Clock())
    rules = [engine.evaluate("x", action, {"amount": 0}).rule_id
             for action in ("REFUND", "REFUND", "REFUND", "PING", "REFUND")]
    assert rules == ["SMALL_REFUND"] * 3 + ["PING_OK", "RATE_LIMIT_EXCEEDED"]


def test_a_shut_down_agents_decision_is_recorded_in_every_store(store: Store) -> None:
    """docs/runtime.md, "Evaluate": a shut-down agent gets Agent Shut Down,
    `AGENT_ALREADY_SHUT_DOWN`, state unchanged; "Audit log": every decision is recorded, in
    order, in one hash chain. The SQL stores raise from `evaluate`, the in-memory one from
    `verify_audit`."""
    engine = Engine(TABLE, store, clock=Clock())
    assert engine.evaluate("ops-1", "WIPE").rule_id == "WIPE_NOW"
    again = engine.evaluate("ops-1", "LOOKUP")
    assert (again.label, again.rule_id, again.status) == (
        "Agent Shut Down", "AGENT_ALREADY_SHUT_DOWN", "shut_down")
    assert engine.verify_audit().ok


ORDER = [   # (agent, seconds after T0, action, amount, the limit that decides: its `for`, count)
    ("x", 0, "REFUND", 10, None), ("x", 0, "REFUND", 150, None), ("x", 0, "REFUND", 150, None),
    ("x", 0, "REFUND", 150, ("`BIG_REFUND`", 2)),              # the block's 3 is reached too
    ("x", 0, "REFUND", 10, ("`REFUND`, `REFUND_PART`", 3)),   # so is the threshold (110)
    ("new-1", 0, "REFUND_PART", 10, None), ("new-1", 0, "REFUND", 10, None),
    ("new-1", 0, "REFUND", 10, None),
    ("new-1", 0, "REFUND", 10, ("`REFUND`, `REFUND_PART`", 3)),   # and the group's two
    ("ops-1", 0, "PING", 0, None), ("ops-1", 0, "LOOKUP", 0, None),
    ("ops-1", 0, "LOOKUP", 0, None), ("ops-1", 0, "LOOKUP", 0, None),
    ("ops-1", 0, "LOOKUP", 0, ("`LOOKUP_OK`", 3)),                # and the group's two
    ("ops-1", 60, "LOOKUP", 0, ("`LOOKUP` in group `trusted`", 3)),   # the rule's has slid
    ("ops-1", 300, "LOOKUP", 0, ("all actions in group `trusted`", 4)),
    ("ops-1", 600, "LOOKUP", 0, None),
]


def test_the_first_limit_reached_decides_in_the_documented_order() -> None:
    """docs/language.md, "Rate limits", "Order": the rule's, the block's, the group's on the
    action, the group's on all actions, then the threshold; here several are reached at once.
    The oracle agrees, decision by decision."""
    clock = Clock()
    engine = Engine(TABLE, MemoryStore(), clock=clock)
    oracle = Oracle()
    for agent, at, action, amount, deciding in ORDER:
        clock.now = T0 + at
        decision = engine.evaluate(agent, action, {"amount": amount})
        assert observed(decision) == oracle.decide(agent, action, amount, round(clock.now * US))
        limit = decision.to_dict().get("limit")
        got = None if limit is None else (limit["for"], limit["count"])
        assert (decision.label, got) == ("Allowed" if deciding is None else "Blocked",
                                         deciding), (agent, at, action, decision.reason)
