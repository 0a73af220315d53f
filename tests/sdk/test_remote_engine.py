"""RemoteEngine against real decision servers: any policy's fields, the full decision with its
explanation, the same answers as the embedded engine, tokens, reads and resets, kept-alive
connections shared by threads, and retries only where safe."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sentra_runtime import ActionDenied, AgentState, Engine
from sentra_runtime.client import FAIL_CLOSED, PolicyEngine, RemoteEngine, SentraError

from tests.sdk.conftest import READ_TOKEN
from tests.sdk.hostile import HostileServer, Request, http_answer
from tests.server.conftest import TOKEN, Server


def remote(server: Server, **options: Any) -> RemoteEngine:
    return RemoteEngine(server.url, **{"token": TOKEN, "read_token": READ_TOKEN, **options})


def same_decision(there: Any, here: Any) -> None:
    """Everything but the seq: the fields, and the explanation line by line."""
    assert there.to_dict() == {**here.to_dict(), "policy_hash": there.policy_hash}
    assert there.explanation.steps == here.explanation.steps
    assert there.explanation.trials == here.explanation.trials


def test_decide_carries_any_policy_s_fields(refund_server: Server, agent: str) -> None:
    """The issue's refund agent: fields no Sentra request has reach the policy."""
    engine = remote(refund_server)
    decision = engine.decide(agent, " issue_refund ", {"order_id": "o-1", "refund_amount": 20})
    assert (decision.label, decision.rule_id, decision.reason) == (
        "Allowed", "ALLOW_REFUND", "Refund of 20 issued.")
    assert (decision.action, decision.cumulative_risk, decision.applied_risk) == (
        "ISSUE_REFUND", 5, 5)
    large = engine.decide(agent, "ISSUE_REFUND", {"order_id": "o-2", "refund_amount": 900})
    assert (large.label, large.rule_id, large.reason) == (
        "Blocked", "BLOCK_LARGE_REFUND", "Refund of 900 is over the 500 limit.")
    assert large.threat == "Financial Overreach" and large.blocked_attempts == 1
    nested = engine.decide(agent, "ISSUE_REFUND", {"order_id": "o-3", "refund_amount": 200,
                                                   "customer": {"tier": "new"}})
    assert nested.rule_id == "RISKY_NEW_CUSTOMER_REFUND" and nested.cumulative_risk == 45


def test_the_decision_is_the_embedded_engine_s_with_its_explanation(
        refund_server: Server, refund_table: dict[str, Any], agent: str) -> None:
    there, here = remote(refund_server), Engine(refund_table)
    steps = [("ISSUE_REFUND", {"order_id": "o", "refund_amount": 50}),
             ("ISSUE_REFUND", {"order_id": "o", "refund_amount": 50, "reason_code": "Chargeback"}),
             ("ISSUE_REFUND", {"refund_amount": 5}),
             ("LOOKUP_ORDER", {}),
             ("DELETE_CUSTOMER", {}),                                      # a shutdown rule
             ("ISSUE_REFUND", {"order_id": "o", "refund_amount": 1})]      # already shut down
    seqs = []
    for action, fields in steps:
        made = there.decide(agent, action, fields)
        same_decision(made, here.evaluate(agent, action, fields))
        seqs.append(made.seq)
    assert there.decide(agent, "LOOKUP_ORDER").label == "Agent Shut Down"
    assert seqs == sorted(seqs) and seqs[-1] <= refund_server.head(token=READ_TOKEN)
    invalid = there.decide(f"{agent}-2", "ISSUE_REFUND", {"order_id": "o", "refund_amount": "5"})
    assert invalid.rule_id == FAIL_CLOSED and "answered 422: body.fields.refund_amount" in \
        invalid.reason   # the server refuses a value of the wrong type: no strike, nothing kept
    assert there.state(f"{agent}-2") == AgentState(0, 0, "active")
    explanation = there.decide(f"{agent}-2", "ISSUE_REFUND", {"order_id": "o",
                                                              "refund_amount": 700}).explanation
    assert [trial.rule_id for trial in explanation.trials] == [   # `or` is two rows
        "BLOCK_INCOMPLETE_REFUND", "BLOCK_INCOMPLETE_REFUND", "BLOCK_CHARGEBACK_REFUND",
        "BLOCK_LARGE_REFUND"]
    assert explanation.matched_rule == "BLOCK_LARGE_REFUND"


def run_agent(engine: PolicyEngine, agent: str) -> list[str]:
    """An agent written once against the interface: it runs on either engine."""
    labels = []
    for amount in (20, 600, 30, 700, 800, 10):
        labels.append(engine.evaluate(agent, "ISSUE_REFUND", {"order_id": "o",
                                                              "refund_amount": amount}).label)
    labels.append(engine.state(agent).status)
    return labels


def test_an_agent_switches_engines_by_one_line(refund_server: Server,
                                               refund_table: dict[str, Any], agent: str) -> None:
    embedded: PolicyEngine = Engine(refund_table)
    remote_engine: PolicyEngine = remote(refund_server)
    assert isinstance(embedded, PolicyEngine) and isinstance(remote_engine, PolicyEngine)
    expected = ["Allowed", "Blocked", "Allowed", "Blocked", "Agent Shut Down",
                "Agent Shut Down", "shut_down"]
    assert run_agent(embedded, agent) == run_agent(remote_engine, agent) == expected
    assert remote_engine.policy.hash == embedded.policy.hash


def test_the_remote_guard_reads_declared_arguments_only(refund_server: Server,
                                                        agent: str) -> None:
    engine = remote(refund_server)
    refunded: list[str] = []

    @engine.guard(agent, "ISSUE_REFUND", {"customer.tier": "vip"})
    def refund(order_id: str, refund_amount: float, api_key: str = "sk-live-SECRET") -> None:
        refunded.append(order_id)

    refund("o-1", 120)
    assert refund.last_decision.rule_id == "ALLOW_REFUND"   # a vip: not the new-customer rule
    with pytest.raises(ActionDenied) as denied:
        refund("o-2", refund_amount=900)
    assert refunded == ["o-1"] and denied.value.decision.rule_id == "BLOCK_LARGE_REFUND"
    events = refund_server.get(f"/v1/events?agent={agent}", token=READ_TOKEN).json()["events"]
    inputs = [event["input"] for event in events if event["kind"] == "decision"]
    assert [(item["order_id"], item["refund_amount"]) for item in inputs] == [
        ("o-1", 120), ("o-2", 900)]
    assert "SECRET" not in str(events) and all(item["customer.tier"] == "vip" for item in inputs)


def test_reads_and_resets_need_their_tokens(refund_server: Server, agent: str) -> None:
    engine = remote(refund_server)
    engine.decide(agent, "ISSUE_REFUND", {"order_id": "o", "refund_amount": 900})
    assert engine.state(agent) == AgentState(0, 1, "active")
    assert agent in engine.agents()
    assert engine.policy_info()["name"] == "refunds"
    reset = engine.reset(agent)
    assert reset == [agent] and isinstance(reset.seq, int)
    assert engine.state(agent) == AgentState(0, 0, "active")
    anonymous = RemoteEngine(refund_server.url)
    with pytest.raises(SentraError, match="answered 401: the token is missing or wrong"):
        anonymous.state(agent)
    with pytest.raises(SentraError, match="answered 401"):
        RemoteEngine(refund_server.url, token=READ_TOKEN).reset(agent)   # reads only
    assert RemoteEngine(refund_server.url, token=TOKEN).state(agent).status == "active"
    decision = anonymous.decide(agent, "LOOKUP_ORDER")   # deciding needs no token
    assert decision.allowed

    @anonymous.guard(agent, "LOOKUP_ORDER")
    def lookup(order_id: str) -> None:
        pass

    with pytest.raises(ActionDenied) as denied:   # it cannot read the declared fields
        lookup("o")
    assert denied.value.decision.rule_id == FAIL_CLOSED
    assert "cannot read the policy" in denied.value.decision.reason
    assert "401" in denied.value.decision.reason


def test_agent_ids_travel_as_one_path_segment(refund_server: Server) -> None:
    engine = remote(refund_server)
    for agent in ("a/b/reset", "with space", "ünïcode", "?x=1#y", "%2F"):
        engine.decide(agent, "ISSUE_REFUND", {"order_id": "o", "refund_amount": 900})
        assert engine.state(agent).blocked_attempts == 1, agent
        assert engine.reset(agent) == [agent]
    with pytest.raises(SentraError, match="not valid Unicode"):
        engine.state("\ud800")
    lone = engine.decide("\ud800", "LOOKUP_ORDER")
    assert lone.rule_id == FAIL_CLOSED and "not valid Unicode text" in lone.reason   # unsent


def test_values_json_cannot_carry_fail_closed_naming_the_field(refund_server: Server,
                                                               agent: str) -> None:
    engine = remote(refund_server)
    before = refund_server.head(token=READ_TOKEN)
    for fields, where in ([({"refund_amount": float("nan")}, "`fields.refund_amount` is nan"),
                           ({"customer": {1: "x"}}, "`fields.customer` has a key that is not"),
                           ({"order_id": object()}, "`fields.order_id` has type object"),
                           ({"order_id": {"a": [set()]}}, "`fields.order_id.a[0]` has type set")]):
        decision = engine.decide(agent, "ISSUE_REFUND", fields)
        assert decision.rule_id == FAIL_CLOSED and where in decision.reason, decision.reason
    for bad in (5, None):
        assert engine.decide(bad, "X").rule_id == FAIL_CLOSED   # type: ignore[arg-type]
        assert "must be a string" in engine.decide(agent, bad).reason   # type: ignore[arg-type]
    assert "must be a mapping" in engine.decide(agent, "X", [("a", 1)]).reason  # type: ignore[arg-type]
    assert refund_server.head(token=READ_TOKEN) == before   # nothing was sent


def count_connections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the connections the SDK opens (``socket.create_connection`` as it calls it)."""
    opened = [0]
    real = socket.create_connection

    def counting(*args: Any, **kwargs: Any) -> socket.socket:
        opened[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr("sentra_runtime.transport.socket.create_connection", counting)
    return opened


def test_connections_are_kept_alive_and_shared_by_threads(
        refund_server: Server, agent: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One agent, 8 threads, 120 decisions: exactly the serial outcome counts (20 allowed at
    risk 5, 2 blocked, the third block shuts the agent down), over at most 8 connections."""
    opened = count_connections(monkeypatch)
    engine = remote(refund_server)
    engine.decide(agent, "LOOKUP_ORDER")
    engine.decide(agent, "LOOKUP_ORDER")
    assert opened[0] == 1
    engine.reset(agent)
    fields = {"order_id": "o", "refund_amount": 1}
    with ThreadPoolExecutor(8) as pool:
        labels = Counter(decision.label for decision in pool.map(
            lambda _: engine.decide(agent, "ISSUE_REFUND", fields), range(120)))
    assert labels == {"Allowed": 20, "Blocked": 2, "Agent Shut Down": 98}
    assert opened[0] <= 9


def keep_alive_then_close(answer: bytes) -> Callable[[socket.socket, Request], None]:
    """Answer on a kept-alive connection, then close it shortly after (an idle timeout)."""
    def respond(connection: socket.socket, request: Request) -> None:
        connection.sendall(answer)
        time.sleep(0.1)
        connection.close()
    return respond


def test_a_connection_the_server_closed_while_idle_is_not_reused(hostile: HostileServer) -> None:
    request = Request("POST", "/v1/decide", b"")
    hostile.respond = keep_alive_then_close(http_answer(200, hostile.answers.correct(request)))
    engine = RemoteEngine(hostile.url)
    assert engine.decide("agent", "FILE_READ").allowed
    time.sleep(0.3)
    assert engine.decide("agent", "FILE_READ").allowed
    assert (hostile.connections, len(hostile.spoiled)) == (2, 2)


def close_the_second_request(answer: bytes) -> Callable[[socket.socket, Request], None]:
    """Answer the first request of a connection; close the connection on its second."""
    served: set[int] = set()

    def respond(connection: socket.socket, request: Request) -> None:
        if id(connection) in served:
            connection.close()
            return
        served.add(id(connection))
        connection.sendall(answer)
    return respond


def test_a_read_is_retried_once_a_decision_never(hostile: HostileServer) -> None:
    """The server drops a kept-alive connection after reading a request on it: a read goes
    again on a new connection; a decision fails closed, asked once."""
    state = b'{"agent_id": "agent", "cumulative_risk": 3, "blocked_attempts": 1, ' \
            b'"status": "active", "known": true}'
    hostile.respond = close_the_second_request(http_answer(200, state))
    engine = RemoteEngine(hostile.url)
    assert engine.state("agent") == AgentState(3, 1, "active")
    assert engine.state("agent") == AgentState(3, 1, "active")      # retried
    assert (hostile.connections, len(hostile.spoiled)) == (2, 3)
    request = Request("POST", "/v1/decide", b"")
    hostile.respond = close_the_second_request(http_answer(200, hostile.answers.correct(request)))
    engine = RemoteEngine(hostile.url)
    assert engine.decide("agent", "FILE_READ").allowed
    asked = len(hostile.spoiled)
    decision = engine.decide("agent", "FILE_READ")
    assert decision.rule_id == FAIL_CLOSED and "without answering" in decision.reason
    assert len(hostile.spoiled) == asked + 1   # never sent twice


def test_the_deadline_covers_the_whole_call(hostile: HostileServer) -> None:
    """A read that is retried stays within one deadline."""
    def first_fast_then_silent(connection: socket.socket, request: Request) -> None:
        if len(hostile.spoiled) == 1:
            connection.sendall(http_answer(200, b'{"status": "ok"}'))
            return
        time.sleep(0.6)
        connection.close()

    hostile.respond = first_fast_then_silent
    engine = RemoteEngine(hostile.url, timeout=1.0)
    assert engine.health() == {"status": "ok"}
    started = time.monotonic()
    with pytest.raises(SentraError, match="within the 1 s deadline|without answering"):
        engine.state("agent")
    assert time.monotonic() - started < 1.5


def test_the_remote_guard_follows_a_policy_reload(tmp_path: Any, agent: str) -> None:
    """The guard reads the policy's declared names once, and again after the server decides
    with another policy (a reload that declares a new field)."""
    from tests.sdk.conftest import REFUND_POLICY

    policy = tmp_path / "refund.sentra"
    policy.write_text(REFUND_POLICY.read_text())
    server = Server(policy, tmp_path / "s.db", TOKEN)
    try:
        engine = remote(server)

        @engine.guard(agent, "LOOKUP_ORDER")
        def lookup(order_id: str = "o", region: str = "eu") -> None:
            pass

        lookup()
        first = engine.policy.hash
        policy.write_text(REFUND_POLICY.read_text().replace(
            "input {", "input {\n  region: string = \"us\"").replace(
            "action LOOKUP_ORDER {", "action LOOKUP_ORDER {\n  when region == \"eu\" block as "
                                     "BLOCK_EU \"No lookups in the EU.\""))
        assert server.post("/v1/policy/reload", token=TOKEN).json()["changed"]
        lookup()   # decided by the new policy, without `region`: the guard did not know it
        assert lookup.last_decision.policy_hash != first
        with pytest.raises(ActionDenied):
            lookup()   # now it sends `region`
        assert lookup.last_decision.rule_id == "BLOCK_EU"
    finally:
        server.stop()


def test_a_remote_engine_is_closed_by_its_context(refund_server: Server) -> None:
    with remote(refund_server) as engine:
        engine.decide("ctx", "LOOKUP_ORDER")
        assert engine.transport._idle
    assert engine.transport._idle == []


def test_the_threads_of_one_engine_share_its_policy_read(refund_server: Server,
                                                         agent: str) -> None:
    engine = remote(refund_server)
    results: list[Any] = []

    @engine.guard(agent, "LOOKUP_ORDER")
    def lookup(order_id: str) -> None:
        results.append(order_id)

    threads = [threading.Thread(target=lookup, args=(str(n),)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [str(n) for n in range(8)]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for `localhost` (only: not for 127.0.0.1)."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = str(folder / "key.pem"), str(folder / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True,
                   capture_output=True, timeout=60)
    return key, cert


def test_https_is_checked_against_the_given_authority(certificate: tuple[str, str],
                                                       answers: Any) -> None:
    import ssl

    key, cert = certificate
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    server = HostileServer(answers, tls=served)
    request = Request("POST", "/v1/decide", b"")
    server.respond = lambda connection, _: connection.sendall(
        http_answer(200, answers.correct(request)))
    trusted = ssl.create_default_context(cafile=cert)
    try:
        url = f"https://localhost:{server.port}"
        assert RemoteEngine(url, ssl_context=trusted).decide("agent", "FILE_READ").allowed
        unknown = RemoteEngine(url, timeout=2).decide("agent", "FILE_READ")
        assert unknown.rule_id == FAIL_CLOSED and "TLS failed (CERTIFICATE_VERIFY_FAILED)" in \
            unknown.reason
        wrong_name = RemoteEngine(f"https://127.0.0.1:{server.port}", ssl_context=trusted,
                                  timeout=2).decide("agent", "FILE_READ")
        assert wrong_name.rule_id == FAIL_CLOSED and "TLS failed" in wrong_name.reason
        assert len(server.spoiled) == 1   # only the trusted connection sent its request
    finally:
        server.stop()


def test_a_forked_child_does_not_share_the_parent_s_connections(sentra_server: Server) -> None:
    import os

    engine = RemoteEngine(sentra_server.url)
    assert engine.decide("parent", "FILE_READ").allowed
    assert len(engine.transport._idle) == 1
    pid = os.fork()
    if pid == 0:   # the child: a connection of its own
        alone = engine.transport._idle == []
        os._exit(0 if alone and engine.decide("child", "FILE_READ").allowed else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert engine.decide("parent", "FILE_READ").allowed   # the parent's connection still works
    assert sentra_server.get("/v1/agents/child").json()["known"]
