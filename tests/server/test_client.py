"""The Sentra-compatible SDK (``Sentra``, ``EmbeddedSentra``) against the real server, a closed
port, a silent server and a broken one; the embedded twin gives the same answers. The failure
modes one by one are in tests/sdk/test_failure_modes.py, ``RemoteEngine`` in tests/sdk/."""

from __future__ import annotations

import http.server
import logging
import socket
import threading
from collections.abc import Iterator

import pytest
from sentra_runtime.client import EmbeddedSentra, Sentra, SentraBlocked, SentraError

from tests.server.conftest import TOKEN, Server, free_port


def test_evaluate_guard_health_and_reset_against_the_server(own_server: Server) -> None:
    sentra = Sentra(own_server.url, token=TOKEN, timeout=5)
    assert sentra.health() == {"status": "ok", "risk_threshold": 100}
    result = sentra.evaluate("sdk", "export_data", destination_type="external",
                             data_classification="confidential", target="s3://x")
    assert (result.allowed, result.decision, result.risk_score) == (True, "Allowed", 80)
    assert result.raw["target"] == "s3://x"
    calls: list[str] = []

    @sentra.guard("sdk", "CHANGE_PERMISSION")
    def grant(user: str) -> str:
        calls.append(user)
        return user

    assert grant.__name__ == "grant"
    with pytest.raises(PermissionError) as refused:
        grant("mallory")
    assert isinstance(refused.value, SentraBlocked) and calls == []
    assert refused.value.result.decision == "Blocked"
    approved = sentra.evaluate("sdk", "SEND_NOTIFICATION", notification_type="approval",
                               context={"approval_requires_verified_eligibility": True})
    assert approved.allowed is False and approved.risk_score == 40
    assert sentra.reset()["risk_threshold"] == 100
    with pytest.raises(SentraError):
        Sentra(own_server.url, token="wrong").reset()


def test_fails_closed_when_the_server_is_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    sentra = Sentra(f"http://127.0.0.1:{free_port()}", timeout=1)
    with caplog.at_level(logging.WARNING, logger="sentra_runtime.client"):
        result = sentra.evaluate("a", "FILE_READ")
    assert (result.allowed, result.decision) == (False, "Blocked")
    assert "unreachable (connection refused)" in result.reason and "fail closed" in caplog.text
    assert sentra.health()["status"] == "unreachable"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield listener.getsockname()[1]
    listener.close()


def test_fails_closed_on_timeout(silent_port: int) -> None:
    result = Sentra(f"http://127.0.0.1:{silent_port}", timeout=0.3).evaluate("a", "FILE_READ")
    assert result.allowed is False and "Fail closed" in result.reason


class Garbage(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        status = 500 if "error" in self.path else 200
        body = b'{"detail":"boom"}' if status == 500 else b"<html>not an event</html>"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_fails_closed_on_non_2xx_and_unreadable_answers() -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        unreadable = Sentra(url).evaluate("a", "FILE_READ")
        assert unreadable.allowed is False and "not JSON" in unreadable.reason
        failing = Sentra(url + "/error").evaluate("a", "FILE_READ")
        assert failing.allowed is False and "500" in failing.reason
        nan = Sentra(url).evaluate("a", "APPROVE_TRANSACTION", amount=float("nan"))
        assert nan.allowed is False
    finally:
        httpd.shutdown()


def test_embedded_twin_answers_like_the_server(own_server: Server) -> None:
    remote = Sentra(own_server.url)
    local = EmbeddedSentra(own_server.app.state.gate.table)
    steps = [("EXPORT_DATA", {"destination_type": "external", "data_classification": "sensitive"}),
             ("DELETE_RECORD", {}), ("APPROVE_TRANSACTION", {"amount": "9000",
                                                            "context": {"max_approval_amount": 1}}),
             ("CHANGE_PERMISSION", {}), ("CHANGE_PERMISSION", {}), ("FILE_READ", {})]
    for action, fields in steps:
        there, here = remote.evaluate("twin", action, **fields), local.evaluate("twin", action,
                                                                              **fields)
        assert (there.allowed, there.decision, there.reason, there.risk_score) == \
            (here.allowed, here.decision, here.reason, here.risk_score), action
    assert local.health() == remote.health()


@pytest.mark.parametrize("context", [5, '{"approval_requires_verified_eligibility": true}', 0, "",
                                     [], [("eligibility_verified", True)], True])
def test_a_context_that_is_not_a_mapping_fails_closed(
        own_server: Server, caplog: pytest.LogCaptureFixture, context: object) -> None:
    """evaluate never raises, and never reads a bad context as `{}` (which could allow)."""
    before = own_server.head()
    for client in (Sentra(own_server.url), EmbeddedSentra(own_server.app.state.gate.table)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sentra_runtime.client"):
            result = client.evaluate("ctx", "APPROVE_TRANSACTION", context)  # type: ignore[arg-type]
        assert (result.allowed, result.decision, result.risk_score) == (False, "Blocked", 0)
        assert "Fail closed" in result.reason and "`context`" in result.reason
        assert "`context`" in caplog.text
        with pytest.raises(SentraBlocked):
            client.guard("ctx", "FILE_READ", context)(lambda: None)()  # type: ignore[arg-type]
    assert own_server.head() == before  # nothing was sent
    for client in (Sentra(own_server.url), EmbeddedSentra(own_server.app.state.gate.table)):
        assert client.evaluate("ctx", "FILE_READ", None).allowed


def test_the_sentra_guard_reads_arguments_named_like_request_fields(own_server: Server) -> None:
    sentra = Sentra(own_server.url, token=TOKEN)
    exported: list[str] = []

    @sentra.guard("g", "EXPORT_DATA", target="s3://bucket")
    def export(destination_type: str, data_classification: str = "internal",
               rows: tuple[str, ...] = ()) -> None:
        exported.append(destination_type)

    export("external")
    assert export.last_result.raw["policy_triggered"] == "ALLOW_INTERNAL_EXPORT"
    export("external", "sensitive", ("secret row",))
    assert export.last_result.risk_score == 80
    assert export.last_result.raw["target"] == "s3://bucket"
    with pytest.raises(SentraBlocked) as blocked:
        export("external", data_classification="restricted")
    assert blocked.value.result.raw["policy_triggered"] == "RISK_THRESHOLD_EXCEEDED"
    assert exported == ["external", "external"]
    assert "secret row" not in own_server.get("/v1/events?agent=g").text
    with pytest.raises(TypeError, match="target"):
        @sentra.guard("g", "EXPORT_DATA", target="s3://bucket")
        def send(target: str) -> None:
            pass


def test_the_sentra_client_resets_one_agent(own_server: Server) -> None:
    sentra = Sentra(own_server.url, token=TOKEN)
    for _ in range(3):
        sentra.evaluate("one", "CHANGE_PERMISSION")
    sentra.evaluate("two", "CHANGE_PERMISSION")
    assert sentra.evaluate("one", "FILE_READ").decision == "Agent Shut Down"
    assert sentra.reset("one")["reset"] == ["one"]
    assert sentra.evaluate("one", "FILE_READ").allowed
    assert own_server.get("/v1/agents/two").json()["blocked_attempts"] == 1
    local = EmbeddedSentra(own_server.app.state.gate.table)
    local.evaluate("one", "CHANGE_PERMISSION")
    assert local.reset("one")["agents"] == ["one"]


def test_a_field_may_not_replace_the_request_s_own_keys(own_server: Server) -> None:
    before = own_server.head()
    result = Sentra(own_server.url).evaluate("a", "FILE_READ", action_type="CHANGE_PERMISSION")
    assert not result.allowed and "would replace the request's own `action_type`" in result.reason
    assert own_server.head() == before
