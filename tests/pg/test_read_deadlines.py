"""Every read of the PostgreSQL store is bounded as its writes are: a database that stops
answering (its process stopped with SIGSTOP, found through `pg_stat_activity`) fails a read
with `StoreUnavailable` after `answer_timeout` (the server: 503; the CLI: exit 2 with its
usage-error line), and the store works again once the database does. A long read is bounded
per answer (each batch of rows), not as a whole: a slow consumer of a stream is never cut off.

On the code before the bound, each of these reads hangs until the database runs again; the
tests bound that hang themselves (`within`, an HTTP timeout, a subprocess timeout) and fail."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sentra_runtime import Engine
from sentra_runtime.remote import RemoteEngine, SentraError
from sentra_runtime.stores import StoreUnavailable
from sentra_runtime.stores.postgres import PostgresStore

from tests.pg.helpers import ROOT
from tests.pg.test_durability_probe import Role, admin, made_role, stopped, within
from tests.runtime.helpers import SENTRA_TABLE

pytestmark = pytest.mark.slow

ANSWER = 1.0
"""The answer timeout of these tests (seconds)."""
NO_ANSWER = f"no answer from the database within {ANSWER:g} s"
UNAVAILABLE = "the state database is unavailable"
"""The server's 503 detail (docs/server.md)."""


@pytest.fixture
def role(postgres_url: str, postgres_server: str) -> Iterator[Role]:
    """A role of the test's own: its connections are the ones the test stops."""
    with made_role(postgres_url, postgres_server, "SUPERUSER") as made:
        yield made


def bounded_store(role: Role, **options: Any) -> PostgresStore:
    return PostgresStore(role.url, answer_timeout=ANSWER, lock_timeout=ANSWER / 2, **options)


def recovered(read: Callable[[], Any], seconds: float = 15) -> Any:
    """``read()``'s result once the store works again (it may fail while it reconnects)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return read()
        except StoreUnavailable:
            assert time.monotonic() < deadline, "the store did not recover"
            time.sleep(0.1)


def assert_fails_in_time(read: Callable[[], Any], seconds: float = ANSWER) -> None:
    """``read()`` raises the documented `StoreUnavailable` after about ``seconds``, not
    never."""
    started = time.monotonic()
    outcome = within(10 * seconds, read)
    elapsed = time.monotonic() - started
    assert isinstance(outcome, StoreUnavailable), outcome
    assert "is unavailable" in str(outcome) and NO_ANSWER in str(outcome), outcome
    assert seconds * 0.9 <= elapsed < seconds + 2, elapsed


READS: dict[str, Callable[[PostgresStore], Any]] = {
    "state": lambda store: store.state("a"),
    "agents": lambda store: store.agents(),
    "count_agents": lambda store: store.count_agents(),
    "read_records": lambda store: store.read_records(0, 100),
    "read_records of an agent": lambda store: store.read_records(0, 100, agent="a"),
    "last_seq": lambda store: store.last_seq(),
    "tickets": lambda store: store.tickets(),
    "ticket": lambda store: store.ticket("no-such-ticket"),
    "policy_table": lambda store: store.policy_table("sha256:" + "0" * 64),
    "audit_records": lambda store: list(store.audit_records()),
    "verify_audit": lambda store: store.verify_audit(),
    "export_audit": lambda store: store.export_audit(io.StringIO()),
}


@pytest.mark.parametrize("read", READS)
def test_a_read_of_a_silent_database_fails_within_the_answer_timeout(role: Role,
                                                                       read: str) -> None:
    store = bounded_store(role, pool_size=1)
    engine = Engine(SENTRA_TABLE, store)
    engine.evaluate("a", "DELETE_RECORD")
    expected = READS[read](store)
    with stopped(role.backends()):
        assert_fails_in_time(lambda: READS[read](store))
    assert recovered(lambda: READS[read](store)) == expected
    engine.close()


def test_the_engine_state_read_is_bounded(role: Role) -> None:
    """`Engine.state` (what an embedding agent reads) goes through the store: bounded too."""
    engine = Engine(SENTRA_TABLE, bounded_store(role, pool_size=1))
    engine.evaluate("a", "DELETE_RECORD")
    with stopped(role.backends()):
        assert_fails_in_time(lambda: engine.state("a"))
    assert recovered(lambda: engine.state("a")).cumulative_risk == 30
    engine.close()


def test_a_long_read_is_bounded_per_batch_not_as_a_whole(role: Role) -> None:
    """`audit_records` streams the log in batches of 2,000 rows: a consumer slower than the
    answer timeout is not cut off (nothing waits for the database meanwhile), and a database
    that stops answering in the middle fails the next batch's fetch after the timeout."""
    engine = Engine(SENTRA_TABLE, bounded_store(role, pool_size=1, group_commit=True))

    async def decide() -> None:
        await asyncio.gather(*(engine.evaluate_async(f"agent-{number % 40}", "FILE_READ")
                               for number in range(2100)))

    asyncio.run(decide())
    slow = 0
    for slow, _ in enumerate(engine.audit_records(), 1):
        if slow in (1, 2001):   # in each batch, longer than the answer timeout
            time.sleep(ANSWER * 1.2)
    assert slow == 2101   # the policy load and every decision, read to the end
    records = engine.audit_records()
    first_batch = [next(records), *islice(records, 1999)]
    assert [record["seq"] for record in first_batch] == list(range(1, 2001))
    with stopped(role.backends()):
        assert_fails_in_time(lambda: list(records))   # the second batch gets no answer
    assert len(recovered(lambda: list(engine.audit_records()))) == 2101
    engine.close()


@contextmanager
def frozen(role: Role) -> Iterator[None]:
    """Every connection of the role stopped, and no new one let in (a frozen database accepts
    none either)."""
    with admin(role.server) as connection:
        connection.execute(f"ALTER ROLE {role.name} NOLOGIN")
    try:
        with stopped(role.backends()):
            yield
    finally:
        with admin(role.server) as connection:
            connection.execute(f"ALTER ROLE {role.name} LOGIN")


def get(port: int, path: str, token: str, timeout: float) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


SERVER_READS = ("/v1/agents/a", "/v1/agents", "/v1/events", "/events", "/v1/reviews",
                "/v1/dashboard/snapshot")
WAIT_TIMEOUT = 5.0
"""The store's wait for a free connection: a request that finds none (the log follower holds
the only one, frozen) waits that long, then is answered 503 too."""


def answers_again(read: Callable[[], tuple[int, Any]], name: str) -> tuple[int, Any]:
    """``read()``'s answer once it is 200 (the server recovers within seconds)."""
    deadline = time.monotonic() + 20
    while True:
        status, body = read()
        if status == 200:
            return status, body
        assert time.monotonic() < deadline, f"{name} did not recover"
        time.sleep(0.1)


def test_server_reads_of_a_silent_database_answer_503_and_recover(role: Role) -> None:
    """Each read route, while the database is frozen, is answered 503 with the documented
    detail within the answer timeout (or the wait for a connection, when another reader holds
    the frozen one), never held; the SDK's state read fails with the server's reason; each
    route answers again once the database does."""
    from tests.server.conftest import POLICY, TOKEN, Server

    server = Server(POLICY, role.url, TOKEN, db_answer_timeout=ANSWER)  # type: ignore[arg-type]
    remote = RemoteEngine(server.url, token=TOKEN, timeout=30)
    try:
        server.act("a", "DELETE_RECORD")

        def sdk_state() -> tuple[int, Any]:
            try:
                return 200, remote.state("a")
            except SentraError as error:
                return 503, {"detail": str(error)}

        reads: dict[str, Callable[[], tuple[int, Any]]] = {
            path: (lambda path=path: get(server.port, path, TOKEN, 30))   # type: ignore[misc]
            for path in SERVER_READS}
        reads["SDK state"] = sdk_state
        for name, read in reads.items():
            answers_again(read, name)
            with frozen(role):
                started = time.monotonic()
                status, body = read()
                elapsed = time.monotonic() - started
            assert status == 503, (name, status, body)
            assert UNAVAILABLE in body["detail"], (name, body)
            assert elapsed < ANSWER + WAIT_TIMEOUT + 1.5, (name, elapsed)
        status, body = answers_again(reads["/v1/agents/a"], "the server")
        assert body["cumulative_risk"] == 30, body   # nothing was recorded meanwhile
        server.act("a", "DELETE_RECORD")
        assert get(server.port, "/v1/agents/a", TOKEN, 30)[1]["cumulative_risk"] == 60
    finally:
        remote.close()
        server.stop()


def sentra_lang(*arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "sentra_lang", *arguments], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def backends_where(role: Role, condition: str, seconds: float = 30) -> list[int]:
    """The role's backends that meet ``condition`` (SQL on `pg_stat_activity`), once there
    are some."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with admin(role.server) as connection:
            found = [row[0] for row in connection.execute(
                f"SELECT pid FROM pg_stat_activity WHERE usename = %s AND {condition}",
                (role.name,))]
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no backend of the role where {condition}")


def assert_cli_refused(process: subprocess.Popen[str], started: float, seconds: float,
                       ) -> str:
    """The command exits 2 about ``seconds`` after ``started`` with its one error line naming
    the missing answer, no traceback; what it wrote to standard output."""
    try:
        out, errors = process.communicate(timeout=seconds + 20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError("the command hangs on a database that does not answer") from None
    elapsed = time.monotonic() - started
    assert process.returncode == 2, errors
    assert errors.startswith("sentra-lang audit: error: "), errors
    assert f"no answer from the database within {seconds:g} s" in errors, errors
    assert "Traceback" not in errors and "psycopg" not in errors, errors
    assert elapsed < seconds + 3, elapsed
    return out


def test_audit_export_is_bounded_per_batch_and_fails_on_a_silent_database(role: Role) -> None:
    """`audit export` whose reader stops reading for longer than the answer timeout finishes
    (the export as a whole is not bounded); stopped the same way and then its database frozen,
    it exits 2 about the timeout after it asks for its next rows, instead of hanging."""
    engine = Engine(SENTRA_TABLE, PostgresStore(role.url))
    for number in range(300):   # more than a pipe holds: the export blocks writing
        engine.evaluate(f"agent-{number % 7}", "FILE_READ")
    engine.close()
    for freeze in (False, True):
        export = sentra_lang("audit", "export", role.url, "--db-answer-timeout", f"{ANSWER:g}")
        pids = backends_where(role, "state = 'idle in transaction'")
        time.sleep(ANSWER * 1.5)   # the reader is slow: the export waits on the pipe
        if not freeze:
            out, errors = export.communicate(timeout=60)
            assert export.returncode == 0, errors
            lines = [json.loads(line) for line in out.splitlines()]
            assert [line["seq"] for line in lines[:-1] if "hash" in line] == list(range(1, 302))
            assert lines[-1]["seq"] == 301   # the head line: the export is whole
            continue
        with stopped(pids):
            started = time.monotonic()   # read from now: the export goes on, then asks for
            written = assert_cli_refused(export, started, ANSWER)   # the agents' rows
            assert written.count('"seq"') >= 300


def test_audit_verify_fails_on_a_silent_database(role: Role) -> None:
    """`audit verify` whose database freezes in the middle of the verification (held at the
    agents' table by another session's lock until its backend is stopped, then let go) exits
    2 about the timeout later, instead of hanging."""
    engine = Engine(SENTRA_TABLE, PostgresStore(role.url))
    engine.evaluate("a", "DELETE_RECORD")
    engine.close()
    schema = parse_qs(urlsplit(role.url).query)["options"][0].split("=", 1)[1]
    seconds = 2.0
    with admin(role.server) as holder:
        holder.execute("BEGIN")
        holder.execute(f"LOCK TABLE {schema}.sentra_agents IN ACCESS EXCLUSIVE MODE")
        verify = sentra_lang("audit", "verify", role.url, "--db-answer-timeout", f"{seconds:g}")
        waiting = backends_where(role, "wait_event_type = 'Lock'")
        started = time.monotonic()   # no later than the wait for the answer began
        try:
            with stopped(waiting):
                holder.execute("COMMIT")   # the lock is free: only the freeze holds it now
                assert_cli_refused(verify, started, seconds)
        finally:
            if verify.poll() is None:
                verify.kill()
    done = sentra_lang("audit", "verify", role.url)
    out, errors = done.communicate(timeout=60)
    assert done.returncode == 0 and ": ok: 2 records" in out, (out, errors)


def test_the_cli_answer_timeout_is_checked() -> None:
    for value in ("0", "-1", "nan", "soon", "3601"):
        done = sentra_lang("audit", "verify", "postgresql://nowhere/db", "--db-answer-timeout",
                           value)
        _, errors = done.communicate(timeout=60)
        assert done.returncode == 2, errors
        assert "--db-answer-timeout: expected seconds between 0 and 3600" in errors, errors



@pytest.mark.parametrize("command", [("audit", "verify"), ("db", "status"), ("serve",)])
def test_the_help_names_the_runtime_defaults(command: tuple[str, ...]) -> None:
    """The CLI imports no store at start-up, so its help states the defaults as text: the
    runtime's own."""
    from sentra_runtime.stores.postgres import ANSWER_SECONDS, ONE_SHOT_ANSWER_SECONDS

    done = sentra_lang(*command, "--help")
    out, _ = done.communicate(timeout=60)
    default = ANSWER_SECONDS if command == ("serve",) else ONE_SHOT_ANSWER_SECONDS
    assert f"(default: {default:g}" in " ".join(out.split()), out
