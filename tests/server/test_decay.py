"""A policy with risk decay behind the real server: `/v1/decide` carries `decayed`, an agent's
state is read decayed (without writing), the SDK reads both, and the store verifies."""

from __future__ import annotations

import pytest
from sentra_runtime import AgentState
from sentra_runtime.remote import RemoteEngine
from sentra_runtime.stores.sqlite import verify_file

from tests.runtime.helpers import Clock
from tests.server.conftest import TOKEN, Serve, Server

POLICY = '''policy decaying version "1" {
  risk_threshold 100
  risk_decay 10 per 1h
}
action EXPORT {
  allow risk 60 as EXPORT_OK "Export allowed."
}
otherwise block as UNKNOWN "Not covered."
'''


@pytest.fixture
def decaying(serve: Serve) -> tuple[Server, Clock]:
    running = serve(POLICY, "decaying.sentra")
    clock = Clock()
    running.app.state.gate.clock = clock
    return running, clock



def test_decisions_and_states_decay_behind_the_server(
        decaying: tuple[Server, Clock]) -> None:
    server, clock = decaying
    assert server.decide("a")["decayed"] == 0
    clock.now += 2.5 * 3600
    assert server.get("/v1/agents/a", token=TOKEN).json()["cumulative_risk"] == 40
    first = server.get("/v1/events?limit=100", token=TOKEN).json()["head"]
    assert server.get("/v1/agents/a", token=TOKEN).json()["cumulative_risk"] == 40
    assert server.get("/v1/events?limit=100", token=TOKEN).json()["head"] == first  # no write
    decision = server.decide("a")
    assert (decision["label"], decision["cumulative_risk"], decision["decayed"]) == (
        "Allowed", 100, 20)
    assert any("risk decay (10 per 1h): 20 taken off" in step
               for step in decision["explanation"]["steps"])   # type: ignore[index]
    remote = RemoteEngine(server.url, token=TOKEN)
    clock.now += 3600
    assert remote.state("a") == AgentState(90, 0, "active")
    assert remote.evaluate("a", "EXPORT").decayed == 10   # 90 + 60 > 100: blocked
    remote.close()
    assert verify_file(server.db).ok
