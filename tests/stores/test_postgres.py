"""What only the PostgreSQL store has: a database that goes away and comes back, its options,
and agent ids as any text."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sentra_runtime import AgentState, Decision, Engine, audit
from sentra_runtime.stores import SchemaError, StoreUnavailable, open_store, postgres
from sentra_runtime.stores.postgres import AGENT_LOCKS, PostgresStore, _lock_key, redacted

from tests.pg_cluster import Cluster
from tests.runtime.helpers import SENTRA_TABLE
from tests.stores.helpers import replay


def test_an_outage_fails_calls_at_once_and_the_store_recovers(own_cluster: Cluster) -> None:
    engine = Engine(SENTRA_TABLE, open_store(own_cluster.url))
    engine.evaluate("a", "DELETE_RECORD")
    own_cluster.halt("fast")
    for _ in range(5):
        started = time.perf_counter()
        with pytest.raises(StoreUnavailable, match="is unavailable"):
            engine.evaluate("a", "DELETE_RECORD")
        assert time.perf_counter() - started < 2.5   # not a timeout (5 s)
    with pytest.raises(StoreUnavailable):
        engine.state("a")
    own_cluster.launch()
    deadline = time.monotonic() + 20
    while True:
        try:
            decision = engine.evaluate("a", "DELETE_RECORD")
            break
        except StoreUnavailable:
            assert time.monotonic() < deadline, "the store did not recover"
            time.sleep(0.1)
    assert decision.cumulative_risk == 60   # nothing was recorded during the outage
    assert engine.verify_audit().ok
    engine.close()


def test_a_database_that_cannot_be_reached_is_refused_at_once() -> None:
    started = time.perf_counter()
    with pytest.raises(StoreUnavailable, match=r"cannot connect to postgresql://u:\*\*\*@"):
        PostgresStore("postgresql://u:secret@127.0.0.1:1/none", connect_timeout=2)
    assert time.perf_counter() - started < 5


def test_options_are_checked(postgres_url: str) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        PostgresStore(postgres_url, synchronous="OFF")
    with pytest.raises(ValueError, match="pool_size"):
        PostgresStore(postgres_url, pool_size=0)
    assert redacted("postgresql://me:pw@db:5432/x?sslmode=require") == \
        "postgresql://me:***@db:5432/x?sslmode=require"
    assert redacted("postgresql://me@db/x") == "postgresql://me@db/x"


def test_full_durability_commits_with_the_database_setting(postgres_url: str) -> None:
    engine = Engine(SENTRA_TABLE, PostgresStore(postgres_url, synchronous="FULL"))
    assert engine.evaluate("a", "EXPORT_DATA", {"destination_type": "external",
                                                 "data_classification": "sensitive"}).allowed
    assert engine.state("a") == AgentState(80, 0, "active")
    engine.close()


def test_agent_ids_are_any_text_and_sort_as_python_sorts(postgres_url: str) -> None:
    """Ids are kept as their UTF-8 bytes: NUL, emoji and accents included, in code point order
    (as the SQLite store and Python order them)."""
    engine = Engine(SENTRA_TABLE, open_store(postgres_url))
    names = ["b", "a\x00z", "Ä", "a", "😀", "", "Z", "é"]
    for name in names:
        engine.evaluate(name, "DELETE_RECORD")
    assert engine.agents() == sorted(names)
    assert engine.state("a\x00z") == AgentState(30, 0, "active")
    assert [r["agent"] for r in engine.store.read_records(agent="😀")] == ["😀"]
    assert engine.verify_audit().ok
    engine.close()


@pytest.mark.slow
def test_after_a_long_outage_the_store_is_back_within_seconds(own_cluster: Cluster) -> None:
    """The pool's retries would back off to minutes; the store starts them over, so it is back
    about as soon as the database is."""
    engine = Engine(SENTRA_TABLE, open_store(own_cluster.url))
    own_cluster.halt("fast")
    stopped = time.monotonic()
    while time.monotonic() - stopped < 15:
        with pytest.raises(StoreUnavailable):
            engine.evaluate("a", "FILE_READ")
        time.sleep(0.2)
    own_cluster.launch()
    back = time.monotonic()
    while True:
        try:
            engine.evaluate("a", "FILE_READ")
            break
        except StoreUnavailable:
            time.sleep(0.05)
    assert time.monotonic() - back < 4
    engine.close()


def test_an_agent_held_by_a_silent_process_fails_the_call_not_hangs(postgres_url: str) -> None:
    """A process that locked an agent and went silent (a half-open connection) does not make
    the others wait forever: the lock wait is bounded, and the call fails closed."""
    import psycopg

    engine = Engine(SENTRA_TABLE, PostgresStore(postgres_url, lock_timeout=0.5))
    engine.evaluate("held", "FILE_READ")
    with psycopg.connect(postgres_url, autocommit=True) as silent:
        silent.execute("SELECT * FROM sentra_begin(%s, false)", ('["' + b"held".hex() + '"]',))
        started = time.perf_counter()
        with pytest.raises(StoreUnavailable, match="lock timeout"):
            engine.evaluate("held", "FILE_READ")
        assert time.perf_counter() - started < 3
        assert engine.evaluate("other", "FILE_READ").allowed   # other agents go on
        silent_pid = silent.info.backend_pid
    wait_until_gone(postgres_url, silent_pid)   # the server ends a closed session's backend
    assert engine.evaluate("held", "FILE_READ").allowed        # its session ended: released
    assert engine.verify_audit().ok
    engine.close()


def wait_until_gone(url: str, pid: int, timeout: float = 10.0) -> None:
    """Until the backend ``pid`` has ended (closing a connection returns before the server has
    ended its session and released the session's locks)."""
    deadline = time.monotonic() + timeout
    with psycopg_connection(url) as watcher:
        while watcher.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s",
                              (pid,)).fetchone() is not None:
            assert time.monotonic() < deadline, f"backend {pid} did not end"
            time.sleep(0.02)


IDS = ["a", "", "a\x00z", "Ä", "😀", "bench-17", "x" * 300, "\U0010ffff", "Z"]


def test_lock_keys_are_the_ones_older_runtimes_take(postgres_url: str) -> None:
    """The store computes each agent's advisory lock key itself; a process of an older runtime
    on the same database (a rolling upgrade) takes its locks with the schema's `sentra_keys`:
    the same keys, in the same order, or the two would not serialise (or could deadlock)."""
    import psycopg

    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        theirs = [row[0] for row in connection.execute(
            "SELECT * FROM sentra_keys(sentra_ids(%s))",
            (json.dumps([name.encode().hex() for name in IDS]),))]
    assert theirs == sorted({_lock_key(name.encode()) for name in IDS})


def test_an_older_runtimes_writes_and_this_ones_make_one_chain(postgres_url: str) -> None:
    """The schema's own functions (what an older runtime of this schema version calls) and this
    runtime's per-session ones append to one chain and keep one agent state."""
    import psycopg

    engine = Engine(SENTRA_TABLE, PostgresStore(postgres_url))
    engine.evaluate("a", "DELETE_RECORD")
    before = engine.store.last_seq()
    record = audit.policy_load_record(time.time(), "sha256:" + "0" * 64, "old", "1", 4)
    with psycopg.connect(postgres_url, autocommit=True) as older:
        agents = json.dumps([b"a".hex()])
        older.execute("SELECT * FROM sentra_begin(%s, false)", (agents,)).fetchall()
        [(seq, _, _)] = older.execute("SELECT * FROM sentra_records('shared', %s, %s)", (
            agents, json.dumps([["policy_load", None, None, *audit.seal_parts(record), None,
                                 None]]))).fetchall()
    assert seq == before + 1
    assert engine.evaluate("a", "DELETE_RECORD").cumulative_risk == 60
    assert [r["kind"] for r in engine.audit_records()][-3:] == ["decision", "policy_load",
                                                                "decision"]
    assert engine.verify_audit().ok
    engine.close()


def test_a_rollback_keeps_the_stores_prepared_statements(postgres_url: str) -> None:
    """A snapshot read (`verify_audit`) ends with a ROLLBACK; psycopg then deallocates every
    prepared statement of the connection (once it prepared a query of its own), which would
    take the store's with them."""
    engine = Engine(SENTRA_TABLE, PostgresStore(postgres_url, pool_size=1))
    for _ in range(8):   # more than psycopg's threshold for preparing a query itself
        engine.evaluate("a", "FILE_READ")
        engine.state("a")
    assert engine.verify_audit().ok
    assert engine.evaluate("a", "FILE_READ").allowed
    assert engine.verify_audit().ok
    engine.close()


def test_the_loop_is_not_held_while_another_session_has_the_agent(postgres_url: str) -> None:
    """`evaluate_async` waits for an agent's lock without blocking the event loop (in the
    store's commit thread), then decides once it is free."""
    engine = Engine(SENTRA_TABLE, PostgresStore(postgres_url, group_commit=True))
    with psycopg_connection(postgres_url) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", (AGENT_LOCKS, _lock_key(b"waiting")))

        async def main() -> tuple[Decision, int, float]:
            ticks = 0
            started = time.monotonic()
            decision = asyncio.ensure_future(engine.evaluate_async("waiting", "DELETE_RECORD"))
            asyncio.get_running_loop().call_later(0.5, other.execute,
                                                  "SELECT pg_advisory_unlock_all()")
            while not decision.done():
                await asyncio.sleep(0.01)
                ticks += 1
            return decision.result(), ticks, time.monotonic() - started

        decision, ticks, seconds = asyncio.run(main())
    assert decision.allowed and decision.cumulative_risk == 30
    assert seconds >= 0.45 and ticks >= 20   # the loop ran on while the decision waited
    engine.close()


def test_an_async_batch_that_fails_leaves_no_agent_locked(postgres_url: str) -> None:
    """A batch whose decisions all fail alone (an annotation refused), and a batch the
    database refuses (a lock wait past `lock_timeout`): the agents they locked are free at once
    for another process, and the loop's next batches go through."""
    engine = Engine(SENTRA_TABLE, PostgresStore(postgres_url, lock_timeout=0.3))
    other = Engine(SENTRA_TABLE, PostgresStore(postgres_url, lock_timeout=0.3))

    async def main() -> None:
        with pytest.raises(ValueError):
            await engine.evaluate_async("a", "DELETE_RECORD", annotations={"seq": "no"})
        assert other.evaluate("a", "DELETE_RECORD").cumulative_risk == 30   # not locked
        with psycopg_connection(postgres_url) as holder:
            holder.execute("SELECT pg_advisory_lock(%s, %s)", (AGENT_LOCKS, _lock_key(b"b")))
            with pytest.raises(StoreUnavailable, match="lock timeout"):
                await engine.evaluate_async("b", "DELETE_RECORD")
        assert other.evaluate("b", "DELETE_RECORD").cumulative_risk == 30
        assert (await engine.evaluate_async("a", "DELETE_RECORD")).cumulative_risk == 60
        assert (await engine.evaluate_async("b", "DELETE_RECORD")).cumulative_risk == 60

    asyncio.run(main())
    assert engine.verify_audit().ok
    other.close()
    engine.close()


def psycopg_connection(url: str) -> Any:
    """A connection of its own (another process's, as far as the store can tell)."""
    import psycopg

    return psycopg.connect(url, autocommit=True)


def test_async_decisions_from_two_event_loops_at_once(postgres_url: str) -> None:
    """Two threads, each with its own event loop, deciding on one store at once: every
    decision is recorded once, in one chain."""
    engine = Engine(SENTRA_TABLE, PostgresStore(postgres_url, group_commit=True))

    def loop(number: int) -> None:
        async def main() -> None:
            await asyncio.gather(*(engine.evaluate_async(f"agent-{number}-{task}", "FILE_READ")
                                   for task in range(4) for _ in range(10)))
        asyncio.run(main())

    threads = [threading.Thread(target=loop, args=(number,)) for number in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(record["kind"] == "decision" for record in engine.audit_records()) == 80
    assert engine.verify_audit().ok
    engine.close()


def staggered(engine: Engine, callers: int, per_caller: int, agent: Any,
              ) -> list[list[tuple[str, Decision | StoreUnavailable]]]:
    """``callers`` tasks on one loop, each deciding in turn after a short random pause, so that
    decisions arrive while a batch is under way (and go with its append, pipelined)."""

    async def caller(number: int) -> list[tuple[str, Decision | StoreUnavailable]]:
        rng = random.Random(number)
        outcomes: list[tuple[str, Decision | StoreUnavailable]] = []
        for index in range(per_caller):
            await asyncio.sleep(rng.random() * 0.002)
            name = agent(number, index)
            try:
                outcomes.append((name, await engine.evaluate_async(
                    name, rng.choice(["FILE_READ", "DELETE_RECORD", "EXPORT_DATA"]))))
            except StoreUnavailable as error:
                outcomes.append((name, error))
        return outcomes

    async def main() -> list[list[tuple[str, Decision | StoreUnavailable]]]:
        return await asyncio.gather(*(caller(number) for number in range(callers)))

    return asyncio.run(main())


def test_pipelined_batches_are_the_serial_decisions(postgres_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Decisions that arrive while a batch is under way are the next batch, locked in the same
    round trip as the batch's append: every decision is recorded once, each caller's in its
    order, and replaying the log serially gives the same decisions and states."""
    pipelined = counting(monkeypatch, "_pipeline")
    engine = Engine(SENTRA_TABLE, PostgresStore(postgres_url, group_commit=True))
    outcomes = staggered(engine, 8, 40, lambda number, index: f"agent-{(number + index) % 5}")
    assert pipelined.count > 0
    records = [record for record in engine.audit_records() if record["kind"] == "decision"]
    assert len(records) == 8 * 40
    seqs = {id(decision): decision.seq for caller in outcomes for _, decision in caller}
    for caller in outcomes:
        mine = [seqs[id(decision)] for _, decision in caller]
        assert mine == sorted(mine)
    replayed = replay(records)
    for agent in engine.agents():
        assert engine.state(agent) == replayed.state(agent), agent
    assert engine.verify_audit().ok
    engine.close()


def test_a_pipelined_batch_that_cannot_lock_fails_alone(postgres_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An agent held by another session: the batches that wait for it fail (503, nothing
    recorded), the batches before them stand; nothing answered is missing from the log."""
    pipelined = counting(monkeypatch, "_pipeline")
    engine = Engine(SENTRA_TABLE, PostgresStore(postgres_url, group_commit=True,
                                                lock_timeout=0.2))
    with psycopg_connection(postgres_url) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (AGENT_LOCKS, _lock_key(b"held")))
        outcomes = staggered(engine, 6, 25, lambda number, index: (
            "held" if number == 0 and index % 5 == 4 else f"agent-{number}"))
    assert pipelined.count > 0
    answered = [decision for caller in outcomes for _, decision in caller
                if isinstance(decision, Decision)]
    failed = [name for caller in outcomes for name, decision in caller
              if isinstance(decision, StoreUnavailable)]
    assert "held" in failed and all(decision.agent_id != "held" for decision in answered)
    records = {record["seq"]: record for record in engine.audit_records()
               if record["kind"] == "decision"}
    assert sorted(records) == sorted(decision.seq for decision in answered)
    replayed = replay(sorted(records.values(), key=lambda record: record["seq"]))
    for agent in engine.agents():
        assert engine.state(agent) == replayed.state(agent), agent
    assert engine.verify_audit().ok
    engine.close()


class counting:
    """A spy on a function of the PostgreSQL store module: calls go through, counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.count = 0
        original = getattr(postgres, name)

        def spy(*args: Any) -> Any:
            self.count += 1
            return original(*args)

        monkeypatch.setattr(postgres, name, spy)


def test_a_role_without_the_temporary_privilege_is_told_what_to_grant(
        postgres_server: str) -> None:
    """The store's functions are the session's own (`pg_temp`): a role that may not create
    temporary objects gets a clear error naming the privilege, not a pool that never opens."""
    import psycopg

    name = f"notemp_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN")
        admin.execute(f"CREATE DATABASE {name}")
        admin.execute(f"REVOKE TEMPORARY ON DATABASE {name} FROM PUBLIC")
    parts = urlsplit(postgres_server)
    try:
        with psycopg.connect(urlunsplit(parts._replace(path=f"/{name}")),
                             autocommit=True) as admin:
            admin.execute(f"GRANT ALL ON SCHEMA public TO {name}")
        url = urlunsplit(parts._replace(netloc=f"{name}@{parts.hostname}:{parts.port}",
                                        path=f"/{name}"))
        with pytest.raises(SchemaError, match="the TEMPORARY privilege on the database"):
            PostgresStore(url)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {name}")
