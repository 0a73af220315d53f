"""Issue 15's review, rate limits and group assignment under concurrency and across processes,
against the docs (docs/runtime.md, "Review", "Rate-limit windows", "Reset, state, agents";
docs/server.md, "Review", "Workers and instances"; docs/language.md, "Rate limits", "Agent
groups"): real `sentra-lang serve` processes (two workers on one SQLite file, two instances on
one PostgreSQL database) and the in-process server with a clock the test moves.

The expected answers come from the docs, not from the code: an oracle below replays each
agent's audit records serially with the documented rules (threshold, strikes, limits, verdicts,
resets, assignments) and must reproduce every recorded outcome and the stored state."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest

from tests.pg.helpers import TOKEN, Answer, Instance, request
from tests.pg_fixtures import with_schema
from tests.runtime.helpers import T0, Clock
from tests.server.conftest import TOKEN as THREAD_TOKEN
from tests.server.conftest import Serve, Server, serve  # noqa: F401 (the fixture, for `start`)

ROOT = Path(__file__).resolve().parents[2]
THRESHOLD, TRUSTED_THRESHOLD, STRIKES = 100, 200, 3
POLICY = '''policy probe version "1" {
  risk_threshold 100
  strikes 3
  review_timeout 1h
}

group trusted {
  agents "ops-*"
  risk_threshold 200
}

input {
  amount: number?
}

action ISSUE_REFUND {
  when amount > 500 review risk 60 as REVIEW_LARGE "Refund of {amount} needs a human."
  allow risk 10 as SMALL "Small refund."
}

action CAPPED_REFUND {
  limit 2 per 1h
  review risk 0 as REVIEW_CAPPED "Capped refunds need a human."
}

action QUICK_REFUND {
  review risk 10 as REVIEW_QUICK "Quick refunds need a human, soon." expires 1s
}

action PING {
  allow as PING_OK limit 5 per 1h "Ping."
}

action EXPORT {
  allow risk 30 as EXPORT_OK "Export."
}

otherwise block as OTHER "Not covered."
'''
RISK = {"REVIEW_LARGE": 60, "REVIEW_CAPPED": 0, "REVIEW_QUICK": 10, "SMALL": 10, "PING_OK": 0,
        "EXPORT_OK": 30}


# --- the oracle: the documented rules, replayed serially over one agent's records ------------

class Oracle:
    """One agent's state by the docs: risk, strikes, shut down, group, limit windows (counts of
    allowed decisions: every probe here runs well inside one window)."""

    def __init__(self) -> None:
        self.risk, self.blocked, self.down, self.assigned = 0, 0, False, None
        self.counted: Counter[str] = Counter()

    def threshold(self) -> int:
        return TRUSTED_THRESHOLD if self.assigned == "trusted" else THRESHOLD

    def block(self, rule: str) -> tuple[str, str]:
        self.blocked += 1
        if self.blocked >= STRIKES:   # the strike that shuts down (docs/runtime.md, "Evaluate")
            self.down = True
            return "Agent Shut Down", "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS"
        return "Blocked", rule

    def allow(self, rule: str, limit: tuple[str, int] | None) -> tuple[str, str]:
        """The review rule's or a plain rule's allow: limits first, then the threshold."""
        if self.down:
            return "Agent Shut Down", "AGENT_ALREADY_SHUT_DOWN"
        if limit is not None and self.counted[limit[0]] >= limit[1]:
            return self.block("RATE_LIMIT_EXCEEDED")
        if self.risk + RISK[rule] > self.threshold():
            return self.block("RISK_THRESHOLD_EXCEEDED")
        self.risk += RISK[rule]
        if limit is not None:
            self.counted[limit[0]] += 1
        return "Allowed", rule

    def step(self, record: dict[str, Any]) -> tuple[str, str] | None:
        """The (label, rule id) the docs give ``record``, or None for one that decides
        nothing (a review decision, an expiry, a cancellation, a reset, an assignment)."""
        kind = record["kind"]
        if kind == "reset":
            self.risk, self.blocked, self.down = 0, 0, False
            self.counted.clear()
            return None
        if kind == "group":
            self.assigned = record["group"]
            return None
        if kind == "review":
            verdict = record["verdict"]
            if verdict in ("expired", "cancelled"):
                return None
            if verdict == "denied":
                return self.block(record["rule_id"])
            limit = ("CAPPED_REFUND", 2) if record["rule_id"] == "REVIEW_CAPPED" else None
            return self.allow(record["rule_id"], limit)
        action = record["action"]
        if action == "PING":
            return self.allow("PING_OK", ("PING_OK", 5))
        if action == "EXPORT":
            return self.allow("EXPORT_OK", None)
        if action == "ISSUE_REFUND" and (record["input"].get("amount") or 0) <= 500:
            return self.allow("SMALL", None)
        if self.down:
            return "Agent Shut Down", "AGENT_ALREADY_SHUT_DOWN"
        return None   # held for review: nothing changes

    def state(self) -> tuple[int, int, str]:
        return self.risk, self.blocked, "shut_down" if self.down else "active"


def check_with_oracle(records: list[dict[str, Any]], agent: str) -> Oracle:
    """Replay ``agent``'s records in seq order; every recorded outcome must be the oracle's, and
    no cumulative risk may exceed the threshold in effect."""
    oracle = Oracle()
    for record in records:
        if record.get("agent") != agent and agent not in (record.get("agents") or ()):
            continue
        expected = oracle.step(record)
        decision = record.get("decision")
        if expected is None or decision is None:
            continue
        got = (decision["label"], decision["rule_id"])
        assert got == expected, (agent, record["seq"], got, expected)
        assert decision["cumulative_risk"] == oracle.risk, (agent, record["seq"])
        assert decision["cumulative_risk"] <= oracle.threshold(), record
    return oracle


# --- servers as real processes -------------------------------------------------------------

class Cluster:
    """Two ways into one store (two workers of one process, or two instances), the store's
    target, and helpers over HTTP."""

    def __init__(self, ports: list[int], db: str) -> None:
        self.ports, self.db = ports, db

    def port(self, number: int) -> int:
        return self.ports[number % len(self.ports)]

    def decide(self, number: int, agent: str, action: str, **fields: Any) -> Answer:
        return request(self.port(number), "POST", "/v1/decide",
                       {"agent_id": agent, "action": action, "fields": fields})

    def held(self, agent: str, action: str = "ISSUE_REFUND", amount: int = 900) -> str:
        answer = self.decide(0, agent, action, amount=amount)
        assert answer.status == 200, answer.body
        decision = answer.body["decision"]
        assert decision["label"] == "Review Required", decision
        return str(decision["ticket"])

    def verdict(self, number: int, ticket: str, approve: bool) -> Answer:
        return request(self.port(number), "POST",
                       f"/v1/reviews/{ticket}/{'approve' if approve else 'deny'}",
                       {"operator": f"op-{number}"}, token=TOKEN)

    def records(self, agent_prefix: str) -> list[dict[str, Any]]:
        """The log's records of the agents whose ids start with ``agent_prefix``, after
        checking the whole log with `sentra-lang audit verify` (chain, states, tickets)."""
        verified = subprocess.run([sys.executable, "-m", "sentra_lang", "audit", "verify",
                                   self.db], capture_output=True, text=True, cwd=ROOT,
                                  timeout=60)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        from sentra_runtime.stores import open_store

        store = open_store(self.db)
        try:
            return [record for record in store.audit_records()
                    if str(record.get("agent") or "").startswith(agent_prefix)
                    or any(str(a).startswith(agent_prefix) for a in record.get("agents") or ())]
        finally:
            store.close()

    def state(self, agent: str) -> tuple[int, int, str]:
        body = request(self.port(0), "GET", f"/v1/agents/{agent}").body
        return body["cumulative_risk"], body["blocked_attempts"], body["status"]

    def ticket(self, ticket: str) -> dict[str, Any]:
        answer = request(self.port(0), "GET", f"/v1/reviews/{ticket}")
        assert answer.status == 200, answer.body
        return dict(answer.body)


def at_once(calls: list[Callable[[], Answer]]) -> list[Answer]:
    """Run every call in its own thread, released together by a barrier; the answers in the
    calls' order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Answer]) -> Answer:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def assert_no_server_error(answers: list[Answer]) -> None:
    for answer in answers:
        assert answer.status < 500 and "Traceback" not in str(answer.body), answer


@pytest.fixture(scope="module", params=["sqlite-workers", "sqlite-instances",
                                        "postgres-instances"])
def cluster(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """`sentra-lang serve --workers 2` on one SQLite file, two instances on one SQLite file, or
    two instances on one PostgreSQL schema of the module's own, serving POLICY."""
    folder = tmp_path_factory.mktemp("probe")
    policy = folder / "probe.sentra"
    policy.write_text(POLICY, encoding="utf-8")
    schema = ""
    if request.param.startswith("sqlite"):
        db = str(folder / "probe.db")
        running = ([Instance(policy, db, workers=2, name="workers")]
                   if request.param == "sqlite-workers"
                   else [Instance(policy, db, name=name) for name in ("A", "B")])
    else:
        import psycopg

        server = request.getfixturevalue("postgres_server")
        schema = f"probe_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        db = with_schema(server, schema)
        running = [Instance(policy, db, name=name) for name in ("A", "B")]
    try:
        for instance in running:
            instance.start()
        yield Cluster([instance.port for instance in running], db)
    finally:
        for instance in running:
            instance.stop()
        if schema:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def start(request: pytest.FixtureRequest) -> Serve:
    """The server tests' ``serve`` fixture (tests/server/conftest.py): in-process servers of the
    test's own, whose clock a test may replace."""
    started: Serve = request.getfixturevalue("serve")
    return started


def fresh(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


# --- 1. double verdicts ----------------------------------------------------------------------

@pytest.mark.slow
def test_a_ticket_gets_exactly_one_verdict_across_processes(cluster: Cluster) -> None:
    prefix = fresh("dv")
    agents = [f"{prefix}-{number}" for number in range(8)]
    tickets = {agent: cluster.held(agent) for agent in agents}
    plan = [(agent, number, approve) for agent in agents
            for number, approve in enumerate((True, True, False, False))]
    answers = at_once([lambda a=agent, n=number, v=approve: cluster.verdict(  # type: ignore[misc]
        n, tickets[a], v) for agent, number, approve in plan])
    assert_no_server_error(answers)
    records = cluster.records(prefix)
    for agent in agents:
        mine = [answer for (owner, _, _), answer in zip(plan, answers, strict=True)
                if owner == agent]
        won = [answer for answer in mine if answer.status == 200]
        assert len(won) == 1, [answer.status for answer in mine]
        status = won[0].body["ticket"]["status"]
        for lost in mine:
            if lost.status != 200:
                assert lost.status == 409, lost
                assert lost.body["detail"]["ticket"]["status"] == status, lost.body
        reviews = [record for record in records
                   if record["kind"] == "review" and record["agent"] == agent]
        assert [record["verdict"] for record in reviews] == [status]
        assert cluster.ticket(tickets[agent])["status"] == status
        expected = (60, 0, "active") if status == "approved" else (0, 1, "active")
        assert cluster.state(agent) == expected
        assert check_with_oracle(records, agent).state() == expected


def test_one_server_many_threads_give_one_verdict_per_ticket(start: Serve) -> None:
    server = start(POLICY, "probe.sentra")
    tickets = []
    for number in range(20):
        answer = server.post("/v1/decide", {"agent_id": f"t-{number}", "action": "ISSUE_REFUND",
                                            "fields": {"amount": 900}})
        tickets.append(answer.json()["decision"]["ticket"])
    plan = [(ticket, approve) for ticket in tickets for approve in (True, False, True)]

    def judge(ticket: str, approve: bool) -> Answer:
        reply = server.post(f"/v1/reviews/{ticket}/{'approve' if approve else 'deny'}",
                            {"operator": "alice"}, token=THREAD_TOKEN)
        return Answer(reply.status, reply.json(), 0.0)

    answers = at_once([lambda t=ticket, a=approve: judge(t, a)  # type: ignore[misc]
                       for ticket, approve in plan])
    assert_no_server_error(answers)
    by_ticket = Counter(ticket for (ticket, _), answer in zip(plan, answers, strict=True)
                        if answer.status == 200)
    assert by_ticket == Counter(tickets)
    assert sorted({answer.status for answer in answers}) == [200, 409]
    from sentra_runtime.stores.sqlite import verify_file

    assert verify_file(server.db).ok
    reviews = server.get("/v1/events?kind=review&limit=1000").json()["events"]
    assert Counter(record["ticket"] for record in reviews) == Counter(tickets)


# --- 2. rate limits ---------------------------------------------------------------------------

@pytest.mark.slow
def test_a_rate_limit_allows_exactly_k_across_processes(cluster: Cluster) -> None:
    prefix = fresh("rl")
    agents = [f"{prefix}-{number}" for number in range(3)]
    plan = [(agent, number) for agent in agents for number in range(16)]
    answers = at_once([lambda a=agent, n=number: cluster.decide(n, a, "PING")  # type: ignore[misc]
                       for agent, number in plan])
    assert_no_server_error(answers)
    records = cluster.records(prefix)
    for agent in agents:
        outcomes = Counter((answer.body["decision"]["label"], answer.body["decision"]["rule_id"])
                           for (owner, _), answer in zip(plan, answers, strict=True)
                           if owner == agent)
        assert outcomes == {("Allowed", "PING_OK"): 5, ("Blocked", "RATE_LIMIT_EXCEEDED"): 2,
                            ("Agent Shut Down", "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS"): 1,
                            ("Agent Shut Down", "AGENT_ALREADY_SHUT_DOWN"): 8}, outcomes
        assert cluster.state(agent) == check_with_oracle(records, agent).state()
        assert cluster.state(agent)[1:] == (STRIKES, "shut_down")


@pytest.mark.slow
def test_approvals_racing_for_a_rate_limit_count_exactly(cluster: Cluster) -> None:
    """Rate limits are checked at approval (docs/runtime.md, "Review"): five approvals at once
    of a block limited to 2 per 1h: two approved, three blocked at the limit (the third block
    shuts the agent down)."""
    agent = fresh("cap")
    tickets = [cluster.held(agent, "CAPPED_REFUND") for _ in range(5)]
    answers = at_once([lambda t=ticket, n=number: cluster.verdict(n, t, True)  # type: ignore[misc]
                       for number, ticket in enumerate(tickets)])
    assert_no_server_error(answers)
    assert [answer.status for answer in answers] == [200] * 5
    statuses = Counter(cluster.ticket(ticket)["status"] for ticket in tickets)
    assert statuses == {"approved": 2, "blocked": 3}
    labels = Counter((answer.body["decision"]["label"], answer.body["decision"]["rule_id"])
                     for answer in answers)
    assert labels == {("Allowed", "REVIEW_CAPPED"): 2, ("Blocked", "RATE_LIMIT_EXCEEDED"): 2,
                      ("Agent Shut Down", "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS"): 1}, labels
    records = cluster.records(agent)
    assert check_with_oracle(records, agent).state() == cluster.state(agent) == (
        0, 3, "shut_down")


# --- 3. approval racing the agent's own decisions ---------------------------------------------

@pytest.mark.slow
def test_an_approval_is_decided_against_the_state_at_approval(cluster: Cluster) -> None:
    prefix = fresh("race")
    agents = [f"{prefix}-{number}" for number in range(6)]
    tickets = {agent: cluster.held(agent) for agent in agents}
    plan: list[tuple[str, str]] = []
    for agent in agents:
        plan += [(agent, "approve")] + [(agent, "export")] * 4
    answers = at_once([
        (lambda a=agent, n=number: cluster.verdict(n, tickets[a], True))  # type: ignore[misc]
        if what == "approve" else
        (lambda a=agent, n=number: cluster.decide(n, a, "EXPORT"))  # type: ignore[misc]
        for number, (agent, what) in enumerate(plan)])
    assert_no_server_error(answers)
    assert {answer.status for answer in answers} == {200}
    records = cluster.records(prefix)
    for agent in agents:
        oracle = check_with_oracle(records, agent)
        assert cluster.state(agent) == oracle.state()
        assert oracle.risk <= THRESHOLD
        assert [r["verdict"] for r in records if r["kind"] == "review"
                and r["agent"] == agent] == [cluster.ticket(tickets[agent])["status"]]


# --- 4. reset and group assignment racing decisions and verdicts ------------------------------

@pytest.mark.slow
def test_a_reset_racing_verdicts_settles_each_ticket_once(cluster: Cluster) -> None:
    prefix = fresh("reset")
    agents = [f"{prefix}-{number}" for number in range(4)]
    tickets = {agent: [cluster.held(agent) for _ in range(3)] for agent in agents}
    calls: list[Callable[[], Answer]] = []
    for agent in agents:
        first, second, third = tickets[agent]
        calls += [lambda t=first: cluster.verdict(0, t, True),  # type: ignore[misc]
                  lambda t=second: cluster.verdict(1, t, False),  # type: ignore[misc]
                  lambda t=third: cluster.verdict(0, t, True),  # type: ignore[misc]
                  lambda a=agent: request(cluster.port(1), "POST",  # type: ignore[misc]
                                          f"/v1/agents/{a}/reset", token=TOKEN),
                  lambda a=agent: cluster.decide(0, a, "EXPORT"),  # type: ignore[misc]
                  lambda a=agent: cluster.decide(1, a, "EXPORT")]  # type: ignore[misc]
    answers = at_once(calls)
    assert_no_server_error(answers)
    records = cluster.records(prefix)
    for index, agent in enumerate(agents):
        mine = answers[index * 6:index * 6 + 6]
        reset_seq = mine[3].body["seq"]
        for ticket, answer in zip(tickets[agent], mine[:3], strict=True):
            [settled] = [r for r in records if r["kind"] == "review" and r["ticket"] == ticket]
            assert cluster.ticket(ticket)["status"] == settled["verdict"]
            if settled["verdict"] == "cancelled":   # the reset came first: the verdict is a 409
                assert answer.status == 409, answer
                assert answer.body["detail"]["ticket"]["status"] == "cancelled"
                assert settled["operator"] == "operator"   # the resetting operator
            else:
                assert answer.status == 200 and settled["seq"] < reset_seq, (answer, settled)
        cancelled = sorted(r["seq"] for r in records if r["kind"] == "review"
                           and r["agent"] == agent and r["verdict"] == "cancelled")
        assert cancelled == list(range(reset_seq + 1, reset_seq + 1 + len(cancelled)))
        assert cluster.state(agent) == check_with_oracle(records, agent).state()


@pytest.mark.slow
def test_a_group_assignment_applies_to_the_next_decision(cluster: Cluster) -> None:
    """An assignment racing an agent's exports and an approval: every decision after the
    `group` record is measured against the trusted threshold (200), every one before it
    against the header's (100); nothing is lost."""
    prefix = fresh("grp")
    agents = [f"{prefix}-{number}" for number in range(4)]
    tickets = {agent: cluster.held(agent) for agent in agents}
    calls: list[Callable[[], Answer]] = []
    for agent in agents:
        calls += [lambda a=agent: request(cluster.port(1), "PUT",  # type: ignore[misc]
                                          f"/v1/agents/{a}/group",
                                          {"group": "trusted", "operator": "alice"},
                                          token=TOKEN),
                  lambda a=agent: cluster.verdict(0, tickets[a], True)]  # type: ignore[misc]
        calls += [lambda a=agent, n=n: cluster.decide(n, a, "EXPORT")  # type: ignore[misc]
                  for n in range(4)]
    answers = at_once(calls)
    assert_no_server_error(answers)
    assert {answer.status for answer in answers} == {200}
    records = cluster.records(prefix)
    for agent in agents:
        assigned = False
        for record in records:
            if record.get("agent") != agent:
                continue
            if record["kind"] == "group":
                assigned = True
            elif record["kind"] == "decision" and record["action"] == "EXPORT":
                assert record["decision"]["group"] == ("trusted" if assigned else ""), record
        assert assigned
        oracle = check_with_oracle(records, agent)
        assert cluster.state(agent) == oracle.state()
        assert oracle.risk == 60 + 4 * 30 or oracle.blocked > 0


@pytest.mark.slow
def test_a_global_reset_racing_first_decisions_cancels_exactly_the_earlier_tickets(
        cluster: Cluster) -> None:
    """`POST /v1/reset` resets every agent and cancels their pending tickets (docs/server.md):
    in the one serial history, every ticket whose review decision comes before the reset
    record is cancelled by it, every later one stays pending; every agent with an earlier
    record is among the reset ones."""
    prefix = fresh("global")
    agents = [f"{prefix}-{number}" for number in range(12)]
    calls: list[Callable[[], Answer]] = [
        lambda a=agent, n=number: cluster.decide(n, a, "ISSUE_REFUND",  # type: ignore[misc]
                                                 amount=900)
        for number, agent in enumerate(agents)]
    calls.insert(6, lambda: request(cluster.port(1), "POST", "/v1/reset", token=TOKEN))
    answers = at_once(calls)
    assert_no_server_error(answers)
    reset_seq = answers[6].body["seq"]
    held = [answer.body for answer in answers[:6] + answers[7:]]
    records = cluster.records("")   # the whole log: the reset may name none of these agents
    [reset] = [r for r in records if r["kind"] == "reset" and r["seq"] == reset_seq]
    for body in held:
        agent = body["decision"].get("agent_id")
        ticket = body["decision"]["ticket"]
        status = cluster.ticket(ticket)["status"]
        settled = [r["verdict"] for r in records if r["kind"] == "review"
                   and r["ticket"] == ticket]
        if body["seq"] < reset_seq:
            assert (status, settled) == ("cancelled", ["cancelled"]), (body["seq"], reset_seq)
        else:
            assert (status, settled) == ("pending", []), (body["seq"], reset_seq)
        owner = next(r["agent"] for r in records if r["seq"] == body["seq"])
        assert agent in (None, owner)
        assert (owner in reset["agents"]) == (body["seq"] < reset_seq), (owner, reset["agents"])


@pytest.mark.slow
def test_an_assignment_racing_a_reset_survives_it(cluster: Cluster) -> None:
    """Resets keep assignments (docs/language.md, "Agent groups"): whatever order they take,
    the agent ends in the assigned group with a fresh state, and both are in the chain."""
    prefix = fresh("keep")
    agents = [f"{prefix}-{number}" for number in range(6)]
    for agent in agents:
        assert cluster.decide(0, agent, "EXPORT").status == 200
    calls: list[Callable[[], Answer]] = []
    for agent in agents:
        calls += [lambda a=agent: request(cluster.port(0), "PUT",  # type: ignore[misc]
                                          f"/v1/agents/{a}/group",
                                          {"group": "trusted", "operator": "alice"},
                                          token=TOKEN),
                  lambda a=agent: request(cluster.port(1), "POST",  # type: ignore[misc]
                                          f"/v1/agents/{a}/reset", token=TOKEN)]
    answers = at_once(calls)
    assert_no_server_error(answers)
    assert {answer.status for answer in answers} == {200}
    records = cluster.records(prefix)
    for agent in agents:
        view = request(cluster.port(1), "GET", f"/v1/agents/{agent}").body
        assert (view["group"], view["assigned_group"], view["cumulative_risk"]) == (
            "trusted", "trusted", 0), view
        assert check_with_oracle(records, agent).state() == cluster.state(agent) == (
            0, 0, "active")


# --- 5. expiry at the boundary, over HTTP -----------------------------------------------------

@pytest.fixture
def clocked(start: Serve) -> tuple[Server, Clock]:
    server = start(POLICY, "probe.sentra")
    clock = Clock()
    server.app.state.gate.clock = clock
    return server, clock


def held_at(server: Server, agent: str) -> str:
    answer = server.post("/v1/decide", {"agent_id": agent, "action": "ISSUE_REFUND",
                                        "fields": {"amount": 900}})
    assert answer.status == 200, answer.text
    return str(answer.json()["decision"]["ticket"])


def test_a_ticket_is_pending_until_the_microsecond_before_it_expires(
        clocked: tuple[Server, Clock]) -> None:
    server, clock = clocked
    ticket = held_at(server, "edge-1")
    clock.now = T0 + 3600 - 0.000001
    assert server.get(f"/v1/reviews/{ticket}").json()["status"] == "pending"
    answer = server.post(f"/v1/reviews/{ticket}/approve", {"operator": "alice"},
                         token=THREAD_TOKEN)
    assert answer.status == 200 and answer.json()["ticket"]["status"] == "approved", answer.text


def test_at_its_expiry_many_readers_and_judges_record_one_expiry(
        clocked: tuple[Server, Clock]) -> None:
    server, clock = clocked
    ticket = held_at(server, "edge-2")
    clock.now = T0 + 3600

    def call(number: int) -> Answer:
        kind = number % 4
        if kind == 0:
            reply = server.post(f"/v1/reviews/{ticket}/approve", {"operator": "a"},
                                token=THREAD_TOKEN)
        elif kind == 1:
            reply = server.post(f"/v1/reviews/{ticket}/deny", {"operator": "b"},
                                token=THREAD_TOKEN)
        elif kind == 2:
            reply = server.get(f"/v1/reviews/{ticket}")
        else:
            reply = server.get("/v1/reviews?agent=edge-2")
        return Answer(reply.status, reply.json(), 0.0)

    answers = at_once([lambda n=number: call(n) for number in range(16)])  # type: ignore[misc]
    assert_no_server_error(answers)
    for number, answer in enumerate(answers):
        if number % 4 < 2:
            assert answer.status == 409, answer
            assert answer.body["detail"]["ticket"]["status"] == "expired"
        elif number % 4 == 2:
            assert answer.body["status"] == "expired"
        else:
            assert [t["status"] for t in answer.body["tickets"]] == ["expired"]
    reviews = server.get("/v1/events?kind=review").json()["events"]
    assert [(r["verdict"], r["operator"], r["decision"]) for r in reviews] == [
        ("expired", None, None)]
    assert server.get("/v1/agents/edge-2").json()["blocked_attempts"] == 0
    from sentra_runtime.stores.sqlite import verify_file

    assert verify_file(server.db).ok


def test_the_agents_next_decision_expires_its_ticket_first(
        clocked: tuple[Server, Clock]) -> None:
    server, clock = clocked
    ticket = held_at(server, "edge-3")
    clock.now = T0 + 3600
    server.post("/v1/decide", {"agent_id": "edge-3", "action": "EXPORT", "fields": {}})
    kinds = [(r["kind"], r.get("verdict")) for r in server.get(
        "/v1/events?agent=edge-3").json()["events"]]
    assert kinds == [("decision", None), ("review", "expired"), ("decision", None)]
    assert server.get(f"/v1/reviews/{ticket}").json()["status"] == "expired"


@pytest.mark.slow
def test_expiry_across_processes_is_recorded_once(cluster: Cluster) -> None:
    """`expires 1s`: once its time is up, every instance reading or judging the ticket at once
    sees it `expired`; the expiry is one `review` record (no operator, no decision), no
    strike, and every verdict is a 409 naming the status."""
    prefix = fresh("exp")
    agents = [f"{prefix}-{number}" for number in range(3)]
    tickets = {agent: cluster.held(agent, "QUICK_REFUND") for agent in agents}
    time.sleep(1.2)
    calls: list[Callable[[], Answer]] = []
    for agent in agents:
        ticket = tickets[agent]
        calls += [lambda t=ticket, n=n: cluster.verdict(n, t, n % 2 == 0)  # type: ignore[misc]
                  for n in range(4)]
        calls += [lambda t=ticket, n=n: request(cluster.port(n), "GET",  # type: ignore[misc]
                                                f"/v1/reviews/{t}") for n in range(2)]
        calls += [lambda a=agent, n=n: request(cluster.port(n), "GET",  # type: ignore[misc]
                                               f"/v1/reviews?agent={a}") for n in range(2)]
    answers = at_once(calls)
    assert_no_server_error(answers)
    records = cluster.records(prefix)
    for index, agent in enumerate(agents):
        verdicts, reads, lists = (answers[index * 8:index * 8 + 4],
                                  answers[index * 8 + 4:index * 8 + 6],
                                  answers[index * 8 + 6:index * 8 + 8])
        for answer in verdicts:
            assert answer.status == 409, answer
            assert answer.body["detail"]["ticket"]["status"] == "expired"
        assert [answer.body["status"] for answer in reads] == ["expired"] * 2
        assert [[t["status"] for t in answer.body["tickets"]] for answer in lists] == [
            ["expired"]] * 2
        assert [(r["verdict"], r["operator"], r["decision"]) for r in records
                if r["kind"] == "review" and r["agent"] == agent] == [("expired", None, None)]
        assert cluster.state(agent) == (0, 0, "active")


DECAYING = '''policy decaying version "1" {
  risk_threshold 100
  risk_decay 10 per 1h
  review_timeout 7d
}

input {
  amount: number?
}

action EXPORT {
  allow risk 90 as EXPORT_OK "Export."
}

action ISSUE_REFUND {
  review risk 60 as REVIEW_LARGE "Needs a human."
}

otherwise block as OTHER "Not covered."
'''


def test_an_approval_is_measured_after_decay_up_to_the_approval(start: Serve) -> None:
    """docs/runtime.md, "Review": approval is decided "against the agent's state at approval
    ... and its risk decay up to then". Risk 90 at T0 (decay 10 per 1h): at T0+3h it is 60,
    and 60 + 60 > 100 blocks the approval (a strike); at T0+5h it is 40, and 40 + 60 = 100 is
    allowed (exactly the threshold), 20 of it decayed since the block at T0+3h."""
    server = start(DECAYING, "decaying.sentra")
    clock = Clock()
    server.app.state.gate.clock = clock
    assert server.post("/v1/decide", {"agent_id": "d", "action": "EXPORT",
                                      "fields": {}}).json()["decision"]["cumulative_risk"] == 90
    first, second = held_at(server, "d"), held_at(server, "d")
    clock.now = T0 + 3 * 3600
    blocked = server.post(f"/v1/reviews/{first}/approve", token=THREAD_TOKEN).json()
    assert (blocked["decision"]["label"], blocked["decision"]["rule_id"],
            blocked["decision"]["cumulative_risk"], blocked["decision"]["blocked_attempts"],
            blocked["ticket"]["status"]) == ("Blocked", "RISK_THRESHOLD_EXCEEDED", 60, 1,
                                             "blocked")
    clock.now = T0 + 5 * 3600
    allowed = server.post(f"/v1/reviews/{second}/approve", token=THREAD_TOKEN).json()
    assert (allowed["decision"]["label"], allowed["decision"]["rule_id"],
            allowed["decision"]["cumulative_risk"], allowed["decision"]["decayed"],
            allowed["ticket"]["status"]) == ("Allowed", "REVIEW_LARGE", 100, 20, "approved")
    from sentra_runtime.stores.sqlite import verify_file

    assert verify_file(server.db).ok


# --- 6. hostile requests on the review and group routes --------------------------------------

@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the hostile requests; each test uses agents of its own."""
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "probe.sentra").write_text(POLICY, encoding="utf-8")
    running = Server(folder / "probe.sentra", folder / "probe.db", THREAD_TOKEN)
    yield running
    running.stop()


def events(server: Server, agent: str, kind: str) -> list[dict[str, Any]]:
    answer = server.get(f"/v1/events?kind={kind}&agent={quote(agent, safe='')}&limit=1000")
    assert answer.status == 200, answer.text
    return list(answer.json()["events"])


def assert_clear_4xx(answer: Any, status: int, loc: list[Any] | None = None) -> None:
    assert answer.status == status, answer.text
    assert "Traceback" not in answer.text and "detail" in answer.json(), answer.text
    if loc is not None:
        assert [problem["loc"] for problem in answer.json()["detail"]] == [loc], answer.text


def test_an_unknown_ticket_without_a_token_is_401_not_404(hostile: Server) -> None:
    """The operator token guards approve and deny: without it, nothing, not even whether the
    ticket exists, is answered."""
    ticket = held_at(hostile, fresh("h"))
    for path in (f"/v1/reviews/{ticket}/approve", "/v1/reviews/rv_nosuchticket/deny"):
        assert_clear_4xx(hostile.post(path, {"operator": "a"}), 401)
    assert hostile.get(f"/v1/reviews/{ticket}").json()["status"] == "pending"


@pytest.mark.parametrize(("body", "loc"), [
    ({"operator": ["alice"]}, ["body", "operator"]),
    ({"operator": "a" * 201}, ["body", "operator"]),
    ({"note": 5}, ["body", "note"]),
    ({"note": "n" * 2001}, ["body", "note"]),
    ({"operator": "a", "verdict": "approve"}, ["body", "verdict"]),
])
def test_a_verdict_body_that_does_not_fit_is_a_located_422(
        hostile: Server, body: Any, loc: list[Any]) -> None:
    ticket = held_at(hostile, fresh("h"))
    assert_clear_4xx(hostile.post(f"/v1/reviews/{ticket}/deny", body, token=THREAD_TOKEN),
                     422, loc)
    assert hostile.get(f"/v1/reviews/{ticket}").json()["status"] == "pending"


@pytest.mark.parametrize(("operator", "note"), [
    ("a" * 200, "n" * 2000),                                   # exactly at both bounds
    ("Zoë 🚀 \u202eevil", "ok \u0000 nul, \n newline, \u200b zero width, 💥"),
])
def test_unicode_and_bounds_in_a_verdict_are_kept_verbatim(
        hostile: Server, operator: str, note: str) -> None:
    ticket = held_at(hostile, fresh("h"))
    answer = hostile.post(f"/v1/reviews/{ticket}/approve", {"operator": operator, "note": note},
                          token=THREAD_TOKEN)
    assert answer.status == 200, answer.text
    record = hostile.get(f"/v1/events/{answer.json()['seq']}").json()
    assert (record["operator"], record["note"]) == (operator, note)
    from sentra_runtime.stores.sqlite import verify_file

    assert verify_file(hostile.db).ok


@pytest.mark.parametrize("ticket", [
    "rv_" + "A" * 22, "RV_x", "rv_a%2Fb", "%2e%2e", "..%2F..%2Fv1%2Freset",
    "rv_x'%3B%20DROP%20TABLE%20tickets%3B--", "%F0%9F%92%A5", "rv_" + "a" * 20000,
])
def test_ticket_ids_of_the_wrong_shape_are_404_and_change_nothing(
        hostile: Server, ticket: str) -> None:
    head = hostile.head()
    for path in (f"/v1/reviews/{ticket}/approve", f"/v1/reviews/{ticket}/deny"):
        answer = hostile.post(path, {"operator": "a"}, token=THREAD_TOKEN)
        assert answer.status in (404, 414) and "Traceback" not in answer.text, answer.text
    assert hostile.get(f"/v1/reviews/{ticket}").status in (404, 414)
    assert hostile.head() == head   # nothing was written


@pytest.mark.parametrize(("body", "status", "loc"), [
    ({"group": 5, "operator": "a"}, 422, ["body", "group"]),
    ({"group": "trusted"}, 422, ["body", "operator"]),
    ({"group": "trusted", "operator": ""}, 422, ["body", "operator"]),
    ({"group": "trusted", "operator": "a", "agent": "x"}, 422, ["body", "agent"]),
    ({"group": ["trusted"], "operator": "a"}, 422, ["body", "group"]),
    ({"group": "t" * 100_000, "operator": "a"}, 413, None),
])
def test_hostile_group_bodies_are_clear_4xx_and_assign_nothing(
        hostile: Server, body: Any, status: int, loc: list[Any] | None) -> None:
    head = hostile.head()
    answer = hostile.request("PUT", "/v1/agents/h-4/group", body, token=THREAD_TOKEN)
    assert_clear_4xx(answer, status, loc)
    assert hostile.head() == head


@pytest.mark.parametrize("group", ["TRUSTED", "trusted\u0000", "trustd"])
def test_an_undeclared_group_is_a_422_of_the_documented_shape(hostile: Server,
                                                                group: str) -> None:
    """docs/server.md, "The edge": "The 422 answers have FastAPI's shape, `{"detail": [{"type",
    "loc", "msg", "input"}]}`, whoever produced them"; the route's OpenAPI entry declares that
    model (`Invalid`) for its 422."""
    from sentra_lang.server import models

    head = hostile.head()
    answer = hostile.request("PUT", "/v1/agents/h-5/group", {"group": group, "operator": "a"},
                             token=THREAD_TOKEN)
    assert answer.status == 422 and hostile.head() == head, answer.text
    problems = models.Invalid.model_validate(answer.json()).detail
    assert [problem.loc for problem in problems] == [["body", "group"]]
    assert "trusted" in problems[0].msg.replace(group, "")   # names the declared group


def test_group_assignment_needs_the_operator_token(hostile: Server) -> None:
    head = hostile.head()
    for token in (None, "wrong"):
        answer = hostile.request("PUT", "/v1/agents/ops-1/group",
                                 {"group": None, "operator": "mallory"}, token=token)
        assert_clear_4xx(answer, 401)
    assert hostile.head() == head


@pytest.mark.parametrize("agent", ["..%2F..%2Fv1%2Freset", "%2e%2e", "a%2Fb%2Fgroup", "%F0%9F%92%A5"])
def test_a_path_like_agent_id_is_that_agent_only(hostile: Server, agent: str) -> None:
    """`{agent_id:path}` takes the id as it is: assigning a group to `../../v1/reset` assigns
    one agent of that name and touches no other agent or route."""
    bystander = fresh("bystander")
    hostile.post("/v1/decide", {"agent_id": bystander, "action": "EXPORT", "fields": {}})
    head = hostile.head()
    answer = hostile.request("PUT", f"/v1/agents/{agent}/group",
                             {"group": "trusted", "operator": "alice"}, token=THREAD_TOKEN)
    assert answer.status in (200, 404, 422) and "Traceback" not in answer.text, answer.text
    assert hostile.get(f"/v1/agents/{bystander}").json()["cumulative_risk"] == 30
    written = hostile.get(f"/v1/events?after={head}").json()["events"]
    assert [r["kind"] for r in written] == (["group"] if answer.status == 200 else [])
    if answer.status == 200:
        assert written[0]["agent"] == unquote(agent)
