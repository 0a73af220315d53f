"""The audit log: one record per decision, reset and policy load, linked by a hash chain.

Each record carries ``seq`` (1, 2, 3, ...), ``prev`` (the previous record's hash, ``null`` for
the first) and ``hash``: ``sha256:`` + hex SHA-256 of the canonical JSON of the record without its
``hash`` key. Editing, deleting, inserting or reordering records breaks the chain at a seq that
:func:`verify_records` reports. Each decision record also holds the agent's state after it, and
each reset the agents it reset, so the log determines every agent's state: verification
compares the stored states with it (an edited state is found). Removing records from the *end*
of the log leaves a valid, shorter chain: a store keeps its head (the last record's seq and hash)
beside the states, written in the same transaction, and verification compares the log's end
with it; against someone who rewrites the head too, pass a head anchored elsewhere
(:func:`head`) as ``expected_head``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeAlias

from sentra_runtime import jsontext
from sentra_runtime.decision import Decision
from sentra_runtime.policy import LIMITS_VERSION, canonical_json
from sentra_runtime.windows import COUNTED, Windows, counting_fields, replayed

DECISION = "decision"
RESET = "reset"
POLICY_LOAD = "policy_load"
GROUP = "group"
"""An operator's assignment of an agent to a group (or its clearing)."""
REVIEW = "review"
"""A step of a review ticket after the review decision: approved, blocked, denied, expired or
cancelled (:mod:`sentra_runtime.review`)."""
KINDS = frozenset({DECISION, RESET, POLICY_LOAD, GROUP, REVIEW})
RECORD_KEYS = frozenset({"kind", "time", "policy_hash", "agent", "action", "input", "decision",
                         "explanation", "seq", "prev", "hash", "operator", "agents", "policy"})
"""The keys the runtime writes in a decision record; annotations (which only decision records
take) may not replace them."""

STATE = "state"
HEAD = "head"
END_KINDS = frozenset({STATE, HEAD})
"""The kinds of an export's end lines (:func:`write_export`), after its records."""

Annotations: TypeAlias = "Mapping[str, Any] | Callable[[Decision], Mapping[str, Any]]"
"""Extra keys for a decision's audit record, or a function of the decision giving them."""
StateTuple: TypeAlias = "tuple[int, int, bool] | tuple[int, int, bool, int]"
"""An agent's ``(cumulative_risk, blocked_attempts, shut_down)``, and its decay anchor (whole
microseconds since the epoch) when its policy has ``risk_decay`` and its risk is above 0."""
Head: TypeAlias = "tuple[int, str | None]"
"""The seq and hash of a log's last record; ``(0, None)`` for an empty log."""
FRESH_STATE: StateTuple = (0, 0, False)


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of checking a log: ``ok``, how many records, and where it first broke."""

    ok: bool
    records: int
    seq: int | None = None
    """The seq at which the log first breaks, or of the record whose state an agent's stored
    state contradicts (``None`` when it verifies, or when no record is to blame)."""
    problem: str = ""
    agents: int | None = None
    """How many stored agent states were checked against the log (``None``: none were)."""
    end: str = ""
    """What the log's end was checked against: ``"stored head"``, ``"expected head"``, or ``""``
    (nothing: records deleted from the end would go unnoticed)."""
    anchored: int | None = None
    """The seq of the anchored record the log was found to hold (see :class:`LogVerifier`)."""

    def __str__(self) -> str:
        if not self.ok:
            where = "" if self.seq is None else f" at seq {self.seq}"
            return f"tampered{where}: {self.problem}"
        parts = [f"ok: {self.records} record{'' if self.records == 1 else 's'}, hash chain intact"]
        parts.append(f"ends at the {self.end}" if self.end else
                     "its end is not anchored (records deleted from the end would go unnoticed)")
        if self.anchored is not None:
            parts.append(f"holds the anchored record seq {self.anchored}")
        if self.agents is not None:
            parts.append("1 agent state matches the log" if self.agents == 1 else
                         f"{self.agents} agent states match the log")
        return "; ".join(parts)


def timestamp(seconds: float) -> str:
    """UTC ISO 8601 with microseconds, e.g. ``2024-05-01T12:00:00.123456Z``."""
    return timestamp_us(round(seconds * 1_000_000))


def timestamp_us(micros_total: int) -> str:
    """:func:`timestamp` of a time in whole microseconds since the epoch (exact)."""
    whole, micros = divmod(micros_total, 1_000_000)
    return _second(whole) + f".{micros:06d}Z"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_timestamp_us(text: Any) -> int | None:
    """The whole microseconds since the epoch a :func:`timestamp` names (``None`` when ``text``
    is not one)."""
    if not isinstance(text, str) or not text.endswith("Z"):
        return None
    try:
        moment = datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError:
        return None
    return (moment - _EPOCH) // timedelta(microseconds=1)


@functools.lru_cache(maxsize=1024)
def _second(whole: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def decision_record(seconds: float, decision: Decision) -> dict[str, Any]:
    """The unsealed audit record of a decision (no seq, prev or hash yet). Under a policy with
    ``risk_decay``, its ``decision`` also keeps ``decayed`` and the agent's ``decay_anchor``
    after it (a time; ``null`` while the risk is 0); under a policy with groups, the agent's
    ``group`` (``""`` for none); an allowed decision under a policy with rate limits the
    windows it counted in and dropped (:func:`~sentra_runtime.windows.counting_fields`), from
    which verification rebuilds the agent's windows; a ``review`` decision its ``ticket`` and
    when it ``expires``."""
    return {
        "kind": DECISION,
        "time": timestamp(seconds),
        "policy_hash": decision.policy_hash,
        "agent": decision.agent_id,
        "action": decision.action,
        "input": decision.audit_input,
        "decision": decision_outcome(decision),
        "explanation": decision.explanation_summary,
    }


def decision_outcome(decision: Decision) -> dict[str, Any]:
    """The ``decision`` part of an audit record: the outcome and the agent's state after it."""
    outcome = {
        "outcome": decision.outcome, "label": decision.label, "allowed": decision.allowed,
        "rule_id": decision.rule_id, "threat": decision.threat, "reason": decision.reason,
        "attempted_risk": decision.attempted_risk, "applied_risk": decision.applied_risk,
        "projected_risk": decision.projected_risk,
        "cumulative_risk": decision.cumulative_risk,
        "blocked_attempts": decision.blocked_attempts, "status": decision.status,
    }
    if "decayed" in decision.__dict__:
        anchor = decision.decay_anchor
        outcome["decayed"] = decision.decayed
        outcome["decay_anchor"] = None if anchor is None else timestamp_us(anchor)
    if decision.group is not None:
        outcome["group"] = decision.group
    outcome.update(counting_fields(decision.__dict__))   # under limits: the windows counted in
    if decision.ticket is not None:
        outcome["ticket"] = decision.ticket
        if decision.expires_at is not None:
            outcome["expires"] = timestamp(decision.expires_at)
    return outcome


def annotation(annotations: Annotations, decision: Decision, *,
               encodable: bool = True) -> dict[str, Any]:
    """The extra keys for ``decision``'s record, checked: JSON values, no runtime key replaced.
    ``encodable=False`` leaves the JSON check to the caller, which seals the record next (the
    record's encoding raises the same error)."""
    extra = dict(annotations(decision) if callable(annotations) else annotations)
    clash = sorted(RECORD_KEYS.intersection(extra))
    if clash:
        raise ValueError(f"annotations may not replace the audit record's own keys: "
                         f"{', '.join(clash)}")
    if encodable:
        canonical_json(extra)
    return extra


def matches(record: Mapping[str, Any], agent: str | None, label: str | None,
            kind: str | None) -> bool:
    """Whether a record passes the filters of ``Store.read_records`` (``None``: any)."""
    if kind is not None and record.get("kind") != kind:
        return False
    if agent is not None and record.get("agent") != agent:
        return False
    if label is not None:
        decision = record.get("decision")
        return isinstance(decision, Mapping) and decision.get("label") == label
    return True


def reset_record(seconds: float, policy_hash: str | None, agent_id: str | None, operator: str,
                 agents: list[str]) -> dict[str, Any]:
    """An operator reset of one agent (``agent_id``) or all (``agent_id`` null)."""
    return {"kind": RESET, "time": timestamp(seconds), "policy_hash": policy_hash,
            "agent": agent_id, "operator": operator, "agents": sorted(agents)}


def group_record(seconds: float, policy_hash: str | None, agent_id: str, group: str | None,
                 operator: str) -> dict[str, Any]:
    """The unsealed audit record of an operator's group assignment (``group`` ``None``: the
    assignment is cleared, pattern membership applies again)."""
    return {"kind": GROUP, "time": timestamp(seconds), "policy_hash": policy_hash,
            "agent": agent_id, "group": group, "operator": operator}


def policy_load_record(seconds: float, policy_hash: str, name: str, version: str,
                       schema_version: int) -> dict[str, Any]:
    return {"kind": POLICY_LOAD, "time": timestamp(seconds), "policy_hash": policy_hash,
            "policy": {"name": name, "version": version, "schema_version": schema_version}}


def record_hash(record: dict[str, Any]) -> str:
    body = {key: value for key, value in record.items() if key != "hash"}
    return text_hash(canonical_json(body))


def text_hash(body_text: str) -> str:
    """The hash of a record given the canonical JSON of its body (the record without ``hash``)."""
    return "sha256:" + hashlib.sha256(body_text.encode("utf-8")).hexdigest()


def seal(record: dict[str, Any], seq: int, prev: str | None) -> dict[str, Any]:
    """Give a record its place in the chain: seq, prev and its own hash."""
    record["seq"] = seq
    record["prev"] = prev
    record["hash"] = record_hash(record)
    return record


def seal_text(record: dict[str, Any], seq: int, prev: str | None) -> tuple[str, str]:
    """Like :func:`seal`, returning ``(body_text, hash)``: one serialisation, for stores."""
    record["seq"] = seq
    record["prev"] = prev
    body = _canonical(record)
    return body, text_hash(body)


_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
""":func:`~sentra_runtime.policy.canonical_json` (the same encoder settings, built once rather
than at every call: it encodes every record a store writes; a test keeps the two equal)."""


def seal_parts(record: dict[str, Any]) -> tuple[str, str, str]:
    """The canonical JSON of ``record`` around its ``prev`` and ``seq`` values, for a store
    that chains records where the previous hash is known (the database, under its lock):
    ``before + json(prev) + between + str(seq) + after`` is the body :func:`seal_text` gives.
    """
    keys: tuple[dict[str, Any], ...] = ({}, {}, {})   # before "prev", between, after "seq"
    for key, value in record.items():
        keys[(key > "prev") + (key > "seq")][key] = value
    first, middle, last = (canonical_json(part)[1:-1] for part in keys)
    return ("{" + first + ("," if first else "") + '"prev":',
            ("," + middle if middle else "") + ',"seq":',
            ("," + last if last else "") + "}")


def verify_records(records: Iterable[dict[str, Any]], *, expected_head: str | None = None,
                   after: Head = (0, None), states: Iterable[tuple[str, StateTuple]] | None = None,
                   head: Head | None = None,
                   tickets: Iterable[StoredTicket] | None = None) -> VerifyResult:
    """Check an audit log in one pass; report the first place it was tampered with.

    ``records`` are the log's records in the order the source keeps them (the end lines of an
    export, if present, give the stored states and head: :func:`write_export`). ``after`` is the
    seq and hash of the record before the first one (for a log that holds only the newest
    records; ``(0, None)``: the log starts at seq 1). ``states`` are the agents' stored states,
    checked against the states the log leaves them in; ``head`` is the store's head (the seq and
    hash of the last record it wrote), checked against the log's last record; ``expected_head``
    is a head anchored elsewhere; ``tickets`` are the stored review tickets' ids and statuses (and
    bodies, when the store gives them), checked against what the log leaves them. Time is linear in the log; memory
    grows with the number of agents and tickets, not of records.
    """
    return _verify(records, after, expected_head, states, head, end_required=False,
                   tickets=tickets)


def verify_export(lines: Iterable[dict[str, Any]], *, expected_head: str | None = None,
                  anchor: Head | None = None) -> VerifyResult:
    """Verify an export written by :func:`write_export` (read with :func:`read_jsonl`): the
    chain, the agents' states it ends with, and its last record against its ``head`` line. An
    export without its ``head`` line (cut short, or written before exports had one) verifies
    only with ``expected_head``."""
    return _verify(lines, (0, None), expected_head, None, None,
                   end_required=expected_head is None, anchor=anchor)


def _verify(lines: Iterable[Any], after: Head, expected_head: str | None,
            states: Iterable[tuple[str, StateTuple]] | None, head: Head | None, *,
            end_required: bool, anchor: Head | None = None,
            tickets: Iterable[StoredTicket] | None = None) -> VerifyResult:
    verifier = LogVerifier(after, anchor)
    ending = _ExportEnd()
    for line in lines:
        if ending.takes(line):
            continue
        if ending.started:
            return verifier.fail(verifier.next_seq, "a record follows the export's end lines")
        if not verifier.add(line):
            break
    if ending.started and ending.head is None or end_required and ending.head is None:
        verifier.result()   # a problem among the records comes first
        return verifier.fail(None, "the export does not end with its `head` line: it was cut "
                                   "short (records or states deleted from its end), or written "
                                   "before exports had one (then give the expected head)")
    if ending.started:
        states = ending.states if states is None else states
        head = ending.head if head is None else head
    return verifier.result(head=head, expected_head=expected_head, states=states,
                           tickets=tickets)


class LogVerifier:
    """Checks an audit log record by record, in one pass and bounded memory.

    For each record, in order: its seq is the next one, its hash is the hash of its body, its
    ``prev`` is the previous record's hash, its kind is known, and the policy it names was loaded
    earlier in the log (when the log starts at seq 1). It keeps the state each agent's last
    record leaves it in, to compare with the stored states at the end (:meth:`result`). A seq
    that comes too early is looked for further on (reordered or deleted?) without keeping the
    records in between.

    ``anchor`` is a record's seq and hash kept elsewhere earlier (``sentra-lang audit head``):
    the log must still hold that record, unchanged; it may have grown since.
    """

    def __init__(self, after: Head = (0, None), anchor: Head | None = None) -> None:
        self.anchor = anchor
        self.next_seq = after[0] + 1
        self.prev = after[1]
        self.complete = after[0] == 0
        """The log starts at seq 1: every agent and policy it names is in it."""
        self.records = 0
        self.policies: set[str] = set()
        self.expected: dict[str, tuple[StateTuple, int]] = {}
        """Each agent's state as its last record leaves it, with that record's seq."""
        self.tickets: dict[str, LoggedTicket] = {}
        """Each review ticket as the log leaves it: its status after its last record
        (``pending`` after the review decision that made it), that record's seq, and digests of
        what the review decision and the last step say the stored ticket holds."""
        self.assigned: dict[str, tuple[str | None, int]] = {}
        """Each agent's group assignment as the log's newest `group` record leaves it."""
        self.windows: dict[str, Windows | None] = {}
        """Each agent's rate-limit windows as the log leaves them, replayed record by record
        (:func:`~sentra_runtime.windows.replayed`); ``None`` while the log does not determine
        them (see :meth:`_count`)."""
        self.limitless: set[str] = set()
        """The policies the log loaded whose tables cannot have rate limits (table schema
        version below 4)."""
        self._failure: VerifyResult | None = None
        self._missing: tuple[int, int] | None = None
        """``(expected seq, seq found instead)`` while the expected one is looked for."""

    def fail(self, seq: int | None, problem: str) -> VerifyResult:
        if self._failure is None:
            self._failure = VerifyResult(False, self.records, seq, problem)
        return self._failure

    def add(self, record: Any, body: str | None = None) -> bool:
        """Check the next record (``body``: the exact text its hash covers, when the source
        keeps it); ``False`` once the outcome is known and no more records are needed."""
        if self._failure is not None:
            return False
        if self._missing is not None:
            expected, found = self._missing
            if isinstance(record, dict) and record.get("seq") == expected:
                self.fail(found, f"record seq {found} appears before seq {expected}: reordered")
                return False
            return True
        expected = self.next_seq
        seq = record.get("seq") if isinstance(record, dict) else None
        if not isinstance(seq, int) or isinstance(seq, bool) or "unparsable" in record:
            self.fail(expected, f"record at position {expected} is not a valid audit record")
            return False
        if seq < expected:
            self.fail(seq, f"record seq {seq} appears after seq {expected - 1}: reordered or "
                           "duplicated")
            return False
        if seq > expected:
            self._missing = (expected, seq)
            return True
        problem = self._problem(record, seq, body)
        if problem is None and self.anchor is not None and seq == self.anchor[0] \
                and record["hash"] != self.anchor[1]:
            problem = (f"record seq {seq} is not the anchored one ({self.anchor[1]}): the log "
                       "was rewritten")
        if problem is not None:
            self.fail(seq, problem)
            return False
        self.prev = record["hash"]
        self.next_seq += 1
        self.records += 1
        return True

    def _problem(self, record: dict[str, Any], seq: int, body: str | None) -> str | None:
        if not self._hash_matches(record, body):
            return f"record seq {seq} does not match its hash: edited"
        if record.get("prev") != self.prev:
            return (f"record seq {seq} does not follow the previous record's hash: inserted or "
                    "replaced")
        kind = record.get("kind")
        if kind not in KINDS:
            return f"record seq {seq} has an unknown kind"
        policy = record.get("policy_hash")
        if kind == POLICY_LOAD:
            if isinstance(policy, str):
                self.policies.add(policy)
                loaded = record.get("policy")
                version = loaded.get("schema_version") if isinstance(loaded, dict) else None
                if isinstance(version, int) and version < LIMITS_VERSION:
                    self.limitless.add(policy)
            return None
        if self.complete and policy is not None and policy not in self.policies:
            return (f"record seq {seq} names the policy {policy}, which the log never loaded: "
                    "edited policy hash")
        return self._follow(record, seq, kind)

    @staticmethod
    def _hash_matches(record: dict[str, Any], body: str | None) -> bool:
        """Whether the record's hash is the hash of its body: the text the store keeps, or
        the export line without its hash (no re-encoding), else the record as canonical JSON
        (an export whose lines were re-encoded, e.g. with other spacing, still verifies)."""
        digest = record.get("hash")
        if not isinstance(digest, str):
            return False
        if body is not None:
            return digest == text_hash(body)
        line_body = _line_body(record, digest)
        if line_body is not None and digest == text_hash(line_body):
            return True
        return digest == text_hash(canonical_json(
            {key: value for key, value in record.items() if key != "hash"}))

    def _follow(self, record: dict[str, Any], seq: int, kind: str) -> str | None:
        """Keep the state the record leaves its agent (or the agents it resets) in."""
        if kind == DECISION:
            agent, state = record.get("agent"), decision_state(record.get("decision"))
            if not isinstance(agent, str) or state is None:
                return f"record seq {seq} is not a valid decision record"
            self.expected[agent] = (state, seq)
            if not self._count(agent, record, record["decision"]):
                return f"record seq {seq} is not a valid decision record"
            ticket = record["decision"].get("ticket")
            if isinstance(ticket, str) and record["decision"].get("outcome") == "review":
                self.tickets[ticket] = LoggedTicket("pending", seq, _held_digest(record, seq),
                                                    _settled_digest("pending", None))
            return None
        if kind == REVIEW:   # a verdict's decision sets the state; expiry, cancel: none
            agent, outcome = record.get("agent"), record.get("decision")
            state = None if outcome is None else decision_state(outcome)
            if (not isinstance(agent, str) or not isinstance(record.get("ticket"), str)
                    or outcome is not None and state is None):
                return f"record seq {seq} is not a valid review record"
            if state is not None and isinstance(outcome, dict):
                self.expected[agent] = (state, seq)
                if not self._count(agent, record, outcome):
                    return f"record seq {seq} is not a valid review record"
            verdict = record.get("verdict")
            status = verdict if isinstance(verdict, str) else ""
            made = self.tickets.get(record["ticket"])
            self.tickets[record["ticket"]] = LoggedTicket(
                status, seq, None if made is None else made.held, _settled_digest(status, record))
            return None
        if kind == GROUP:
            agent, group = record.get("agent"), record.get("group")
            if not isinstance(agent, str) or not isinstance(group, (str, type(None))):
                return f"record seq {seq} is not a valid group record"
            self.expected.setdefault(agent, (FRESH_STATE, seq))   # an assignment keeps the state
            self.windows.setdefault(agent, {} if self.complete else None)
            self.assigned[agent] = (group, seq)
            return None
        agents = record.get("agents")
        if not isinstance(agents, list) or not all(isinstance(name, str) for name in agents):
            return f"record seq {seq} is not a valid reset record"
        for agent in agents:
            self.expected[agent] = (FRESH_STATE, seq)
            self.windows[agent] = {}   # a reset clears the windows
        return None

    def _count(self, agent: str, record: dict[str, Any], outcome: dict[str, Any]) -> bool:
        """Replay the agent's rate-limit windows through a decision (or a verdict's decision);
        ``False`` when the record's window keys are malformed.

        A decision whose record lists the windows it counted in (``counted``) is replayed with
        the state step's own rule at the record's time. Any other decision leaves the windows
        as they were, except an allowed one under a policy that may have limits (not loaded in
        the log with a table schema below 4): written before records kept their windows (by an
        older runtime, perhaps on the same chain), it may have counted, and the agent's
        windows are unknown until its next reset (``None``: not compared). So are the windows
        of an agent whose first record in a log that does not start at seq 1 is no reset."""
        windows = self.windows.get(agent, {} if self.complete else None)
        if COUNTED in outcome:
            now_us = parse_timestamp_us(record.get("time"))
            if now_us is None:
                return False
            if windows is not None:
                windows = replayed(windows, outcome, now_us)
                if windows is None:
                    return False
            elif replayed({}, outcome, now_us) is None:
                return False
        elif outcome.get("allowed") is True and record.get("policy_hash") not in self.limitless:
            windows = None
        self.windows[agent] = windows
        return True

    def result(self, *, head: Head | None = None, expected_head: str | None = None,
               states: Iterable[tuple[str, StateTuple]] | None = None,
               tickets: Iterable[StoredTicket] | None = None) -> VerifyResult:
        """The outcome: the first problem the records showed; else the log's end against the
        stored ``head`` and the ``expected_head``; else ``states`` against the log; else the
        stored review ``tickets`` (id and status) against the log."""
        if self._missing is not None and self._failure is None:
            expected, found = self._missing
            missing = f"seq {expected}" if found == expected + 1 else f"seqs {expected}-{found - 1}"
            self.fail(found, f"{missing} missing before seq {found}: record deleted")
        if self._failure is not None:
            return self._failure
        last: Head = (self.next_seq - 1, self.prev)
        end = ""
        if head is not None:
            problem = _head_problem(last, head)
            if problem is not None:
                return self.fail(*problem)
            end = "stored head"
        if expected_head is not None:
            if self.prev != expected_head:
                return self.fail(last[0], f"the log ends at {self.prev}, not at the expected "
                                          f"head {expected_head}: records were removed from "
                                          "the end")
            end = "expected head"
        anchored = None
        if self.anchor is not None:
            if last[0] < self.anchor[0]:
                return self.fail(last[0] + 1, f"the log ends at seq {last[0]}, before the "
                                              f"anchored record seq {self.anchor[0]}: records "
                                              "deleted from the end")
            anchored = self.anchor[0]
        agents = None
        if states is not None:
            agents = self._compare(states)
            if self._failure is not None:
                return self._failure
        if tickets is not None:
            self._compare_tickets(tickets)
            if self._failure is not None:
                return self._failure
        return VerifyResult(True, self.records, agents=agents, end=end, anchored=anchored)

    def _compare_tickets(self, tickets: Iterable[StoredTicket]) -> None:
        """Compare the stored review tickets with the log's (a mismatch fails): each one's
        status, and, when the store gives its body too, everything the log says of it (what
        was held, by which rule, with what risk and input, until when; the verdict, its
        operator, note and decision), so that a ticket edited in the store is found even when
        its status was left alone."""
        expected = self.tickets
        for ticket, status, *body in tickets:
            known = expected.pop(ticket, None)
            if known is None:
                if self.complete:
                    self.fail(None, f"review ticket {ticket} is stored ({status}) but no "
                                    "record in the log made it: inserted ticket")
                    return
                continue
            if known.status != status:
                self.fail(known.seq, f"review ticket {ticket} is {status} in the store, but "
                                     f"the log leaves it {known.status}: edited ticket")
                return
            edited = None if not body else known.edited(_ticket_row(body[0]))
            if edited is not None:
                self.fail(known.seq, f"review ticket {ticket} holds {edited} other than its "
                                     "records in the log: edited ticket")
                return
        if expected:
            ticket = min(expected)
            self.fail(expected[ticket].seq, f"review ticket {ticket} "
                                            f"({expected[ticket].status} in the log) is not "
                                            "stored: deleted ticket")

    def _assignment_holds(self, agent: str, stored: Any) -> bool:
        """Whether the agent's stored group assignment (a state's sixth item) is the one the
        log's newest `group` record for it leaves (none without one, when the log is whole);
        a mismatch fails."""
        group = stored[5] if len(stored) > 5 else None
        logged = self.assigned.get(agent)
        if logged is None:
            if group is None or not self.complete:
                return True
            self.fail(None, f"agent `{agent}` is assigned to group `{group}` in the store, but "
                            "no record in the log assigned it: edited assignment")
            return False
        if logged[0] != group:
            said = "none" if logged[0] is None else f"`{logged[0]}`"
            found = "none" if group is None else f"`{group}`"
            self.fail(logged[1], f"agent `{agent}` has the group assignment {found} in the "
                                 f"store, but the log leaves it {said}: edited assignment")
            return False
        return True

    def _windows_hold(self, agent: str, stored: Any, seq: int) -> bool:
        """Whether the agent's stored rate-limit windows (a state's fifth item) are the ones
        the log leaves it with, when the log determines them (:meth:`_count`); a mismatch
        fails, at the agent's last record."""
        logged = self.windows.get(agent)
        if logged is None:
            return True
        windows = (stored[4] if len(stored) > 4 else None) or {}
        difference = _window_difference(windows, logged)
        if difference is None:
            return True
        self.fail(seq, f"agent `{agent}`: the stored rate-limit windows are not the ones the "
                       f"log leaves it with: {difference}: edited windows")
        return False

    def _compare(self, states: Iterable[tuple[str, StateTuple]]) -> int:
        """Compare the stored states with the log's; the number compared (a mismatch fails)."""
        expected = self.expected
        count = 0
        for agent, stored in states:
            count += 1
            state = comparable(stored)
            known = expected.pop(agent, None)
            if known is None:
                if self.complete:
                    self.fail(None, f"agent `{agent}` has a stored state ({describe(state)}) "
                                    "but no record in the log: inserted state")
                    return count
                continue
            if comparable(known[0]) != state:
                self.fail(known[1], f"agent `{agent}`: the stored state ({describe(state)}) is "
                                    "not the one the log leaves it in "
                                    f"({describe(known[0])}): edited state")
                return count
            if not self._assignment_holds(agent, stored):
                return count
            if not self._windows_hold(agent, stored, known[1]):
                return count
        if expected:
            agent = min(expected)
            state, seq = expected[agent]
            self.fail(seq, f"agent `{agent}` has no stored state, but the log leaves it in "
                           f"({describe(state)}): deleted state")
        return count


StoredTicket: TypeAlias = "tuple[str, str] | tuple[str, str, Mapping[str, Any] | str]"
"""A stored review ticket as a store gives it to verification: its id and status, and its body
when the store gives it (``Ticket.to_row()``, or that as JSON text)."""

_HELD = ("agent_id", "action", "rule_id", "risk", "reason", "threat", "policy_hash", "created",
         "expires", "seq", "input")
"""What a ticket holds from the review decision that made it."""
_VERDICT = ("outcome", "label", "allowed", "rule_id", "threat", "reason", "attempted_risk",
            "applied_risk", "projected_risk", "cumulative_risk", "blocked_attempts", "status")
"""The keys of a verdict's decision that both the ticket and the step's record keep."""


@dataclass(frozen=True)
class LoggedTicket:
    """A review ticket as the log leaves it (digests, so memory stays a few bytes a ticket)."""

    status: str
    seq: int
    held: str | None
    """Digest of what the review decision's record says the ticket holds (``None`` when that
    record is older than the log's first one)."""
    settled: str
    """Digest of the status, time, operator, note and decision its last step gives it."""

    def edited(self, row: Mapping[str, Any] | None) -> str | None:
        """What of the stored ticket ``row`` differs from the log (``None``: nothing)."""
        if row is None:
            return "a body that is not a ticket"
        if self.held is not None and _digest([row.get(key) for key in _HELD]) != self.held:
            return "what was held"
        decision = row.get("decision")
        stored = _digest([row.get("status"), row.get("settled"), row.get("operator"),
                          row.get("note"), _verdict(decision)])
        return None if stored == self.settled else "the verdict"


def _held_digest(record: Mapping[str, Any], seq: int) -> str:
    decision = record["decision"]
    return _digest([record.get("agent"), record.get("action"), decision.get("rule_id"),
                    decision.get("attempted_risk"), decision.get("reason"),
                    decision.get("threat"), record.get("policy_hash"),
                    parse_timestamp_us(record.get("time")),
                    parse_timestamp_us(decision.get("expires")), seq, record.get("input")])


def _settled_digest(status: str, record: Mapping[str, Any] | None) -> str:
    if record is None:
        return _digest([status, None, None, None, None])
    return _digest([status, parse_timestamp_us(record.get("time")), record.get("operator"),
                    record.get("note"), _verdict(record.get("decision"))])


def _verdict(decision: Any) -> Any:
    return [decision.get(key) for key in _VERDICT] if isinstance(decision, Mapping) else None


def _ticket_row(body: Mapping[str, Any] | str) -> Mapping[str, Any] | None:
    if isinstance(body, str):
        try:
            body = jsontext.loads(body)
        except jsontext.JSONTextError:
            return None
    return body if isinstance(body, Mapping) else None


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=repr)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _window_difference(stored: Any, logged: Windows) -> str | None:
    """How stored windows differ from the log's (the first difference, by key), or ``None``."""
    if not isinstance(stored, Mapping):
        return "they are no windows"
    for key in sorted({*stored, *logged}, key=str):
        times, expected = stored.get(key), logged.get(key)
        if times is None:
            return f"the window `{key}` ({_times(expected or ())} in the log) is not stored"
        if expected is None:
            return f"the window `{key}` ({_times(times)}) is stored, but not in the log"
        times = tuple(times)
        if times == expected:
            continue
        if len(times) != len(expected):
            return (f"the window `{key}` holds {_times(times)} in the store, "
                    f"{_times(expected)} in the log")
        found, wanted = next((a, b) for a, b in zip(times, expected, strict=True) if a != b)
        return (f"the window `{key}` holds the time {_time_text(found)} where the log has "
                f"{_time_text(wanted)}")
    return None


def _times(times: tuple[Any, ...]) -> str:
    """A window's times for a problem line: how many, and the newest (they may be many)."""
    if not times:
        return "no times"
    count = "1 time" if len(times) == 1 else f"{len(times)} times"
    return f"{count}, the newest {_time_text(times[-1])}"


def _time_text(time: Any) -> str:
    return _anchor_text(time) if isinstance(time, int) else repr(time)


def _head_problem(last: Head, head: Head) -> tuple[int, str] | None:
    """How the log's last record ``last`` disagrees with the store's ``head``, if it does."""
    (last_seq, last_hash), (head_seq, head_hash) = last, head
    if head_seq > last_seq:
        gone = f"seq {head_seq}" if head_seq == last_seq + 1 else \
            f"seqs {last_seq + 1}-{head_seq}"
        return last_seq + 1, (f"the log ends at seq {last_seq}, but the store's head is seq "
                              f"{head_seq}: {gone} deleted from the end")
    if head_seq < last_seq:
        return head_seq + 1, (f"the log goes on past the store's head (seq {head_seq}) to seq "
                              f"{last_seq}: records appended without the store")
    if head_hash != last_hash:
        return last_seq, (f"the last record (seq {last_seq}) is not the one the store's head "
                          f"names ({head_hash}): edited and re-hashed")
    return None


def decision_state(decision: Any) -> StateTuple | None:
    """The agent's state after a decision, from its record's ``decision`` (``None`` when that
    is not a decision's): with its decay anchor when the record keeps one."""
    if not isinstance(decision, dict):
        return None
    risk, blocked, status = (decision.get("cumulative_risk"), decision.get("blocked_attempts"),
                             decision.get("status"))
    if not (isinstance(risk, int) and isinstance(blocked, int)
            and status in ("active", "shut_down")):
        return None
    anchor = decision.get("decay_anchor")
    if anchor is None:
        return risk, blocked, status == "shut_down"
    micros = parse_timestamp_us(anchor)
    return None if micros is None else (risk, blocked, status == "shut_down", micros)


def comparable(state: Any) -> StateTuple:
    """A stored state as the log's states are compared with it: ints and a bool, and the decay
    anchor only while the risk is above 0 (at 0 an anchor means nothing)."""
    try:
        risk, blocked, down = int(state[0]), int(state[1]), bool(state[2])
        if len(state) > 3 and state[3] is not None and risk > 0:
            return risk, blocked, down, int(state[3])
    except (TypeError, ValueError):   # a stored value edited into something else
        return -1, -1, False          # a state no log leaves an agent in
    return risk, blocked, down


def _anchor_text(micros: int) -> str:
    """A decay anchor as a time, or as the number it is when it is no time (edited)."""
    try:
        return timestamp_us(micros)
    except (OverflowError, OSError, ValueError):
        return f"{micros} (no time)"


def describe(state: StateTuple) -> str:
    risk, blocked, down = state[0], state[1], state[2]
    anchor = f", decay anchor {_anchor_text(state[3])}" if len(state) > 3 else ""
    return (f"cumulative risk {risk}, blocked attempts {blocked}, "
            f"{'shut down' if down else 'active'}{anchor}")


class _ExportEnd:
    """The end lines of an export (:func:`write_export`): the agents' states, then the head."""

    def __init__(self) -> None:
        self.started = False
        self.states: list[tuple[str, StateTuple]] = []
        self.head: Head | None = None

    def takes(self, line: Any) -> bool:
        """Keep ``line`` if it is an end line in its place (states, then one head)."""
        kind = line.get("kind") if isinstance(line, dict) else None
        if kind not in END_KINDS or self.head is not None:
            return False
        self.started = True
        if kind == STATE:
            agent, state = line.get("agent"), decision_state(line)
            windows = _line_windows(line.get("limit_windows"))
            group = line.get("assigned_group")
            if state is not None and (windows or group is not None):
                state = (*state, *(None,) * (4 - len(state)),
                         windows, *(() if group is None else (group,)))
            # a malformed state line is kept as a state no log leaves an agent in
            self.states.append((agent, state) if isinstance(agent, str) and state is not None
                               and windows is not None and isinstance(group, (str, type(None)))
                               else (str(agent), (-1, -1, False)))
        else:
            seq, digest = line.get("seq"), line.get("hash")
            valid = isinstance(seq, int) and isinstance(digest, (str, type(None)))
            self.head = (seq, digest) if valid else (-1, None)
        return True


def state_line(agent: str, state: StateTuple) -> dict[str, Any]:
    """An export's end line holding one agent's stored state (and its decay anchor, as a time,
    when it has one; its rate-limit windows, each time as a time, when it has some; the group
    an operator assigned it to, when there is one)."""
    risk, blocked, down = state[0], state[1], state[2]
    line = {"kind": STATE, "agent": agent, "cumulative_risk": risk,
            "blocked_attempts": blocked, "status": "shut_down" if down else "active"}
    if len(state) > 3 and state[3] is not None:
        line["decay_anchor"] = _anchor_text(state[3])
    windows = state[4] if len(state) > 4 else None
    if windows:
        line["limit_windows"] = {key: [_anchor_text(time) for time in times]
                                 for key, times in sorted(windows.items())}
    if len(state) > 5:
        line["assigned_group"] = state[5]
    return line


def _line_windows(data: Any) -> Windows | None:
    """The rate-limit windows of an export's state line (``{}`` without them; ``None`` when
    they are malformed)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        return None
    windows: Windows = {}
    for key, texts in data.items():
        times = [parse_timestamp_us(text) for text in texts] if isinstance(texts, list) else None
        if times is None or None in times:
            return None
        windows[key] = tuple(sorted(time for time in times if time is not None))
    return windows


def head_line(head: Head) -> dict[str, Any]:
    """An export's last line: the store's head (the seq and hash of its last record)."""
    return {"kind": HEAD, "seq": head[0], "hash": head[1]}


def write_export(records: Iterable[dict[str, Any]], states: Iterable[tuple[str, StateTuple]],
                 head: Head, out: IO[str]) -> int:
    """Write a log as JSON Lines: its records, then one ``state`` line per agent and a ``head``
    line (what :func:`verify_export` checks the records against). Returns the record count."""
    count = write_jsonl(records, out)
    for agent, state in states:
        out.write(canonical_json(state_line(agent, state)) + "\n")
    out.write(canonical_json(head_line(head)) + "\n")
    return count


def stored_record(seq: int, digest: str, body: str) -> dict[str, Any]:
    """A record as a store keeps it (its ``body``, the canonical JSON its ``hash`` covers): the
    body's record with the hash. A body that is not a JSON object becomes a non-record, which the
    verifier reports at ``seq``."""
    try:
        record = jsontext.loads(body)
    except jsontext.JSONTextError:
        return {"seq": seq, "unparsable": body}
    if not isinstance(record, dict):
        return {"seq": seq, "unparsable": body}
    record["hash"] = digest
    return record


def write_jsonl(records: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """Write records as JSON Lines (canonical JSON, one per line); return how many."""
    count = 0
    for record in records:
        out.write(canonical_json(record) + "\n")
        count += 1
    return count


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Read an exported log; a line that is not JSON yields a non-record the verifier reports.
    Each record keeps the line it was read from (the verifier hashes it without re-encoding
    when it can)."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                try:
                    record = jsontext.loads(line)
                except jsontext.JSONTextError:
                    yield {"unparsable": line}
                    continue
                yield _Line(record, line.rstrip("\r\n")) if isinstance(record, dict) else record


class _Line(dict[str, Any]):
    """A record read from an export, with its line as written."""

    __slots__ = ("text",)

    def __init__(self, record: dict[str, Any], text: str) -> None:
        super().__init__(record)
        self.text = text


def _line_body(record: dict[str, Any], digest: str) -> str | None:
    """The body the hash covers, cut from the record's export line (the line without its
    top-level ``hash`` member), when the record was read with its line."""
    text = record.text if isinstance(record, _Line) else None
    if text is None:
        return None
    member = '"hash":' + json.dumps(digest)
    if "," + member in text:
        return text.replace("," + member, "", 1)
    return text.replace(member + ",", "", 1)


def head(records: Iterable[dict[str, Any]]) -> str | None:
    """The hash of the last record: anchor it elsewhere to detect truncation later. For an
    export, its ``head`` line's hash."""
    last = None
    for record in records:
        if record.get("kind") == STATE:
            continue
        last = record.get("hash")
        if record.get("kind") == HEAD:
            break
    return last
