"""Replay: re-decide every recorded decision of an audit log, in order, with another policy on
fresh state, and report the decisions that change, grouped and counted."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentra_runtime import Engine, jsontext, load_policy, review
from sentra_runtime.audit import parse_timestamp_us
from sentra_runtime.policy import duration_text
from sentra_runtime.stores.sqlite import is_sqlite_file, read_audit

from sentra_lang.checker import MAX_DURATION
from sentra_lang.diagnostics import visible, visible_json
from sentra_lang.files import write_atomically
from sentra_lang.testing.runner import OPERATOR, ScenarioStore

EXAMPLES_PER_GROUP = 3
_WORD = {"allow": "allowed", "block": "blocked", "shutdown": "shutdown", "review": "review"}
_APPROVALS = frozenset({review.APPROVED, review.BLOCKED})
"""The verdicts an approval leads to (a denial leads to ``denied``)."""


@dataclass
class Change:
    seq: int | None
    agent: str
    action: str
    old: dict[str, Any]
    new: Any


@dataclass
class Group:
    key: tuple[str, str, str, str, str]
    """(kind, old label, old rule, new label, new rule)"""
    count: int = 0
    examples: list[Change] = field(default_factory=list)


@dataclass
class ReplayResult:
    decisions: int = 0
    resets: int = 0
    verdicts: int = 0
    """Operators' verdicts replayed (on the tickets the new policy's decisions made)."""
    unreviewed: int = 0
    """Recorded verdicts with nothing to judge now: the new policy did not hold that decision
    for review, or its ticket was no longer pending (expired under another timeout)."""
    changed: int = 0
    groups: dict[tuple[str, str, str, str, str], Group] = field(default_factory=dict)
    steps: list[tuple[dict[str, Any], Any]] = field(default_factory=list)
    """(record, new decision or None for a reset), kept for --to-suite; for a verdict, the
    record and the new decision with the new ticket's name in the suite."""
    timed: bool = False
    """Whether the policy's decisions depend on time (``risk_decay``): --to-suite then writes
    the recorded time between steps as `after` steps."""
    groups_declared: tuple[str, ...] = ()
    """The groups the replayed policy declares (a recorded assignment to another is inert)."""


class AuditLogError(Exception):
    """The file is not a sentra audit log (or not all of it is); the message says where."""


DECISION_KEYS = ("allowed", "outcome", "label", "rule_id", "attempted_risk", "applied_risk")


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Audit records from a runtime SQLite store file or its JSON Lines export.

    Records are checked as they are read: one that cannot be replayed, or that does not follow
    the one before it (its seq one more), raises `AuditLogError` naming its line (JSON Lines)
    or seq (SQLite)."""
    order = _Order()
    if is_sqlite_file(path):
        return _read_sqlite(path, order)
    return _read_jsonl(path, order)


class _Order:
    """The seq of the last record read: a log replays only as it was recorded, each record
    one after the other (a reordered log, a deleted or a repeated record would re-decide
    other traffic). A record without a seq (written by hand) is not checked."""

    def __init__(self) -> None:
        self.last: int | None = None

    def check(self, record: dict[str, Any], where: str) -> None:
        seq = record.get("seq")
        if record.get("kind") in _NOT_RECORDS or not isinstance(seq, int) or \
                isinstance(seq, bool):
            return
        if self.last is not None and seq != self.last + 1:
            raise AuditLogError(f"{where}: record seq {seq} follows seq {self.last}: records "
                                "are missing or out of order (`sentra-lang audit verify` says "
                                "what changed)")
        self.last = seq


_NOT_RECORDS = frozenset({"state", "head"})
"""What an export writes after the log: each agent's state and the head."""


def _read_sqlite(path: str | Path, order: _Order) -> Iterator[dict[str, Any]]:
    try:
        for record in read_audit(path):
            seq = record.get("seq") if isinstance(record, dict) else None
            yield _checked(record, f"{path}: record seq {seq}", order)
    except sqlite3.Error as error:
        if "no such table" in str(error) or "no such column" in str(error):
            raise AuditLogError(f"{path} is an SQLite database without a sentra audit log "
                                "(no `audit` table): give the --db file of `sentra-lang serve` "
                                "or a runtime store") from error
        raise AuditLogError(f"cannot read the audit log in {path}: {error}") from error


def _read_jsonl(path: str | Path, order: _Order) -> Iterator[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    record = jsontext.loads(line)
                except jsontext.JSONTextError as error:
                    raise AuditLogError(f"{where}: not a JSON audit record ({error}); is the "
                                        "file truncated?") from None
                yield _checked(record, where, order)
    except UnicodeDecodeError as error:
        raise AuditLogError(f"{path} is neither an SQLite audit database nor a JSON Lines "
                            "export (it is not UTF-8 text)") from error
    except OSError as error:
        raise AuditLogError(f"cannot read {path}: {error.strerror or error}") from error


def _checked(record: Any, where: str, order: _Order) -> dict[str, Any]:
    """`record` if it can be replayed, else `AuditLogError` saying what is wrong at `where`."""
    if not isinstance(record, dict) or "unparsable" in record:
        raise AuditLogError(f"{where}: not an audit record (a JSON object with kind, agent, "
                            "action, input and decision)")
    kind = record.get("kind")
    if not isinstance(kind, str):
        raise AuditLogError(f"{where}: not an audit record (no `kind`)")
    problem = _problem(kind, record)
    if problem is not None:
        raise AuditLogError(f"{where}: {problem}")
    order.check(record, where)
    return record


def _problem(kind: str, record: dict[str, Any]) -> str | None:
    """What makes a record of `kind` impossible to replay as recorded, or None."""
    if "time" in record and kind not in _NOT_RECORDS \
            and parse_timestamp_us(record["time"]) is None:
        return f"{kind} record whose time is not a UTC timestamp"
    if kind == "reset" and not isinstance(record.get("agent"), (str, type(None))):
        return "reset record whose agent is not a string"
    if kind == "group" and not (isinstance(record.get("agent"), str)
                                and isinstance(record.get("group"), (str, type(None)))):
        return "group record whose agent is not a string, or whose group is not a string or null"
    if kind == "review":
        return _review_problem(record)
    if kind != "decision":
        return None
    missing = [key for key in ("agent", "action", "decision") if key not in record]
    if missing:
        return f"decision record without {', '.join(missing)}"
    if not isinstance(record["agent"], str) or not isinstance(record["action"], str):
        return "decision record whose agent or action is not a string"
    if not isinstance(record.get("input") or {}, dict):
        return "decision record whose input is not an object"
    return _decision_problem("decision", record["decision"])


def _review_problem(record: dict[str, Any]) -> str | None:
    if not (isinstance(record.get("ticket"), str)
            and isinstance(record.get("verdict"), str)
            and isinstance(record.get("decision"), (dict, type(None)))):
        return "review record without a ticket and a verdict"
    if record["verdict"] not in review.STATUSES:
        return (f"review record whose verdict `{visible(record['verdict'])}` is none of "
                f"{', '.join(review.STATUSES)}")
    return None if record["decision"] is None else _decision_problem("review",
                                                                     record["decision"])


_DECISION_TYPES: dict[str, tuple[type, ...]] = {
    "allowed": (bool,), "outcome": (str,), "label": (str,), "rule_id": (str,),
    "attempted_risk": (int,), "applied_risk": (int,)}


def _decision_problem(kind: str, decision: Any) -> str | None:
    """What is wrong with a recorded decision the replay compares (DECISION_KEYS)."""
    if not isinstance(decision, dict) or any(key not in decision for key in DECISION_KEYS):
        return f"{kind} record whose decision lacks {', '.join(DECISION_KEYS)}"
    wrong = [key for key, types in _DECISION_TYPES.items()
             if not isinstance(decision[key], types)
             or (key != "allowed" and isinstance(decision[key], bool))]
    if decision.get("outcome") not in _WORD:
        wrong.append("outcome")
    if not isinstance(decision.get("ticket"), (str, type(None))):
        wrong.append("ticket")
    if wrong:
        return f"{kind} record whose decision has a bad {', '.join(dict.fromkeys(wrong))}"
    return None


def _kind(old: dict[str, Any], new: Any) -> str:
    if old["allowed"] != new.allowed or old["outcome"] != new.outcome:
        return "decision"
    if old["rule_id"] != new.rule_id:
        return "rule"
    if old["attempted_risk"] != new.attempted_risk or old["applied_risk"] != new.applied_risk:
        return "risk"
    return ""


class RecordedClock:
    """The time of the record being replayed (its ``time``), so that time-dependent settings
    (``risk_decay``) see the times the log recorded; a record without a readable time keeps the
    previous one."""

    def __init__(self, *, suite_timeline: bool = False) -> None:
        self.now = 0.0
        self.suite_timeline = suite_timeline
        """Follow the times a written suite gives the steps instead: whole seconds, and a clock
        that went back stands still (as `write_suite` writes its `after` steps)."""

    def __call__(self) -> float:
        return self.now

    def follow(self, record: dict[str, Any]) -> None:
        micros = parse_timestamp_us(record.get("time"))
        if micros is None:
            return
        if self.suite_timeline:
            self.now = max(self.now, float(micros // 1_000_000))
        else:
            self.now = micros / 1_000_000


def replay(records: Iterable[dict[str, Any]], policy: Any, *, keep_steps: bool = False,
           suite_timeline: bool = False) -> ReplayResult:
    """Re-decide ``records`` with ``policy`` at their recorded times, or (``suite_timeline``)
    at the times the suite `write_suite` writes gives them, so that its expectations are the
    decisions `sentra-lang test` makes."""
    store = ScenarioStore()
    clock = RecordedClock(suite_timeline=suite_timeline)
    engine = Engine(load_policy(policy), store, clock=clock)
    result = ReplayResult(timed=engine.decider.decays or engine.decider.limited
                          or engine.policy.reviews,
                          groups_declared=tuple(g.name for g in engine.policy.groups))
    groups = result.groups
    tickets: dict[str, str] = {}
    """A recorded ticket's id to the ticket the new policy made for the same decision."""
    for record in records:
        clock.follow(record)
        kind = record.get("kind")
        if kind == "reset":
            engine.reset(record.get("agent"), operator=record.get("operator") or OPERATOR)
            result.resets += 1
            if keep_steps:
                result.steps.append((record, None))
            continue
        if kind == "group":
            # the recorded assignment, as it was made (inert when the policy replayed
            # does not declare its group, as after a reload)
            group = record.get("group")
            store.assign_group(record["agent"], group if isinstance(group, str) else None,
                               str(record.get("operator") or OPERATOR), None)
            if keep_steps:
                result.steps.append((record, None))
            continue
        if kind == "review":
            new = _verdict(engine, record, tickets.get(record["ticket"]), result)
            if new is None:
                continue
        elif kind == "decision":
            result.decisions += 1
            new = engine.evaluate(record["agent"], record["action"], record.get("input") or {})
            recorded = record["decision"].get("ticket")
            if isinstance(recorded, str) and new.ticket is not None:
                tickets[recorded] = new.ticket
        else:
            continue
        old = record["decision"]
        if keep_steps:
            result.steps.append((record, new))
        change = _kind(old, new)
        if not change:
            continue
        result.changed += 1
        key = (change, old["label"], old["rule_id"], new.label, new.rule_id)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(key)
        group.count += 1
        if len(group.examples) < EXAMPLES_PER_GROUP:
            group.examples.append(Change(record.get("seq"), record["agent"], record["action"],
                                         old, new))
    return result


def _verdict(engine: Engine, record: dict[str, Any], ticket: str | None,
             result: ReplayResult) -> Any:
    """Replay a recorded step of a review ticket on the ticket the new policy made: the
    operator's verdict again (the new decision), or an expiry (applied when due: ``None``)."""
    verdict = record["verdict"]
    if verdict in (review.EXPIRED, review.CANCELLED):
        if ticket is not None and verdict == review.EXPIRED:
            engine.ticket(ticket)   # expires it, if it is due under the new policy too
        return None
    if record["decision"] is None:
        return None
    if ticket is None:
        result.unreviewed += 1
        return None
    try:
        decision = engine.review(ticket, verdict in _APPROVALS,
                                 operator=record.get("operator") or OPERATOR,
                                 note=record.get("note"))
    except review.TicketError:
        result.unreviewed += 1
        return None
    result.verdicts += 1
    return decision


def render(result: ReplayResult) -> str:
    verdicts = (f", {result.verdicts} operators' verdicts" if result.verdicts or result.unreviewed
                else "")
    lines = [f"replayed {result.decisions} decisions{verdicts} and {result.resets} resets: "
             f"{result.changed} changed"]
    if result.unreviewed:
        lines.append(f"  {result.unreviewed} recorded verdicts had no pending ticket to judge "
                     "(the decision was not held for review, or its ticket expired first)")
    order = {"decision": 0, "rule": 1, "risk": 2}
    for group in sorted(result.groups.values(), key=lambda g: (order[g.key[0]], -g.count, g.key)):
        kind, old_label, old_rule, new_label, new_rule = group.key
        lines.append(f"  {group.count:>6} x {kind}: {old_label} ({old_rule}) -> "
                     f"{new_label} ({new_rule})")
        for change in group.examples:
            risk = ""
            if kind == "risk":
                risk = (f", risk {change.old['attempted_risk']} -> "
                        f"{change.new.attempted_risk}")
            # the agent id and the action are what an agent sent: escaped, so that they can
            # neither forge a line nor drive the terminal
            lines.append(f"           seq {change.seq}: agent {visible(repr(change.agent))} "
                         f"{visible(change.action)}{risk}")
    return "\n".join(lines) + "\n"


def _ticket_name(ticket: str) -> str:
    """A ticket's name in a written suite (a suite name: letters, digits and `_`)."""
    return "t_" + "".join(char if char.isalnum() else "_" for char in ticket)


def _literal(value: Any) -> str:
    """A value as the suite writes it: JSON, with what an agent sent that an editor or a
    terminal would act on or hide escaped (``\\u202e``)."""
    return visible_json(value)


def _assign_line(record: dict[str, Any], declared: set[str]) -> str:
    """A recorded group assignment as a suite step; a comment when the policy replayed does
    not declare the group (the assignment is inert there)."""
    group = record.get("group")
    step = (f"assign {_literal(record['agent'])} group "
            f"{'none' if not isinstance(group, str) else _literal(group)}")
    if isinstance(group, str) and group not in declared:
        return f"  # {step}   (inert: the policy declares no group `{group}`)"
    return f"  {step}"


def _gaps(seconds: int) -> Iterator[int]:
    """``seconds`` as the `after` steps that take it: none longer than a duration may be (a
    recorded clock that jumped more than a century ahead takes several)."""
    while seconds > MAX_DURATION:
        yield MAX_DURATION
        seconds -= MAX_DURATION
    yield seconds


def write_suite(result: ReplayResult, out: Path, policy_file: Path, fields: set[str]) -> None:
    """The recorded traffic as one scenario whose expectations are the new policy's decisions;
    a step whose decision changed carries the recorded one in a comment."""
    try:
        relative = Path(policy_file).resolve().relative_to(out.resolve().parent)
    except ValueError:
        relative = Path(policy_file).resolve()
    lines = ['# Recorded traffic, written by `sentra-lang replay --to-suite`.',
             f'suite "replayed traffic" for {_literal(str(relative))}', "",
             'scenario "recorded traffic" tags [replay] {']
    seconds: int | None = None
    declared = set(result.groups_declared)
    for record, new in result.steps:
        micros = parse_timestamp_us(record.get("time"))
        if result.timed and micros is not None:
            now = micros // 1_000_000
            if seconds is not None and now > seconds:
                lines.extend(f"  after {duration_text(gap)}" for gap in _gaps(now - seconds))
            seconds = now if seconds is None else max(seconds, now)
        if record.get("kind") == "group":
            lines.append(_assign_line(record, declared))
            continue
        if new is None:
            agent = record.get("agent")
            lines.append(f"  reset {'all' if agent is None else _literal(agent)}")
            continue
        if record.get("kind") == "review":
            verb = "approve" if record["verdict"] in _APPROVALS else "deny"
            note = "" if not record.get("note") else f" note {_literal(record['note'])}"
            lines.append(f"  {verb} {_ticket_name(new.ticket)} by "
                         f"{_literal(record.get('operator') or OPERATOR)}{note} -> "
                         f"{_WORD[new.outcome]} rule {new.rule_id} cumulative "
                         f"{new.cumulative_risk} strikes {new.blocked_attempts}")
            continue
        given = {k: v for k, v in (record.get("input") or {}).items() if k in fields}
        body = ", ".join(f"{k}: {_literal(v)}" for k, v in sorted(given.items()))
        word = _WORD[new.outcome]
        old = record["decision"]
        note = ""
        if _kind(old, new):
            note = f"   # recorded: {old['label']} ({old['rule_id']})"
        lines.append(f"  agent {_literal(record['agent'])} {_literal(record['action'])}"
                     f"{' { ' + body + ' }' if body else ''} -> {word} rule {new.rule_id} "
                     f"cumulative {new.cumulative_risk} strikes {new.blocked_attempts}"
                     f"{'' if new.ticket is None else ' as ' + _ticket_name(new.ticket)}{note}")
    lines.append("}")
    write_atomically(out, "\n".join(lines) + "\n")
