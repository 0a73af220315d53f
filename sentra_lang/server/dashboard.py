"""The dashboard: the page, and its first snapshot read from the gate.

When reads are open, the page carries the snapshot twice: rendered in HTML (counts, agents, the
newest events), so the first paint needs no request and no script, and as data for its script,
which then follows the live stream from ``head``: nothing waits for the stream to answer, and
no record is counted twice. When the server has a read token, the page carries neither (it is
served to anyone who can reach the port); its script asks for the token and fetches the same
snapshot from ``GET /v1/dashboard/snapshot``, which the read token guards like ``/v1/events``.

The snapshot lists at most :data:`AGENTS` agents (the first page of ``/v1/agents``); it says
where the rest start (``agents_next_after``) and the script pages on from there.
"""

from __future__ import annotations

import functools
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from sentra_lang import __version__
from sentra_lang.diagnostics import INVISIBLE_CHARACTERS
from sentra_lang.server import models
from sentra_lang.server.auth import ReadAuth, read_security
from sentra_lang.server.gate import Gate
from sentra_lang.server.impact import Impact, Settings, record_seq
from sentra_lang.server.native import PAGE_LIMIT, agents_page
from sentra_lang.server.store import Reads

if TYPE_CHECKING:
    from jinja2 import Environment
    from markupsafe import Markup

TEMPLATES = Path(__file__).parent / "templates"
EVENTS = 1000
"""Newest records the page keeps (its event table shows the newest 300 that pass its filter)."""
AGENTS = PAGE_LIMIT
"""Agents the snapshot lists: one page of ``/v1/agents``, in id order."""
RECORD_KEYS = ("seq", "time", "kind", "agent", "action", "operator", "policy_hash", "ticket",
               "verdict", "rule_id", "group")
INVISIBLE = re.compile(f"([{INVISIBLE_CHARACTERS}])")
"""What the page shows as a marked code point (``U+202E``) rather than as itself: the
characters every command's output escapes (control characters but the tab, characters drawn
as nothing such as zero-width and tag characters, line and paragraph separators, bidi
controls). An agent's id or text could otherwise
reorder what an operator reads (``\\u202e`` shows `evil` as `live`), hide what tells two ids
apart, or break a line. The script gets the same class in its configuration, so the server's
first paint and the script's rows mark the same characters."""
DECISION_KEYS = ("label", "outcome", "allowed", "rule_id", "threat", "attempted_risk", "ticket",
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
    """Counts, the first :data:`AGENTS` agents and the newest events (since the last reset of
    every agent), as of ``head``; the page's stream resumes after ``head``.

    The decision counts cover the whole log (the Impact view's tallies). The agent counts are
    exact; ``active`` and ``shut_down`` are ``None`` when there are more agents than listed
    (counting them would read every agent's state: the page counts them as it pages on)."""
    report = impact.report(Settings())
    totals, head = report["totals"], report["last_seq"]
    records = newest_records(gate, head)
    page = agents_page(gate, None, AGENTS)     # read after head: the stream replays what follows
    agents, more = page["agents"], page["next_after"]
    agents.sort(key=lambda agent: (agent["status"] != "shut_down", agent["agent_id"]))
    down = sum(agent["status"] == "shut_down" for agent in agents)
    known = len(agents) if more is None else len(gate.store.agents())
    return {
        "head": head,
        "rendered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "counts": {"events": totals["decisions"], "agents": known,
                   "active": known - down if more is None else None,
                   "shut_down": down if more is None else None, "blocked": totals["prevented"]},
        "agents": agents,
        "agents_next_after": more,
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
        or (kind == "policy_load" and isinstance(record.get("policy"), dict)) \
        or (kind == "review" and isinstance(record.get("verdict"), str)
            and isinstance(decision, (dict, type(None)))) \
        or (kind == "group" and isinstance(record.get("agent"), str)
            and isinstance(record.get("operator"), str)
            and isinstance(record.get("group"), (str, type(None))))


def visible(text: object) -> Markup:
    """``text`` as HTML, each :data:`INVISIBLE` character a marked ``U+XXXX``."""
    from markupsafe import Markup, escape

    parts = INVISIBLE.split(str(text))
    if len(parts) == 1:
        return escape(parts[0])
    return Markup("").join(  # the odd parts are the characters split on
        Markup('<span class="ctl">U+{:04X}</span>').format(ord(part)) if index % 2
        else escape(part) for index, part in enumerate(parts) if part)


@functools.cache
def templates() -> Environment:
    """The page's Jinja2 environment, made at the first page (Jinja2 is not imported at
    start-up), with the :func:`visible` filter for agents' text."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    environment = Environment(loader=FileSystemLoader(TEMPLATES),
                              autoescape=select_autoescape(["html"]))
    environment.filters["visible"] = visible
    return environment


def page(gate: Gate, impact: Impact, guarded: bool) -> str:
    """The dashboard's HTML: with the snapshot when reads are open, without it when the server
    has a read token (``guarded``)."""
    served = gate.policy
    first = None if guarded else snapshot(gate, impact)
    config = {"risk_threshold": served.risk_threshold, "strikes": served.strikes,
              "read_token": guarded, "snapshot": first, "reviews": served.reviews,
              "groups": [group.name for group in served.groups],
              "invisible": INVISIBLE_CHARACTERS,
              "policy": {"name": served.name, "version": served.version, "hash": served.hash}}
    return templates().get_template("dashboard.html").render(
        policy=served, version=__version__, snapshot=first,
        config=json.dumps(config).replace("<", "\\u003c"))


def router(gate: Gate, impact: Impact, reader: ReadAuth, reads: Reads) -> APIRouter:
    """``GET /v1/dashboard/snapshot``, guarded by ``reader`` and read in the read thread."""
    api = APIRouter(prefix="/v1", tags=["native v1"])

    @api.get("/dashboard/snapshot", summary="The dashboard's first state: counts, the first "
             "agents and the newest events, as of `head`", operation_id="get_dashboard_snapshot",
             response_model=models.DashboardSnapshot, responses=models.errors(*models.EDGE, 401),
             openapi_extra={"security": read_security(reader)})
    async def dashboard_snapshot(_: str = Depends(reader)) -> JSONResponse:
        return JSONResponse(await reads.run(snapshot, gate, impact))

    return api
