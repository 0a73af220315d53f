"""``GET /v1/impact``: known answers computed by hand from decisions written through a real server.

The scenario below runs against the Sentra policy with a fake wall clock in the store (the
audit records get the times given), so the buckets are known: hours, days, an ISO week that
starts on Monday 2024-03-04 and ends on Sunday 2024-03-10, and two months. Every expected number
was worked out from docs/server.md and the policy's rule table, not read from the code.
"""

from __future__ import annotations

import csv
import io
import json
import random
import sqlite3
import tracemalloc
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import Engine, SQLiteStore

from sentra_lang.server import impact
from sentra_lang.server.gate import Gate, load_table
from sentra_lang.server.impact import Impact, Settings
from tests.server.conftest import POLICY, TOKEN, Serve, Server


class Clock:
    """The server's clock: ``time()`` is whatever the test set."""

    def __init__(self) -> None:
        self.now = 0.0

    def set(self, iso: str) -> None:
        self.now = datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(own_server: Server) -> Clock:
    fake = Clock()
    own_server.app.state.gate.clock = fake.time
    return fake


def write_scenario(server: Server, clock: Clock) -> None:
    """Eleven decisions and one reset; the comments give each decision as the policy makes it."""
    clock.set("2024-03-04T10:15:00")
    server.act("a1", "CHANGE_PERMISSION", amount=100)        # Blocked, strike 1
    server.act("a1", "CHANGE_PERMISSION", amount=0.1)        # Blocked, strike 2
    clock.set("2024-03-04T11:05:00")
    server.act("a1", "CHANGE_PERMISSION", amount=0.2)        # Agent Shut Down (3rd block)
    server.act("a1", "APPROVE_TRANSACTION", amount=5000)     # Agent Shut Down (already)
    clock.set("2024-03-10T23:59:59.999")                     # Sunday: still the first week
    server.act("a2", "EXPORT_DATA", destination_type="external",
               data_classification="sensitive")              # Allowed, risk 80
    server.act("a2", "ACCESS_EXTERNAL_SERVICE", data_classification="sensitive",
               amount=250)                                   # 80 + 70 > 100: Blocked
    server.act("a3", "FILE_READ", amount=999)                # Allowed: no exposure
    clock.set("2024-03-11T00:00:00")                         # Monday: the next week
    server.act("a2", "DELETE_RECORD", amount="12.5")         # 80 + 30 > 100: Blocked
    server.act("a2", "DELETE_RECORD")                        # Agent Shut Down, no amount
    clock.set("2024-04-01T00:00:00")
    decided = server.post("/v1/decide", {"agent_id": "a4", "action": "CHANGE_PERMISSION",
                                         "fields": {"amount": 7}})
    assert decided.status == 200, decided.text               # Blocked
    assert server.post("/v1/agents/a1/reset", token=TOKEN).status == 200
    server.act("a1", "CHANGE_PERMISSION", amount=1)          # Blocked, strike 1 again


def report(server: Server, query: str = "") -> dict[str, Any]:
    response = server.get("/v1/impact" + query)
    assert response.status == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return dict(response.json())


def tally(blocked: int, shut_down: int, exposure: float, actions: int,
          held: int = 0) -> dict[str, Any]:
    return {"blocked": blocked, "shut_down": shut_down, "prevented": blocked + shut_down,
            "exposure_prevented": exposure, "exposure_actions": actions, "held": held}


def bucket(start: str, decisions: int, allowed: int, blocked: int, shut_down: int,
           exposure: float, actions: int, shutdowns: int, held: int = 0) -> dict[str, Any]:
    return {"bucket_start": start, "decisions": decisions, "allowed": allowed,
            **tally(blocked, shut_down, exposure, actions, held), "shutdowns": shutdowns}


@pytest.mark.parametrize("page", [1, 3, 1000])
def test_known_answers(own_server: Server, clock: Clock, monkeypatch: pytest.MonkeyPatch,
                       page: int) -> None:
    monkeypatch.setattr(impact, "PAGE", page)   # page boundaries anywhere give the same answer
    write_scenario(own_server, clock)
    answer = report(own_server)
    assert answer["settings"] == {"field": "amount", "field_declared": True, "bucket": "day",
                                  "since": None, "until": None}
    assert answer["last_seq"] == own_server.head()
    assert answer["totals"] == {"decisions": 11, "allowed": 2, **tally(6, 3, 5370.8, 8),
                                "agents_shut_down": 2, "shutdowns": 2}
    assert answer["by_threat"] == [
        {"threat": "Privilege Escalation", **tally(4, 0, 108.1, 4)},
        {"threat": "Agent Shutdown", **tally(0, 3, 5000.2, 2)},
        {"threat": "Data Exfiltration", **tally(1, 0, 250, 1)},
        {"threat": "Destructive Action", **tally(1, 0, 12.5, 1)},
    ]
    assert answer["by_rule"] == [
        {"rule_id": "BLOCK_PERMISSION_CHANGE", **tally(4, 0, 108.1, 4)},
        {"rule_id": "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS", **tally(0, 2, 0.2, 1)},
        {"rule_id": "RISK_THRESHOLD_EXCEEDED", **tally(2, 0, 262.5, 2)},
        {"rule_id": "AGENT_ALREADY_SHUT_DOWN", **tally(0, 1, 5000, 1)},
    ]
    assert answer["agents_shut_down"] == [
        {"agent": "a2", "shutdowns": 1, "first_shutdown": "2024-03-11T00:00:00.000000Z",
         "last_shutdown": "2024-03-11T00:00:00.000000Z",
         "last_rule_id": "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS", "denied_after": 0},
        {"agent": "a1", "shutdowns": 1, "first_shutdown": "2024-03-04T11:05:00.000000Z",
         "last_shutdown": "2024-03-04T11:05:00.000000Z",
         "last_rule_id": "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS", "denied_after": 1},
    ]
    assert answer["over_time"] == [
        bucket("2024-03-04T00:00:00Z", 4, 0, 2, 2, 5100.3, 4, 1),
        bucket("2024-03-10T00:00:00Z", 3, 2, 1, 0, 250, 1, 0),
        bucket("2024-03-11T00:00:00Z", 2, 0, 1, 1, 12.5, 1, 1),
        bucket("2024-04-01T00:00:00Z", 2, 0, 2, 0, 8, 2, 0),
    ]


def test_buckets_of_an_hour_a_week_and_a_month(own_server: Server, clock: Clock) -> None:
    write_scenario(own_server, clock)
    hours = report(own_server, "?bucket=hour")["over_time"]
    assert [(b["bucket_start"], b["decisions"], b["exposure_prevented"]) for b in hours] == [
        ("2024-03-04T10:00:00Z", 2, 100.1), ("2024-03-04T11:00:00Z", 2, 5000.2),
        ("2024-03-10T23:00:00Z", 3, 250), ("2024-03-11T00:00:00Z", 2, 12.5),
        ("2024-04-01T00:00:00Z", 2, 8)]
    weeks = report(own_server, "?bucket=week")["over_time"]
    assert weeks == [bucket("2024-03-04T00:00:00Z", 7, 2, 3, 2, 5350.3, 5, 1),
                     bucket("2024-03-11T00:00:00Z", 2, 0, 1, 1, 12.5, 1, 1),
                     bucket("2024-04-01T00:00:00Z", 2, 0, 2, 0, 8, 2, 0)]
    months = report(own_server, "?bucket=month")["over_time"]
    assert [(b["bucket_start"], b["decisions"], b["prevented"], b["exposure_prevented"])
            for b in months] == [("2024-03-01T00:00:00Z", 9, 7, 5362.8),
                                 ("2024-04-01T00:00:00Z", 2, 2, 8)]


def test_a_time_window(own_server: Server, clock: Clock) -> None:
    write_scenario(own_server, clock)
    since = report(own_server, "?since=2024-03-10")
    assert since["settings"]["since"] == "2024-03-10T00:00:00.000000Z"
    assert since["totals"]["decisions"] == 7 and since["totals"]["exposure_prevented"] == 270.5
    assert [a["agent"] for a in since["agents_shut_down"]] == ["a2"]
    until = report(own_server, "?until=2024-03-11T00:00:00%2B00:00")   # exclusive
    assert until["totals"]["decisions"] == 7 and until["totals"]["prevented"] == 5
    # an offset is converted to UTC: 01:00 at +01:00 is midnight UTC
    shifted = report(own_server, "?since=2024-03-11T01:00:00%2B01:00&until=2024-03-12")
    assert shifted["totals"]["decisions"] == 2
    assert report(own_server, "?since=2030-01-01")["totals"]["decisions"] == 0


def test_early_years_compare_as_times(own_server: Server, clock: Clock) -> None:
    """Years before 1000 are written with four digits: `999-...` would sort after `2024-...`
    and leave a window that starts in the year 999 empty."""
    write_scenario(own_server, clock)
    early = report(own_server, "?since=0999-01-01")
    assert early["settings"]["since"] == "0999-01-01T00:00:00.000000Z"
    assert early["totals"]["decisions"] == 11
    assert report(own_server, "?until=0999-01-01")["totals"]["decisions"] == 0


def test_another_exposure_field(own_server: Server, clock: Clock) -> None:
    write_scenario(own_server, clock)
    limit = report(own_server, "?field=context.max_approval_amount")
    assert limit["settings"]["field_declared"] is True
    assert limit["totals"]["exposure_prevented"] == 0 and limit["totals"]["exposure_actions"] == 0
    clock.set("2024-04-02T00:00:00")
    own_server.act("a5", "CHANGE_PERMISSION", policy_context={"max_approval_amount": 300})
    assert report(own_server, "?field=context.max_approval_amount")["totals"][
        "exposure_prevented"] == 300
    unknown = report(own_server, "?field=cost_usd")
    assert unknown["settings"]["field_declared"] is False
    assert unknown["totals"]["exposure_actions"] == 0


def test_exposure_sums_are_exact_decimals(own_server: Server, clock: Clock) -> None:
    clock.set("2024-05-01T00:00:00")
    for amount in (0.1, 0.2):
        own_server.act("exact", "CHANGE_PERMISSION", amount=amount)
    own_server.act("tiny", "CHANGE_PERMISSION", amount=1e-7)
    totals = report(own_server)["totals"]
    assert 0.1 + 0.2 + 1e-7 != 0.3000001   # what summing floats would give
    assert totals["exposure_prevented"] == 0.3000001
    assert totals["exposure_actions"] == 3


def test_later_decisions_are_counted_and_match_a_fresh_count(own_server: Server,
                                                             clock: Clock) -> None:
    write_scenario(own_server, clock)
    first = report(own_server)
    clock.set("2024-04-01T00:30:00")
    own_server.act("a1", "CHANGE_PERMISSION", amount=2)
    second = report(own_server)
    assert second["totals"]["decisions"] == first["totals"]["decisions"] + 1
    assert second["totals"]["exposure_prevented"] == 5372.8
    gate = own_server.app.state.gate
    assert second == Impact(gate).report(Settings())  # the kept tallies equal a full count
    small = Impact(gate, cached=1)   # settings evicted and counted again agree too
    for settings in (Settings(bucket="hour"), Settings(), Settings(bucket="hour")):
        assert small.report(settings) == Impact(gate).report(settings)


def test_an_empty_log(own_server: Server) -> None:
    answer = report(own_server)
    assert answer["totals"] == {"decisions": 0, "allowed": 0, **tally(0, 0, 0, 0),
                                "agents_shut_down": 0, "shutdowns": 0}
    assert answer["by_threat"] == answer["by_rule"] == answer["agents_shut_down"] == []
    assert answer["over_time"] == []
    text = own_server.get("/v1/impact?format=csv&table=by_rule").text
    assert text == ("rule_id,blocked,shut_down,prevented,exposure_prevented,exposure_actions,"
                    "held\r\n")


# ------------------------------------------------------------------------------------ CSV

def read_csv(server: Server, query: str) -> list[dict[str, str]]:
    response = server.get("/v1/impact?format=csv&" + query)
    assert response.status == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    return list(csv.DictReader(io.StringIO(response.text, newline="")))


def test_each_table_as_csv(own_server: Server, clock: Clock) -> None:
    write_scenario(own_server, clock)
    over_time = read_csv(own_server, "table=over_time&bucket=month")
    assert over_time == [
        {"bucket_start": "2024-03-01T00:00:00Z", "decisions": "9", "allowed": "2",
         "blocked": "4", "shut_down": "3", "prevented": "7", "exposure_prevented": "5362.8",
         "exposure_actions": "6", "held": "0", "shutdowns": "2"},
        {"bucket_start": "2024-04-01T00:00:00Z", "decisions": "2", "allowed": "0",
         "blocked": "2", "shut_down": "0", "prevented": "2", "exposure_prevented": "8",
         "exposure_actions": "2", "held": "0", "shutdowns": "0"}]
    threats = read_csv(own_server, "table=by_threat")
    assert [(t["threat"], t["prevented"], t["exposure_prevented"]) for t in threats] == [
        ("Privilege Escalation", "4", "108.1"), ("Agent Shutdown", "3", "5000.2"),
        ("Data Exfiltration", "1", "250"), ("Destructive Action", "1", "12.5")]
    rules = read_csv(own_server, "table=by_rule")
    assert [r["rule_id"] for r in rules][0] == "BLOCK_PERMISSION_CHANGE"
    agents = read_csv(own_server, "table=agents")
    assert agents[1] == {"agent": "a1", "shutdowns": "1",
                         "first_shutdown": "2024-03-04T11:05:00.000000Z",
                         "last_shutdown": "2024-03-04T11:05:00.000000Z",
                         "last_rule_id": "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS",
                         "denied_after": "1"}
    response = own_server.get("/v1/impact?format=csv&table=agents&bucket=week")
    assert response.headers["content-disposition"] == \
        'attachment; filename="sentra-impact-agents-week.csv"'


@pytest.mark.parametrize("agent", ["=HYPERLINK(\"http://x\")", "+1+1", "-2", "@SUM(A1)",
                                   "\tTAB", "comma, \"quoted\"\nnewline"])
def test_csv_cells_are_never_formulas(own_server: Server, agent: str) -> None:
    for _ in range(3):
        own_server.act(agent, "CHANGE_PERMISSION")
    [row] = read_csv(own_server, "table=agents")
    if agent[0] in "=+-@\t":
        assert row["agent"] == "'" + agent
    else:
        assert row["agent"] == agent  # quoted by the CSV writer, read back whole


# ------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize(("query", "where"), [
    ("field=a%20b", "field"), ("field=1abc", "field"), ("field=" + "a" * 201, "field"),
    ("field=a..b", "field"), ("field=", "field"), ("bucket=year", "bucket"),
    ("since=yesterday", "since"), ("until=2024-13-01", "until"), ("format=xml", "format"),
    ("table=secrets", "table"), ("since=2024-03-02&until=2024-03-01", "until"),
    ("since=2024-03-01&until=2024-03-01", "until"),
    # in range as given, out of range in UTC
    ("since=0001-01-01T00:00:00%2B14:00", "since"), ("until=9999-12-31T23:00:00-14:00", "until"),
])
def test_bad_queries_are_422_with_their_location(server: Server, query: str,
                                                 where: str) -> None:
    response = server.get("/v1/impact?" + query)
    assert response.status == 422, response.text
    detail = response.json()["detail"]
    assert [item["loc"] for item in detail] == [["query", where]], detail
    assert "Traceback" not in response.text


WINDOW_VALUES = ["0001-01-01", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59.999999",
                 "9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59.999999Z", "2024-02-30",
                 "2024-03-01T24:00:00", "2024-03-01T00:00:00.123456789+05:30", "1e309", "-1",
                 "0", "99999999999999999999", "", "now", "\u0662\u0660\u0662\u0664-01-01",
                 "2024-03-01T00:00:00+99:00", "2024-W10", "2024-03-01T00:00:00\x00"]
FIELD_VALUES = ["amount", "a" * 200, "context.max_approval_amount", "__proto__", "a.b.c.d",
                "\U0001f600", "amount.", "é", "a" * 5000]


def test_fuzzed_queries_never_answer_500(server: Server) -> None:
    """Seeded: 400 queries mixing odd dates, offsets, numbers and names; each answers 200 or a
    422 that names a query parameter."""
    draw = random.Random(20240301)
    server.act("fuzzed-impact", "CHANGE_PERMISSION", amount=1)
    for _ in range(400):
        query = {"since": draw.choice(WINDOW_VALUES), "until": draw.choice(WINDOW_VALUES),
                 "field": draw.choice(FIELD_VALUES),
                 "bucket": draw.choice(["hour", "day", "week", "month", "year", ""]),
                 "format": draw.choice(["json", "csv", "CSV"]),
                 "table": draw.choice(["over_time", "by_threat", "by_rule", "agents", "x"])}
        kept = {key: value for key, value in query.items() if draw.random() < 0.6}
        path = "/v1/impact?" + urllib.parse.urlencode(kept)
        response = server.get(path)
        assert response.status in (200, 422), (path, response.status, response.text[:300])
        if response.status == 422:
            assert all(item["loc"][0] == "query" for item in response.json()["detail"]), path


def test_impact_is_in_the_openapi_document(server: Server) -> None:
    operation = server.get("/openapi.json").json()["paths"]["/v1/impact"]["get"]
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert names == {"field", "bucket", "since", "until", "format", "table"}


# ------------------------------------------------------------------------- bounded memory

@pytest.mark.slow
def test_memory_stays_bounded_on_a_large_log(tmp_path: Path) -> None:
    """30,000 decisions (about 30 MB of audit JSON) are counted in a few MB: one page at a time.
    The log is written by an engine on the same file that does not sync each commit (the server's
    store syncs every commit, which is not what this test is about)."""
    store = SQLiteStore(tmp_path / "big.db", synchronous="NORMAL")
    engine = Engine(load_table(POLICY), store)
    for number in range(30_000):
        if number % 3:   # 20,000 blocked or shut down; readers never are
            engine.evaluate(f"agent-{number % 700}", "CHANGE_PERMISSION", {"amount": number % 97})
        else:
            engine.evaluate(f"reader-{number % 50}", "FILE_READ", {})
    store.close()
    gate = Gate(POLICY, tmp_path / "big.db")
    try:
        tracemalloc.start()
        try:
            answer = Impact(gate).report(Settings(bucket="hour"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        gate.close()
    assert answer["totals"]["decisions"] == 30_000
    assert answer["totals"]["prevented"] == 20_000
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"  # all at once: about 125 MB


def test_records_that_are_not_well_formed_decisions_are_passed_over(own_server: Server,
                                                                    clock: Clock) -> None:
    """An edited log (which `sentra-lang audit verify` reports) never makes the view fail."""
    clock.set("2024-03-04T10:15:00")
    own_server.act("a1", "CHANGE_PERMISSION", amount=5)
    good = {"kind": "decision", "time": "2024-03-04T10:16:00.000000Z", "agent": "x",
            "decision": {"outcome": "block", "rule_id": "R", "threat": "T"}, "input": {}}
    hostile = [
        {**good, "time": "2024-13-45T10:16:00.000000Z"},
        {**good, "time": "garbage"},
        {**good, "time": 5},
        {**good, "decision": "blocked"},
        {**good, "decision": {"outcome": "explode"}},
        {**good, "decision": {**good["decision"], "threat": {"nested": 1}}, "agent": None,
         "input": {"amount": "12"}},
        {**good, "input": {"amount": [1, 2]}},
        {**good, "input": "not an object"},
        [1, 2, 3],
        {**good, "seq": None},
        {**good, "seq": 1},   # a seq already counted
    ]
    head = own_server.head()
    with sqlite3.connect(own_server.db) as connection:
        for offset, record in enumerate(hostile, start=1):
            body = {"seq": head + offset, **record} if isinstance(record, dict) else record
            connection.execute("INSERT INTO audit (seq, hash, body) VALUES (?, ?, ?)",
                               (head + offset, "sha256:x", json.dumps(body)))
    assert own_server.get("/dashboard").status == 200   # its snapshot leaves them out too
    with sqlite3.connect(own_server.db) as connection:
        connection.execute("INSERT INTO audit (seq, hash, body) VALUES (?, ?, ?)",
                           (head + len(hostile) + 1, "sha256:x", "{not json"))
    for bucket_size in ("hour", "day", "week", "month"):
        answer = report(own_server, f"?bucket={bucket_size}")
        assert answer["last_seq"] == head + len(hostile) + 1
        # the real decision, plus the three hostile ones that are decisions with a real time
        assert answer["totals"]["decisions"] == 4, (bucket_size, answer)
        assert answer["totals"]["exposure_prevented"] == 5
        assert {t["threat"] for t in answer["by_threat"]} == {"Privilege Escalation", "T", None}


REVIEWED = '''policy refunds version "1" {
  risk_threshold 100
  strikes 2
  review_timeout 1h
}
input {
  amount: number?
}
action ISSUE_REFUND {
  when amount > 500 review risk 60 as REVIEW_LARGE threat "Financial Overreach" "Needs a human."
  allow risk 10 as SMALL "Small refund."
}
otherwise block as OTHER "Not covered."
'''


def test_held_actions_and_verdicts(serve: Serve) -> None:
    """Worked out from docs/server.md ("GET /v1/impact"): three refunds held, one approved
    (allowed), one denied as agent a's second strike (Agent Shut Down, with the held refund's
    exposure), one cancelled by a reset (no decision)."""
    server = serve(REVIEWED, "refunds.sentra")
    tickets = [server.decide(agent, "ISSUE_REFUND", {"amount": amount})["ticket"]
               for agent, amount in (("a", 700), ("a", 800), ("b", 900))]
    verdict = server.post(f"/v1/reviews/{tickets[0]}/approve", {"operator": "ops"}, token=TOKEN)
    assert verdict.json()["decision"]["label"] == "Allowed", verdict.text
    assert server.decide("a", "FOO")["label"] == "Blocked"                # strike 1, no amount
    verdict = server.post(f"/v1/reviews/{tickets[1]}/deny", {"operator": "ops"}, token=TOKEN)
    assert verdict.json()["decision"]["label"] == "Agent Shut Down", verdict.text
    assert server.post("/v1/agents/b/reset", token=TOKEN).status == 200   # cancels b's ticket
    answer = report(server)
    assert answer["totals"] == {"decisions": 6, "allowed": 1, **tally(1, 1, 800, 1, held=3),
                                "agents_shut_down": 1, "shutdowns": 1}
    assert answer["by_rule"] == [
        {"rule_id": "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS", **tally(0, 1, 800, 1)},
        {"rule_id": "OTHER", **tally(1, 0, 0, 0)},
        {"rule_id": "REVIEW_LARGE", **tally(0, 0, 0, 0, held=3)}]
    [down] = answer["agents_shut_down"]
    assert (down["agent"], down["shutdowns"], down["last_rule_id"]) == (
        "a", 1, "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS")
    counts = server.get("/v1/dashboard/snapshot").json()["counts"]
    assert (counts["events"], counts["blocked"]) == (6, 2)
