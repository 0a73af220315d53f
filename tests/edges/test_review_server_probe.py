"""Human review through the real server, SDK and CLI, attacked as an agent and a careless
operator would (issue 15, item 1). Every expectation is a claim of docs/server.md ("Review",
the `/v1/reviews` rows, "GET /v1/impact", "The live stream"), docs/integrations.md ("Calls held
for review"), docs/cli.md (`review`, `audit verify`, `replay`) or docs/testing.md, computed by
hand from those pages."""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.edges.probe_helpers import cli
from tests.edges.test_review_probe import REFUNDS, TICKET_ID
from tests.runtime.helpers import T0, Clock
from tests.server.conftest import TOKEN, Serve, Server, serve  # noqa: F401 (the fixture)

READ = "probe-read-token"


@pytest.fixture
def server(serve: Serve) -> Server:  # noqa: F811
    return serve(REFUNDS, "refunds.sentra", read_token=READ)


def hold(server: Server, agent: str = "a", amount: float = 700) -> str:
    answer = server.post("/v1/decide", {"agent_id": agent, "action": "ISSUE_REFUND",
                                        "fields": {"amount": amount}}, token=TOKEN)
    assert answer.status == 200 and answer.json()["decision"]["outcome"] == "review", answer.text
    return str(answer.json()["decision"]["ticket"])


def act(server: Server, agent: str, action: str, amount: float = 0) -> dict[str, Any]:
    return server.decide(agent, action, {"amount": amount})


def verdict(server: Server, ticket: str, approve: bool = True, body: Any = None,
            token: str | None = TOKEN) -> tuple[int, Any]:
    answer = server.post(f"/v1/reviews/{ticket}/{'approve' if approve else 'deny'}",
                         {"operator": "alice"} if body is None else body, token=token)
    return answer.status, answer.json() if answer.text.startswith("{") else answer.text


def status(server: Server, ticket: str) -> str:
    return str(server.get(f"/v1/reviews/{ticket}").json()["status"])


def review_steps(server: Server) -> list[tuple[Any, ...]]:
    events = server.get("/v1/events?kind=review&limit=1000", token=TOKEN).json()["events"]
    return [(e["ticket"], e["verdict"], e["operator"], e["note"]) for e in events]


# --- tokens -------------------------------------------------------------------------------

@pytest.mark.parametrize("token", [None, "wrong", READ, TOKEN + "x", TOKEN[:-1]])
@pytest.mark.parametrize("approve", [True, False])
def test_a_verdict_needs_the_operator_token(server: Server, token: str | None,
                                            approve: bool) -> None:
    ticket = hold(server)
    code, _ = verdict(server, ticket, approve, token=token)
    assert code in (401, 403) and status(server, ticket) == "pending", code


def test_the_queue_needs_the_read_token_but_one_ticket_needs_none(server: Server) -> None:
    ticket = hold(server)
    assert server.get("/v1/reviews").status == 401
    assert server.get("/v1/reviews", token=READ).json()["tickets"][0]["ticket"] == ticket
    assert server.get(f"/v1/reviews/{ticket}").json()["input"] == {"amount": 700}


# --- hostile ids and bodies ----------------------------------------------------------------

@pytest.mark.parametrize("ticket", [
    "rv_" + "A" * 22, "rv_", "x" * 5000, "rv_%00" + "a" * 21, "..%2F..%2Fhealth",
    "rv_" + "%C3%A9" * 22, "%20", "rv_AAAAAAAAAAAAAAAAAAAAA%27",
])
def test_an_unknown_or_garbage_ticket_is_404(server: Server, ticket: str) -> None:
    hold(server)
    assert server.get(f"/v1/reviews/{ticket}").status == 404
    assert verdict(server, ticket)[0] == 404 and verdict(server, ticket, False)[0] == 404


@pytest.mark.parametrize("body", [
    {"operator": ""}, {"operator": "x" * 201}, {"note": "n" * 2001}, {"operator": 5},
    {"note": ["a"]}, {"operator": "alice", "approve": True},
    {"operator": "alice", "agent_id": "b"}, ["alice"], "alice", 5, {"operator": {"$gt": ""}},
    {"operator": True},
])
def test_a_body_that_does_not_fit_is_a_422_and_judges_nothing(server: Server, body: Any) -> None:
    ticket = hold(server)
    assert verdict(server, ticket, True, body)[0] == 422
    assert status(server, ticket) == "pending"


@pytest.mark.parametrize("raw, content_type, expected", [
    (b"{", "application/json", 422),
    (b'{"operator": "alice"', "application/json", 422),
    (b"\xff\xfe", "application/json", 422),
    (b'{"operator": "alice"}', "text/plain", 415),
    (b'{"operator": "' + b"a" * 200_000 + b'"}', "application/json", 413),
    (b"[" * 100_000 + b"]" * 100_000, "application/json", 413),
    (b"[" * 5_000 + b"]" * 5_000, "application/json", 422),
])
def test_a_raw_hostile_body_is_refused_with_its_status(server: Server, raw: bytes,
                                                       content_type: str, expected: int) -> None:
    ticket = hold(server)
    answer = server.request("POST", f"/v1/reviews/{ticket}/approve", raw=raw, token=TOKEN,
                            headers={"Content-Type": content_type})
    assert (answer.status, status(server, ticket)) == (expected, "pending"), answer.text[:300]


@pytest.mark.parametrize("body", [None, {}, {"operator": None, "note": None}])
def test_the_body_is_optional_and_the_operator_is_then_operator(server: Server,
                                                                body: Any) -> None:
    ticket = hold(server)
    answer = server.request("POST", f"/v1/reviews/{ticket}/approve", body, token=TOKEN)
    assert answer.status == 200, answer.text
    assert review_steps(server) == [(ticket, "approved", "operator", None)]


# --- races and verdicts on closed tickets --------------------------------------------------

def test_eight_operators_at_once_get_one_verdict_and_seven_409s(server: Server) -> None:
    ticket = hold(server)
    barrier, codes, lock = threading.Barrier(8), [], threading.Lock()

    def judge(index: int) -> None:
        barrier.wait()
        code, body = verdict(server, ticket, index % 2 == 0, {"operator": f"op{index}"})
        with lock:
            codes.append((code, body["detail"]["ticket"]["status"] if code == 409 else None))

    threads = [threading.Thread(target=judge, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = status(server, ticket)
    assert sorted(codes, key=str) == sorted([(200, None)] + [(409, final)] * 7, key=str), codes
    assert len(review_steps(server)) == 1


@pytest.mark.parametrize("first, then_status", [(True, "approved"), (False, "denied")])
def test_a_second_verdict_is_a_409_naming_the_status(server: Server, first: bool,
                                                     then_status: str) -> None:
    ticket = hold(server)
    assert verdict(server, ticket, first)[0] == 200
    for approve in (True, False):
        code, body = verdict(server, ticket, approve)
        assert (code, body["detail"]["ticket"]["status"]) == (409, then_status)
    assert server.get("/v1/agents/a", token=READ).json()["blocked_attempts"] == (0 if first else 1)


def test_a_verdict_after_a_reset_is_a_409_cancelled(server: Server) -> None:
    ticket = hold(server)
    assert server.post("/v1/agents/a/reset", {}, token=TOKEN).status == 200
    code, body = verdict(server, ticket)
    assert (code, body["detail"]["ticket"]["status"]) == (409, "cancelled")
    assert server.get("/v1/agents/a", token=READ).json()["cumulative_risk"] == 0


def test_a_verdict_after_a_global_reset_is_a_409_cancelled(server: Server) -> None:
    tickets = [hold(server, agent) for agent in ("a", "b")]
    assert server.post("/v1/reset", {}, token=TOKEN).status == 200
    assert [verdict(server, t)[0] for t in tickets] == [409, 409]


def test_approval_of_an_agent_shut_down_meanwhile(server: Server) -> None:
    ticket = hold(server)
    for _ in range(3):
        act(server, "a", "BAD")
    code, body = verdict(server, ticket)
    assert (code, body["decision"]["label"], body["decision"]["rule_id"]) == \
        (200, "Agent Shut Down", "AGENT_ALREADY_SHUT_DOWN")
    assert status(server, ticket) == "blocked"


def test_approval_over_the_threshold_is_a_block_and_a_strike(server: Server) -> None:
    ticket = hold(server)
    act(server, "a", "TAKE_RISK")
    act(server, "a", "TAKE_RISK")
    code, body = verdict(server, ticket)
    decision = body["decision"]
    assert (code, decision["rule_id"], decision["cumulative_risk"],
            decision["blocked_attempts"]) == (200, "RISK_THRESHOLD_EXCEEDED", 80, 1)


def test_a_verdict_on_a_rule_a_reload_removed_is_refused_not_a_crash(server: Server) -> None:
    ticket = hold(server)
    server.policy.write_text(REFUNDS.replace("REVIEW_LARGE_REFUND", "REVIEW_BIG"), "utf-8")
    assert server.post("/v1/policy/reload", {}, token=TOKEN).status == 200
    code, _ = verdict(server, ticket)
    assert code == 409 and status(server, ticket) == "pending", code
    assert server.post("/v1/agents/a/reset", {}, token=TOKEN).status == 200
    assert status(server, ticket) == "cancelled"


# --- the queue -----------------------------------------------------------------------------

def test_the_queue_pages_oldest_first_and_filters(server: Server) -> None:
    tickets = [hold(server, agent) for agent in ("a", "b", "a")]
    first = server.get("/v1/reviews?limit=2", token=READ).json()
    rest = server.get(f"/v1/reviews?limit=2&after={first['next_after']}", token=READ).json()
    assert [t["ticket"] for t in first["tickets"] + rest["tickets"]] == tickets
    assert rest["next_after"] is None
    mine = server.get("/v1/reviews?agent=a&status=pending", token=READ).json()["tickets"]
    assert [t["ticket"] for t in mine] == [tickets[0], tickets[2]]


@pytest.mark.parametrize("query", ["status=bogus", "limit=0", "limit=1001", "limit=x",
                                   "status=PENDING"])
def test_a_bad_queue_query_is_a_422(server: Server, query: str) -> None:
    assert server.get(f"/v1/reviews?{query}", token=READ).status == 422


def test_every_step_reaches_the_live_stream(server: Server) -> None:
    ticket = hold(server)
    head = server.head(token=READ)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", f"/v1/events/stream?after={head}",
                       headers={"Authorization": f"Bearer {READ}"})
    reply = connection.getresponse()
    assert verdict(server, ticket, False)[0] == 200
    lines = []
    while not any(line.startswith("data:") for line in lines):
        lines.append(reply.fp.readline().decode().strip())
    connection.close()
    event = json.loads(next(line for line in lines if line.startswith("data:"))[5:])
    assert "event: review" in lines and (event["ticket"], event["operator"]) == (ticket, "alice")


# --- the Impact view, by hand --------------------------------------------------------------

def test_the_impact_view_counts_a_known_review_scenario(serve: Serve) -> None:  # noqa: F811
    server = serve(REFUNDS, "refunds.sentra")
    clock = Clock()
    server.app.state.gate.clock = clock
    assert verdict(server, hold(server, "a", 700))[0] == 200          # held, then allowed
    assert verdict(server, hold(server, "a", 200), False)[0] == 200   # held, then blocked
    for _ in range(3):                                                # held, blocked x2, shutdown
        assert verdict(server, hold(server, "b", 700), False)[0] == 200
    hold(server, "c", 300)
    assert server.post("/v1/agents/c/reset", {}, token=TOKEN).status == 200   # cancelled
    hold(server, "e", 200)
    act(server, "d", "ISSUE_REFUND", 50)                              # allowed at once
    clock.now = T0 + 86_400
    assert [t["status"] for t in server.get("/v1/reviews?agent=e", token=TOKEN).json()
            ["tickets"]] == ["expired"]
    totals = server.get("/v1/impact", token=TOKEN).json()["totals"]
    # 7 requests (6 held, 1 allowed) + 5 verdicts; expiry and cancellation make no decision
    assert {key: totals[key] for key in ("decisions", "allowed", "blocked", "shut_down",
                                         "prevented", "held", "exposure_prevented",
                                         "exposure_actions", "agents_shut_down",
                                         "shutdowns")} == {
        "decisions": 13, "allowed": 2, "blocked": 3, "shut_down": 1, "prevented": 4,
        "held": 7, "exposure_prevented": 2300, "exposure_actions": 4, "agents_shut_down": 1,
        "shutdowns": 1}
    by_rule = {row["rule_id"]: (row["held"], row["blocked"], row["shut_down"],
                                row["exposure_prevented"]) for row in server.get(
        "/v1/impact", token=TOKEN).json()["by_rule"]}
    # the last strike's denial is the shutdown, as any block that shuts an agent down
    assert by_rule == {"REVIEW_LARGE_REFUND": (4, 2, 0, 1400), "REVIEW_REFUND": (3, 1, 0, 200),
                       "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS": (0, 0, 1, 700)}


# --- the SDK ---------------------------------------------------------------------------------

def test_the_sdk_guard_waits_runs_once_and_a_new_call_is_held_again(server: Server) -> None:
    from sentra_runtime import ReviewPending
    from sentra_runtime.remote import RemoteEngine

    runs: list[float] = []
    agent = RemoteEngine(server.url, read_token=READ, timeout=10)
    operator = RemoteEngine(server.url, token=TOKEN, timeout=10)

    @agent.guard("sdk", "ISSUE_REFUND", wait=8)
    def issue_refund(amount: float) -> str:
        runs.append(amount)
        return "refunded"

    def approve_when_held() -> None:
        while not operator.tickets(status="pending", agent_id="sdk"):
            time.sleep(0.05)
        [pending] = operator.tickets(status="pending", agent_id="sdk")
        operator.review(pending["ticket"], True, operator="alice")

    judge = threading.Thread(target=approve_when_held)
    judge.start()
    assert issue_refund(700) == "refunded" and runs == [700]
    judge.join()

    @agent.guard("sdk", "ISSUE_REFUND", wait=0)
    def again(amount: float) -> str:
        runs.append(amount)
        return "refunded"

    with pytest.raises(ReviewPending) as held:
        again(700)
    assert TICKET_ID.fullmatch(held.value.ticket) and held.value.status == "pending"
    assert runs == [700]


def test_the_sdk_refuses_a_verdict_with_the_read_token_or_twice(server: Server) -> None:
    from sentra_runtime.remote import RemoteEngine, SentraError

    ticket = hold(server)
    with pytest.raises(SentraError):
        RemoteEngine(server.url, token=READ, timeout=10).review(ticket, True, operator="x")
    operator = RemoteEngine(server.url, token=TOKEN, timeout=10)
    assert operator.review(ticket, False, operator="bob").label == "Blocked"
    with pytest.raises(SentraError):
        operator.review(ticket, True, operator="bob")


# --- the CLI on a real server: review, audit verify, replay --------------------------------


def test_the_cli_judges_once_and_the_log_verifies_and_replays(server: Server) -> None:
    ticket = hold(server)
    denied = hold(server, "b", 200)
    env = {"SENTRA_OPERATOR_TOKEN": TOKEN}
    approved = cli("review", "approve", ticket, "--operator", "alice", "--server", server.url,
                   env=env)
    assert approved.returncode == 0 and "Allowed (REVIEW_LARGE_REFUND)" in approved.stdout, \
        approved.stdout + approved.stderr
    again = cli("review", "deny", ticket, "--operator", "bob", "--server", server.url, env=env)
    assert again.returncode == 1 and len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert cli("review", "deny", denied, "--operator", "bob", "--server", server.url,
               env=env).returncode == 0
    verified = cli("audit", "verify", str(server.db))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    replayed = cli("replay", str(server.db), "--policy", str(server.policy))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr


HOSTILE = "evil\x1b[31mRED\x1b]0;title\x07\r\nrv_forged  approved\u202e"


def test_the_cli_shows_a_hostile_agent_id_never_acts_on_it(server: Server) -> None:
    ticket = hold(server, HOSTILE)
    env = {"SENTRA_OPERATOR_TOKEN": TOKEN}
    listed = cli("review", "list", "--server", server.url, env=env).stdout
    judged = cli("review", "approve", ticket, "--operator", "alice", "--server", server.url,
                 env=env).stdout
    for shown in (listed, judged):
        assert not set(shown) & set("\x1b\x07\r\u202e"), repr(shown)
    assert len(listed.splitlines()) == 2 and len(judged.splitlines()) == 2, listed + judged


def test_the_docs_review_suite_passes_through_sentra_lang_test(tmp_path: Path) -> None:
    (tmp_path / "refunds.sentra").write_text(REFUNDS, "utf-8")
    (tmp_path / "refunds.sentra-test").write_text("""suite "review" for "refunds.sentra"

scenario "a large refund waits for a human" {
  agent "a" ISSUE_REFUND { amount: 700 } -> review rule REVIEW_LARGE_REFUND applied 0 as big
  approve big by "alice" note "verified" -> allowed rule REVIEW_LARGE_REFUND applied 30
  ticket big -> approved
  agent "a" ISSUE_REFUND { amount: 200 } -> review rule REVIEW_REFUND
  deny "a" last ticket by "bob" -> blocked rule REVIEW_REFUND strikes 1
  agent "a" ISSUE_REFUND { amount: 200 } -> review
  after 1h
  ticket "a" last ticket -> expired
}

scenario "a verdict is given once" {
  agent "a" ISSUE_REFUND { amount: 700 } -> review as big
  reset "a"
  ticket big -> cancelled
  approve big by "alice"
}
""", "utf-8")
    result = cli("test", str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr      # the second must fail
    assert "1 passed" in result.stdout and "1 failed" in result.stdout, result.stdout


# --- durability across a kill -9 -----------------------------------------------------------

@pytest.mark.slow
def test_a_ticket_survives_kill_9_and_is_approved_after_the_restart(tmp_path: Path) -> None:
    from tests.pg.helpers import TOKEN as PROCESS_TOKEN
    from tests.pg.helpers import Instance

    policy, db = tmp_path / "refunds.sentra", tmp_path / "sentra.db"
    policy.write_text(REFUNDS, "utf-8")
    first = Instance(policy, str(db)).start()
    try:
        answer = first.post("/v1/decide", {"agent_id": "a", "action": "ISSUE_REFUND",
                                           "fields": {"amount": 700}}, token=PROCESS_TOKEN)
        ticket = answer.body["decision"]["ticket"]
    finally:
        first.kill()
    second = Instance(policy, str(db)).start()
    try:
        assert second.get(f"/v1/reviews/{ticket}").body["status"] == "pending"
        approved = second.post(f"/v1/reviews/{ticket}/approve", {"operator": "alice"},
                               token=PROCESS_TOKEN)
        assert (approved.status, approved.body["decision"]["label"]) == (200, "Allowed")
        again = second.post(f"/v1/reviews/{ticket}/approve", {}, token=PROCESS_TOKEN)
        assert again.status == 409
    finally:
        second.stop()
    verified = cli("audit", "verify", str(db))
    assert verified.returncode == 0, verified.stdout + verified.stderr
