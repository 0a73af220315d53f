"""A compiled table saved in a shared store (docs/runtime.md, "Sharing a store"), edited in the
database: reading it back is a `PolicyLoadError` naming the policy, never a decoder's
traceback, and a table edited into another policy under the same hash is refused by its hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sentra_runtime import Engine, PolicyLoadError

from tests.edges.test_review_probe import REFUNDS, compiled_table
from tests.pg_fixtures import StoreFactory
from tests.server.conftest import POLICY


def set_saved_table(kind: str, target: str, policy_hash: str, body: str) -> None:
    """Overwrite the body of a saved table, as someone with write access to the database
    would."""
    if kind == "sqlite":
        import sqlite3

        with sqlite3.connect(target) as connection:
            connection.execute("UPDATE policies SET body = ? WHERE hash = ?", (body, policy_hash))
        return
    import psycopg

    with psycopg.connect(target, autocommit=True) as connection:
        connection.execute("UPDATE sentra_policies SET body = %s WHERE hash = %s",
                           (body, policy_hash))


EDITS = {
    "not JSON": ("{\"schema_version\": ", "is not JSON"),
    "nested too deeply": ("[" * 100_000 + "]" * 100_000, "nests too deeply"),
    "an integer of 5000 digits": ("9" * 5000, "is not JSON"),
    "not an object": ("[1, 2]", "is not a JSON object"),
}


@pytest.mark.parametrize("text, says", EDITS.values(), ids=EDITS)
def test_a_saved_table_edited_into_no_table_is_a_load_error_naming_it(
        make_sql_store: StoreFactory, sql_target: str, text: str, says: str) -> None:
    table = compiled_table(REFUNDS)
    store = make_sql_store()
    store.save_policy_table(table)
    set_saved_table(make_sql_store.kind, sql_target, table["hash"], text)  # type: ignore[attr-defined]
    with pytest.raises(PolicyLoadError) as raised:
        make_sql_store().policy_table(table["hash"])
    assert f"the saved table of policy {table['hash']}" in str(raised.value)
    assert says in str(raised.value)


def test_a_saved_table_edited_into_another_policy_is_refused_by_its_hash(
        make_sql_store: StoreFactory, sql_target: str) -> None:
    table = compiled_table(REFUNDS)
    make_sql_store().save_policy_table(table)
    edited = dict(table, settings=dict(table["settings"], risk_threshold=10**6))
    set_saved_table(make_sql_store.kind, sql_target, table["hash"],  # type: ignore[attr-defined]
                    json.dumps(edited))
    saved = make_sql_store().policy_table(table["hash"])
    with pytest.raises(PolicyLoadError, match="content hash mismatch"):
        Engine(saved)


def test_a_process_that_meets_an_edited_saved_table_keeps_its_policy_and_says_why(
        make_sql_store: StoreFactory, sql_target: str, tmp_path: Path) -> None:
    """docs/server.md, "Policy reload": two servers' gates on one store; B starts with another
    policy (saving its table), the saved table is edited, and A's log follower refuses it with
    the reason (which its thread logs) and keeps serving its own policy."""
    from sentra_lang.server.gate import Gate
    from sentra_lang.server.store import LogFollower

    other = tmp_path / "other.sentra"
    other.write_text(POLICY.read_text("utf-8").replace('version "', 'version "edited-', 1),
                     encoding="utf-8")
    first = Gate(POLICY, sql_target)
    follower = LogFollower(first)
    follower.seen = first.reader.head()   # as start() does, without the thread
    served = first.engine.policy.hash
    second = Gate(other, sql_target)
    try:
        assert second.engine.policy.hash != served
        set_saved_table(make_sql_store.kind, sql_target,  # type: ignore[attr-defined]
                        second.engine.policy.hash, "[" * 100_000)
        with pytest.raises(PolicyLoadError) as raised:
            follower.step()
        assert str(raised.value) == (f"the saved table of policy {second.engine.policy.hash} "
                                     "is not JSON: it nests too deeply")
        follower.step()
        assert first.engine.policy.hash == served
        assert first.engine.evaluate("a", "FILE_READ", {}).allowed
    finally:
        second.close()
        first.close()
