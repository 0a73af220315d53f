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
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
from sentra_runtime import Engine
from sentra_runtime.stores import StoreUnavailable
from sentra_runtime.stores.postgres import PostgresStore

from tests.pg.helpers import POLICY, ROOT, Answer, Instance, Persistent, decide_body
from tests.pg.test_instances import AGENTS as INSTANCE_AGENTS
from tests.pg.test_instances import assert_answers_logged, assert_the_rules_held, logged
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
    """A superuser of the test's own."""
    with made_role(postgres_url, postgres_server, "SUPERUSER") as made:
        yield made


@pytest.fixture
def plain_role(postgres_url: str, postgres_server: str) -> Iterator[Role]:
    """A role of the test's own that is no superuser (limits apply to it), with every
    privilege on the test's schema."""
    with made_role(postgres_url, postgres_server, "NOSUPERUSER") as made:
        yield made


@contextmanager
def made_role(postgres_url: str, postgres_server: str, kind: str) -> Iterator[Role]:
    name = f"probe_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(postgres_url)
    schema = parse_qs(parts.query)["options"][0].split("=", 1)[1]
    with admin(postgres_server) as connection:
        connection.execute(f"CREATE ROLE {name} LOGIN {kind}")
        connection.execute(f"GRANT ALL ON SCHEMA {schema} TO {name}")
    url = urlunsplit(parts._replace(netloc=f"{name}@{parts.hostname}:{parts.port}"))
    made = Role(name, url, postgres_server)
    try:
        yield made
    finally:
        for pid in made.backends():   # a test that failed may have left one stopped
            send(pid, signal.SIGCONT)
        made.terminate()
        deadline = time.monotonic() + 10   # gone, with their session functions
        while made.backends() and time.monotonic() < deadline:
            time.sleep(0.05)
        with admin(postgres_server) as connection:
            connection.execute(f"REASSIGN OWNED BY {name} TO CURRENT_USER")
            connection.execute(f"DROP OWNED BY {name}")
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
        send(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            send(pid, signal.SIGCONT)


def send(pid: int, number: int) -> None:
    """Signal a database process, unless it has ended since it was listed (a closed
    connection's)."""
    with suppress(ProcessLookupError):
        os.kill(pid, number)


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


def sentra_lang(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sentra_lang", *arguments], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def assert_refused_plainly(done: subprocess.CompletedProcess[str], command: str,
                           reason: str) -> None:
    """Exit 2 with one `sentra-lang COMMAND: error: ...` naming the database's reason; no
    traceback."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "psycopg" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"sentra-lang {command}: error: "), done.stderr
    assert reason in done.stderr, done.stderr


def test_a_read_only_database_is_refused_with_its_reason(role: Role, tmp_path: Any) -> None:
    """A role whose transactions are read-only (`default_transaction_read_only`, as on a hot
    standby a failover left the URL pointing at): opening a store raises `StoreUnavailable`,
    and `serve` and `db upgrade` say why, never with a psycopg traceback."""
    Engine(SENTRA_TABLE, PostgresStore(role.url)).close()   # the schema, made writable
    role.alter("SET default_transaction_read_only = on")
    with pytest.raises(StoreUnavailable, match="read-only transaction"):
        PostgresStore(role.url)
    served = sentra_lang("serve", str(POLICY), "--db", role.url, "--port", "9")
    assert_refused_plainly(served, "serve", "read-only transaction")
    with admin(role.server) as connection:
        empty = f"e_{uuid.uuid4().hex[:10]}"
        connection.execute(f"CREATE SCHEMA {empty}")
    try:
        upgraded = sentra_lang("db", "upgrade", role.url.replace(
            urlsplit(role.url).query, f"options=-csearch_path%3D{empty}"))
        assert_refused_plainly(upgraded, "db", "read-only transaction")
    finally:
        with admin(role.server) as connection:
            connection.execute(f"DROP SCHEMA {empty} CASCADE")
    assert sentra_lang("audit", "verify", role.url).returncode == 0   # reading still works


def test_a_statement_timeout_mid_command_is_refused_with_its_reason(role: Role) -> None:
    """A `statement_timeout` the role was given cancels a read in the middle of a one-shot
    command (the agents' table held by another session): `audit verify` and `audit export`
    say so, never with a psycopg traceback; a decision raises `StoreUnavailable` and records
    nothing."""
    engine = Engine(SENTRA_TABLE, PostgresStore(role.url))
    engine.evaluate("a", "DELETE_RECORD")
    role.alter("SET statement_timeout = 300")
    next_decision_works(engine)   # on a connection that has the role's setting
    schema = parse_qs(urlsplit(role.url).query)["options"][0].split("=", 1)[1]
    with admin(role.server) as holder, holder.transaction():
        holder.execute(f"LOCK TABLE {schema}.sentra_agents IN ACCESS EXCLUSIVE MODE")
        for command in ("verify", "export"):
            assert_refused_plainly(sentra_lang("audit", command, role.url), "audit",
                                   "statement timeout")
        with pytest.raises(StoreUnavailable, match="statement timeout"):
            engine.evaluate("a", "DELETE_RECORD")
    role.alter("RESET statement_timeout")
    next_decision_works(engine)
    # nothing was recorded for the refused call: this is the agent's second decision
    assert engine.evaluate("a", "DELETE_RECORD").cumulative_risk == 60
    engine.close()


def test_a_connection_limit_is_refused_with_the_databases_reason(plain_role: Role) -> None:
    """The role's `CONNECTION LIMIT` reached (`ALTER ROLE ... CONNECTION LIMIT 0`): every
    decision raises `StoreUnavailable` at once and says why (the database's reason, not only
    that the pool had no connection: the server logs this message once per outage); the store
    decides again as soon as the limit allows, and nothing was recorded meanwhile."""
    engine = Engine(SENTRA_TABLE, PostgresStore(plain_role.url))
    engine.evaluate("a", "DELETE_RECORD")
    plain_role.alter("CONNECTION LIMIT 0")
    refusals = []
    for _ in range(4):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as refused:
            engine.evaluate("a", "DELETE_RECORD")
        assert time.monotonic() - started < 1
        refusals.append(str(refused.value))
        time.sleep(0.3)
    assert "too many connections for role" in refusals[-1], refusals
    plain_role.alter("CONNECTION LIMIT -1")
    next_decision_works(engine)
    assert engine.evaluate("a", "DELETE_RECORD").cumulative_risk == 60
    assert engine.verify_audit().ok
    engine.close()


@pytest.mark.slow
def test_two_instances_whose_connections_are_terminated_answer_200_or_503_and_lose_nothing(
        role: Role) -> None:
    """Two `serve` instances on one database, 6 clients deciding for the same agents through
    both, and every store connection terminated every few milliseconds: each answer is 200 or
    503 (never a 500), every decision answered 200 is in the log at its seq, the log verifies
    and replays to the stored states, the rules held across the processes (no risk above the
    threshold, exactly the third block shutting an agent down), and both decide again."""
    running = [Instance(POLICY, role.url, name=name) for name in ("A", "B")]
    answers: list[Answer] = []
    stop = threading.Event()

    def client(number: int) -> None:
        rng = random.Random(number)
        connections = [Persistent(instance.port) for instance in running]
        while not stop.is_set():
            action = rng.choice(["FILE_READ", "DELETE_RECORD", "SEND_EMAIL", "DROP_TABLE"])
            answers.append(rng.choice(connections).post("/v1/decide", decide_body(
                rng.choice(INSTANCE_AGENTS), {"action_type": action})))

    try:
        for instance in running:
            instance.start()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 4
        rng = random.Random(3)
        while time.monotonic() < deadline:
            time.sleep(rng.random() * 0.05)
            role.terminate()
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join()
        for instance in running:
            assert instance.post("/v1/decide", decide_body(
                "after", {"action_type": "FILE_READ"})).status == 200
    finally:
        for instance in running:
            instance.stop()
    statuses = Counter(answer.status for answer in answers)
    assert set(statuses) == {200, 503}, statuses
    records = logged(role.url)
    assert_the_rules_held(records)
    assert_answers_logged([answer for answer in answers if answer.status == 200], records)


def test_connections_the_database_ended_while_idle_are_not_a_refusal(role: Role) -> None:
    """The database ends the store's idle connections (`idle_session_timeout`, as a proxy
    or a firewall that drops idle connections does, or a DBA's `pg_terminate_backend`) while
    it is up: the next decisions get fresh connections instead of failing closed on the dead
    ones (which made every decision of an agent that acts less often than the timeout fail)."""
    role.alter("SET idle_session_timeout = 300")
    engine = Engine(SENTRA_TABLE, PostgresStore(role.url))
    seqs = []
    for _ in range(3):
        seqs.append(engine.evaluate("a", "FILE_READ").seq)
        time.sleep(0.6)   # every connection of the pool ended meanwhile
    role.alter("RESET idle_session_timeout")   # and terminated once more
    seqs.append(engine.evaluate("a", "FILE_READ").seq)
    assert_acknowledged_and_replayed(engine, seqs)
    engine.close()
