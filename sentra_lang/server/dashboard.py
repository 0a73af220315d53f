"""The dashboard's first snapshot, read from the gate so that the page shows it at once.

The page renders the snapshot in HTML (counts, agents, the newest events) and hands the same
data to its script, which then follows the live stream from ``head``: nothing waits for the
stream to answer, and no record is counted twice.
"""

from __future__ import annotations

import time
from typing import Any

from sentra_lang.server.gate import Gate
from sentra_lang.server.impact import Impact, Settings, record_seq
from sentra_lang.server.native import agent_view

EVENTS = 1000
"""Newest records the page keeps (its event table shows the newest 300 that pass its filter)."""
RECORD_KEYS = ("seq", "time", "kind", "agent", "action", "operator", "policy_hash")
DECISION_KEYS = ("label", "outcome", "allowed", "rule_id", "threat", "attempted_risk",
                 "cumulative_risk", "blocked_attempts", "status")


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """What the dashboard's tables and chart read of a record; the inspector fetches the rest."""
    kept: dict[str, Any] = {key: record[key] for key in RECORD_KEYS if key in record}
    if isinstance(record.get("decision"), dict):
        kept["decision"] = {key: record["decision"].get(key) for key in DECISION_KEYS}
    if isinstance(record.get("policy"), dict):
        kept["policy"] = {key: record["policy"].get(key) for key in ("name", "version")}
    return kept


def snapshot(gate: Gate, impact: Impact) -> dict[str, Any]:
    """Counts, agents and the newest events (since the last reset of every agent), as of
    ``head``; the page's stream resumes after ``head``."""
    report = impact.report(Settings())
    totals, head = report["totals"], report["last_seq"]
    records = newest_records(gate, head)
    agents = [agent_view(gate, agent) for agent in gate.store.agents()]
    agents.sort(key=lambda agent: (agent["status"] != "shut_down", agent["agent_id"]))
    down = sum(agent["status"] == "shut_down" for agent in agents)
    return {
        "head": head,
        "rendered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "counts": {"events": totals["decisions"], "agents": len(agents),
                   "active": len(agents) - down, "shut_down": down,
                   "blocked": totals["prevented"]},
        "agents": agents,
        "events": [summary(record) for record in records],
    }


def newest_records(gate: Gate, head: int) -> list[dict[str, Any]]:
    """The newest :data:`EVENTS` records up to ``head``, from the last global reset on (a
    record the page cannot show, from an edited log, is left out)."""
    after = max(gate.reader.last_global_reset() - 1, head - EVENTS, 0)
    records: list[dict[str, Any]] = []
    while after < head:
        page = gate.reader.records(after=after, limit=min(EVENTS, head - after))
        records.extend(record for record in page if record_seq(record) <= head
                       and showable(record))
        last = max((record_seq(record) for record in page), default=after)
        if last <= after:
            break
        after = last
    return records[-EVENTS:]


def showable(record: Any) -> bool:
    """A record with the shape the dashboard's rows read (as the runtime writes them)."""
    if not isinstance(record, dict) or not isinstance(record.get("time"), str):
        return False
    kind, decision = record.get("kind"), record.get("decision")
    return (kind == "decision" and isinstance(decision, dict)
            and isinstance(decision.get("label"), str)) or kind == "reset" \
        or (kind == "policy_load" and isinstance(record.get("policy"), dict))

