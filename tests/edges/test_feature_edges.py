"""Rate limits, review tickets and operator-assigned groups together and at their edges,
checked against docs/runtime.md, docs/language.md and docs/server.md. Each test is a defect an
adversarial probe found (a crash on refused input once an agent had limit windows, PUT bodies
past the edge, an edited assignment passing `audit verify`, a NUL ticket id on PostgreSQL, an
empty operator in a suite, undocumented approvals over a limit), kept so it stays fixed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import Engine, MemoryStore

from tests.runtime.helpers import Clock, compiled_table

LIMITED = """policy p version "1" {
  risk_threshold 100
}

input {
  amount: int
}

action PAY {
  allow risk 1 as PAY_OK limit 5 per 1h "ok"
}

otherwise block as UNKNOWN "no"
"""


def limited_engine() -> Engine:
    return Engine(compiled_table(LIMITED), MemoryStore(), clock=Clock())


@pytest.mark.parametrize("fields, rule_id", [
    ({}, "INVALID_INPUT"),
    ({"amount": "x"}, "INVALID_INPUT"),
    ({"amount": 1, "amout": 1}, "UNDECLARED_FIELD"),
])
def test_refused_input_after_a_counted_decision_is_blocked_not_a_crash(
        fields: dict[str, Any], rule_id: str) -> None:
    engine = limited_engine()
    assert engine.evaluate("a", "PAY", {"amount": 1}).allowed
    decision = engine.evaluate("a", "PAY", fields)     # docs/runtime.md, "Evaluate": a block
    assert (decision.label, decision.rule_id, decision.blocked_attempts) == \
        ("Blocked", rule_id, 1)


def test_decider_refuses_bad_input_with_windows_in_the_state() -> None:
    from sentra_runtime import FRESH, Decider

    decider = Decider(compiled_table(LIMITED))
    _, state = decider.decide("PAY", {"amount": 1}, FRESH, agent_id="a", now=1_700_000_000.0)
    decision, _ = decider.decide("PAY", {"amount": "x"}, state, agent_id="a",
                                 now=1_700_000_001.0)
    assert (decision.label, decision.rule_id) == ("Blocked", "INVALID_INPUT")


def test_suite_step_with_invalid_input_after_a_counted_decision(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_suite(tmp_path, capsys, LIMITED, """suite "probe" for "p.sentra"

scenario "bad input after a refund" {
  agent "a" PAY { amount: 1 } -> allowed
  agent "a" PAY { amount: "x" } -> blocked rule INVALID_INPUT strikes 1
}
""")
    assert code == 0 and "1 passed" in out, out


REVIEWED = """policy p version "1" {
  risk_threshold 100
}

input {
  amount: int
}

action PAY {
  when amount > 500 review risk 50 as REVIEW_BIG "Big {amount}."
  allow risk 1 as PAY_OK "ok"
}

otherwise block as UNKNOWN "no"
"""


def run_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str,
              suite: str) -> tuple[int, str]:
    from sentra_lang.cli import main

    (tmp_path / "p.sentra").write_text(policy, encoding="utf-8")
    (tmp_path / "p.sentra-test").write_text(suite, encoding="utf-8")
    code = main(["test", str(tmp_path / "p.sentra-test"), "--color", "never"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_empty_operator_in_a_verdict_step_is_a_located_diagnostic(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_suite(tmp_path, capsys, REVIEWED, """suite "probe" for "p.sentra"

scenario "empty operator" {
  agent "a" PAY { amount: 900 } -> review as t
  deny t by "" -> blocked
}
""")
    assert code != 0, out
    assert "ValueError" not in out, out
    assert "p.sentra-test:5:" in out, out


def test_an_approval_over_a_rate_limit_is_blocked_there() -> None:
    """docs/runtime.md says limits are checked at approval, and the runtime blocks such an
    approval as RATE_LIMIT_EXCEEDED; the ticket table there and docs/language.md "Review"
    ("Otherwise the decision is Allowed") only name the threshold and shutdown."""
    engine = Engine(compiled_table(REVIEWED.replace(
        "action PAY {\n", "action PAY {\n  limit 1 per 1h\n")), MemoryStore(), clock=Clock())
    assert engine.evaluate("a", "PAY", {"amount": 1}).allowed
    ticket = engine.evaluate("a", "PAY", {"amount": 900}).ticket
    assert ticket is not None
    engine.review(ticket, True, operator="alice")
    held = engine.ticket(ticket)
    assert (held.status, held.decision and held.decision["rule_id"]) == \
        ("blocked", "RATE_LIMIT_EXCEEDED")


def test_docs_name_an_approval_blocked_at_a_rate_limit() -> None:
    root = Path(__file__).resolve().parents[2] / "docs"
    review = (root / "language.md").read_text("utf-8").split("### Review", 1)[1]
    review = review.split("\n## ", 1)[0]
    table = (root / "runtime.md").read_text("utf-8").split(
        "## Review: decisions held for an operator", 1)[1].split("\n## ", 1)[0]
    assert "RATE_LIMIT_EXCEEDED" in table and "limit" in review.split("**approved**", 1)[1]


GROUPED = """policy p version "1" {
  risk_threshold 100
}

group trusted {
  agents "ops-*"
  risk_threshold 200
}

action PAY {
  allow risk 60 as PAY_OK "ok"
}

otherwise block as UNKNOWN "no"
"""


@pytest.mark.parametrize("edit", [
    "UPDATE agents SET assigned_group = 'trusted' WHERE agent_id = 'a'",   # promoted silently
    "UPDATE agents SET assigned_group = NULL WHERE agent_id = 'b'",        # demotion undone
])
def test_an_assignment_edited_in_the_store_is_found(tmp_path: Path, edit: str) -> None:
    import sqlite3

    from sentra_runtime.stores import open_store

    path = tmp_path / "s.db"
    engine = Engine(compiled_table(GROUPED), open_store(str(path)), clock=Clock())
    engine.evaluate("a", "PAY", {})
    engine.assign_group("b", "trusted", operator="alice")
    engine.evaluate("b", "PAY", {})
    assert engine.verify_audit().ok
    with sqlite3.connect(path) as db:
        db.execute(edit)
    reopened = Engine(compiled_table(GROUPED), open_store(str(path)), clock=Clock())
    assert not reopened.verify_audit().ok


REVIEW_IDS = ["rv_\x00", "rv_abc\x00def"]


@pytest.mark.parametrize("ticket", REVIEW_IDS)
def test_a_ticket_id_with_a_nul_is_unknown_on_postgres(postgres_url: str, ticket: str) -> None:
    from sentra_runtime.review import UnknownTicket
    from sentra_runtime.stores import open_store

    engine = Engine(compiled_table(REVIEWED), open_store(postgres_url), clock=Clock())
    with pytest.raises(UnknownTicket):
        engine.ticket(ticket)
    with pytest.raises(UnknownTicket):
        engine.review(ticket, True, operator="alice")


@pytest.mark.parametrize("ticket", REVIEW_IDS)
def test_a_ticket_id_with_a_nul_is_unknown_on_sqlite(tmp_path: Path, ticket: str) -> None:
    from sentra_runtime.review import UnknownTicket
    from sentra_runtime.stores import open_store

    engine = Engine(compiled_table(REVIEWED), open_store(str(tmp_path / "s.db")), clock=Clock())
    with pytest.raises(UnknownTicket):
        engine.review(ticket, True, operator="alice")


@pytest.fixture(scope="module")
def grouped_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.server.conftest import Server

    folder = tmp_path_factory.mktemp("probe15-server")
    policy = folder / "p.sentra"
    policy.write_text(GROUPED, encoding="utf-8")
    running = Server(policy, folder / "s.db", "optok", max_body_bytes=1024)
    yield running
    running.stop()


@pytest.mark.parametrize("raw", [
    b'{"group": "trusted\\ud800", "operator": "alice"}',
    b'{"group": null, "operator": "al\\udc00ice"}',
])
def test_put_group_with_a_lone_surrogate_is_a_422(grouped_server: Any, raw: bytes) -> None:
    response = grouped_server.request("PUT", "/v1/agents/probe-a/group", raw=raw,
                                      token="optok")
    assert response.status == 422, response.text


def test_put_group_over_the_body_limit_is_a_413(grouped_server: Any) -> None:
    body = {"group": "t" * 5000, "operator": "alice"}
    response = grouped_server.request("PUT", "/v1/agents/probe-b/group", body, token="optok")
    assert response.status == 413, response.text[:200]


def test_put_group_refuses_bad_bodies_and_tokens(grouped_server: Any) -> None:
    put = grouped_server.request
    path = "/v1/agents/probe-c/group"
    for body in ({"group": "trustd", "operator": "a"}, {"group": 5, "operator": "a"},
                 {"group": "trusted", "operator": "a", "x": 1}, {"group": "trusted"},
                 {"group": "trusted", "operator": ""}, [], None):
        assert put("PUT", path, body, token="optok").status == 422, body
    assert put("PUT", path, {"group": "trusted", "operator": "a"}).status == 401
    assert put("PUT", path, {"group": "trusted", "operator": "a"}, token="x").status == 401
    assert put("PUT", path, {"group": "trusted", "operator": "a"}, token="optok").status == 200


def test_replay_with_a_policy_that_adds_a_limit(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from sentra_runtime.stores import open_store

    from sentra_lang.cli import main

    unlimited = LIMITED.replace(" limit 5 per 1h", "")
    engine = Engine(compiled_table(unlimited), open_store(str(tmp_path / "log.db")),
                    clock=Clock())
    assert engine.evaluate("a", "PAY", {"amount": 1}).allowed
    assert engine.evaluate("a", "PAY", {"amount": "x"}).rule_id == "INVALID_INPUT"
    engine.store.close()
    (tmp_path / "new.sentra").write_text(LIMITED, encoding="utf-8")
    code = main(["replay", "--policy", str(tmp_path / "new.sentra"), str(tmp_path / "log.db"),
                 "--color", "never"])
    out = capsys.readouterr().out
    assert code == 0 and "0 changed" in out, out
