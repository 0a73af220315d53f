"""Adversarial probe of the scenario runner (`sentra-lang test`, the pytest plugin), its
coverage report and `sentra-lang replay`: semantics, not hostile bytes (those are in
test_tooling_probe.py).

The known-answer scenarios come first. Each is a list of steps whose expected decisions were
worked out by hand from docs/language.md ("Decisions", "Risk decay", "Agent groups", "Rate
limits", "Review") and docs/runtime.md, before the runner's code was read. Every scenario is
checked three ways: written as a suite and run by `sentra-lang test` (it must pass, and it
must fail when any one expectation is changed), and driven step by step through the real
`sentra_runtime.Engine` with a clock that follows the scenario's `after` steps.

Then the ways a suite could pass when it should fail (an expectation ignored, a vacuous
scenario or property, a loose comparison), whether coverage stands on real decisions, and
whether `replay` reproduces a real engine's SQLite log and reports what it cannot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import Engine, MemoryStore

from sentra_lang.cli import main
from sentra_lang.testing.policies import load
from tests.edges.probe_helpers import GROUPS

T_SUITE = 1_704_067_200.0   # 2024-01-01T00:00:00Z, where every scenario's clock starts

LABELS = {"allowed": "Allowed", "blocked": "Blocked", "shutdown": "Agent Shut Down",
          "review": "Review Required"}
"""The suite's decision words and the runtime's labels (docs/runtime.md, `Decision`)."""

NUMBERS = {"risk": "attempted_risk", "applied": "applied_risk", "projected": "projected_risk",
           "cumulative": "cumulative_risk", "strikes": "blocked_attempts", "decayed": "decayed"}

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


# ------------------------------------------------------------------------ the scenario model

@dataclass(frozen=True)
class Act:
    """`agent "ID" ACTION { fields } -> EXPECT [as NAME]`."""

    agent: str
    action: str
    fields: dict[str, Any]
    expect: dict[str, Any]
    name: str | None = None


@dataclass(frozen=True)
class After:
    duration: str


@dataclass(frozen=True)
class Reset:
    agent: str | None   # None: reset all


@dataclass(frozen=True)
class State:
    agent: str
    expect: dict[str, Any]


@dataclass(frozen=True)
class Assign:
    agent: str
    group: str | None


@dataclass(frozen=True)
class Verdict:
    """`approve|deny NAME by "OP" [note "N"] [-> EXPECT]`."""

    ticket: str
    approve: bool
    operator: str
    expect: dict[str, Any]
    note: str | None = None


@dataclass(frozen=True)
class Ticket:
    ticket: str
    status: str


Step = Act | After | Reset | State | Assign | Verdict | Ticket


@dataclass
class Known:
    """A policy and one scenario with hand-derived expectations."""

    policy: str
    steps: list[Step]
    tickets: dict[str, str] = field(default_factory=dict)


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(value)


def _expectation(expect: dict[str, Any]) -> str:
    words = [expect["decision"]]
    for key, value in expect.items():
        if key == "decision":
            continue
        if key == "reason_contains":
            words.append(f"reason contains {_value(value)}")
        elif key in ("status",):
            words.append(f"status {value}")
        elif key == "threat" and value is None:
            words.append("threat none")
        elif key == "rule":
            words.append(f"rule {value}")
        else:
            words.append(f"{key} {_value(value)}")
    return " ".join(words)


def _state_expectation(expect: dict[str, Any]) -> str:
    return " ".join(f"{key} {value}" for key, value in expect.items())


def suite_line(step: Step) -> str:
    """The step as `sentra-lang test` reads it (docs/testing.md)."""
    if isinstance(step, Act):
        fields = ""
        if step.fields:
            fields = " { " + ", ".join(f"{k}: {_value(v)}" for k, v in step.fields.items()) + " }"
        name = f" as {step.name}" if step.name else ""
        return f'agent {json.dumps(step.agent)} {step.action}{fields} -> ' \
               f'{_expectation(step.expect)}{name}'
    if isinstance(step, After):
        return f"after {step.duration}"
    if isinstance(step, Reset):
        return "reset all" if step.agent is None else f"reset {json.dumps(step.agent)}"
    if isinstance(step, State):
        return f"state {json.dumps(step.agent)} -> {_state_expectation(step.expect)}"
    if isinstance(step, Assign):
        group = "none" if step.group is None else json.dumps(step.group)
        return f"assign {json.dumps(step.agent)} group {group}"
    if isinstance(step, Verdict):
        verb = "approve" if step.approve else "deny"
        note = f" note {json.dumps(step.note)}" if step.note is not None else ""
        arrow = f" -> {_expectation(step.expect)}" if step.expect else ""
        return f"{verb} {step.ticket} by {json.dumps(step.operator)}{note}{arrow}"
    return f"ticket {step.ticket} -> {step.status}"


def suite_text(known: Known, name: str = "known") -> str:
    lines = [f"  {suite_line(step)}" for step in known.steps]
    return 'suite "probe" for "p.sentra"\n' f'scenario "{name}" {{\n' + "\n".join(lines) + "\n}\n"


def seconds(duration: str) -> int:
    return int(duration[:-1]) * UNITS[duration[-1]]


class Clock:
    def __init__(self) -> None:
        self.now = T_SUITE

    def __call__(self) -> float:
        return self.now


def _check(decision: Any, expect: dict[str, Any], where: str) -> None:
    assert decision.label == LABELS[expect["decision"]], (where, decision.to_dict())
    for key, value in expect.items():
        if key == "decision":
            continue
        if key == "reason_contains":
            actual: Any = value in decision.reason
            value = True
        elif key == "rule":
            actual = decision.rule_id
        elif key in NUMBERS:
            actual = getattr(decision, NUMBERS[key])
        else:
            actual = getattr(decision, key)
        assert actual == value, (where, key, decision.to_dict())


def drive_engine(known: Known, tmp_path: Path) -> None:
    """The scenario through the real runtime: a fresh in-memory store, the suite's start time
    and its `after` steps on the engine's clock, the operator `sentra-lang test`."""
    (tmp_path / "p.sentra").write_text(known.policy, "utf-8")
    clock = Clock()
    engine = Engine(load(tmp_path / "p.sentra").policy, MemoryStore(), clock=clock)
    tickets: dict[str, str] = {}
    for number, step in enumerate(known.steps, 1):
        where = f"step {number}: {suite_line(step)}"
        if isinstance(step, Act):
            decision = engine.evaluate(step.agent, step.action, step.fields)
            _check(decision, step.expect, where)
            if step.name:
                tickets[step.name] = decision.ticket
        elif isinstance(step, After):
            clock.now += seconds(step.duration)
        elif isinstance(step, Reset):
            if step.agent is None:
                engine.reset(operator="sentra-lang test")
            else:
                engine.reset(step.agent, operator="sentra-lang test")
        elif isinstance(step, State):
            state = engine.state(step.agent)
            got = {"cumulative": state.cumulative_risk, "strikes": state.blocked_attempts,
                   "status": state.status}
            assert {k: got[k] for k in step.expect} == step.expect, where
        elif isinstance(step, Assign):
            engine.assign_group(step.agent, step.group, operator="sentra-lang test")
        elif isinstance(step, Verdict):
            decision = engine.review(tickets[step.ticket], step.approve, operator=step.operator,
                                     note=step.note)
            if step.expect:
                _check(decision, step.expect, where)
        else:
            assert engine.ticket(tickets[step.ticket]).status == step.status, where


def run_suite(tmp_path: Path, policy: str, suite: str, *args: str) -> tuple[int, dict[str, Any]]:
    """`sentra-lang test` on one suite (in this process): its exit code and JSON report."""
    (tmp_path / "p.sentra").write_text(policy, "utf-8")
    path = tmp_path / "s.sentra-test"
    path.write_text(suite, "utf-8")
    report = tmp_path / "report.json"
    report.unlink(missing_ok=True)
    code = main(["test", str(path), "--json", str(report), *args])
    data: dict[str, Any] = json.loads(report.read_text("utf-8")) if report.exists() else {}
    return code, data


def outcomes(report: dict[str, Any]) -> list[str]:
    return [result["outcome"] for result in report.get("results", [])]


def assert_suite_passes(tmp_path: Path, policy: str, suite: str) -> dict[str, Any]:
    code, report = run_suite(tmp_path, policy, suite)
    assert code == 0 and outcomes(report) and set(outcomes(report)) == {"passed"}, \
        json.dumps(report.get("results"), indent=1) + json.dumps(report.get("diagnostics"))
    return report


def assert_suite_fails(tmp_path: Path, policy: str, suite: str) -> dict[str, Any]:
    code, report = run_suite(tmp_path, policy, suite)
    assert code == 1 and "failed" in outcomes(report), (code, report)
    return report


def assert_suite_error(tmp_path: Path, policy: str, suite: str, code: str) -> dict[str, Any]:
    exit_code, report = run_suite(tmp_path, policy, suite)
    codes = [d["code"] for d in report.get("diagnostics", [])]
    assert exit_code == 2 and code in codes, (exit_code, codes, report)
    return report


# ------------------------------------------------------------------- known answers (by hand)

THRESHOLD = """policy thresh version "1" {
  risk_threshold 100
  strikes 3
}

action A {
  allow risk 60 as A_OK threat "Data Exfiltration" "A is fine."
}

action B {
  allow risk 40 as B_OK "B is fine."
}

action C {
  block risk 10 as C_NO threat "Policy Violation" "C never runs."
}

action Z {
  allow as Z_OK "Z costs nothing."
}

action W {
  shutdown as W_STOP threat "Destructive Action" "W stops the agent."
}

otherwise block as UNKNOWN "Not covered."
"""

# docs/language.md, "Decisions": a projected risk of exactly the threshold is allowed; above
# it, Blocked (RISK_THRESHOLD_EXCEEDED, the rule's threat or "Risk Threshold Exceeded"); the
# third block is the shutdown; a shut-down agent is denied without rules; only a reset revives.
THRESHOLD_STEPS: list[Step] = [
    Act("a", "A", {}, {"decision": "allowed", "rule": "A_OK", "risk": 60, "applied": 60,
                       "projected": 60, "cumulative": 60, "strikes": 0, "status": "active",
                       "threat": "Data Exfiltration", "reason": "A is fine."}),
    Act("a", "B", {}, {"decision": "allowed", "rule": "B_OK", "projected": 100,
                       "cumulative": 100, "threat": None}),
    Act("a", "Z", {}, {"decision": "allowed", "rule": "Z_OK", "risk": 0, "cumulative": 100}),
    Act("a", "A", {}, {"decision": "blocked", "rule": "RISK_THRESHOLD_EXCEEDED", "risk": 60,
                       "applied": 0, "projected": 160, "cumulative": 100, "strikes": 1,
                       "threat": "Data Exfiltration",
                       "reason": "Projected risk would reach 160/100. Action blocked before "
                                 "execution."}),
    Act("a", "B", {}, {"decision": "blocked", "rule": "RISK_THRESHOLD_EXCEEDED",
                       "threat": "Risk Threshold Exceeded", "projected": 140, "strikes": 2}),
    Act("b", "C", {}, {"decision": "blocked", "rule": "C_NO", "risk": 10, "applied": 0,
                       "cumulative": 0, "strikes": 1, "threat": "Policy Violation"}),
    Act("a", "C", {}, {"decision": "shutdown", "rule": "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS",
                       "threat": "Agent Shutdown", "strikes": 3, "cumulative": 100,
                       "applied": 0, "status": "shut_down",
                       "reason": "Agent shut down after 3 blocked attempts. Cumulative risk "
                                 "remains 100/100."}),
    Act("a", "Z", {}, {"decision": "shutdown", "rule": "AGENT_ALREADY_SHUT_DOWN",
                       "reason": "Agent is already shut down.", "risk": 0, "applied": 0,
                       "strikes": 3, "cumulative": 100, "status": "shut_down"}),
    State("a", {"cumulative": 100, "strikes": 3, "status": "shut_down"}),
    Reset("a"),
    State("a", {"cumulative": 0, "strikes": 0, "status": "active"}),
    State("b", {"cumulative": 0, "strikes": 1, "status": "active"}),
    Act("a", "A", {}, {"decision": "allowed", "cumulative": 60, "strikes": 0}),
    Act("b", "W", {}, {"decision": "shutdown", "rule": "W_STOP", "threat": "Destructive Action",
                       "strikes": 2, "status": "shut_down"}),
    Act("b", "A", {}, {"decision": "shutdown", "rule": "AGENT_ALREADY_SHUT_DOWN"}),
    Act("c", "NOPE", {}, {"decision": "blocked", "rule": "UNKNOWN", "strikes": 1}),
    Reset(None),
    State("a", {"cumulative": 0, "strikes": 0, "status": "active"}),
    State("b", {"cumulative": 0, "strikes": 0, "status": "active"}),
    State("c", {"strikes": 0}),
]

DECAY = """policy exports version "1" {
  risk_threshold 100
  risk_decay 10 per 1h
}

action EXPORT_DATA {
  allow risk 60 as EXPORT_OK "Export allowed."
}

otherwise block as UNKNOWN "Not covered."
"""

# docs/language.md, "Risk decay": k whole periods since the anchor come off; the anchor moves by
# k periods (the part of a period already passed counts towards the next); a risk of 0 has no
# anchor, and the decision that raises it from 0 sets the anchor to now.
DECAY_STEPS: list[Step] = [
    Act("a", "EXPORT_DATA", {}, {"decision": "allowed", "cumulative": 60, "decayed": 0}),
    After("59m"),
    State("a", {"cumulative": 60}),
    After("91m"),                                               # 02:30, anchor 00:00
    Act("a", "EXPORT_DATA", {}, {"decision": "allowed", "decayed": 20, "projected": 100,
                                 "cumulative": 100}),       # anchor 02:00
    After("30m"),                                               # 03:00
    State("a", {"cumulative": 90}),
    Act("a", "EXPORT_DATA", {}, {"decision": "blocked", "rule": "RISK_THRESHOLD_EXCEEDED",
                                 "decayed": 10, "projected": 150, "cumulative": 90,
                                 "strikes": 1}),            # anchor 03:00
    After("570m"),                                              # 12:30: 9 periods, risk 0
    State("a", {"cumulative": 0, "strikes": 1}),
    Act("a", "EXPORT_DATA", {}, {"decision": "allowed", "decayed": 90, "cumulative": 60,
                                 "strikes": 1}),            # raised from 0: anchor 12:30
    After("40m"),                                               # 13:10: no whole hour since
    State("a", {"cumulative": 60}),
    After("20m"),                                               # 13:30
    State("a", {"cumulative": 50, "strikes": 1, "status": "active"}),
    Reset("a"),
    Act("a", "EXPORT_DATA", {}, {"decision": "allowed", "decayed": 0, "cumulative": 60}),
]

LIMITS = """policy limited version "1" {
  risk_threshold 100
  strikes 3
}

action REFUND, REFUND_PART {
  limit 3 per 1d
  allow risk 5 as REFUND_OK limit 2 per 1h "Refund issued."
}

action PING {
  allow as PING_OK "Pong."
}

otherwise block as UNKNOWN "Not covered."
"""

RULE_LIMIT = "Rate limit reached: 2 per 1h for `REFUND_OK`. Action blocked before execution."
BLOCK_LIMIT = ("Rate limit reached: 3 per 1d for `REFUND`, `REFUND_PART`. Action blocked before "
               "execution.")

# docs/language.md, "Rate limits": only allowed decisions count; the window (now - D, now] is
# sliding and exact; the rule's limit is checked before the block's; a limit's block is a
# strike; a reset clears the windows.
LIMIT_STEPS: list[Step] = [
    Act("a", "REFUND", {}, {"decision": "allowed", "cumulative": 5}),                 # 00:00
    After("1m"),
    Act("a", "REFUND_PART", {}, {"decision": "allowed", "cumulative": 10}),           # 00:01
    After("3539s"),                                                                   # 00:59:59
    Act("a", "REFUND", {}, {"decision": "blocked", "rule": "RATE_LIMIT_EXCEEDED",
                            "reason": RULE_LIMIT, "threat": "Rate Limit Exceeded",
                            "strikes": 1, "cumulative": 10, "applied": 0}),
    After("1s"),                                                                      # 01:00
    Act("a", "REFUND", {}, {"decision": "allowed", "cumulative": 15, "strikes": 1}),
    After("1m"),                                                                      # 01:01
    Act("a", "REFUND_PART", {}, {"decision": "blocked", "rule": "RATE_LIMIT_EXCEEDED",
                                 "reason": BLOCK_LIMIT, "strikes": 2}),
    Act("a", "PING", {}, {"decision": "allowed", "rule": "PING_OK", "strikes": 2}),
    Act("b", "REFUND", {}, {"decision": "allowed", "cumulative": 5, "strikes": 0}),
    Reset("a"),
    Act("a", "REFUND", {}, {"decision": "allowed", "cumulative": 5, "strikes": 0}),
    Act("a", "REFUND", {}, {"decision": "allowed", "cumulative": 10}),
    Act("a", "REFUND", {}, {"decision": "blocked", "rule": "RATE_LIMIT_EXCEEDED",
                            "reason": RULE_LIMIT, "strikes": 1}),
]


SMALL = {"amount": 10}
LARGE = {"amount": 5000}

# docs/language.md, "Agent groups": the first group one of whose patterns matches the id; a
# trailing `*` is a prefix; an operator's assignment wins, survives a reset, and `none`
# clears it; the group's settings replace the header's.
GROUP_STEPS: list[Step] = [
    Act("ops-7", "ISSUE_REFUND", SMALL, {"decision": "allowed", "group": "trusted",
                                         "cumulative": 60}),
    Act("ops-7", "ISSUE_REFUND", SMALL, {"decision": "allowed", "cumulative": 120}),
    Act("ops-7", "ISSUE_REFUND", SMALL, {"decision": "allowed", "cumulative": 180}),
    Act("ops-7", "ISSUE_REFUND", SMALL, {
        "decision": "blocked", "rule": "RISK_THRESHOLD_EXCEEDED", "strikes": 1,
        "reason": "Projected risk would reach 240/200. Action blocked before execution."}),
    Act("ops-7", "ISSUE_REFUND", LARGE, {"decision": "blocked", "rule": "REFUND_TOO_LARGE",
                                         "reason": "Refund of 5000 is too large.",
                                         "strikes": 2}),
    Act("ops-7", "ISSUE_REFUND", LARGE, {"decision": "blocked", "strikes": 3}),
    Act("ops-7", "ISSUE_REFUND", LARGE, {"decision": "blocked", "strikes": 4}),
    Act("ops-7", "ISSUE_REFUND", LARGE, {
        "decision": "shutdown", "rule": "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS", "strikes": 5,
        "reason": "Agent shut down after 5 blocked attempts. Cumulative risk remains 180/200."}),
    Act("new-1", "ISSUE_REFUND", LARGE, {"decision": "shutdown", "group": "new", "strikes": 1,
                                         "rule": "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS"}),
    Act("new-2", "ISSUE_REFUND", SMALL, {"decision": "allowed", "cumulative": 60}),
    Act("new-2", "ISSUE_REFUND", SMALL, {"decision": "shutdown", "projected": 120,
                                         "group": "new"}),
    Act("ops-70", "ISSUE_REFUND", SMALL, {"decision": "allowed", "group": "", "cumulative": 60}),
    Act("ops-70", "ISSUE_REFUND", SMALL, {"decision": "blocked", "projected": 120,
                                          "rule": "RISK_THRESHOLD_EXCEEDED"}),
    Act("senior-", "ISSUE_REFUND", SMALL, {"decision": "allowed", "group": "trusted"}),
    Assign("ops-70", "trusted"),
    Act("ops-70", "ISSUE_REFUND", SMALL, {"decision": "allowed", "group": "trusted",
                                          "cumulative": 120, "strikes": 1}),
    Reset("ops-70"),
    Act("ops-70", "ISSUE_REFUND", SMALL, {"decision": "allowed", "group": "trusted",
                                          "cumulative": 60, "strikes": 0}),
    Act("ops-70", "ISSUE_REFUND", SMALL, {"decision": "allowed", "cumulative": 120}),
    After("1h"),                                                  # trusted decay: 50 per 1h
    Act("ops-70", "ISSUE_REFUND", SMALL, {"decision": "allowed", "decayed": 50,
                                          "cumulative": 130}),
    Assign("ops-70", None),
    Act("ops-70", "ISSUE_REFUND", SMALL, {"decision": "blocked", "group": "", "decayed": 0,
                                          "projected": 190, "cumulative": 130}),
    Assign("new-9", "trusted"),
    Act("new-9", "ISSUE_REFUND", LARGE, {"decision": "blocked", "group": "trusted",
                                         "strikes": 1}),
]

REVIEW = """policy refunds version "1" {
  risk_threshold 100
  review_timeout 1h
}

input {
  amount: number = 0
}

action ISSUE_REFUND {
  when amount > 500
    review risk 30 as REVIEW_LARGE_REFUND threat "Financial Overreach"
      "Refund of {amount} needs a human."
      expires 2h
  when amount > 100 review risk 10 as REVIEW_REFUND "Refund of {amount} needs a human."
  allow risk 5 as SMALL_REFUND "Small refund."
}

action TAKE_RISK {
  allow risk 60 as RISKY "Risky."
}

action BAD {
  block as BAD_RULE "Never."
}

otherwise block as OTHER "Other."
"""

BIG = {"amount": 700}
MID = {"amount": 200}

# docs/language.md and docs/runtime.md, "Review": the review decision changes nothing; the
# approval is the rule's allow decided at approval (risk applied then, the threshold checked
# then); a denial is a strike; a ticket expires at its rule's `expires`, else the policy's
# `review_timeout`; an approval of a shut-down agent is `blocked`; a reset cancels.
REVIEW_STEPS: list[Step] = [
    Act("a", "ISSUE_REFUND", BIG, {"decision": "review", "rule": "REVIEW_LARGE_REFUND",
                                   "risk": 30, "applied": 0, "projected": 30, "cumulative": 0,
                                   "strikes": 0, "threat": "Financial Overreach",
                                   "reason": "Refund of 700 needs a human."}, name="big"),
    Ticket("big", "pending"),
    Verdict("big", True, "alice", {"decision": "allowed", "rule": "REVIEW_LARGE_REFUND",
                                   "applied": 30, "cumulative": 30,
                                   "reason": "Approved by `alice` after review: verified"},
            note="verified"),
    Ticket("big", "approved"),
    Act("a", "ISSUE_REFUND", MID, {"decision": "review", "rule": "REVIEW_REFUND"}, name="r2"),
    Verdict("r2", False, "bob", {"decision": "blocked", "rule": "REVIEW_REFUND", "strikes": 1,
                                 "cumulative": 30, "reason": "Denied by `bob` after review."}),
    Ticket("r2", "denied"),
    Act("a", "ISSUE_REFUND", MID, {"decision": "review"}, name="r3"),
    After("59m"),
    Ticket("r3", "pending"),
    After("1m"),
    Ticket("r3", "expired"),
    Act("a", "ISSUE_REFUND", BIG, {"decision": "review", "projected": 60}, name="r4"),
    After("1h"),
    Ticket("r4", "pending"),                                  # its rule gives 2h
    Act("a", "TAKE_RISK", {}, {"decision": "allowed", "cumulative": 90}),
    Verdict("r4", True, "carol", {"decision": "blocked", "rule": "RISK_THRESHOLD_EXCEEDED",
                                  "projected": 120, "cumulative": 90, "strikes": 2}),
    Ticket("r4", "blocked"),
    Act("a", "ISSUE_REFUND", MID, {"decision": "review"}, name="r5"),
    Act("a", "BAD", {}, {"decision": "shutdown", "rule": "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS",
                         "strikes": 3}),
    Verdict("r5", True, "alice", {"decision": "shutdown", "rule": "AGENT_ALREADY_SHUT_DOWN"}),
    Ticket("r5", "blocked"),
    Act("a", "ISSUE_REFUND", MID, {"decision": "shutdown", "rule": "AGENT_ALREADY_SHUT_DOWN"}),
    Act("b", "ISSUE_REFUND", MID, {"decision": "review"}, name="r6"),
    Reset("b"),
    Ticket("r6", "cancelled"),
    Act("b", "ISSUE_REFUND", {"amount": 50}, {"decision": "allowed", "rule": "SMALL_REFUND",
                                              "cumulative": 5}),
]

KNOWN = {
    "threshold": Known(THRESHOLD, THRESHOLD_STEPS),
    "decay": Known(DECAY, DECAY_STEPS),
    "limits": Known(LIMITS, LIMIT_STEPS),
    "groups": Known(GROUPS, GROUP_STEPS),
    "review": Known(REVIEW, REVIEW_STEPS),
}


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_the_engine_gives_the_hand_answers(name: str, tmp_path: Path) -> None:
    drive_engine(KNOWN[name], tmp_path)


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_the_runner_passes_the_hand_answers(name: str, tmp_path: Path) -> None:
    assert_suite_passes(tmp_path, KNOWN[name].policy, suite_text(KNOWN[name], name))


OTHER_VALUE = {"active": "shut_down", "shut_down": "active", "trusted": "new", "new": "",
               "": "trusted", "allowed": "blocked", "blocked": "allowed", "review": "blocked",
               "shutdown": "blocked", "pending": "expired", "expired": "pending",
               "approved": "denied", "denied": "approved", "cancelled": "pending"}


def _changed(key: str, value: Any) -> Any:
    if key == "rule":
        return "RISK_THRESHOLD_EXCEEDED" if value != "RISK_THRESHOLD_EXCEEDED" else "UNKNOWN"
    if key == "threat":
        return "Something Else" if value is not None else "Policy Violation"
    if isinstance(value, int):
        return value + 1
    if value in OTHER_VALUE:
        return OTHER_VALUE[value]
    return value + "!"


def mutants(known: Known) -> list[tuple[str, Known]]:
    """The scenario with exactly one expectation changed, every way."""
    found: list[tuple[str, Known]] = []
    for index, step in enumerate(known.steps):
        expectations: dict[str, Any]
        if isinstance(step, (Act, State, Verdict)):
            expectations = step.expect
        elif isinstance(step, Ticket):
            expectations = {"status": step.status}
        else:
            continue
        for key, value in expectations.items():
            new = {**expectations, key: _changed(key, value)}
            changed: Step
            if isinstance(step, Ticket):
                changed = Ticket(step.ticket, new["status"])
            elif isinstance(step, Act):
                changed = Act(step.agent, step.action, step.fields, new, step.name)
            elif isinstance(step, State):
                changed = State(step.agent, new)
            else:
                changed = Verdict(step.ticket, step.approve, step.operator, new, step.note)
            steps = [*known.steps[:index], changed, *known.steps[index + 1:]]
            found.append((f"step {index + 1} {key}", Known(known.policy, steps)))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(KNOWN))
def test_the_runner_fails_every_changed_hand_answer(name: str, tmp_path: Path) -> None:
    """Each expectation is checked: changing any one of them makes the suite fail (exit 1) or
    be refused (exit 2), never pass."""
    passed = []
    for label, mutant in mutants(KNOWN[name]):
        code, report = run_suite(tmp_path, mutant.policy, suite_text(mutant, name))
        if code == 0 or "passed" in outcomes(report):
            passed.append((label, suite_text(mutant)))
    assert not passed


def test_coverage_counts_are_the_hand_counts(tmp_path: Path) -> None:
    """Rule hits and limit counts of the known scenarios, counted by hand: a rule's row that
    matched (also when the threshold or a limit then blocked; a review rule when it held the
    action), never an already-shut-down agent's decision; a limit counts allowed decisions."""
    _, report = run_suite(tmp_path, LIMITS, suite_text(KNOWN["limits"]))
    [policy] = report["coverage"]["policies"]
    assert {rule: entry["hits"] for rule, entry in policy["rules"].items()} == \
        {"REFUND_OK": 9, "PING_OK": 1, "UNKNOWN": 0}
    assert [(limit["for"], limit["counted"], limit["reached"]) for limit in policy["limits"]] \
        == [("`REFUND_OK`", 6, 2), ("`REFUND`, `REFUND_PART`", 6, 1)]
    _, report = run_suite(tmp_path, REVIEW, suite_text(KNOWN["review"]))
    [policy] = report["coverage"]["policies"]
    assert {rule: entry["hits"] for rule, entry in policy["rules"].items()} == {
        "REVIEW_LARGE_REFUND": 2, "REVIEW_REFUND": 4, "SMALL_REFUND": 1, "RISKY": 1,
        "BAD_RULE": 1, "OTHER": 0}
    _, report = run_suite(tmp_path, THRESHOLD, suite_text(KNOWN["threshold"]))
    [policy] = report["coverage"]["policies"]
    assert {rule: entry["hits"] for rule, entry in policy["rules"].items()} == {
        "A_OK": 3, "B_OK": 2, "C_NO": 2, "Z_OK": 1, "W_STOP": 1, "UNKNOWN": 1}


# ---------------------------------------------------------- suites that pass when they should not

def test_a_scenario_without_steps_is_an_error(tmp_path: Path) -> None:
    """An empty scenario checked nothing and passed."""
    report = assert_suite_error(tmp_path, THRESHOLD, 'suite "s" for "p.sentra"\n'
                                'scenario "empty" {}\n', "SL511")
    [found] = [d for d in report["diagnostics"] if d["code"] == "SL511"]
    assert "empty" in found["message"] and found["line"] == 2


@pytest.mark.parametrize("steps", [
    'reset "a"\n  after 1h',
    'assign "a" group none',
])
def test_a_scenario_that_checks_nothing_is_an_error(tmp_path: Path, steps: str) -> None:
    """Steps that only act (reset, after, assign) check nothing: the
    scenario passed whatever the policy said."""
    policy = GROUPS if "assign" in steps else THRESHOLD
    assert_suite_error(tmp_path, policy, 'suite "s" for "p.sentra"\n'
                       f'scenario "idle" {{\n  {steps}\n}}\n', "SL511")


def test_a_cases_table_without_rows_is_an_error(tmp_path: Path) -> None:
    assert_suite_error(tmp_path, THRESHOLD, 'suite "s" for "p.sentra"\n'
                       'scenario "one" {\n  agent "a" A -> allowed\n}\n'
                       'cases "none" A {\n  with n\n}\n', "SL511")


def test_reason_contains_nothing_is_an_error(tmp_path: Path) -> None:
    """`reason contains ""` holds for every decision."""
    assert_suite_error(tmp_path, THRESHOLD, 'suite "s" for "p.sentra"\n'
                       'scenario "x" {\n  agent "a" A -> allowed reason contains ""\n}\n',
                       "SL509")


def test_a_ticket_name_given_twice_is_an_error(tmp_path: Path) -> None:
    """The second `as big` silently renamed: `approve big` judged the later ticket."""
    suite = ('suite "s" for "p.sentra"\nscenario "x" {\n'
             '  agent "a" ISSUE_REFUND { amount: 700 } -> review as big\n'
             '  agent "a" ISSUE_REFUND { amount: 200 } -> review as big\n'
             '  approve big by "alice" -> allowed\n}\n')
    assert_suite_error(tmp_path, REVIEW, suite, "SL509")


NUMBERS_POLICY = """policy numbers version "1" {}

input {
  n: int = 0
}

action A {
  when n > 5 block as A_BIG "Big."
  allow as A_OK "Fine."
}

action B {
  allow as B_OK "Fine."
}

otherwise block as UNKNOWN "Not covered."
"""


def test_a_property_where_allowing_nothing_is_reported(tmp_path: Path) -> None:
    code, report = run_suite(tmp_path, NUMBERS_POLICY, 'suite "s" for "p.sentra"\n'
                             'property "vacuous" A where n > 5 and n < 3 -> never allowed\n')
    [result] = report["results"]
    assert code == 1 and result["outcome"] == "error", report
    assert "`where` allows no input" in result["failure"]["message"]


def test_a_property_about_a_rule_its_actions_never_reach_is_refused(tmp_path: Path) -> None:
    """`A -> never rule B_OK` held vacuously: B_OK never decides A."""
    assert_suite_error(tmp_path, NUMBERS_POLICY, 'suite "s" for "p.sentra"\n'
                       'property "p" A -> never rule B_OK\n', "SL504")
    assert_suite_passes(tmp_path, NUMBERS_POLICY, 'suite "s" for "p.sentra"\n'
                        'property "p" A, B where n > 5 -> never rule A_OK\n'
                        'property "q" A -> never rule RISK_THRESHOLD_EXCEEDED\n')


LIMITED_PINGS = """policy pings version "1" {
  risk_threshold 200
  strikes 30
}

group new {
  agents "new-*"
  risk_threshold 100
}

group quarantine {
  strikes 1
}

action PING {
  allow as PING_OK limit 2 per 1h "Pong."
}

action BIG {
  allow risk 150 as BIG_OK "Big."
}

action BAD {
  block as BAD_RULE "Never."
}

otherwise block as UNKNOWN "Not covered."
"""


def test_a_sequence_proof_counts_rate_limit_windows(tmp_path: Path) -> None:
    """`sequence PING -> never blocked` was `proved` after one PING: a PING leaves risk,
    strikes and status as they were, so the proof never tried a third, which the limit
    blocks."""
    report = assert_suite_fails(tmp_path, LIMITED_PINGS, 'suite "s" for "p.sentra"\n'
                                'property "pings" sequence PING -> never blocked\n')
    [result] = report["results"]
    assert result["failure"]["decision"]["rule_id"] == "RATE_LIMIT_EXCEEDED"
    assert result["failure"]["details"][1:] == ["  agent `new-` (in group `new`)",
                                                *["  PING {}"] * 3]


@pytest.mark.parametrize("prop", [
    "property \"big\" BIG -> never blocked",              # `new-*` agents: threshold 100
    "property \"bad\" BAD -> never shutdown",             # `quarantine` (assigned): strikes 1
    "property \"bad\" sequence BAD, PING -> never shutdown",
])
def test_a_property_is_proved_for_an_agent_of_every_group(tmp_path: Path, prop: str) -> None:
    """A proof decided for one agent id, in no group, and said `proved`: an agent of a group
    with a lower threshold or fewer strikes gets another decision."""
    assert_suite_fails(tmp_path, LIMITED_PINGS, f'suite "s" for "p.sentra"\n{prop}\n')


# ------------------------------------------------------------------------------- coverage

ARITHMETIC = """policy ar version "1" {}

input {
  amount: number = 0
  items: int = 1
}

action R {
  when amount / items > 200 block as PER_ITEM "Too much per item."
  allow as R_OK "Fine."
}

otherwise block as UNKNOWN "Not covered."
"""


def test_an_undetermined_test_is_not_seen_false(tmp_path: Path) -> None:
    """`amount / items > 200` with items 0 is undetermined (ARITHMETIC_ERROR): coverage said
    its false outcome was seen."""
    _, report = run_suite(tmp_path, ARITHMETIC, 'suite "s" for "p.sentra"\nscenario "x" {\n'
                          '  agent "a" R { amount: 5, items: 0 } -> blocked rule '
                          'ARITHMETIC_ERROR\n}\n')
    [policy] = report["coverage"]["policies"]
    assert policy["rows"][0]["tests"] == [{"test": "amount / items > 200", "seen_true": False,
                                           "seen_false": False}]
    assert (policy["conditions_covered"], policy["rules_covered"]) == (0, 0)


REVIEW_LIMIT = """policy rv version "1" {}

action REFUND {
  limit 1 per 1h
  review risk 10 as REVIEW_REFUND "Needs a human."
}

otherwise block as UNKNOWN "Not covered."
"""


def test_limits_counted_and_reached_by_approvals_are_covered(tmp_path: Path) -> None:
    """An approval counts in its action's limits and may be blocked by one: coverage saw
    neither (`counted 0, reached 0`)."""
    _, report = run_suite(tmp_path, REVIEW_LIMIT, 'suite "s" for "p.sentra"\nscenario "x" {\n'
                          '  agent "a" REFUND -> review as t1\n'
                          '  agent "a" REFUND -> review as t2\n'
                          '  approve t1 by "alice" -> allowed\n'
                          '  approve t2 by "alice" -> blocked rule RATE_LIMIT_EXCEEDED\n}\n')
    [policy] = report["coverage"]["policies"]
    assert policy["limits"] == [{"limit": "1 per 1h", "for": "`REFUND`", "counted": 1,
                                 "reached": 1}]
    assert policy["rules"]["REVIEW_REFUND"]["hits"] == 2


POLICIES = Path(__file__).resolve().parents[2] / "policies"


def test_the_shipped_suites_full_coverage_stands_on_real_decisions(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rule the shipped suites report covered was the rule of a real decision of the
    runtime: the decision's own rule id (a held review's too), or the allow rule the threshold
    or a limit then blocked, as its explanation says; never an already-shut-down agent's."""
    from sentra_lang.testing.runner import Runner

    decided: set[str] = set()
    evaluate = Engine.evaluate

    def spy(self: Engine, *args: Any, **kwargs: Any) -> Any:
        decision = evaluate(self, *args, **kwargs)
        if decision.rule_id in ("RISK_THRESHOLD_EXCEEDED", "RATE_LIMIT_EXCEEDED",
                                "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS"):
            decided.add(decision.explanation.matched_rule)
        elif decision.rule_id != "AGENT_ALREADY_SHUT_DOWN":
            decided.add(decision.rule_id)
        return decision

    monkeypatch.setattr(Engine, "evaluate", spy)
    run = Runner().run_paths([POLICIES])
    assert run.exit_code == 0 and len(run.coverage) == 3
    for coverage in run.coverage:
        covered = {rule.id for rule in coverage.rules.values() if rule.covered}
        assert coverage.percent == 100.0 and covered == set(coverage.rules)
        assert covered <= decided, covered - decided
        assert all(limit.counted and limit.reached for limit in coverage.limits.values())


# ---------------------------------------------------------------------------------- replay

MIXED = """policy mixed version "1" {
  risk_threshold 100
  strikes 3
  risk_decay 10 per 1h
  review_timeout 1h
}

group trusted {
  agents "ops-*"
  risk_threshold 150
  limit 4 per 1h
}

input {
  amount: int = 0
}

action REFUND {
  limit 3 per 1h
  when amount > 500 review risk 30 as REVIEW_BIG "Refund of {amount} needs a human."
  when amount > 100 block risk 20 as TOO_MUCH "Refund of {amount} refused."
  allow risk 25 as REFUND_OK "Refund of {amount}."
}

otherwise block as UNKNOWN "Not covered."
"""


def mixed_log(tmp_path: Path) -> tuple[Path, Path]:
    """A real engine on a real SQLite file records traffic that exercises decay, limits,
    review verdicts (approved, denied, expired, cancelled), group assignments and resets, at
    times an injected clock gives; and its JSON Lines export."""
    from sentra_runtime import SQLiteStore

    (tmp_path / "mixed.sentra").write_text(MIXED, "utf-8")
    db = tmp_path / "mixed.db"
    clock = Clock()
    engine = Engine(load(tmp_path / "mixed.sentra").policy, SQLiteStore(db), clock=clock)

    def act(agent: str, amount: int, minutes: float = 0) -> Any:
        clock.now += minutes * 60
        return engine.evaluate(agent, "REFUND", {"amount": amount})

    for _ in range(4):
        act("a", 10, 5)                                  # the fourth over the block's limit
    act("a", 200)                                        # TOO_MUCH: a strike
    held = act("a", 900, 61)                             # decayed, then held
    engine.review(held.ticket, True, operator="alice", note="ok")
    denied = act("a", 900, 1)
    engine.review(denied.ticket, False, operator="bob")
    act("a", 900, 2)                                     # expires below
    clock.now += 3600
    engine.tickets()                                     # the expiry is recorded
    act("ops-1", 10)
    engine.assign_group("b", "trusted", operator="carol")
    for _ in range(5):
        act("b", 10, 1)                                  # the group's and block's limits
    act("b", 900)                                        # cancelled by the reset
    engine.reset("b", operator="carol")
    act("b", 10, 30)
    act("c", 10)
    engine.assign_group("c", "trusted", operator="carol")
    engine.assign_group("c", None, operator="carol")
    act("c", 200, 600)
    engine.reset(operator="dave")
    act("a", 10, 1)
    export = tmp_path / "mixed.jsonl"
    with open(export, "w", encoding="utf-8") as out:
        engine.store.export_audit(out)
    engine.close()
    return db, export


STATE_KEYS = ("label", "rule_id", "attempted_risk", "applied_risk", "projected_risk",
              "cumulative_risk", "blocked_attempts", "status", "decayed", "group", "reason")


def test_replay_with_the_recording_policy_reproduces_every_decision_exactly(
        tmp_path: Path) -> None:
    """Re-decided at the recorded times, with the recorded assignments, resets and verdicts,
    every decision and verdict equals the recorded one, state included."""
    from sentra_lang.testing.replay import read_records, replay

    db, export = mixed_log(tmp_path)
    policy = load(tmp_path / "mixed.sentra").policy
    for source in (db, export):
        result = replay(read_records(source), policy, keep_steps=True)
        assert (result.changed, result.unreviewed) == (0, 0)
        compared = 0
        for record, new in result.steps:
            if new is None:
                continue
            old = record["decision"]
            got = new.to_dict()
            assert {k: old.get(k) for k in STATE_KEYS if k != "reason" or
                    record["kind"] == "decision"} == \
                   {k: got.get(k) for k in STATE_KEYS if k != "reason" or
                    record["kind"] == "decision"}, record
            compared += 1
        assert compared == 21 and result.verdicts == 2 and result.resets == 2
    assert main(["replay", str(db), "--policy", str(tmp_path / "mixed.sentra")]) == 0


def _edited(export: Path, target: Path, edit: Any) -> Path:
    """The export with `edit(records)` applied to its parsed lines."""
    records = [json.loads(line) for line in export.read_text("utf-8").splitlines()]
    edit(records)
    target.write_text("".join(json.dumps(r) + "\n" for r in records), "utf-8")
    return target


def _first(records: list[dict[str, Any]], kind: str, **match: Any) -> dict[str, Any]:
    return next(r for r in records if r.get("kind") == kind
                and all(r.get(k) == v for k, v in match.items()))


def _swap(records: list[dict[str, Any]]) -> None:
    index = [i for i, r in enumerate(records) if r.get("kind") == "decision"]
    records[index[3]], records[index[4]] = records[index[4]], records[index[3]]


def _drop(records: list[dict[str, Any]]) -> None:
    records.remove(_first(records, "decision", agent="a"))


def _repeat(records: list[dict[str, Any]]) -> None:
    record = _first(records, "decision", agent="b")
    records.insert(records.index(record), record)


HOSTILE_LOGS = {
    # each of these replayed silently (exit 0, or changes that were never made) before
    "unknown verdict": (lambda rs: _first(rs, "review", verdict="approved").update(
        verdict="maybe"), "verdict `maybe` is none of"),
    "group record without an agent id": (lambda rs: _first(rs, "group").update(agent=5),
                                         "group record whose agent is not a string"),
    "group that is not a name": (lambda rs: _first(rs, "group").update(group=7),
                                 "group record whose agent is not a string"),
    "unreadable time": (lambda rs: _first(rs, "decision").update(time="yesterday"),
                        "time is not a UTC timestamp"),
    "label that is not text": (lambda rs: _first(rs, "decision")["decision"].update(label={}),
                               "decision has a bad label"),
    "rule id that is a list": (lambda rs: _first(rs, "decision")["decision"].update(
        rule_id=["X"]), "decision has a bad rule_id"),
    "ticket that is a number": (lambda rs: next(r for r in rs if r.get("kind") == "decision"
                                                and r["decision"].get("ticket"))["decision"]
                                .update(ticket=5), "decision has a bad ticket"),
    "two records swapped": (_swap, "records are missing or out of order"),
    "a record deleted": (_drop, "records are missing or out of order"),
    "a record repeated": (_repeat, "records are missing or out of order"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_LOGS))
def test_replay_refuses_a_log_it_cannot_replay_as_recorded(tmp_path: Path, case: str,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    """A hostile or damaged export exits 2 with its line and what is wrong, nothing replayed:
    an unknown verdict was replayed as a denial, a malformed group record was skipped, an
    unreadable time kept the previous one, a reordered or cut log re-decided other traffic."""
    _, export = mixed_log(tmp_path)
    edit, message = HOSTILE_LOGS[case]
    log = _edited(export, tmp_path / "hostile.jsonl", edit)
    capsys.readouterr()
    assert main(["replay", str(log), "--policy", str(tmp_path / "mixed.sentra")]) == 2
    err = capsys.readouterr().err
    assert f"{log}:" in err and message in err and "Traceback" not in err, err


def test_replay_refuses_an_sqlite_log_with_a_deleted_record(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    import sqlite3

    db, _ = mixed_log(tmp_path)
    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM audit WHERE seq = 5")
    connection.close()
    assert main(["replay", str(db), "--policy", str(tmp_path / "mixed.sentra")]) == 2
    assert "record seq 6 follows seq 4" in capsys.readouterr().err
