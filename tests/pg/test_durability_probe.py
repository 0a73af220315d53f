"""An adversarial probe of the PostgreSQL store's durability and fail-closed claims, with real
failures: the store's connections terminated at random moments under load, a database process
that stops answering, a role made read-only or given a statement timeout. After each, an
independent view: every acknowledged decision is in the log, the log verifies, a serial replay
of it gives the stored states, and every error is the documented one."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sentra_runtime import Engine
from sentra_runtime.stores import StoreUnavailable
from sentra_runtime.stores.postgres import PostgresStore

from tests.runtime.helpers import SENTRA_TABLE
from tests.stores.helpers import replay
from tests.stores.store_worker import ACTIONS, AGENTS


def admin(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


@dataclass
class Role:
    """A login role of the test's own (so that its connections are told apart from the other
    tests' on the shared server) and a URL on the test's schema as that role."""

    name: str
    url: str
    server: str

    def alter(self, setting: str) -> None:
        """``ALTER ROLE`` (new connections get it) and end the role's current connections."""
        with admin(self.server) as connection:
            connection.execute(f"ALTER ROLE {self.name} {setting}")
        self.terminate()

    def backends(self) -> list[int]:
        """The process ids of the role's connections."""
        with admin(self.server) as connection:
            return [row[0] for row in connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE usename = %s", (self.name,))]

    def terminate(self) -> int:
        """``pg_terminate_backend`` of every connection of the role; how many."""
        with admin(self.server) as connection:
            return len(connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (self.name,)).fetchall())


@pytest.fixture
def role(postgres_url: str, postgres_server: str) -> Iterator[Role]:
    name = f"probe_{uuid.uuid4().hex[:10]}"
    with admin(postgres_server) as connection:
        connection.execute(f"CREATE ROLE {name} LOGIN SUPERUSER")
    parts = urlsplit(postgres_url)
    url = urlunsplit(parts._replace(netloc=f"{name}@{parts.hostname}:{parts.port}"))
    made = Role(name, url, postgres_server)
    yield made
    for pid in made.backends():   # a test that failed may have left one stopped
        os.kill(pid, signal.SIGCONT)
    made.terminate()
    with admin(postgres_server) as connection:
        connection.execute(f"REASSIGN OWNED BY {name} TO CURRENT_USER")
        connection.execute(f"DROP ROLE {name}")


def assert_acknowledged_and_replayed(engine: Engine, acknowledged: list[int]) -> None:
    """Every acknowledged decision's record is in the log, once; the log verifies; a serial
    replay gives every stored state (so strike counts and risks are exact)."""
    records = list(engine.audit_records())
    seqs = [record["seq"] for record in records]
    assert len(set(acknowledged)) == len(acknowledged)
    assert set(acknowledged) <= set(seqs)
    verified = engine.verify_audit()
    assert verified.ok, str(verified)
    replayed = replay(records)
    for agent in engine.agents():
        assert engine.state(agent) == replayed.state(agent), agent
        assert engine.state(agent).cumulative_risk <= 100


def next_decision_works(engine: Engine, agent: str = "after-the-fault") -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            engine.evaluate(agent, "FILE_READ")
            return
        except StoreUnavailable:
            assert time.monotonic() < deadline, "the store did not recover"
            time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("path", ["threads", "group-commit", "event-loop"])
def test_connections_terminated_at_random_moments_lose_nothing_acknowledged(
        role: Role, path: str) -> None:
    """`pg_terminate_backend` of every store connection, every few milliseconds, while 8
    callers decide (one transaction each, group commit from threads, or pipelined batches on
    an event loop): each call is acknowledged or raises `StoreUnavailable`, and nothing
    acknowledged is lost or applied twice."""
    engine = Engine(SENTRA_TABLE, PostgresStore(role.url, group_commit=path != "threads"))
    acknowledged: list[int] = []
    refused: list[BaseException] = []
    stop = threading.Event()

    def decide(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
        action, fields = rng.choice(ACTIONS)
        return rng.choice(AGENTS), action, fields

    def caller(number: int) -> None:
        rng = random.Random(number)
        while not stop.is_set():
            try:
                acknowledged.append(engine.evaluate(*decide(rng)).seq)
            except StoreUnavailable as error:
                refused.append(error)

    async def task(number: int) -> None:
        rng = random.Random(number)
        while not stop.is_set():
            try:
                acknowledged.append((await engine.evaluate_async(*decide(rng))).seq)
            except StoreUnavailable as error:
                refused.append(error)

    def terminator() -> None:
        rng = random.Random(7)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            time.sleep(rng.random() * 0.03)
            role.terminate()
        stop.set()

    killer = threading.Thread(target=terminator)
    killer.start()
    if path == "event-loop":
        async def main() -> None:
            await asyncio.gather(*(task(number) for number in range(8)))

        asyncio.run(main())
    else:
        threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    killer.join()
    assert acknowledged and refused   # the faults hit, and decisions went through between
    assert all("is unavailable" in str(error) for error in refused)
    next_decision_works(engine)
    assert_acknowledged_and_replayed(engine, acknowledged)
    engine.close()


@contextmanager
def stopped(pids: list[int]) -> Iterator[None]:
    """The database processes ``pids`` stopped (SIGSTOP): a database that froze, or a network
    that lost the connection without a reset: the client's statements get no answer."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def within(seconds: float, call: Any) -> Any:
    """``call()``'s result or error, or fail when it has none after ``seconds`` (it hangs)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"no answer within {seconds} s: the call hangs"
    return outcome[0]


@pytest.mark.parametrize("path", ["thread", "event-loop"])
def test_a_database_that_stops_answering_fails_the_call_instead_of_hanging(
        role: Role, path: str) -> None:
    """The connection a decision runs on gets no answer (its database process stopped): the
    call raises `StoreUnavailable` after `answer_timeout`, not never, and the store decides
    again as soon as the database answers. On an event loop the commit thread is every
    decision's, so a hang there would stop the whole process deciding."""
    store = PostgresStore(role.url, pool_size=1, answer_timeout=1.0, lock_timeout=0.5)
    engine = Engine(SENTRA_TABLE, store)
    acknowledged = [engine.evaluate("a", "DELETE_RECORD").seq]

    def decide() -> Any:
        if path == "thread":
            return engine.evaluate("a", "DELETE_RECORD")
        return asyncio.run(engine.evaluate_async("a", "DELETE_RECORD"))

    with stopped(role.backends()):
        started = time.monotonic()
        outcome = within(10, decide)
        assert isinstance(outcome, StoreUnavailable), outcome
        assert "no answer from the database within 1 s" in str(outcome)
        assert time.monotonic() - started < 5
    next_decision_works(engine)
    decision = engine.evaluate("a", "DELETE_RECORD")
    acknowledged.append(decision.seq)
    # the stopped decision was not committed (the database never ran it), so this is the
    # agent's second one
    assert decision.cumulative_risk == 60
    assert_acknowledged_and_replayed(engine, acknowledged)
    engine.close()


def test_answer_timeout_is_checked(postgres_url: str) -> None:
    with pytest.raises(ValueError, match="answer_timeout must be longer than lock_timeout"):
        PostgresStore(postgres_url, answer_timeout=2, lock_timeout=2)
