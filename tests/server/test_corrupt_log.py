"""A log someone damaged is reported, never a 500: every read endpoint answers over a SQLite file
whose audit record bodies were overwritten with text that is not JSON, and `audit verify` names
the record."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sentra_runtime.stores.sqlite import verify_file

from tests.server.conftest import POLICY, TOKEN, Server

READS = ["/v1/events", "/v1/events?agent=bob", "/v1/events?label=Blocked",
         "/v1/events?kind=decision", "/v1/events/3", "/v1/agents", "/v1/agents/bob",
         "/v1/dashboard/snapshot", "/v1/impact", "/v1/policy", "/metrics", "/dashboard"]


NESTED = "[" * 100_000 + "]" * 100_000
"""JSON nested deeper than Python's decoder goes (RecursionError)."""
DIGITS = '{"n": ' + "9" * 5000 + "}"
"""JSON with an integer of more digits than Python converts (ValueError)."""


def corrupt(path: Path, *seqs: int, body: str = "{not json") -> None:
    with sqlite3.connect(path) as connection:
        for seq in seqs:
            connection.execute("UPDATE audit SET body = ? WHERE seq = ?", (body, seq))


@pytest.mark.parametrize("path", READS)
def test_every_read_answers_over_a_damaged_log(tmp_path: Path, path: str) -> None:
    db = tmp_path / "sentra.db"
    running = Server(POLICY, db, TOKEN)
    try:
        for action in ("FILE_READ", "CHANGE_PERMISSION", "DELETE_RECORD"):
            running.act("bob", action)
        corrupt(db, 2, 3)
        answer = running.get(path, token=TOKEN)
        assert answer.status == 200, (path, answer.status, answer.text[:300])
        assert running.act("carol", "FILE_READ")["decision"] == "Allowed"
    finally:
        running.stop()
    result = verify_file(db)
    assert (result.ok, result.seq) == (False, 2), str(result)


def test_a_damaged_record_is_listed_as_unreadable_not_hidden(tmp_path: Path) -> None:
    db = tmp_path / "sentra.db"
    running = Server(POLICY, db, TOKEN)
    try:
        running.act("bob", "FILE_READ")
        corrupt(db, 2)
        events = running.get("/v1/events", token=TOKEN).json()["events"]
    finally:
        running.stop()
    assert [event["seq"] for event in events] == [1, 2]
    assert events[1].get("unparsable") == "{not json"


@pytest.mark.parametrize("body", [NESTED, DIGITS], ids=["nested too deeply", "too many digits"])
def test_json_the_decoder_refuses_is_a_damaged_record_too(tmp_path: Path, body: str) -> None:
    """Valid JSON that Python's decoder refuses (too deep, an integer too long) is damage like
    any other text: reads answer, the record is listed as unreadable, verify names it."""
    db = tmp_path / "sentra.db"
    running = Server(POLICY, db, TOKEN)
    try:
        running.act("bob", "FILE_READ")
        corrupt(db, 2, body=body)
        for path in ("/v1/events", "/v1/events/2", "/v1/dashboard/snapshot", "/v1/agents/bob"):
            answer = running.get(path, token=TOKEN)
            assert answer.status == 200, (path, answer.status, answer.text[:300])
        events = running.get("/v1/events", token=TOKEN).json()["events"]
        assert events[1].get("unparsable") == body
    finally:
        running.stop()
    result = verify_file(db)
    assert (result.ok, result.seq) == (False, 2), str(result)
