"""Never raises, always on time: every way a server can fail gives a fail-closed Blocked result
within the call's deadline, on ``evaluate`` (the Sentra-compatible API), ``decide`` (``/v1``)
and ``guard`` (both), and a decision is never sent twice.

The modes are the issue's (a bad status line, a truncated body, an over-long header, too many
headers, 200,000 nested ``[``, a slow drip) and every other way an answer can fail to be a
decision: no server, a silent one, a reset, a close, error statuses, bodies that are not JSON,
not UTF-8 or not a decision, a redirect, token refusals, broken framing, TLS to a plain port.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from sentra_runtime import ActionDenied
from sentra_runtime.client import FAIL_CLOSED, RemoteEngine, Sentra, SentraBlocked

from tests.sdk.hostile import MODES, HostileServer

TIMEOUT = 2.0
ON_TIME = TIMEOUT + 0.6
"""The deadline, and the margin a loaded 2-core machine needs to notice it."""
SLOW_MODES = {"slow drip", "silent", "endless 100 Continue"}
CALLS = ["evaluate", "decide", "guard", "sentra guard"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fail_closed_reason(call: str, url: str) -> str:
    """Make the call against ``url``; check it failed closed the way ``call`` does, and return
    its reason."""
    ran: list[str] = []
    if call == "evaluate":
        result = Sentra(url, timeout=TIMEOUT).evaluate("agent", "FILE_READ")
        assert (result.allowed, result.decision, result.risk_score) == (False, "Blocked", 0)
        return result.reason
    if call == "decide":
        decision = RemoteEngine(url, timeout=TIMEOUT).decide("agent", "FILE_READ")
        assert (decision.allowed, decision.label, decision.rule_id, decision.status) == (
            False, "Blocked", FAIL_CLOSED, "unknown")
        return decision.reason
    if call == "guard":
        @RemoteEngine(url, timeout=TIMEOUT).guard("agent", "FILE_READ")
        def tool(path: str = "/tmp/x") -> None:
            ran.append(path)

        with pytest.raises(ActionDenied) as denied:
            tool()
        assert ran == [] and denied.value.decision.rule_id == FAIL_CLOSED
        return denied.value.decision.reason

    @Sentra(url, timeout=TIMEOUT).guard("agent", "FILE_READ")
    def sentra_tool(target: str = "x") -> None:
        ran.append(target)

    with pytest.raises(SentraBlocked) as blocked:
        sentra_tool()
    assert ran == []
    return blocked.value.result.reason


def timed(call: Callable[[], str]) -> tuple[str, float]:
    started = time.monotonic()
    reason = call()
    return reason, time.monotonic() - started


def mode_params() -> list[Any]:
    return [pytest.param(name, call, id=f"{name}-{call}",
                         marks=[pytest.mark.slow] if name in SLOW_MODES else [])
            for name in MODES for call in CALLS]


@pytest.mark.parametrize(("mode", "call"), mode_params())
def test_each_failure_mode_fails_closed_on_time_and_once(hostile: HostileServer, mode: str,
                                                         call: str) -> None:
    respond, expected = MODES[mode]
    hostile.respond = respond(hostile.answers)
    reason, elapsed = timed(lambda: fail_closed_reason(call, hostile.url))
    assert reason.startswith("Fail closed: ") and expected in reason, reason
    assert elapsed < ON_TIME, f"{mode} held {call} for {elapsed:.1f} s"
    assert len(hostile.spoiled) == 1, "the decision was asked for more than once"
    assert "\n" not in reason and "\r" not in reason   # the server's text cannot forge lines


@pytest.mark.parametrize("call", CALLS)
def test_no_server_fails_closed_at_once(call: str) -> None:
    reason, elapsed = timed(lambda: fail_closed_reason(call, f"http://127.0.0.1:{free_port()}"))
    assert "unreachable (connection refused)" in reason, reason
    assert elapsed < ON_TIME


@pytest.mark.parametrize("call", CALLS)
def test_tls_to_a_plain_port_fails_closed(hostile: HostileServer, call: str) -> None:
    reason, elapsed = timed(lambda: fail_closed_reason(call, f"https://127.0.0.1:{hostile.port}"))
    assert "TLS failed" in reason, reason
    assert elapsed < ON_TIME and hostile.spoiled == []


POLICY_READ = {"wrong JSON shape": "the table does not load"}
"""The reason when the policy read fails, where it differs from a decision's."""


@pytest.mark.parametrize("mode", [name for name in MODES if name not in SLOW_MODES
                                  and name != "another agent's decision"])
def test_a_policy_that_cannot_be_read_fails_the_remote_guard_closed(
        hostile: HostileServer, mode: str) -> None:
    """The remote guard needs the policy's declared names (``GET /v1/policy``): when that read
    fails, every call is blocked with the reason, and no decision is asked."""
    respond, expected = MODES[mode][0], POLICY_READ.get(mode, MODES[mode][1])
    hostile.respond = respond(hostile.answers)
    hostile.answers_policy = False
    engine = RemoteEngine(hostile.url, timeout=TIMEOUT)
    ran: list[str] = []

    @engine.guard("agent", "FILE_READ")
    def tool(path: str = "/tmp/x") -> None:
        ran.append(path)

    with pytest.raises(ActionDenied) as denied:
        tool()
    reason = denied.value.decision.reason
    assert reason.startswith("Fail closed: the guard cannot tell which arguments the policy "
                             "reads: cannot read the policy") and expected in reason, reason
    assert ran == [] and [request.path for request in hostile.spoiled] == ["/v1/policy"]
