"""The PostgreSQL store: agent state and audit log in one database, shared by any number of
processes on any number of machines.

The semantics are the SQLite store's (``sentra_runtime.stores.sqlite``): every decision is one
transaction (or, with ``group_commit=True``, every batch of decisions that arrived together)
that locks the agent, reads its state, decides, writes the state and appends the hash-chained
audit record; the decision is returned only after the transaction commits. Resets and policy
loads are records of the same chain.

How the transaction runs, and why (two round trips to the database):

1. Lock the agents and read their states: a transaction-level advisory lock on each agent's id
   (it also covers an agent that has no row yet, so two first decisions of a new agent
   serialise) and a shared lock on the gate, which a reset of every agent takes exclusively.
2. Decide in Python, then send the state writes, the append and ``COMMIT`` at once. The append
   is the database function ``sentra_append``: it locks the head row (the seq and hash of the
   last record), chains the records (``sha256`` over the canonical JSON the runtime split around
   ``prev`` and ``seq``, :func:`sentra_runtime.audit.seal_parts`), inserts them and moves the
   head, all inside the database. So the one lock every writer shares (the head's) is held only
   while the database appends and commits, never while a client thinks or the network carries
   an answer: decisions of different agents, from any instance, overlap everywhere else.

The seq of a record is known only once it is appended, so the store decides twice: once to
build the record (an annotation function sees ``decision.seq`` as ``None`` here), and once
more, with the seq, for the decision it returns (the decider is a pure function: the same
decision). Records become visible in seq order (the head's lock is held until commit).

Durability: ``synchronous="NORMAL"`` (the default, the server's) commits with PostgreSQL's
``synchronous_commit = off``: an acknowledged decision survives the death of the process that
made it (it is committed in the database), and a crash of the database server or its machine
can lose the last fraction of a second of commits (three times ``wal_writer_delay``, 0.6 s by
default), never corrupt anything, and never a later decision without an earlier one.
``synchronous="FULL"`` commits with the database's own setting (``on`` by default): nothing
acknowledged is lost even then, at one WAL flush per transaction, which holds the head's lock.

When the database cannot be reached, every call raises
:class:`~sentra_runtime.stores.schema.StoreUnavailable` at once (after the first failure, calls
wait at most ``retry_wait`` seconds for a connection instead of ``wait_timeout``), and the pool
reconnects in the background: the store recovers when the database is back, without a restart.

psycopg 3 and psycopg-pool are imported when a store is made: ``sentra_runtime`` itself stays
standard library only (``pip install 'sentra-lang[postgres]'`` installs both).
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from sentra_runtime import audit
from sentra_runtime.audit import VerifyResult
from sentra_runtime.decision import Decision
from sentra_runtime.policy import Policy, canonical_json
from sentra_runtime.stores import FRESH, AgentState, Decide, RawState, Reset
from sentra_runtime.stores.schema import (
    SCHEMA_VERSION,
    SchemaError,
    StoreUnavailable,
    checked_version,
)
from sentra_runtime.stores.sqlite import SYNCHRONOUS_MODES, _GroupCommit, _Pending

AGENT_LOCKS = 1936027252
"""The advisory lock class of the agents (``pg_advisory_xact_lock(AGENT_LOCKS, crc32(id))``)."""
GATE_LOCK = (1936027253, 0)
"""Shared by decisions and one-agent resets, exclusive for a reset of every agent."""
SCHEMA_LOCK = (1936027254, 0)
"""Serialises processes creating or upgrading the schema at once."""

SCHEMA = (
    "CREATE TABLE sentra_meta (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE sentra_agents (agent_id bytea PRIMARY KEY, cumulative_risk bigint NOT NULL, "
    "blocked_attempts bigint NOT NULL, shut_down boolean NOT NULL)",
    "CREATE TABLE sentra_audit (seq bigint PRIMARY KEY, hash text NOT NULL, body text NOT NULL, "
    "kind text NOT NULL, agent bytea, label text)",
    "CREATE TABLE sentra_head (id integer PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL, "
    "hash text)",
    "INSERT INTO sentra_head (id, seq, hash) VALUES (1, 0, NULL)",
    "CREATE TABLE sentra_policies (hash text PRIMARY KEY, body text NOT NULL)",
    """CREATE FUNCTION sentra_append(kinds text[], agents bytea[], labels text[], befores text[],
                                  betweens text[], afters text[])
    RETURNS TABLE (seq bigint, hash text) LANGUAGE plpgsql AS $$
DECLARE
    last_seq bigint;
    last_hash text;
    body text;
BEGIN
    SELECT h.seq, h.hash INTO STRICT last_seq, last_hash FROM sentra_head h WHERE h.id = 1
        FOR UPDATE;
    FOR i IN 1 .. cardinality(kinds) LOOP
        last_seq := last_seq + 1;
        body := befores[i] || COALESCE('"' || last_hash || '"', 'null') || betweens[i]
                || last_seq::text || afters[i];
        last_hash := 'sha256:' || encode(sha256(convert_to(body, 'UTF8')), 'hex');
        INSERT INTO sentra_audit (seq, hash, body, kind, agent, label)
            VALUES (last_seq, last_hash, body, kinds[i], agents[i], labels[i]);
        seq := last_seq;
        hash := last_hash;
        RETURN NEXT;
    END LOOP;
    UPDATE sentra_head h SET seq = last_seq, hash = last_hash WHERE h.id = 1;
END
$$""",
)
"""Schema version 2, the first of this store."""

_UPSERT_STATE = (
    "INSERT INTO sentra_agents (agent_id, cumulative_risk, blocked_attempts, shut_down) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (agent_id) DO UPDATE SET "
    "cumulative_risk = excluded.cumulative_risk, blocked_attempts = excluded.blocked_attempts, "
    "shut_down = excluded.shut_down")
_LOCK_AGENTS = ("SELECT pg_advisory_xact_lock(%s, key) FROM unnest(%s::integer[]) "
                "WITH ORDINALITY AS keys(key, position) ORDER BY position")
_STATES = ("SELECT agent_id, cumulative_risk, blocked_attempts, shut_down FROM sentra_agents "
           "WHERE agent_id = ANY(%s)")
_APPEND = "SELECT seq, hash FROM sentra_append(%s, %s, %s, %s, %s, %s)"
DEFAULT_POOL_SIZE = 10


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def _driver() -> tuple[Any, Any]:
    """psycopg and psycopg_pool, imported on first use (never by ``import sentra_runtime``)."""
    try:
        import psycopg
        import psycopg_pool
    except ImportError as error:
        raise ImportError("the PostgreSQL store needs psycopg 3 and psycopg-pool: pip install "
                          "'sentra-lang[postgres]' (or 'psycopg[binary]' 'psycopg-pool')"
                          ) from error
    return psycopg, psycopg_pool


class PostgresStore:
    """State and audit log in a PostgreSQL database, shared by any number of processes.

    ``url`` is a libpq connection URL (``postgresql://user:password@host:5432/db``). The schema
    is created on first use, checked (a newer one is refused) and upgraded when older
    (``upgrade=False`` refuses instead). ``pool_size`` connections at most per store;
    ``connect_timeout`` bounds opening one, ``wait_timeout`` waiting for a free one.
    """

    def __init__(self, url: str, *, synchronous: str = "NORMAL", group_commit: bool = False,
                 pool_size: int = DEFAULT_POOL_SIZE, connect_timeout: float = 5.0,
                 wait_timeout: float = 5.0, retry_wait: float = 0.05,
                 upgrade: bool = True) -> None:
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}")
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        psycopg, psycopg_pool = _driver()
        self.url = url
        self.synchronous = mode
        self.where = redacted(url)
        self._errors: tuple[type[BaseException], ...] = (psycopg.Error, psycopg_pool.PoolTimeout,
                                                         psycopg_pool.PoolClosed)
        self._wait_timeout = wait_timeout
        self._retry_wait = retry_wait
        self._down = threading.Event()
        """Set after a failure to reach the database, until a call succeeds again."""
        options = {"connect_timeout": max(1, round(connect_timeout)),
                   "application_name": "sentra"}
        try:
            with psycopg.connect(url, **options) as connection:
                prepare_schema(connection, self.where, upgrade=upgrade)
        except psycopg.OperationalError as error:
            raise StoreUnavailable(f"cannot connect to {self.where}: "
                                   f"{_first_line(error)}") from error
        self._pool = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=pool_size, kwargs=options, configure=self._configure,
            timeout=wait_timeout, name="sentra", open=False)
        self._pool.open(wait=True, timeout=connect_timeout)
        self._group = _GroupCommit(self._commit_batch) if group_commit else None
        self.commits = 0
        """How many decision transactions committed (fewer than decisions with group commit)."""

    @property
    def group_commit(self) -> bool:
        return self._group is not None

    def _configure(self, connection: Any) -> None:
        if self.synchronous == "NORMAL":
            connection.execute("SET synchronous_commit = off")
        connection.commit()

    # -- connections and faults -------------------------------------------------------------

    def _connection(self) -> _Borrowed:
        return _Borrowed(self)

    def _unavailable(self, error: BaseException) -> StoreUnavailable:
        self._down.set()
        return StoreUnavailable(f"the database at {self.where} is unavailable: "
                                f"{_first_line(error)}")

    # -- decisions ----------------------------------------------------------------------------

    def apply(self, decide: Decide, agent_id: str, action: str, fields: Any, code: int,
              payload: Any, *, annotations: audit.Annotations | None = None) -> Decision:
        pending = _Pending(decide, agent_id, action, fields, code, payload, annotations)
        if self._group is not None:
            return self._group.submit(pending)
        self._commit_batch([pending])
        return pending.outcome()

    def _commit_batch(self, batch: list[_Pending]) -> None:
        """Decide every pending decision of ``batch`` in one transaction, in order; record each
        one's decision or error on it."""
        try:
            with self._connection() as connection:
                self._decide_batch(connection, batch)
                self.commits += 1
        except BaseException as error:
            for pending in batch:
                pending.fail(error)
            if not isinstance(error, Exception):
                raise

    def _decide_batch(self, connection: Any, batch: list[_Pending]) -> None:
        batch = [pending for pending in batch if _storable(pending)]
        agents = sorted({pending.agent_id for pending in batch})
        with connection.pipeline():
            connection.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", GATE_LOCK)
            connection.execute(_LOCK_AGENTS, (AGENT_LOCKS, [_lock_key(a) for a in agents]))
            rows = connection.execute(_STATES, ([_key(agent) for agent in agents],)).fetchall()
            states: dict[str, RawState] = {
                bytes(row[0]).decode(): (row[1], row[2], row[3]) for row in rows}
            made = [entry for entry in (self._made(pending, states) for pending in batch)
                    if entry is not None]
            if not made:
                connection.rollback()
                return
            changed = {entry.pending.agent_id: entry.after for entry in made}
            connection.cursor().executemany(_UPSERT_STATE, [
                (_key(agent), *state) for agent, state in sorted(changed.items())])
            appended = connection.execute(_APPEND, _append_arguments(
                [entry.record for entry in made]))
            connection.commit()
        for entry, (seq, _) in zip(made, appended.fetchall()):
            pending = entry.pending
            decision, _ = pending.decide(entry.before, pending.agent_id, pending.action,
                                         pending.fields, pending.code, pending.payload, seq)
            pending.decided(decision)

    @staticmethod
    def _made(pending: _Pending, states: dict[str, RawState]) -> _Made | None:
        """Decide ``pending`` on its agent's state (``states`` follows the batch); a decision
        (or annotation) that raises fails it alone, before anything of it is written."""
        before = states.get(pending.agent_id, FRESH)
        try:
            decision, after = pending.decide(before, pending.agent_id, pending.action,
                                             pending.fields, pending.code, pending.payload, None)
            record = audit.decision_record(time.time(), decision)
            if pending.annotations is not None:
                record.update(audit.annotation(pending.annotations, decision))
        except Exception as error:
            pending.fail(error)
            return None
        states[pending.agent_id] = after
        return _Made(pending, before, after, record)

    # -- operators ----------------------------------------------------------------------------

    def reset(self, agent_id: str | None, operator: str, policy_hash: str | None) -> Reset:
        with self._connection() as connection, connection.pipeline():
            if agent_id is None:
                connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", GATE_LOCK)
                rows = connection.execute("SELECT agent_id FROM sentra_agents").fetchall()
                agents = [bytes(row[0]).decode() for row in rows]
                connection.execute("UPDATE sentra_agents SET cumulative_risk = 0, "
                                   "blocked_attempts = 0, shut_down = false")
            else:
                agents = [agent_id]
                connection.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", GATE_LOCK)
                connection.execute(_LOCK_AGENTS, (AGENT_LOCKS, [_lock_key(agent_id)]))
                connection.execute(_UPSERT_STATE, (_key(agent_id), *FRESH))
            record = audit.reset_record(time.time(), policy_hash, agent_id, operator, agents)
            appended = connection.execute(_APPEND, _append_arguments([record]))
            connection.commit()
        return Reset(sorted(agents), appended.fetchone()[0])

    def record_policy_load(self, policy: Policy) -> int:
        record = audit.policy_load_record(time.time(), policy.hash, policy.name,
                                          policy.version, policy.schema_version)
        with self._connection() as connection, connection.pipeline():
            appended = connection.execute(_APPEND, _append_arguments([record]))
            connection.commit()
        return int(appended.fetchone()[0])

    def save_policy_table(self, table: dict[str, Any]) -> None:
        """Keep a compiled table by its hash, for the processes sharing this database."""
        with self._connection() as connection:
            connection.execute("INSERT INTO sentra_policies (hash, body) VALUES (%s, %s) "
                               "ON CONFLICT (hash) DO NOTHING",
                               (table["hash"], canonical_json(table)))
            connection.commit()

    def policy_table(self, policy_hash: str) -> dict[str, Any] | None:
        """The compiled table with this hash, if a process saved it."""
        row = self._read_one("SELECT body FROM sentra_policies WHERE hash = %s", (policy_hash,))
        if row is None:
            return None
        table: dict[str, Any] = json.loads(row[0])
        return table

    # -- reads --------------------------------------------------------------------------------

    def _read(self, query: str, values: Iterable[Any] = ()) -> list[Any]:
        with self._connection() as connection:
            rows = connection.execute(query, tuple(values)).fetchall()
            connection.commit()
        return list(rows)

    def _read_one(self, query: str, values: Iterable[Any] = ()) -> Any:
        rows = self._read(query, values)
        return rows[0] if rows else None

    def state(self, agent_id: str) -> AgentState:
        row = self._read_one("SELECT cumulative_risk, blocked_attempts, shut_down FROM "
                             "sentra_agents WHERE agent_id = %s", (_key(agent_id),))
        return AgentState.from_raw(FRESH if row is None else (row[0], row[1], row[2]))

    def count_agents(self) -> tuple[int, int]:
        """How many agents are active and how many shut down."""
        row = self._read_one("SELECT count(*) FILTER (WHERE NOT shut_down), "
                             "count(*) FILTER (WHERE shut_down) FROM sentra_agents")
        return int(row[0]), int(row[1])

    def agents(self) -> list[str]:
        rows = self._read("SELECT agent_id FROM sentra_agents ORDER BY agent_id")
        return [bytes(row[0]).decode() for row in rows]

    def audit_records(self) -> Iterator[dict[str, Any]]:
        """Every record, in seq order, read in one snapshot as they are consumed."""
        with self._connection() as connection, _Snapshot(connection, self.where) as snapshot:
            snapshot.execute("SELECT seq, hash, body FROM sentra_audit ORDER BY seq")
            for row in snapshot:
                yield audit.stored_record(*row)

    def read_records(self, after_seq: int = 0, limit: int = 100, *, agent: str | None = None,
                     label: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        clauses, values = ["seq > %s"], [after_seq]
        for column, value in (("agent", None if agent is None else _key(agent)),
                              ("label", label), ("kind", kind)):
            if value is not None:
                clauses.append(f"{column} = %s")
                values.append(value)
        rows = self._read(f"SELECT seq, hash, body FROM sentra_audit WHERE "
                          f"{' AND '.join(clauses)} ORDER BY seq LIMIT %s", (*values, limit))
        return [audit.stored_record(*row) for row in rows]

    def last_seq(self) -> int:
        return int(self._read_one("SELECT seq FROM sentra_head WHERE id = 1")[0])

    def verify_audit(self, *, expected_head: str | None = None) -> VerifyResult:
        """The chain, its end against the stored head, and every agent's stored state against
        the log, in one snapshot."""
        with self._connection() as connection, _Snapshot(connection, self.where) as snapshot:
            return snapshot.verify(expected_head)

    def export_audit(self, out: IO[str]) -> int:
        """The log as JSON Lines, then the agents' states and the head (one snapshot)."""
        with self._connection() as connection, _Snapshot(connection, self.where) as snapshot:
            return snapshot.export(out)

    def close(self) -> None:
        self._pool.close()


@dataclass
class _Made:
    """A decision made in a batch, waiting for its transaction: its agent's state before and
    after it, and its audit record (without seq, prev and hash)."""

    pending: _Pending
    before: RawState
    after: RawState
    record: dict[str, Any]


class _Borrowed:
    """A pooled connection for one transaction; a failure to reach the database becomes
    :class:`StoreUnavailable`. After one, calls wait ``retry_wait`` for a connection rather
    than ``wait_timeout`` until one succeeds, so that an outage fails requests at once."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.context: Any = None

    def __enter__(self) -> Any:
        store = self.store
        wait = store._retry_wait if store._down.is_set() else store._wait_timeout
        self.context = store._pool.connection(timeout=wait)
        try:
            return self.context.__enter__()
        except store._errors as error:
            raise store._unavailable(error) from error

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> bool:
        store = self.store
        try:
            self.context.__exit__(kind, error, traceback)
        except store._errors as problem:
            if error is None:
                raise store._unavailable(problem) from problem
        if error is None:
            store._down.clear()
            return False
        if isinstance(error, store._errors):
            raise store._unavailable(error) from error
        return False


class _Snapshot:
    """Queries in one read-only, repeatable-read transaction (one snapshot of the database),
    through server-side cursors, so a large log streams rather than loads. A schema newer than
    this runtime's is refused; an older one is read as it is."""

    def __init__(self, connection: Any, where: str) -> None:
        self.connection = connection
        self.where = where
        self.cursor: Any = None
        self.count = 0

    def __enter__(self) -> _Snapshot:
        self.connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        found = schema_version(self.connection)
        if found == 0:
            raise SchemaError(f"{self.where} holds no sentra store (no sentra_meta table)")
        checked_version(found, self.where, upgrade=True)
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if self.connection.closed:
            return
        if self.cursor is not None:
            self.cursor.close()
        self.connection.rollback()   # read only: nothing to keep

    def execute(self, query: str) -> None:
        """Run ``query``; iterate to read its rows (the previous query's cursor is closed)."""
        if self.cursor is not None:
            self.cursor.close()
        self.count += 1
        self.cursor = self.connection.cursor(name=f"sentra_snapshot_{self.count}")
        self.cursor.itersize = 2000
        self.cursor.execute(query)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.cursor)

    def head(self) -> audit.Head:
        self.execute("SELECT seq, hash FROM sentra_head WHERE id = 1")
        row = self.cursor.fetchone()
        return (-1, None) if row is None else (int(row[0]), row[1])

    def states(self) -> Iterator[tuple[str, RawState]]:
        self.execute("SELECT agent_id, cumulative_risk, blocked_attempts, shut_down FROM "
                     "sentra_agents ORDER BY agent_id")
        for agent, risk, blocked, down in self:
            yield bytes(agent).decode(), (risk, blocked, down)

    def verify(self, expected_head: str | None) -> VerifyResult:
        head = self.head()
        verifier = audit.LogVerifier()
        self.execute("SELECT seq, hash, body FROM sentra_audit ORDER BY seq")
        for seq, digest, text in self:
            if not verifier.add(audit.stored_record(seq, digest, text), text):
                break
        return verifier.result(head=head, expected_head=expected_head, states=self.states())

    def export(self, out: IO[str]) -> int:
        head = self.head()
        self.execute("SELECT seq, hash, body FROM sentra_audit ORDER BY seq")
        records = (audit.stored_record(*row) for row in self)
        return audit.write_export(records, self.states(), head, out)


def verify_database(url: str, *, expected_head: str | None = None) -> VerifyResult:
    """Verify the store in a PostgreSQL database, reading only (``sentra-lang audit verify``):
    the chain, its end against the stored head, every agent's state against the log."""
    with _connect(url) as connection, _Snapshot(connection, redacted(url)) as snapshot:
        return snapshot.verify(expected_head)


def export_database(url: str, out: IO[str]) -> int:
    """Export the store in a PostgreSQL database as JSON Lines, reading only."""
    with _connect(url) as connection, _Snapshot(connection, redacted(url)) as snapshot:
        return snapshot.export(out)


def database_schema_version(url: str) -> int:
    """The store schema version of a database (0: no store yet)."""
    with _connect(url) as connection:
        return schema_version(connection)


def upgrade_database(url: str) -> tuple[int, int]:
    """Create or upgrade the store schema of a database; ``(before, after)`` versions."""
    with _connect(url) as connection:
        before = schema_version(connection)
        connection.rollback()
        prepare_schema(connection, redacted(url), upgrade=True)
        return before, SCHEMA_VERSION


def _connect(url: str, timeout: float = 10.0) -> Any:
    """One connection of its own (no pool), for a command that reads once."""
    psycopg, _ = _driver()
    try:
        return psycopg.connect(url, connect_timeout=max(1, round(timeout)),
                               application_name="sentra")
    except psycopg.OperationalError as error:
        raise StoreUnavailable(f"cannot connect to {redacted(url)}: "
                               f"{_first_line(error)}") from error


def prepare_schema(connection: Any, where: str, *, upgrade: bool) -> None:
    """Create the schema in a database without one; check an existing one's version (and
    upgrade an older one, when there are upgrades to make). One transaction, serialised
    between processes by an advisory lock."""
    encoding = connection.execute("SHOW server_encoding").fetchone()[0]
    if encoding.upper() not in ("UTF8", "UTF-8"):
        raise SchemaError(f"{where} has the encoding {encoding}; the store needs UTF8 "
                          "(CREATE DATABASE ... ENCODING 'UTF8')")
    connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", SCHEMA_LOCK)
    found = schema_version(connection)
    if found == 0:
        for statement in SCHEMA:
            connection.execute(statement)
        connection.execute("INSERT INTO sentra_meta (key, value) VALUES ('schema_version', %s)",
                           (str(SCHEMA_VERSION),))
    else:
        checked_version(found, where, upgrade=upgrade)
    connection.commit()


def schema_version(connection: Any) -> int:
    """The database's store schema version (0: no store yet)."""
    exists = connection.execute("SELECT to_regclass('sentra_meta') IS NOT NULL, "
                                "to_regclass('sentra_audit') IS NOT NULL").fetchone()
    if not exists[0]:
        if exists[1]:
            raise SchemaError("the database has a sentra_audit table but no sentra_meta: not a "
                              "store this runtime knows")
        return 0
    row = connection.execute("SELECT value FROM sentra_meta WHERE key = 'schema_version'"
                             ).fetchone()
    if row is None or not str(row[0]).isdigit():
        raise SchemaError("the database's sentra_meta table records no schema version")
    return int(row[0])


def _append_arguments(records: list[dict[str, Any]]) -> tuple[list[Any], ...]:
    """The arrays ``sentra_append`` takes: each record's kind, agent, label and body parts."""
    kinds, agents, labels, befores, betweens, afters = [], [], [], [], [], []
    for record in records:
        kinds.append(record["kind"])
        agent = record.get("agent")
        agents.append(None if agent is None else _key(agent))
        decision = record.get("decision")
        labels.append(decision.get("label") if isinstance(decision, dict) else None)
        before, between, after = audit.seal_parts(record)
        befores.append(before)
        betweens.append(between)
        afters.append(after)
    return kinds, agents, labels, befores, betweens, afters


def _key(agent_id: str) -> bytes:
    """An agent id as the database keeps it: its UTF-8 bytes (any text, NUL included; ordered
    by code point, as Python orders strings)."""
    return agent_id.encode("utf-8")


def _lock_key(agent_id: str) -> int:
    """The agent's advisory lock key: a signed 32-bit hash of its id (two ids that share one
    only wait for each other)."""
    key = zlib.crc32(_key(agent_id))
    return key - (1 << 32) if key >= 1 << 31 else key


def _storable(pending: _Pending) -> bool:
    """Whether the pending decision's agent id can be stored (text that is UTF-8); if not, it
    fails alone."""
    try:
        _key(pending.agent_id)
    except UnicodeEncodeError as error:
        pending.fail(error)
        return False
    return True


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


__all__ = ["PostgresStore", "redacted"]
