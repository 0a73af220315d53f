"""Operator-assigned groups behind the real server (docs/server.md): `PUT
/v1/agents/{id}/group` with the operator token assigns a declared group, which wins over the
patterns, is audited with the operator and survives a restart; an undeclared group is a 422;
without the operator token nothing is assigned; the SDK does the same."""

from __future__ import annotations

import pytest
from sentra_runtime.remote import RemoteEngine, SentraError

from tests.server.conftest import TOKEN, Serve, Server
from tests.server.test_groups import POLICY


@pytest.fixture
def grouped(serve: Serve) -> Server:
    return serve(POLICY, "grouped.sentra")


def assign(server: Server, agent: str, body: object, token: str | None = TOKEN) -> object:
    return server.request("PUT", f"/v1/agents/{agent}/group", body, token=token)



def test_an_operator_assigns_a_group_that_wins_over_the_patterns(grouped: Server) -> None:
    answer = assign(grouped, "new-1", {"group": "trusted", "operator": "alice"})
    assert answer.status == 200, answer.text   # type: ignore[attr-defined]
    body = answer.json()   # type: ignore[attr-defined]
    assert (body["agent"]["group"], body["agent"]["assigned_group"]) == ("trusted", "trusted")
    assert [grouped.decide("new-1")["group"] for _ in range(3)] == ["trusted"] * 3
    assert grouped.decide("new-1")["label"] == "Blocked"   # 240 > 200
    [record] = grouped.get("/v1/events?kind=group", token=TOKEN).json()["events"]
    assert (record["agent"], record["group"], record["operator"]) == ("new-1", "trusted",
                                                                      "alice")
    cleared = assign(grouped, "new-1", {"group": None, "operator": "bob"})
    assert cleared.json()["agent"]["group"] == ""   # type: ignore[attr-defined]


def test_an_undeclared_group_is_refused_with_a_hint(grouped: Server) -> None:
    answer = assign(grouped, "x", {"group": "trustd", "operator": "alice"})
    assert answer.status == 422   # type: ignore[attr-defined]
    assert "did you mean `trusted`" in answer.text   # type: ignore[attr-defined]
    assert grouped.get("/v1/agents/x", token=TOKEN).json()["assigned_group"] is None


@pytest.mark.parametrize("body", [{"group": "trusted"}, {"group": "trusted", "operator": ""},
                                  {"group": 7, "operator": "a"},
                                  {"group": "trusted", "operator": "a", "agent": "x"}])
def test_a_malformed_body_is_a_422(grouped: Server, body: object) -> None:
    assert assign(grouped, "x", body).status == 422   # type: ignore[attr-defined]


def test_without_the_operator_token_nothing_is_assigned(grouped: Server) -> None:
    assert assign(grouped, "x", {"group": "trusted", "operator": "eve"},
                  token=None).status == 401   # type: ignore[attr-defined]
    assert assign(grouped, "x", {"group": "trusted", "operator": "eve"},
                  token="wrong").status in (401, 403)   # type: ignore[attr-defined]
    answer = grouped.post("/v1/decide", {"agent_id": "x", "action": "EXPORT",
                                         "fields": {"group": "trusted"}}, token=TOKEN)
    assert answer.status in (200, 422)
    assert grouped.get("/v1/agents/x", token=TOKEN).json()["group"] == ""


def test_the_sdk_assigns_and_the_assignment_survives_a_restart(grouped: Server) -> None:
    remote = RemoteEngine(grouped.url, token=TOKEN)
    try:
        seq = remote.assign_group("plain-1", "trusted", operator="alice")
        assert isinstance(seq, int)
        with pytest.raises(SentraError, match="did you mean `trusted`"):
            remote.assign_group("plain-1", "trustd", operator="alice")
    finally:
        remote.close()
    grouped.stop()
    again = Server(grouped.policy, grouped.db, TOKEN)
    try:
        assert again.decide("plain-1")["group"] == "trusted"
    finally:
        again.stop()
