"""The dashboard's Impact view: what the gate prevented, computed from the audit log.

Blocked and shut-down actions by threat and by rule, the exposure prevented (the sum of one input
field, ``amount`` by default, over the actions that did not run), the agents shut down, and all
of it over time in buckets of an hour, a day, a week or a month. ``GET /v1/impact`` answers JSON,
or one of its tables as CSV (docs/server.md).

The log is read page by page through the store's ``read_records`` and only the tallies are kept,
so memory grows with the number of rules, threats, buckets, shut-down agents and held actions
awaiting a verdict, never with the number of records. Records are only ever appended, so the tallies of the last few settings are
kept and the next request for the same settings reads only the records written since.
"""

from __future__ import annotations

import csv
import io
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeGuard

from fastapi import APIRouter, Depends, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sentra_runtime.audit import DECISION, REVIEW
from sentra_runtime.decider import ALREADY_SHUT_DOWN
from sentra_runtime.decision import ALLOW, BLOCK, SHUTDOWN
from sentra_runtime.decision import REVIEW as HELD
from sentra_runtime.inputs import lookup

from sentra_lang.server import models
from sentra_lang.server.auth import ReadAuth, read_security
from sentra_lang.server.gate import Gate
from sentra_lang.server.store import Reads

Bucket = Literal["hour", "day", "week", "month"]
Table = Literal["over_time", "by_threat", "by_rule", "agents"]
DEFAULT_FIELD = "amount"
DEFAULT_BUCKET: Bucket = "day"
PAGE = 1000
"""Records read per ``read_records`` call."""
CACHED_SETTINGS = 8
"""Tallies kept for this many distinct settings, the least recently used dropped first."""
FIELD_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
AUDIT_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
"""A CSV cell starting with one of these is read as a formula by spreadsheets (OWASP's list and
ASVS 1.2.10's, which adds NUL; a line feed as a carriage return)."""


@dataclass(frozen=True)
class Settings:
    """What one Impact view counts: the exposure field, the bucket size and a time window
    (``since`` inclusive, ``until`` exclusive, as audit-log time strings; ``None``: open)."""

    field: str = DEFAULT_FIELD
    bucket: Bucket = DEFAULT_BUCKET
    since: str | None = None
    until: str | None = None

    def includes(self, time: str) -> bool:
        return (self.since is None or time >= self.since) and \
            (self.until is None or time < self.until)


def audit_time(moment: datetime) -> str:
    """``moment`` in the audit log's time format (UTC, microseconds, four-digit years, so
    that times compare as text); naive means UTC. Raises ``OverflowError`` when the moment
    falls outside the years 1 to 9999 in UTC."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def window_time(moment: datetime | None, name: str) -> str | None:
    """A window bound from the query parameter ``name`` as an audit time; a 422 naming it when
    it has no UTC time."""
    if moment is None:
        return None
    try:
        return audit_time(moment)
    except OverflowError:
        raise RequestValidationError([{
            "type": "time_range", "loc": ["query", name], "input": moment.isoformat(),
            "msg": f"`{name}` is outside the years 1 to 9999 in UTC"}]) from None


def is_audit_time(time: Any) -> TypeGuard[str]:
    """Whether ``time`` is a time as the audit log writes it (a real date, then the clock)."""
    if not isinstance(time, str) or not AUDIT_TIME.match(time):
        return False
    try:
        date.fromisoformat(time[:10])
    except ValueError:
        return False
    return True


def bucket_start(time: str, bucket: Bucket) -> str:
    """The start of the bucket holding the audit time ``time``, as ``YYYY-MM-DDTHH:MM:SSZ``;
    weeks start on Monday (ISO 8601)."""
    if bucket == "hour":
        return f"{time[:13]}:00:00Z"
    if bucket == "day":
        return f"{time[:10]}T00:00:00Z"
    if bucket == "month":
        return f"{time[:7]}-01T00:00:00Z"
    day = date.fromisoformat(time[:10])
    return f"{day - timedelta(days=day.weekday())}T00:00:00Z"


def numeric(value: Any) -> Decimal | None:
    """A finite JSON number as an exact decimal (``0.1`` is 1/10); anything else is ``None``.

    Decimals keep sums of amounts exact: 0.1 + 0.2 is 0.3 here, not 0.30000000000000004."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def exposure_value(record: dict[str, Any], name: str) -> Decimal | None:
    """The value of input field ``name`` in a decision record, when it is a number."""
    recorded = record.get("input")
    return numeric(lookup(recorded, name)) if isinstance(recorded, dict) else None


@dataclass
class Tally:
    """Counts of decisions, and the exposure of the prevented ones."""

    decisions: int = 0
    allowed: int = 0
    blocked: int = 0
    shut_down: int = 0
    held: int = 0
    """Actions held for an operator's review (``Review Required``): not prevented, not run;
    the verdict is a decision of its own."""
    exposure: Decimal = Decimal(0)
    exposure_actions: int = 0
    """Prevented actions whose record carried a number in the exposure field."""
    shutdowns: int = 0
    """Decisions that shut an agent down (not those denied because it already was)."""

    @property
    def prevented(self) -> int:
        return self.blocked + self.shut_down

    def add(self, outcome: str, amount: Decimal | None, shutdown: bool) -> None:
        self.decisions += 1
        if outcome == ALLOW:
            self.allowed += 1
            return
        if outcome == HELD:
            self.held += 1
            return
        if outcome == SHUTDOWN:
            self.shut_down += 1
        else:
            self.blocked += 1
        self.shutdowns += shutdown
        if amount is not None:
            self.exposure += amount
            self.exposure_actions += 1

    def counts(self) -> dict[str, Any]:
        return {"blocked": self.blocked, "shut_down": self.shut_down,
                "prevented": self.prevented, "exposure_prevented": as_number(self.exposure),
                "exposure_actions": self.exposure_actions, "held": self.held}


@dataclass
class AgentShutdowns:
    """One agent's shutdowns: how many, when, by which rule, and what it tried afterwards."""

    shutdowns: int = 0
    first_shutdown: str = ""
    last_shutdown: str = ""
    last_rule_id: str = ""
    denied_after: int = 0
    """Actions denied because the agent was already shut down."""


@dataclass
class Aggregate:
    """The tallies of one :class:`Settings` over the records up to ``last_seq``."""

    settings: Settings
    last_seq: int = 0
    totals: Tally = field(default_factory=Tally)
    by_threat: dict[str | None, Tally] = field(default_factory=dict)
    by_rule: dict[str, Tally] = field(default_factory=dict)
    buckets: dict[str, Tally] = field(default_factory=dict)
    agents: dict[str, AgentShutdowns] = field(default_factory=dict)
    pending: dict[str, Decimal | None] = field(default_factory=dict)
    """The exposure of each action held for review whose ticket has no verdict yet (in the log
    read so far, whatever the window): its verdict's record carries no input."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def consume(self, records: Iterable[dict[str, Any]]) -> None:
        """Count the decisions among ``records`` (in seq order) that fall in the window, each
        once: the decisions made at a request, and those an operator's verdict on a held
        action made (a denial is a block; its exposure is the held action's). A record that is
        not a well-formed decision (an edited log: `sentra-lang audit verify` finds it) is
        passed over."""
        for record in records:
            seq = record_seq(record)
            if seq <= self.last_seq:   # counted already, or no record at all
                continue
            self.last_seq = seq
            kind, time, decision = record.get("kind"), record.get("time"), record.get("decision")
            amount = None
            if kind == REVIEW:   # a ticket's step: the held action's exposure is its own
                amount = self.pending.pop(str(record.get("ticket")), None)
            elif kind != DECISION or not isinstance(decision, dict):
                continue
            elif decision.get("outcome") == HELD:
                self.pending[str(decision.get("ticket"))] = exposure_value(record,
                                                                           self.settings.field)
            else:
                amount = exposure_value(record, self.settings.field)
            if is_audit_time(time) and isinstance(decision, dict) \
                    and decision.get("outcome") in (ALLOW, BLOCK, SHUTDOWN, HELD) \
                    and self.settings.includes(time):
                self._decision(record, time, decision, amount)

    def _decision(self, record: dict[str, Any], time: str, decision: dict[str, Any],
                  amount: Decimal | None) -> None:
        outcome, rule = decision["outcome"], str(decision.get("rule_id"))
        already = outcome == SHUTDOWN and rule == ALREADY_SHUT_DOWN
        shutdown = outcome == SHUTDOWN and not already
        if outcome == ALLOW:
            amount = None
        tallies = [self.totals, self.buckets.setdefault(bucket_start(time, self.settings.bucket),
                                                        Tally())]
        if outcome != ALLOW:
            threat = decision.get("threat")
            tallies.append(self.by_threat.setdefault(threat if isinstance(threat, str) else None,
                                                     Tally()))
            tallies.append(self.by_rule.setdefault(rule, Tally()))
        for tally in tallies:
            tally.add(outcome, amount, shutdown)
        if shutdown or already:
            self._agent(str(record.get("agent")), time, rule, shutdown)

    def _agent(self, agent: str, time: str, rule: str, shutdown: bool) -> None:
        seen = self.agents.setdefault(agent, AgentShutdowns())
        if not shutdown:
            seen.denied_after += 1
            return
        seen.shutdowns += 1
        seen.first_shutdown = seen.first_shutdown or time
        seen.last_shutdown, seen.last_rule_id = time, rule

    def report(self, declared: bool) -> dict[str, Any]:
        """The JSON answer of ``GET /v1/impact`` (docs/server.md)."""
        settings, totals = self.settings, self.totals
        return {
            "settings": {"field": settings.field, "field_declared": declared,
                         "bucket": settings.bucket, "since": settings.since,
                         "until": settings.until},
            "last_seq": self.last_seq,
            "totals": {"decisions": totals.decisions, "allowed": totals.allowed,
                       **totals.counts(), "agents_shut_down": len(self.shut_down_agents()),
                       "shutdowns": totals.shutdowns},
            "by_threat": [{"threat": threat, **tally.counts()}
                          for threat, tally in ranked(self.by_threat)],
            "by_rule": [{"rule_id": rule, **tally.counts()}
                        for rule, tally in ranked(self.by_rule)],
            "agents_shut_down": [{"agent": agent, **vars(seen)}
                                 for agent, seen in self.shut_down_agents()],
            "over_time": [{"bucket_start": start, "decisions": tally.decisions,
                           "allowed": tally.allowed, **tally.counts(),
                           "shutdowns": tally.shutdowns}
                          for start, tally in sorted(self.buckets.items())],
        }

    def shut_down_agents(self) -> list[tuple[str, AgentShutdowns]]:
        """Agents shut down at least once in the window, most recent shutdown first."""
        down = [(agent, seen) for agent, seen in self.agents.items() if seen.shutdowns]
        return sorted(down, key=lambda item: (item[1].last_shutdown, item[0]), reverse=True)


def record_seq(record: Any) -> int:
    """A record's sequence number (0 for something that is not a record)."""
    seq = record.get("seq") if isinstance(record, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else 0


def ranked(tallies: dict[Any, Tally]) -> list[tuple[Any, Tally]]:
    """Most prevented first; ties by key (``None`` first)."""
    return sorted(tallies.items(), key=lambda item: (-item[1].prevented, item[0] is not None,
                                                      item[0] or ""))


def as_number(value: Decimal) -> int | float:
    """An exact decimal as the JSON number closest to it."""
    return int(value) if value == value.to_integral_value() else float(value)


class Impact:
    """The Impact view of one gate's audit log, kept up to date per settings."""

    def __init__(self, gate: Gate, cached: int = CACHED_SETTINGS) -> None:
        self.gate = gate
        self.cached = cached
        self._lock = threading.Lock()
        self._aggregates: OrderedDict[Settings, Aggregate] = OrderedDict()

    def report(self, settings: Settings) -> dict[str, Any]:
        """The view for ``settings``, counting only the records written since the last time."""
        while True:
            aggregate = self._aggregate(settings)
            with aggregate.lock:
                if self.gate.reader.head() < aggregate.last_seq:  # another log: count anew
                    self._forget(settings, aggregate)
                    continue
                for page in self._pages(aggregate.last_seq):
                    aggregate.consume(page)
                declared = any(spec.name == settings.field for spec in self.gate.policy.inputs)
                return aggregate.report(declared)

    def _pages(self, after: int) -> Iterator[list[dict[str, Any]]]:
        while True:
            page = self.gate.reader.records(after=after, limit=PAGE)
            if page:
                yield page
            last = max((record_seq(record) for record in page), default=after)
            if len(page) < PAGE or last <= after:
                return
            after = last

    def _aggregate(self, settings: Settings) -> Aggregate:
        with self._lock:
            found = self._aggregates.get(settings)
            if found is None:
                return self._insert(settings)
            self._aggregates.move_to_end(settings)
            return found

    def _forget(self, settings: Settings, aggregate: Aggregate) -> None:
        with self._lock:
            if self._aggregates.get(settings) is aggregate:
                del self._aggregates[settings]

    def _insert(self, settings: Settings) -> Aggregate:
        aggregate = self._aggregates[settings] = Aggregate(settings)
        self._aggregates.move_to_end(settings)
        while len(self._aggregates) > self.cached:
            self._aggregates.popitem(last=False)
        return aggregate


# ----------------------------------------------------------------------------------- CSV

def csv_rows(report: dict[str, Any], table: Table) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of one table of a report."""
    if table == "agents":
        header = ["agent", "shutdowns", "first_shutdown", "last_shutdown", "last_rule_id",
                  "denied_after"]
        return header, [[item[key] for key in header] for item in report["agents_shut_down"]]
    items: list[dict[str, Any]] = report[table]
    header = list(items[0]) if items else list(EMPTY_HEADERS[table])
    return header, [[item[name] for name in header] for item in items]


EMPTY_HEADERS: dict[str, tuple[str, ...]] = {
    "over_time": ("bucket_start", "decisions", "allowed", "blocked", "shut_down", "prevented",
                  "exposure_prevented", "exposure_actions", "held", "shutdowns"),
    "by_threat": ("threat", "blocked", "shut_down", "prevented", "exposure_prevented",
                  "exposure_actions", "held"),
    "by_rule": ("rule_id", "blocked", "shut_down", "prevented", "exposure_prevented",
                "exposure_actions", "held"),
}


def csv_cell(value: Any) -> str:
    """A value as CSV text: numbers as JSON writes them, ``None`` empty, and text that a
    spreadsheet would run as a formula (:data:`FORMULA_STARTS`) prefixed with ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def render_csv(report: dict[str, Any], table: Table) -> str:
    header, rows = csv_rows(report, table)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([csv_cell(value) for value in row] for row in rows)
    return out.getvalue()


# -------------------------------------------------------------------------------- the API

def router(impact: Impact, reader: ReadAuth, reads: Reads) -> APIRouter:
    """``GET /v1/impact``: guarded by ``reader`` as ``/v1/events`` is (the same audit log), and
    counted in the read thread, so a first count over a large log neither holds the event loop
    nor takes the threads that decisions run in."""
    api = APIRouter(prefix="/v1", tags=["native v1"])

    @api.get("/impact", summary="What the gate prevented, from the audit log (JSON or CSV)",
             operation_id="get_impact", response_model=models.ImpactReport,
             responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                              "description": "the view as JSON, or one of its tables as CSV"},
                        **models.errors(*models.EDGE, 401)},
             openapi_extra={"security": read_security(reader)})
    async def impact_view(
            field: Annotated[str, Query(max_length=200, pattern=FIELD_PATTERN,
                                        description="input field summed as exposure")
                             ] = DEFAULT_FIELD,
            bucket: Bucket = DEFAULT_BUCKET,
            since: Annotated[datetime | None, Query(description="from (ISO 8601; UTC "
                                                                 "when no offset)")] = None,
            until: Annotated[datetime | None, Query(description="before (ISO 8601)")] = None,
            format: Literal["json", "csv"] = "json",
            table: Table = "over_time", _: str = Depends(reader)) -> Response:
        settings = Settings(field, bucket, window_time(since, "since"),
                            window_time(until, "until"))
        if settings.since is not None and settings.until is not None \
                and settings.since >= settings.until:
            raise RequestValidationError([{
                "type": "time_window", "loc": ["query", "until"], "input": str(until),
                "msg": "`until` must be later than `since`"}])
        if format == "json":
            return JSONResponse(await reads.run(impact.report, settings))
        text = await reads.run(lambda: render_csv(impact.report(settings), table))
        name = f"sentra-impact-{table}-{bucket}.csv"
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return api
