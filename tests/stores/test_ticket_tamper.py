"""A review ticket edited in a SQL store (docs/runtime.md, "Review": `audit verify`): the stores
keep a ticket's agent, status and times in columns of their own beside its body, and find and
settle tickets by them, so an edit of one column alone, the body left as it was, is an edited
ticket; an untouched lifecycle verifies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sentra_runtime import Engine

from tests.edges.test_review_probe import REFUNDS, Clock, compiled_table, tampered_lifecycle
from tests.pg_fixtures import StoreFactory

Edit = Callable[[str, str, Any], None]
"""``edit(ticket, column, value)``: set one column of a stored ticket, as someone with write
access to the database would."""


def editor(kind: str, target: str) -> Edit:
    if kind == "sqlite":
        import sqlite3

        def edit_file(ticket: str, column: str, value: Any) -> None:
            with sqlite3.connect(target) as connection:
                connection.execute(f"UPDATE tickets SET {column} = ? WHERE ticket = ?",
                                   (value, ticket))
        return edit_file
    import psycopg

    def edit_database(ticket: str, column: str, value: Any) -> None:
        name = "agent" if column == "agent_id" else column
        with psycopg.connect(target, autocommit=True) as connection:
            connection.execute(f"UPDATE sentra_tickets SET {name} = %s WHERE ticket = %s",
                               (value.encode() if name == "agent" else value, ticket))
    return edit_database


COLUMN_EDITS = [("pending", "agent_id", "mallory"), ("settled", "agent_id", "mallory"),
                ("pending", "expires", 1), ("pending", "created", 5),
                ("settled", "expires", 10**17)]


@pytest.mark.parametrize("which, column, value", COLUMN_EDITS)
def test_a_ticket_column_edited_alone_is_an_edited_ticket(
        make_sql_store: StoreFactory, sql_target: str, which: str, column: str,
        value: Any) -> None:
    clock = Clock()
    engine = Engine(compiled_table(REFUNDS), make_sql_store(), clock=clock)
    tickets = dict(zip(("pending", "settled"), tampered_lifecycle(engine), strict=True))
    assert engine.verify_audit().ok
    editor(make_sql_store.kind, sql_target)(  # type: ignore[attr-defined]
        tickets[which], column, value)
    result = engine.verify_audit()
    assert not result.ok and "edited ticket" in str(result.problem), result
