"""While the state database is unavailable the server answers 503 at once (nothing decided, so
clients fail closed), keeps answering what needs no database, says so in /metrics, and decides
again when the database is back, without a restart."""

from __future__ import annotations

import time

from sentra_runtime.client import Sentra

from tests.pg_cluster import Cluster
from tests.server.conftest import POLICY, TOKEN, Server


def test_an_outage_is_503_and_the_server_recovers(own_cluster: Cluster) -> None:
    server = Server(POLICY, own_cluster.url, TOKEN)   # type: ignore[arg-type]
    try:
        assert server.act("a", "FILE_READ")["decision"] == "Allowed"
        own_cluster.halt("fast")
        for path, body in (("/agent-action", {"agent_id": "a", "action_type": "FILE_READ"}),
                           ("/v1/decide", {"agent_id": "a", "action": "FILE_READ"}),
                           ("/evaluate", {})):
            started = time.perf_counter()
            answer = server.post(path, body)
            assert answer.status == 503, (path, answer.text)
            assert time.perf_counter() - started < 2.5   # not a timeout (5 s)
            assert answer.headers["retry-after"] == "1"
            assert "state database is unavailable" in answer.json()["detail"]
        assert server.post("/v1/reset", token=TOKEN).status == 503
        assert server.get("/v1/events").status == 503
        assert server.get("/health").json() == {"status": "ok", "risk_threshold": 100}
        metrics = server.get("/metrics")
        assert metrics.status == 200 and "sentra_store_up 0" in metrics.text
        assert "sentra_store_unavailable_total 5" in metrics.text
        blocked = Sentra(server.url).evaluate("a", "FILE_READ")
        assert not blocked.allowed and blocked.reason.startswith("Fail closed")
        own_cluster.launch()
        deadline = time.monotonic() + 20
        while server.post("/agent-action", {"agent_id": "a",
                                            "action_type": "FILE_READ"}).status != 200:
            assert time.monotonic() < deadline, "the server did not recover"
            time.sleep(0.1)
        assert "sentra_store_up 1" in server.get("/metrics").text
        assert Sentra(server.url).evaluate("a", "FILE_READ").allowed
    finally:
        server.stop()
