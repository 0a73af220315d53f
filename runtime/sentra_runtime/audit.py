"""The audit log: one record per decision, reset and policy load, linked by a hash chain.

Each record carries ``seq`` (1, 2, 3, ...), ``prev`` (the previous record's hash, ``null`` for
the first) and ``hash``: ``sha256:`` + hex SHA-256 of the canonical JSON of the record without its
``hash`` key. Editing, deleting, inserting or reordering records breaks the chain at a seq that
:func:`verify_records` reports. Removing records from the *end* of the log leaves a valid, shorter
chain; pass the last known head (:func:`head`) as ``expected_head`` to detect that too.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeAlias

from sentra_runtime.decision import Decision
from sentra_runtime.policy import canonical_json

DECISION = "decision"
RESET = "reset"
POLICY_LOAD = "policy_load"
KINDS = frozenset({DECISION, RESET, POLICY_LOAD})
RECORD_KEYS = frozenset({"kind", "time", "policy_hash", "agent", "action", "input", "decision",
                         "explanation", "seq", "prev", "hash", "operator", "agents", "policy"})
"""The keys the runtime writes; annotations may not replace them."""

Annotations: TypeAlias = "Mapping[str, Any] | Callable[[Decision], Mapping[str, Any]]"
"""Extra keys for a decision's audit record, or a function of the decision giving them."""


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of checking a log: ``ok``, how many records, and where it first broke."""

    ok: bool
    records: int
    seq: int | None = None
    """The seq at which the chain first breaks (``None`` when it verifies)."""
    problem: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"ok: {self.records} records, hash chain intact"
        return f"tampered at seq {self.seq}: {self.problem}"


def timestamp(seconds: float) -> str:
    """UTC ISO 8601 with microseconds, e.g. ``2024-05-01T12:00:00.123456Z``."""
    micros_total = round(seconds * 1_000_000)
    whole, micros = divmod(micros_total, 1_000_000)
    return _second(whole) + f".{micros:06d}Z"


@functools.lru_cache(maxsize=4)
def _second(whole: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def decision_record(seconds: float, decision: Decision) -> dict[str, Any]:
    """The unsealed audit record of a decision (no seq, prev or hash yet)."""
    return {
        "kind": DECISION,
        "time": timestamp(seconds),
        "policy_hash": decision.policy_hash,
        "agent": decision.agent_id,
        "action": decision.action,
        "input": decision.audit_input,
        "decision": {
            "outcome": decision.outcome, "label": decision.label, "allowed": decision.allowed,
            "rule_id": decision.rule_id, "threat": decision.threat, "reason": decision.reason,
            "attempted_risk": decision.attempted_risk, "applied_risk": decision.applied_risk,
            "projected_risk": decision.projected_risk,
            "cumulative_risk": decision.cumulative_risk,
            "blocked_attempts": decision.blocked_attempts, "status": decision.status,
        },
        "explanation": decision.explanation_summary,
    }


def annotation(annotations: Annotations, decision: Decision) -> dict[str, Any]:
    """The extra keys for ``decision``'s record, checked: JSON values, no runtime key replaced."""
    extra = dict(annotations(decision) if callable(annotations) else annotations)
    clash = sorted(RECORD_KEYS.intersection(extra))
    if clash:
        raise ValueError(f"annotations may not replace the audit record's own keys: "
                         f"{', '.join(clash)}")
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
    body = canonical_json(record)
    return body, text_hash(body)


def verify_records(records: Iterable[dict[str, Any]], *, expected_head: str | None = None,
                   after: tuple[int, str | None] = (0, None)) -> VerifyResult:
    """Check seq order and the hash chain; report the first seq where the log was tampered with.

    ``after`` is the seq and hash of the record before the first one (for a log that holds
    only the newest records; ``(0, None)``: the log starts at seq 1).
    """
    log = list(records)
    prev: str | None = after[1]
    for position, record in enumerate(log):
        expected_seq = after[0] + position + 1
        problem = _problem(record, expected_seq, prev, log[position + 1:])
        if problem is not None:
            seq = record.get("seq") if isinstance(record, dict) else None
            return VerifyResult(False, position, seq if isinstance(seq, int) else expected_seq,
                                problem)
        prev = record["hash"]
    if expected_head is not None and prev != expected_head:
        return VerifyResult(False, len(log), after[0] + len(log),
                            f"the log ends at {prev}, not at the expected head {expected_head}: "
                            "records were removed from the end")
    return VerifyResult(True, len(log))


def _problem(record: Any, expected_seq: int, prev: str | None, rest: list[Any]) -> str | None:
    if not isinstance(record, dict) or not isinstance(record.get("seq"), int) \
            or "unparsable" in record:
        return f"record at position {expected_seq} is not a valid audit record"
    seq = record["seq"]
    if seq < expected_seq:
        return f"record seq {seq} appears after seq {expected_seq - 1}: reordered or duplicated"
    if seq > expected_seq:
        if any(isinstance(later, dict) and later.get("seq") == expected_seq for later in rest):
            return f"record seq {seq} appears before seq {expected_seq}: reordered"
        missing = f"seq {expected_seq}" if seq == expected_seq + 1 else \
            f"seqs {expected_seq}-{seq - 1}"
        return f"{missing} missing before seq {seq}: record deleted"
    if record.get("hash") != record_hash(record):
        return f"record seq {seq} does not match its hash: edited"
    if record.get("prev") != prev:
        return f"record seq {seq} does not follow the previous record's hash: inserted or replaced"
    if record.get("kind") not in KINDS:
        return f"record seq {seq} has an unknown kind"
    return None


def write_jsonl(records: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """Write records as JSON Lines (canonical JSON, one per line); return how many."""
    count = 0
    for record in records:
        out.write(canonical_json(record) + "\n")
        count += 1
    return count


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Read an exported log; a line that is not JSON yields a non-record the verifier reports."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    yield {"unparsable": line}


def head(records: Iterable[dict[str, Any]]) -> str | None:
    """The hash of the last record: anchor it elsewhere to detect truncation later."""
    last = None
    for record in records:
        last = record.get("hash")
    return last
