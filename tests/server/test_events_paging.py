"""`GET /events` answers in bounded pages, linked by the `Link` header, consistent with
`/v1/events` paging; paging through gives every event since the last reset of all agents once
(docs/server.md, "Reading the log")."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.server.conftest import POLICY, TOKEN, Server

NEXT = re.compile(r'^</events\?after=(\d+)&limit=(\d+)>; rel="next"$')


def pages(server: Server, path: str) -> list[list[dict[str, Any]]]:
    """Every page from ``path`` on, following the `Link` headers."""
    found = []
    while True:
        answer = server.get(path)
        assert answer.status == 200, answer.text
        found.append(answer.json())
        link = answer.headers.get("link")
        if link is None:
            return found
        assert NEXT.match(link), link
        path = link[1:link.index(">")]


def test_events_come_in_pages_that_together_are_the_whole_list(own_server: Server) -> None:
    for number in range(25):
        own_server.act(f"p-{number % 4}", "DELETE_RECORD" if number % 5 == 0 else "FILE_READ")
    everything = own_server.get("/events").json()
    assert len(everything) == 25 and "link" not in own_server.get("/events").headers
    paged = pages(own_server, "/events?limit=7")
    assert [len(page) for page in paged] == [7, 7, 7, 4]
    assert [event for page in paged for event in page] == everything
    exact = pages(own_server, "/events?limit=5")
    assert [len(page) for page in exact] == [5] * 5


def test_a_page_follows_the_records_sequence_numbers(own_server: Server) -> None:
    own_server.act("s", "FILE_READ")
    own_server.post("/v1/agents/s/reset", token=TOKEN)   # not a reset of all: events stay
    own_server.act("s", "DELETE_RECORD")
    first = own_server.get("/events?limit=1")
    after = int(NEXT.match(first.headers["link"]).group(1))   # type: ignore[union-attr]
    records = own_server.get("/v1/events?kind=decision").json()["events"]
    assert after == records[0]["seq"]
    assert own_server.get(f"/events?after={after}").json() == [records[1]["event"]]


def test_the_list_starts_after_the_last_reset_of_all_agents(own_server: Server) -> None:
    own_server.act("before", "FILE_READ")
    own_server.post("/reset", token=TOKEN)
    own_server.act("after", "FILE_READ")
    assert [e["agent_id"] for e in own_server.get("/events").json()] == ["after"]
    assert [e["agent_id"] for e in own_server.get("/events?after=0").json()] == ["after"]


def test_page_sizes_are_bounded(server: Server) -> None:
    for query in ("limit=0", "limit=1001", "limit=-1", "after=-1", "limit=x",
                  f"after={2**63}"):
        assert server.get(f"/events?{query}").status == 422, query
    assert server.get("/events?limit=1000").status == 200
    assert server.get("/v1/events?limit=1001").status == 422
    assert server.get("/v1/agents?limit=1001").status == 422


def test_agents_come_in_pages(own_server: Server) -> None:
    names = [f"agent-{number:02}" for number in range(12)]
    for name in reversed(names):
        own_server.act(name, "FILE_READ")
    seen: list[str] = []
    after = ""
    while True:
        page = own_server.get(f"/v1/agents?limit=5{after}").json()
        seen.extend(agent["agent_id"] for agent in page["agents"])
        if page["next_after"] is None:
            break
        after = f"&after={page['next_after']}"
    assert seen == names
    assert own_server.get("/v1/agents?limit=12").json()["next_after"] is None


def test_finding_the_last_reset_reads_only_new_records(tmp_path: Path) -> None:
    """With no reset in the log, every page used to scan the whole log for one (about a second
    per page at 100,000 records)."""
    from sentra_runtime import Engine, SQLiteStore

    from sentra_lang import load_policy_file
    from sentra_lang.server.store import AuditReader

    store = SQLiteStore(tmp_path / "s.db")
    try:
        engine = Engine(load_policy_file(POLICY).table, store)
        reader = AuditReader(store)
        for _ in range(5):
            engine.evaluate("a", "FILE_READ", {})
        assert reader.last_global_reset() == 0
        assert reader._reset_scanned == store.last_seq()
        engine.reset(None, operator="op")
        engine.evaluate("a", "FILE_READ", {})
        assert reader.last_global_reset() == store.last_seq() - 1
        assert reader._reset_scanned == store.last_seq()
    finally:
        store.close()
