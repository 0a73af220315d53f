"""The PostgreSQL store: agent state and audit log in one database, shared by any number of
processes on any number of machines.

The semantics are the SQLite store's (``sentra_runtime.stores.sqlite``): every decision is one
transaction (or, with ``group_commit=True``, every batch of decisions that arrived together)
that locks the agent, reads its state, decides, writes the state and appends the hash-chained
audit record; the decision is returned only after the transaction commits. Resets and policy
loads are records of the same chain.

How a decision runs, and why (two round trips to the database, one statement each, on a
connection in autocommit mode):

1. ``sentra_lock(ids, keys)`` locks the agents and reads their states: an advisory lock on
   each agent's id, in key order (it also covers an agent that has no row yet, so two first
   decisions of a new agent serialise), after a shared lock on the gate, which a reset of every
   agent takes exclusively. The locks are the session's, so they outlast this statement; the
   states are read after they are held.
2. Decide in Python, then ``sentra_append(...)``: one transaction that turns the session's locks
   into locks of this transaction (held until it commits, then gone), writes the agents' new
   states, locks the head row (the seq and hash of the last record), chains the records
   (``sha256`` over the canonical JSON the runtime split around ``prev`` and ``seq``,
   :func:`sentra_runtime.audit.seal_parts`), inserts them and moves the head. So the lock every
   writer shares (the head's) is held only while the database appends and commits, never while
   a client decides or the network carries an answer: decisions of different agents, from any
   instance, overlap everywhere else. A failure in between releases the session's locks (or
   closes the connection, which releases them).

Both are functions of the session (:data:`SESSION_FUNCTIONS`), called through prepared
statements that libpq runs itself (:func:`_run`). On an event loop, the decisions that queued
while a batch was under way are the next batch, whose ``sentra_lock`` goes in one round trip
with the batch's ``sentra_append`` (:meth:`PostgresStore._commit_batch`, :func:`_pipeline`).

The seq of a record is known only once it is appended, so the store decides twice: once to
build the record (an annotation function sees ``decision.seq`` as ``None`` here), and once
more, with the seq, for the decision it returns (the decider is a pure function: the same
decision). Records become visible in seq order (the head's lock is held until commit).

Durability: ``synchronous="NORMAL"`` (the default) commits with PostgreSQL's
``synchronous_commit = off``: an acknowledged decision survives the death of the process that
made it (it is committed in the database), and a crash of the database server or its machine
can lose the last fraction of a second of commits (three times ``wal_writer_delay``, 0.6 s by
default), never corrupt anything, and never a later decision without an earlier one.
``synchronous="FULL"`` (the server's) commits with the database's own setting (``on`` by
default): nothing acknowledged is lost even then, at one WAL flush per transaction, which holds
the head's lock.

When the database cannot be reached, every call raises
:class:`~sentra_runtime.stores.schema.StoreUnavailable` at once (after the first failure, calls
wait at most ``retry_wait`` seconds for a connection instead of ``wait_timeout``), and the pool
reconnects in the background: the store recovers when the database is back, without a restart.
A database that stops answering without closing the connection fails a call (a decision or a
read; a long read, as a verification, per batch of rows) after ``answer_timeout`` seconds
(:class:`_Answer`).

psycopg 3 and psycopg-pool are imported when a store is made: ``sentra_runtime`` itself stays
standard library only (``pip install 'sentra-lang[postgres]'`` installs both).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import select
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from sentra_runtime import audit, review
from sentra_runtime.audit import VerifyResult
from sentra_runtime.decision import Decision
from sentra_runtime.policy import Policy, canonical_json
from sentra_runtime.stores import FRESH, AgentState, Decide, RawState, Reset
from sentra_runtime.stores.group_commit import (
    MAX_BATCH,
    SYNCHRONOUS_MODES,
    BatchedStore,
    GroupCommit,
    LoopCommit,
    LoopCommits,
    Pending,
    fail_batch,
)
from sentra_runtime.stores.schema import (
    SCHEMA_VERSION,
    SchemaError,
    StoreUnavailable,
    checked_version,
    saved_table,
    stored_state,
    windows_text,
)

AGENT_LOCKS = 1936027252
"""The advisory lock class of the agents: ``pg_advisory_xact_lock(AGENT_LOCKS, key)``, the key
the first 32 bits of the MD5 of the agent's id."""
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
)
"""The tables of schema version 2, the first of this store."""
UPGRADE_TO_3 = (
    "ALTER TABLE sentra_agents ADD COLUMN decay_anchor bigint",
    "DROP FUNCTION IF EXISTS sentra_begin(text, boolean)",
)
"""Version 2 to 3: each agent's risk-decay anchor (whole microseconds since the epoch; NULL
when it has none); ``sentra_begin`` returns it (so it is made again, by :data:`FUNCTIONS`)."""
UPGRADE_TO_4_LIMITS = (
    "ALTER TABLE sentra_agents ADD COLUMN limit_windows text",
    "DROP FUNCTION IF EXISTS sentra_begin(text, boolean)",
)
"""Version 3 to 4, rate limits: each agent's limit windows (JSON; NULL when it has none);
``sentra_begin`` returns them."""
UPGRADE_TO_4_GROUPS = (
    "ALTER TABLE sentra_agents ADD COLUMN assigned_group text",
    "DROP FUNCTION IF EXISTS sentra_begin(text, boolean)",
)
"""Version 3 to 4, operator-assigned groups: the group an operator assigned the agent to (NULL
for none); ``sentra_begin`` returns it."""
UPGRADE_TO_4_TICKETS = (
    # review tickets: one row per ticket, the ticket itself as JSON (sentra_runtime.review);
    # written by sentra_records with the record of the ticket's step
    "CREATE TABLE sentra_tickets (ticket text PRIMARY KEY, agent bytea NOT NULL, "
    "status text NOT NULL, created bigint NOT NULL, expires bigint NOT NULL, "
    "seq bigint, body text NOT NULL)",
    "CREATE INDEX sentra_tickets_by_status ON sentra_tickets (status, agent, created)",
)
"""Version 3 to 4, review tickets (times in whole microseconds since the epoch; ``seq``: the
review decision's record)."""
UPGRADE_TO_4 = (*UPGRADE_TO_4_LIMITS, *UPGRADE_TO_4_GROUPS, *UPGRADE_TO_4_TICKETS)
"""Version 3 to 4."""
UPGRADES = {2: (*UPGRADE_TO_3, *UPGRADE_TO_4), 3: UPGRADE_TO_4}
"""The statements that upgrade a store of each older version (then :data:`FUNCTIONS`)."""


def _gate_sql(keys: str) -> str:
    """The second step's locks (PL/pgSQL, shared by :data:`FUNCTIONS` and
    :data:`SESSION_FUNCTIONS`): the session's locks that the first step took (the gate: shared,
    or exclusive for a reset of every agent; the agents' ``keys``, an SQL set of lock keys)
    become this transaction's, held until commit; a reset of every agent clears every state."""
    return f"""    -- the session's locks (the first step's) become this transaction's: held until commit
    IF gate = 'every' THEN
        PERFORM pg_advisory_xact_lock({GATE_LOCK[0]}, {GATE_LOCK[1]});
        PERFORM pg_advisory_unlock({GATE_LOCK[0]}, {GATE_LOCK[1]});
        UPDATE sentra_agents SET cumulative_risk = 0, blocked_attempts = 0, shut_down = false,
            decay_anchor = NULL, limit_windows = NULL;
    ELSIF gate = 'shared' THEN
        PERFORM pg_advisory_xact_lock_shared({GATE_LOCK[0]}, {GATE_LOCK[1]});
        PERFORM pg_advisory_unlock_shared({GATE_LOCK[0]}, {GATE_LOCK[1]});
        PERFORM pg_advisory_xact_lock({AGENT_LOCKS}, key), pg_advisory_unlock({AGENT_LOCKS}, key)
            FROM {keys} AS key;
    END IF;"""


def _chain_sql(function: str, json: str, ticket: int) -> str:
    """The hash chain's append (PL/pgSQL, shared by :data:`FUNCTIONS` and
    :data:`SESSION_FUNCTIONS`, in ``function`` whose result columns are ``seq``, ``hash`` and
    ``prev``): each of the ``records`` (a ``json`` or ``jsonb`` array: kind, agent (hex),
    label, the body before ``prev``, between ``prev`` and ``seq``, after ``seq``; the review
    ticket at index ``ticket``) gets the next seq and its body's sha256 chained to the head's,
    with its ticket's row; then the head moves. The same chain as :func:`audit.seal_text`."""
    return f"""    SELECT h.seq, h.hash INTO STRICT seq, hash FROM sentra_head h WHERE h.id = 1 FOR UPDATE;
    FOR record IN SELECT r->>0 AS kind, decode(r->>1, 'hex') AS agent, r->>2 AS label,
                         r->>3 AS before_prev, r->>4 AS before_seq, r->>5 AS after_seq,
                         r->{ticket} AS ticket
                  FROM {json}_array_elements(records::{json}) AS r LOOP
        prev := hash;
        seq := seq + 1;
        body := record.before_prev || COALESCE('"' || prev || '"', 'null') || record.before_seq
                || seq::text || record.after_seq;
        hash := 'sha256:' || encode(sha256(convert_to(body, 'UTF8')), 'hex');
        INSERT INTO sentra_audit (seq, hash, body, kind, agent, label)
            VALUES (seq, hash, body, record.kind, record.agent, record.label);
        -- a review ticket made (its seq: this record's) or settled by this record
        IF {json}_typeof(record.ticket) = 'object' THEN
            INSERT INTO sentra_tickets AS t (ticket, agent, status, created, expires, seq, body)
                VALUES (record.ticket->>'ticket', record.agent, record.ticket->>'status',
                        (record.ticket->>'created')::bigint,
                        (record.ticket->>'expires')::bigint, seq, record.ticket->>'body')
                ON CONFLICT (ticket) DO UPDATE SET status = excluded.status,
                    body = excluded.body;
        END IF;
        RETURN NEXT;
    END LOOP;
    UPDATE sentra_head h SET seq = {function}.seq, hash = {function}.hash WHERE h.id = 1;"""


FUNCTIONS = (
    f"""CREATE OR REPLACE FUNCTION sentra_begin(agents text, every boolean)
    RETURNS TABLE (agent_id bytea, cumulative_risk bigint, blocked_attempts bigint,
                   shut_down boolean, decay_anchor bigint, limit_windows text,
                   assigned_group text)
    LANGUAGE plpgsql AS $$
DECLARE
    ids bytea[] := sentra_ids(agents);
BEGIN
    IF every THEN
        PERFORM pg_advisory_lock({GATE_LOCK[0]}, {GATE_LOCK[1]});
    ELSE
        PERFORM pg_advisory_lock_shared({GATE_LOCK[0]}, {GATE_LOCK[1]});
        PERFORM pg_advisory_lock({AGENT_LOCKS}, key) FROM sentra_keys(ids) AS key;
    END IF;
    -- a statement of its own: its snapshot is taken with the locks held
    RETURN QUERY SELECT a.agent_id, a.cumulative_risk, a.blocked_attempts, a.shut_down,
        a.decay_anchor, a.limit_windows, a.assigned_group FROM sentra_agents a
        WHERE every OR a.agent_id = ANY(ids);
END
$$""",
    """CREATE OR REPLACE FUNCTION sentra_ids(agents text) RETURNS bytea[]
    LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(decode(id, 'hex')), '{}') FROM json_array_elements_text(
        agents::json) AS id
$$""",
    """CREATE OR REPLACE FUNCTION sentra_keys(ids bytea[]) RETURNS SETOF integer
    LANGUAGE sql IMMUTABLE AS $$
    SELECT DISTINCT ('x' || left(md5(id), 8))::bit(32)::integer FROM unnest(ids) AS id
    ORDER BY 1   -- every process locks in this order: no deadlock
$$""",
    f"""CREATE OR REPLACE FUNCTION sentra_records(gate text, locked text, records text)
    RETURNS TABLE (seq bigint, hash text, prev text)
    LANGUAGE plpgsql AS $$
DECLARE
    record record;
    body text;
BEGIN
{_gate_sql("sentra_keys(sentra_ids(locked))")}
    -- records: [kind, agent (hex), label, before prev, before seq, after seq, state or null]
    INSERT INTO sentra_agents AS a (agent_id, cumulative_risk, blocked_attempts, shut_down,
                                    decay_anchor, limit_windows)
        SELECT DISTINCT ON (agent) decode(agent, 'hex'), (state->>0)::bigint,
               (state->>1)::bigint, (state->>2)::boolean, (state->>3)::bigint, state->>4
        FROM (SELECT r->>1 AS agent, r->6 AS state, position
              FROM json_array_elements(records::json) WITH ORDINALITY AS e(r, position)) AS s
        WHERE json_typeof(state) = 'array'
        ORDER BY agent, position DESC   -- each agent's last state
        ON CONFLICT (agent_id) DO UPDATE SET cumulative_risk = excluded.cumulative_risk,
            blocked_attempts = excluded.blocked_attempts, shut_down = excluded.shut_down,
            decay_anchor = excluded.decay_anchor, limit_windows = excluded.limit_windows;
{_chain_sql("sentra_records", "json", 7)}
END
$$""",
)
"""The functions of the current schema (``CREATE OR REPLACE``: made at creation and at every
upgrade). This runtime calls :data:`SESSION_FUNCTIONS` instead; these stay for the processes of
older runtimes of the same schema version on the database (a rolling upgrade), whose locks are
the same advisory locks (:func:`_lock_key` computes the keys ``sentra_keys`` does)."""

SESSION_FUNCTIONS = (
    f"""CREATE FUNCTION pg_temp.sentra_lock(ids bytea[], keys integer[], every boolean)
    RETURNS TABLE (agent_id text, cumulative_risk bigint, blocked_attempts bigint,
                   shut_down boolean, decay_anchor bigint, limit_windows text,
                   assigned_group text)
    LANGUAGE plpgsql AS $$
BEGIN
    IF every THEN
        PERFORM pg_advisory_lock({GATE_LOCK[0]}, {GATE_LOCK[1]});
        -- a statement of its own: its snapshot is taken with the locks held
        RETURN QUERY SELECT encode(a.agent_id, 'hex'), a.cumulative_risk, a.blocked_attempts,
            a.shut_down, a.decay_anchor, a.limit_windows, a.assigned_group FROM sentra_agents a;
    ELSE
        PERFORM pg_advisory_lock_shared({GATE_LOCK[0]}, {GATE_LOCK[1]});
        PERFORM pg_advisory_lock({AGENT_LOCKS}, key) FROM unnest(keys) AS key;   -- in order
        RETURN QUERY SELECT encode(a.agent_id, 'hex'), a.cumulative_risk, a.blocked_attempts,
            a.shut_down, a.decay_anchor, a.limit_windows, a.assigned_group FROM sentra_agents a
            WHERE a.agent_id = ANY(ids);
    END IF;
END
$$""",
    f"""CREATE FUNCTION pg_temp.sentra_append(gate text, keys integer[], states text,
                                         records text)
    RETURNS TABLE (seq bigint, hash text, prev text)
    LANGUAGE plpgsql AS $$
DECLARE
    record record;
    body text;
BEGIN
{_gate_sql("unnest(keys)")}
    -- states: [[agent (hex), risk, blocked attempts, shut down, decay anchor, windows], ...]
    IF states IS NOT NULL THEN
        INSERT INTO sentra_agents AS a (agent_id, cumulative_risk, blocked_attempts, shut_down,
                                        decay_anchor, limit_windows)
            SELECT decode(s->>0, 'hex'), (s->>1)::bigint, (s->>2)::bigint, (s->>3)::boolean,
                   (s->>4)::bigint, s->>5
            FROM jsonb_array_elements(states::jsonb) AS s
            ON CONFLICT (agent_id) DO UPDATE SET cumulative_risk = excluded.cumulative_risk,
                blocked_attempts = excluded.blocked_attempts, shut_down = excluded.shut_down,
                decay_anchor = excluded.decay_anchor, limit_windows = excluded.limit_windows;
    END IF;
{_chain_sql("sentra_append", "jsonb", 6)}
END
$$""",
)
"""The functions a decision, reset, review step, group assignment and policy load call: each
connection defines them for its own session (``pg_temp``), so they are always this runtime's and
change with no schema upgrade. ``sentra_lock`` is step 1 above: it takes the gate and the
agents' locks (``keys`` sorted, :func:`_lock_key`) and reads the states; ``sentra_append`` is
step 2: it turns the session's locks into the transaction's, writes the agents' new ``states``
(each agent's last state of the batch, JSON) and appends the ``records`` (JSON) to the chain;
both are read as ``jsonb``, parsed once (a ``json`` value is parsed again by every ``->>``,
and each record holds its body three times).
Both are called as prepared statements (:data:`STATEMENTS`) with their ids and keys given: the
only work the database does per call is the locks, the rows and the records."""
STATEMENTS = (
    "PREPARE sentra_lock (bytea[], integer[], boolean) AS "
    "SELECT * FROM pg_temp.sentra_lock($1, $2, $3)",
    "PREPARE sentra_append (text, integer[], text, text) AS "
    "SELECT * FROM pg_temp.sentra_append($1, $2, $3, $4)",
)
"""The two statements of every decision, prepared once per connection and run through libpq
itself (:func:`_run`)."""
_ASSIGN_GROUP = (
    "INSERT INTO sentra_agents (agent_id, cumulative_risk, blocked_attempts, shut_down, "
    "assigned_group) VALUES (%s, 0, 0, false, %s) ON CONFLICT (agent_id) DO UPDATE SET "
    "assigned_group = excluded.assigned_group")
WRITTEN_KEPT = 4096
"""How many of the records it wrote a store keeps, so that reading one back (the server does,
after each decision) costs no round trip."""
DEFAULT_POOL_SIZE = 10
LOCK_SECONDS = 5.0
"""How long a call waits for an agent's lock or the log's head by default (``lock_timeout``)."""
ANSWER_SECONDS = 15.0
"""How long a call waits for each answer of the database by default (``answer_timeout``)."""
ONE_SHOT_ANSWER_SECONDS = 60.0
"""How long a command that reads once (``audit verify``, ``db status``) waits for each answer
of the database (each batch of rows: a long read is not bounded as a whole), and what it sent
may go unacknowledged, before its connection is given up (:class:`_Answer`,
:func:`_client_keepalives`)."""
RECONNECT_SECONDS = 2.0
"""How long the pool keeps retrying one connection (waiting 1 s, then 2 s, ...) before it starts
over with the next call: short, so that the store is back within about two seconds of the
database however long the outage was (the pool's backoff alone grows to minutes)."""


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def _client_keepalives(answer_timeout: float) -> dict[str, int]:
    """libpq's options that make the client find a connection whose database machine died or
    whose network was cut (no reset ever arrives): TCP keepalives while it waits for an
    answer (about 25 s), and at most ``answer_timeout`` for what it sent to be acknowledged.
    For every statement; a database process that froze on a live machine is found by the
    deadline of each answer only (:class:`_Answer`)."""
    return {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
            "keepalives_count": 3, "tcp_user_timeout": max(1, round(answer_timeout * 1000))}


def _bounded(psycopg: Any, answer_timeout: float, store: PostgresStore | None = None
             ) -> Any:
    """The class of every connection the store opens: psycopg's, each wait for the database's
    answer bounded by ``answer_timeout`` (:class:`_Answer`, the decisions' own rule: a read
    that gets no answer fails instead of hanging); for a ``store``'s pool, it also notes on the
    store why an attempt to open one failed (``too many connections for role ...``, the server
    starting up, ...), which the pool itself only logs."""

    class Bounded(psycopg.Connection):  # type: ignore[misc]
        @classmethod
        def connect(cls, *arguments: Any, **options: Any) -> Any:
            try:
                return super().connect(*arguments, **options)
            except psycopg.Error as error:
                if store is not None:
                    store._refused(error)
                raise

        def wait(self, operation: Any, *_: Any, **__: Any) -> Any:
            return _Answer(self, answer_timeout).consume(operation)

    return Bounded


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


class PostgresStore(BatchedStore):
    """State and audit log in a PostgreSQL database, shared by any number of processes.

    ``url`` is a libpq connection URL (``postgresql://user:password@host:5432/db``). The schema
    is created on first use, checked (a newer one is refused) and upgraded when older
    (``upgrade=False`` refuses instead). ``pool_size`` connections at most per store;
    ``connect_timeout`` bounds opening one, ``wait_timeout`` waiting for a free one,
    ``lock_timeout`` waiting for an agent or the log's head (then the call raises
    :class:`StoreUnavailable`).
    """

    def __init__(self, url: str, *, synchronous: str = "NORMAL", group_commit: bool = False,
                 pool_size: int = DEFAULT_POOL_SIZE, connect_timeout: float = 5.0,
                 wait_timeout: float = 5.0, retry_wait: float = 0.05,
                 lock_timeout: float = LOCK_SECONDS, answer_timeout: float = ANSWER_SECONDS,
                 upgrade: bool = True) -> None:
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}")
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        if answer_timeout <= lock_timeout:
            raise ValueError("answer_timeout must be longer than lock_timeout (a statement "
                             "may wait that long for a lock)")
        psycopg, psycopg_pool = _driver()
        self.url = url
        self.synchronous = mode
        self.where = redacted(url)
        self._errors: tuple[type[BaseException], ...] = (psycopg.Error, psycopg_pool.PoolTimeout,
                                                         psycopg_pool.PoolClosed)
        self._pool_timeout: type[BaseException] = psycopg_pool.PoolTimeout
        self._wait_timeout = wait_timeout
        self._retry_wait = retry_wait
        self._lock_timeout_ms = max(1, round(lock_timeout * 1000))
        self._answer_timeout = answer_timeout
        self._down = threading.Event()
        """Set after a failure to reach the database, until a call succeeds again."""
        self._refusal: str | None = None
        """Why the pool's last attempt to open a connection failed (the database's reason;
        ``None`` once one opened): what a call that found no connection reports."""
        options = {"connect_timeout": max(1, round(connect_timeout)),
                   "application_name": "sentra", **_client_keepalives(answer_timeout)}
        try:
            with _bounded(psycopg, answer_timeout).connect(url, autocommit=True,
                                                           **options) as connection:
                prepare_schema(connection, self.where, upgrade=upgrade)
                self._configure(connection)   # what every pooled connection does, once here
        except psycopg.errors.InsufficientPrivilege as error:
            raise SchemaError(f"{self.where}: the role may not create the store's session "
                              f"functions ({_first_line(error)}): it needs the TEMPORARY "
                              "privilege on the database (GRANT TEMPORARY ON DATABASE ... TO "
                              "...)") from error
        except psycopg.OperationalError as error:
            raise StoreUnavailable(f"cannot connect to {self.where}: "
                                   f"{_first_line(error)}") from error
        except psycopg.Error as error:   # refused: read-only, a statement timeout, ...
            raise StoreUnavailable(f"cannot use {self.where}: {_first_line(error)}") from error
        self._pool = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=pool_size, kwargs=options, configure=self._opened,
            connection_class=_bounded(psycopg, answer_timeout, self), timeout=wait_timeout,
            name="sentra", open=False, reconnect_timeout=RECONNECT_SECONDS)
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except self._errors as error:   # the database went away since the first connection
            self._pool.close()
            raise StoreUnavailable(f"cannot connect to {self.where}: "
                                   f"{_first_line(error)}") from error
        self._group = GroupCommit(self._commit_batch) if group_commit else None
        self._loop_commits = LoopCommits(
            f"postgres-commit {self.where}",
            lambda batch, committer: functools.partial(self._commit_batch, batch, committer),
            MAX_BATCH if group_commit else 1, follow=True)
        self._written: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._written_lock = threading.Lock()
        self.commits = 0
        """How many decision transactions committed (fewer than decisions with group commit)."""

    def _opened(self, connection: Any) -> None:
        """A connection the pool opened: configured, or its refusal noted."""
        try:
            self._configure(connection)
        except Exception as error:
            self._refused(error)
            raise
        self._refusal = None

    def _refused(self, error: BaseException) -> None:
        """An attempt to open a connection failed (the pool tries again by itself)."""
        self._refusal = _first_line(error)

    def _configure(self, connection: Any) -> None:
        """Each pooled connection: autocommit (every statement its own transaction, see
        above); a bounded wait for any lock (an agent held by a process that went silent makes
        the call fail, not hang); server-side TCP keepalives, so that the locks of a client
        whose machine died are released within about 25 s; the session's functions and
        statements (:data:`SESSION_FUNCTIONS`, :data:`STATEMENTS`). psycopg prepares nothing
        of its own here: it would deallocate every prepared statement, the store's too, after
        a rollback."""
        connection.autocommit = True
        connection.prepare_threshold = None
        connection.execute(f"SET lock_timeout = {self._lock_timeout_ms}")
        for setting, value in (("tcp_keepalives_idle", 10), ("tcp_keepalives_interval", 5),
                               ("tcp_keepalives_count", 3)):
            connection.execute(f"SET {setting} = {value}")
        if self.synchronous == "NORMAL":
            connection.execute("SET synchronous_commit = off")
        for statement in (*SESSION_FUNCTIONS, *STATEMENTS):
            connection.execute(statement)

    # -- connections and faults -------------------------------------------------------------

    def _connection(self) -> _Borrowed:
        return _Borrowed(self)

    def _unavailable(self, error: BaseException) -> StoreUnavailable:
        self._down.set()
        reason = _first_line(error)
        refusal = self._refusal
        if refusal is not None and isinstance(error, self._errors[1:]):   # no connection
            reason = f"{reason}; the last attempt to connect: {refusal}"
        return StoreUnavailable(f"the database at {self.where} is unavailable: {reason}")

    # -- decisions ----------------------------------------------------------------------------

    async def apply_async(self, decide: Decide, agent_id: str, action: str, fields: Any,
                          code: int, payload: Any, now: float | None = None, *,
                          annotations: audit.Annotations | None = None) -> Decision:
        """:meth:`apply` for a caller on an asyncio event loop, which it never blocks on the
        database: decisions queue on the loop, and while no transaction is under way the queue
        (one decision without group commit) is decided and committed in one transaction in the
        store's commit thread (:class:`~sentra_runtime.stores.group_commit.LoopCommit`), which
        goes on with the decisions that queued meanwhile (see :meth:`_commit_batch`). The
        decision is returned after its commit."""
        pending = Pending.of(decide, agent_id, action, fields, code, payload, now, annotations)
        return await self._loop_commits.for_running_loop().submit(pending)

    def _commit_batch(self, batch: list[Pending], committer: LoopCommit | None = None) -> None:
        """Decide every pending decision of ``batch`` in one transaction, in order; record each
        one's decision or error on it: lock and read (``sentra_lock``), decide, record
        (``sentra_append``), two round trips, the records and states committed before anything
        is returned.

        With the ``committer`` of an event loop, the decisions that queued meanwhile are the
        next batch, and its ``sentra_lock`` goes with this batch's ``sentra_append`` (libpq's
        pipeline: two statements, each its own transaction, in one round trip): one round trip
        per batch while decisions keep coming. Each batch is answered once committed; a failure
        fails the batches not committed yet (and closes their locks' session)."""
        waiting = [batch]   # the batches not answered yet
        timeout = self._answer_timeout
        try:
            with self._connection() as connection:
                locked: tuple[str, dict[str, RawState]] | None = None
                while waiting:
                    batch = [pending for pending in waiting[0] if _storable(pending)]
                    keys, states = locked or _lock(connection, {
                        pending.agent_id for pending in batch}, timeout=timeout)
                    stored = dict(states)
                    made = [entry for entry in (self._made(pending, states) for pending in batch)
                            if entry is not None]
                    following = [] if committer is None else committer.more()
                    if following:
                        waiting.append(following)
                    locked, failed = None, None
                    if not made:
                        _release(connection)
                    else:
                        changed = {agent: state for agent, state in states.items()
                                   if agent not in stored or stored[agent] != state}
                        append = _append_values("shared", keys, changed, [
                            (entry.record, entry.ticket) for entry in made])
                        if following:
                            next_keys, lock = _lock_values(
                                {pending.agent_id for pending in following})
                            rows, next_rows = _pipeline(connection, timeout,
                                                        (b"sentra_append", append),
                                                        (b"sentra_lock", lock))
                            if isinstance(next_rows, BaseException):
                                failed = next_rows   # after this batch is answered
                            else:
                                locked = next_keys, _states(next_rows)
                            rows = _raising(rows)
                        else:
                            rows = _run(connection, b"sentra_append", append, timeout)
                        self._decided(made, _appended(rows))
                        self.commits += 1
                    waiting.pop(0)
                    if committer is not None:
                        committer.answered()
                    if failed is not None:
                        raise failed
        except BaseException as error:
            fail_batch([pending for batch in waiting for pending in batch], error)

    def _decided(self, made: list[_Made], appended: list[tuple[int, str, str | None]]) -> None:
        """The decisions of a batch, once their records are appended (with their seqs)."""
        for entry, (seq, digest, prev) in zip(made, appended):
            self._remember(entry.record, seq, prev, digest)
            pending = entry.pending
            decision, _ = pending.decide(entry.before, pending.agent_id, pending.action,
                                         pending.fields, pending.code, pending.payload, seq,
                                         pending.now)
            if entry.ticket is not None:   # the ticket recorded, not a second one
                decision.__dict__["ticket"] = entry.ticket.ticket
                decision.__dict__["expires_at"] = entry.ticket.expires / 1_000_000
            pending.decided(decision)

    def _remember(self, record: dict[str, Any], seq: int, prev: str | None, digest: str
                  ) -> None:
        """Keep a record this store wrote, sealed, for reading it back without a query."""
        record.update(seq=seq, prev=prev, hash=digest)
        with self._written_lock:
            self._written[seq] = record
            if len(self._written) > WRITTEN_KEPT:
                self._written.popitem(last=False)

    @staticmethod
    def _made(pending: Pending, states: dict[str, RawState]) -> _Made | None:
        """Decide ``pending`` on its agent's state (``states`` follows the batch); a decision
        (or annotation) that raises fails it alone, before anything of it is written."""
        before = states.get(pending.agent_id, FRESH)
        try:
            decision, after = pending.decide(before, pending.agent_id, pending.action,
                                             pending.fields, pending.code, pending.payload, None,
                                             pending.now)
            record = audit.decision_record(pending.now, decision)
            if pending.annotations is not None:
                record.update(audit.annotation(pending.annotations, decision))
            ticket = (None if decision.ticket is None
                      else review.held(decision, pending.now, None))
        except Exception as error:
            pending.fail(error)
            return None
        states[pending.agent_id] = after
        return _Made(pending, before, after, record, ticket)

    # -- operators ----------------------------------------------------------------------------

    def reset(self, agent_id: str | None, operator: str, policy_hash: str | None, *,
              now: float | None = None) -> Reset:
        every = agent_id is None
        with self._connection() as connection:
            keys, states = _lock(connection, [] if agent_id is None else [agent_id], every,
                                 timeout=self._answer_timeout)
            agents = list(states) if agent_id is None else [agent_id]
            now = time.time() if now is None else now
            record = audit.reset_record(now, policy_hash, agent_id, operator, agents)
            cancelled = [review.cancellation(ticket, now, operator) for ticket in
                         self._tickets_in(connection, review.PENDING, agent_id)]
            appended = _append(connection, "every" if every else "shared", keys,
                               {} if agent_id is None else {agent_id: FRESH},
                               [(record, None),
                                *((step.record, step.ticket) for step in cancelled)],
                               timeout=self._answer_timeout)
        for written, (seq, digest, prev) in zip(
                [record, *(step.record for step in cancelled)], appended):
            self._remember(written, seq, prev, digest)
        return Reset(sorted(agents), appended[0][0])

    # -- review tickets -----------------------------------------------------------------------

    def ticket(self, ticket_id: str) -> review.Ticket | None:
        """The ticket with this id, as stored (``None``: no such ticket)."""
        row = self._read_one("SELECT body, seq FROM sentra_tickets WHERE ticket = %s",
                             (ticket_id,))
        return None if row is None else _ticket(*row)

    def tickets(self, status: str | None = None,
                agent_id: str | None = None) -> list[review.Ticket]:
        """The tickets with this status of this agent (``None``: any), oldest first."""
        with self._connection() as connection:
            return self._tickets_in(connection, status, agent_id)

    @staticmethod
    def _tickets_in(connection: Any, status: str | None,
                    agent_id: str | None) -> list[review.Ticket]:
        clauses, values = ["true"], []
        for column, value in (("status", status),
                              ("agent", None if agent_id is None else _key(agent_id))):
            if value is not None:
                clauses.append(f"{column} = %s")
                values.append(value)
        rows = connection.execute(f"SELECT body, seq FROM sentra_tickets WHERE "
                                  f"{' AND '.join(clauses)} ORDER BY created, ticket",
                                  tuple(values)).fetchall()
        return [_ticket(*row) for row in rows]

    def settle(self, ticket_id: str, step: review.Step,
               now: float) -> tuple[review.Ticket, Decision | None]:
        """Run ``step`` on the ticket and its agent's state with the agent locked (as a
        decision locks it); write what it settles (the ticket, the agent's state, the audit
        record) in one transaction. ``UnknownTicket`` when there is no such ticket."""
        with self._connection() as connection:
            row = connection.execute("SELECT agent FROM sentra_tickets WHERE ticket = %s",
                                     (ticket_id,)).fetchone()
            if row is None:
                raise review.UnknownTicket(ticket_id)
            agent_id = bytes(row[0]).decode()
            keys, states = _lock(connection, [agent_id], timeout=self._answer_timeout)
            state = states.get(agent_id, FRESH)
            # read after the agent's lock is held: no other step of its tickets is under way
            ticket = _ticket(*connection.execute(
                "SELECT body, seq FROM sentra_tickets WHERE ticket = %s",
                (ticket_id,)).fetchone())
            settlement = step(ticket, state, None)
            if settlement is None:
                _release(connection)
                return ticket, None
            [(seq, digest, prev)] = _append(
                connection, "shared", keys,
                {} if settlement.state is None else {agent_id: settlement.state},
                [(settlement.record, settlement.ticket)], timeout=self._answer_timeout)
        self._remember(settlement.record, seq, prev, digest)
        decision = settlement.decision
        if decision is not None:   # the seq is known once the record is appended
            decision.__dict__["_seq"] = seq
        return settlement.ticket, decision

    def assign_group(self, agent_id: str, group: str | None, operator: str,
                     policy_hash: str | None, *, now: float | None = None) -> int:
        """Keep an operator's group assignment in the agent's row (``None`` clears it) and
        audit it, in one transaction under the agent's lock; the seq of its record."""
        record = audit.group_record(time.time() if now is None else now, policy_hash, agent_id,
                                    group, operator)
        with self._connection() as connection:
            keys, _ = _lock(connection, [agent_id], timeout=self._answer_timeout)
            connection.execute(_ASSIGN_GROUP, (_key(agent_id), group))
            [(seq, digest, prev)] = _append(connection, "shared", keys, {}, [(record, None)],
                                            timeout=self._answer_timeout)
        self._remember(record, seq, prev, digest)
        return int(seq)

    def record_policy_load(self, policy: Policy, *, now: float | None = None) -> int:
        record = audit.policy_load_record(time.time() if now is None else now, policy.hash, policy.name,
                                          policy.version, policy.schema_version)
        with self._connection() as connection:
            [(seq, digest, prev)] = _append(connection, "none", "{}", {}, [(record, None)],
                                            timeout=self._answer_timeout)
        self._remember(record, seq, prev, digest)
        return int(seq)

    def save_policy_table(self, table: dict[str, Any]) -> None:
        """Keep a compiled table by its hash, for the processes sharing this database."""
        with self._connection() as connection:
            connection.execute("INSERT INTO sentra_policies (hash, body) VALUES (%s, %s) "
                               "ON CONFLICT (hash) DO NOTHING",
                               (table["hash"], canonical_json(table)))

    def policy_table(self, policy_hash: str) -> dict[str, Any] | None:
        """The compiled table with this hash, if a process saved it."""
        row = self._read_one("SELECT body FROM sentra_policies WHERE hash = %s", (policy_hash,))
        if row is None:
            return None
        return saved_table(row[0], policy_hash)

    # -- reads --------------------------------------------------------------------------------

    def _read(self, query: str, values: Iterable[Any] = ()) -> list[Any]:
        with self._connection() as connection:
            return list(connection.execute(query, tuple(values)).fetchall())

    def _read_one(self, query: str, values: Iterable[Any] = ()) -> Any:
        rows = self._read(query, values)
        return rows[0] if rows else None

    def state(self, agent_id: str) -> AgentState:
        return AgentState.from_raw(self.raw_state(agent_id))

    def raw_state(self, agent_id: str) -> RawState:
        row = self._read_one("SELECT cumulative_risk, blocked_attempts, shut_down, decay_anchor, "
                             "limit_windows, assigned_group FROM sentra_agents WHERE agent_id = %s",
                             (_key(agent_id),))
        return FRESH if row is None else _raw(*row)

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
        if limit == 1 and agent is None and label is None and kind is None:
            with self._written_lock:
                written = self._written.get(after_seq + 1)
            if written is not None:   # seqs have no gaps: the next record is this one
                return [written]
        clauses: list[str] = ["seq > %s"]
        values: list[Any] = [after_seq]
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
        self._loop_commits.close()
        self._pool.close()


@dataclass
class _Made:
    """A decision made in a batch, waiting for its transaction: its agent's state before and
    after it, and its audit record (without seq, prev and hash)."""

    pending: Pending
    before: RawState
    after: RawState
    record: dict[str, Any]
    ticket: review.Ticket | None = None
    """The review ticket the decision makes (``None``: it makes none)."""


REFUSAL_POLL_SECONDS = 0.25
"""How often a call waiting for a free connection looks whether the pool's last attempt to open
one was refused (then it fails at once rather than wait ``wait_timeout`` out)."""


class _Borrowed:
    """A pooled connection for one operation; a failure to reach the database becomes
    :class:`StoreUnavailable`, and after any failure the session's advisory locks are released
    (or the connection is closed, which releases them). After a failure to reach the database,
    calls wait ``retry_wait`` for a connection rather than ``wait_timeout`` until one succeeds,
    so that an outage fails requests at once."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.context: Any = None
        self.connection: Any = None

    def __enter__(self) -> Any:
        store = self.store
        wait = store._retry_wait if store._down.is_set() else store._wait_timeout
        started = time.monotonic()
        replacing = False
        while True:
            # waited for in slices, so that a call which found no free connection fails as
            # soon as the pool's attempt to open one is refused (the database went down while
            # the call waited), not at the end of its whole wait
            left = max(0.0, wait - (time.monotonic() - started))
            self.context = store._pool.connection(
                timeout=store._retry_wait if replacing else min(left, REFUSAL_POLL_SECONDS))
            try:
                self.connection = self.context.__enter__()
            except store._errors as error:
                waited = time.monotonic() - started
                if not isinstance(error, store._pool_timeout):
                    raise store._unavailable(error) from error
                if store._refusal is not None or waited >= wait:
                    raise store._unavailable(store._pool_timeout(
                        f"couldn't get a connection after {waited:.2f} sec")) from error
                continue   # no connection yet, and no attempt to open one failed: wait on
            if not _ended(self.connection):
                return self.connection
            # the database ended it while it was idle: the pool opens another, which this
            # call waits for (as long as for any), unless the last attempt to open one failed
            # (the database is down: then at once, even if that attempt came before this call)
            self.connection.close()
            self.context.__exit__(None, None, None)
            replacing = True

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        store = self.store
        if error is not None:
            _release(self.connection)
        try:
            self.context.__exit__(kind, error, traceback)
        except store._errors as problem:
            if error is None:
                raise store._unavailable(problem) from problem
        if error is None:
            store._down.clear()
        elif isinstance(error, store._errors):
            raise store._unavailable(error) from error


def _ended(connection: Any) -> bool:
    """Whether the database ended this idle connection (an idle-session timeout, a proxy's or
    firewall's idle limit, ``pg_terminate_backend``, a restart): at rest a connection of the
    store has nothing to read, so anything readable is the database's goodbye (or its end of
    file). One system call, no round trip."""
    if connection.closed:
        return True
    try:
        return bool(select.select([connection.pgconn.socket], [], [], 0)[0])
    except Exception:   # no socket any more: psycopg's OperationalError
        return True


def _release(connection: Any) -> None:
    """Release the session's advisory locks; close the connection if that fails (closing
    releases them too, and the pool replaces a closed connection)."""
    try:
        if not connection.closed:
            connection.rollback()
            connection.execute("SELECT pg_advisory_unlock_all()")
    except Exception:   # the connection is broken: closing it is the release
        connection.close()


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
        self.connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
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
        self.connection.execute("ROLLBACK")   # read only: nothing to keep

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
        version = schema_version(self.connection)
        anchor = "decay_anchor" if version >= 3 else "NULL"
        windows, group = (("limit_windows", "assigned_group") if version >= 4
                          else ("NULL", "NULL"))
        self.execute(f"SELECT agent_id, cumulative_risk, blocked_attempts, shut_down, {anchor}, "
                     f"{windows}, {group} FROM sentra_agents ORDER BY agent_id")
        for agent, risk, blocked, down, decay_anchor, limit_windows, assigned in self:
            yield bytes(agent).decode(), _raw(risk, blocked, down, decay_anchor, limit_windows,
                                              assigned)

    def tickets(self) -> list[tuple[str, str, dict[str, Any] | str]] | None:
        """Every stored review ticket as verification compares it (:func:`review.stored_view`:
        its body with its columns' values; ``None`` before version 4)."""
        if schema_version(self.connection) < 4:
            return None
        self.execute("SELECT ticket, agent, status, created, expires, seq, body "
                     "FROM sentra_tickets ORDER BY ticket")
        return [review.stored_view(ticket, status, body,
                                   agent_id=bytes(agent).decode("utf-8", "replace"),
                                   created=created, expires=expires, filled={"seq": seq})
                for ticket, agent, status, created, expires, seq, body in self]

    def verify(self, expected_head: str | None, anchor: audit.Head | None = None
               ) -> VerifyResult:
        head = self.head()
        verifier = audit.LogVerifier(anchor=anchor)
        self.execute("SELECT seq, hash, body FROM sentra_audit ORDER BY seq")
        for seq, digest, text in self:
            if not verifier.add(audit.stored_record(seq, digest, text), text):
                break
        return verifier.result(head=head, expected_head=expected_head, states=self.states(),
                               tickets=self.tickets())

    def export(self, out: IO[str]) -> int:
        head = self.head()
        self.execute("SELECT seq, hash, body FROM sentra_audit ORDER BY seq")
        records = (audit.stored_record(*row) for row in self)
        return audit.write_export(records, self.states(), head, out)


def verify_database(url: str, *, expected_head: str | None = None,
                    anchor: audit.Head | None = None,
                    answer_timeout: float = ONE_SHOT_ANSWER_SECONDS) -> VerifyResult:
    """Verify the store in a PostgreSQL database, reading only (``sentra-lang audit verify``):
    the chain, its end against the stored head, every agent's state against the log.
    ``answer_timeout`` bounds the wait for each answer (each batch of rows), not the whole
    verification (:func:`_one_shot`)."""
    with _one_shot(url, answer_timeout) as connection, _Snapshot(connection, redacted(url)) as snapshot:
        return snapshot.verify(expected_head, anchor)


def database_head(url: str, *, answer_timeout: float = ONE_SHOT_ANSWER_SECONDS) -> audit.Head:
    """The store's head in a PostgreSQL database: the seq and hash of its last record."""
    with _one_shot(url, answer_timeout) as connection, _Snapshot(connection, redacted(url)) as snapshot:
        return snapshot.head()


def export_database(url: str, out: IO[str], *,
                    answer_timeout: float = ONE_SHOT_ANSWER_SECONDS) -> int:
    """Export the store in a PostgreSQL database as JSON Lines, reading only (``answer_timeout``
    bounds the wait for each batch of rows, not the whole export)."""
    with _one_shot(url, answer_timeout) as connection, _Snapshot(connection, redacted(url)) as snapshot:
        return snapshot.export(out)


def database_schema_version(url: str, *,
                            answer_timeout: float = ONE_SHOT_ANSWER_SECONDS) -> int:
    """The store schema version of a database (0: no store yet)."""
    with _one_shot(url, answer_timeout) as connection:
        return schema_version(connection)


def upgrade_database(url: str, *, answer_timeout: float = ONE_SHOT_ANSWER_SECONDS
                     ) -> tuple[int, int]:
    """Create or upgrade the store schema of a database; ``(before, after)`` versions."""
    with _one_shot(url, answer_timeout) as connection:
        before = schema_version(connection)
        prepare_schema(connection, redacted(url), upgrade=True)
        return before, SCHEMA_VERSION


@contextlib.contextmanager
def _one_shot(url: str, answer_timeout: float, connect_timeout: float = 10.0
              ) -> Iterator[Any]:
    """One connection of its own (no pool), for a command that reads (or upgrades) once, each
    wait for an answer bounded by ``answer_timeout`` (:class:`_Answer`: per statement, per
    batch of rows a cursor fetches); what the database refuses or loses on it (a statement
    cancelled, a read-only transaction, the connection ended, no answer in time) is
    :class:`StoreUnavailable` with the reason."""
    psycopg, _ = _driver()
    try:
        connection = _bounded(psycopg, answer_timeout).connect(
            url, connect_timeout=max(1, round(connect_timeout)), application_name="sentra",
            autocommit=True, **_client_keepalives(answer_timeout))
    except psycopg.OperationalError as error:
        raise StoreUnavailable(f"cannot connect to {redacted(url)}: "
                               f"{_first_line(error)}") from error
    try:
        with connection:
            yield connection
    except psycopg.Error as error:
        raise StoreUnavailable(f"the database did not complete the command: "
                               f"{_first_line(error)}"
                               ) from error


def prepare_schema(connection: Any, where: str, *, upgrade: bool) -> None:
    """Create the schema in a database without one; check an existing one's version (and
    upgrade an older one, when there are upgrades to make). One transaction, serialised
    between processes by an advisory lock."""
    encoding = connection.execute("SHOW server_encoding").fetchone()[0]
    if encoding.upper() not in ("UTF8", "UTF-8"):
        raise SchemaError(f"{where} has the encoding {encoding}; the store needs UTF8 "
                          "(CREATE DATABASE ... ENCODING 'UTF8')")
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s, %s)", SCHEMA_LOCK)
        found = schema_version(connection)
        if found == 0:
            for statement in (*SCHEMA, *UPGRADE_TO_3, *UPGRADE_TO_4, *FUNCTIONS):
                connection.execute(statement)
            connection.execute("INSERT INTO sentra_meta (key, value) VALUES "
                               "('schema_version', %s)", (str(SCHEMA_VERSION),))
        elif checked_version(found, where, upgrade=upgrade) < SCHEMA_VERSION:
            for statement in (*UPGRADES[found], *FUNCTIONS):
                connection.execute(statement)
            connection.execute("UPDATE sentra_meta SET value = %s WHERE key = 'schema_version'",
                               (str(SCHEMA_VERSION),))


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


def _lock(connection: Any, agents: Iterable[str], every: bool = False, *, timeout: float
          ) -> tuple[str, dict[str, RawState]]:
    """``sentra_lock``: lock the ``agents`` (``every``: the gate, for a reset of every agent)
    for the session and read their stored states (``every``: every agent's). The agents' lock
    keys (for :func:`_append`) and the states, by agent id."""
    keys, values = _lock_values(agents, every)
    return keys, _states(_run(connection, b"sentra_lock", values, timeout))


def _lock_values(agents: Iterable[str], every: bool = False
                 ) -> tuple[str, tuple[str, str, str]]:
    """The agents' lock keys (an ``integer[]`` literal: distinct, in the order every process
    locks them) and what ``sentra_lock`` takes: their ids' UTF-8 bytes (a ``bytea[]``
    literal), the keys, and ``every``."""
    ids = [_key(agent) for agent in agents]
    keys = "{" + ",".join(map(str, sorted({_lock_key(agent) for agent in ids}))) + "}"
    return keys, ("{" + ",".join(f'"\\\\x{agent.hex()}"' for agent in ids) + "}", keys,
                  "t" if every else "f")


def _states(rows: list[tuple[Any, ...]]) -> dict[str, RawState]:
    """The rows ``sentra_lock`` returned, as states by agent id."""
    return {bytes.fromhex(agent).decode(): _raw(
        int(risk), int(blocked), down == "t", None if anchor is None else int(anchor), windows,
        group) for agent, risk, blocked, down, anchor, windows, group in rows}


def _append(connection: Any, gate: str, keys: str, states: Mapping[str, tuple[Any, ...]],
            records: list[tuple[dict[str, Any], review.Ticket | None]], *, timeout: float
            ) -> list[tuple[int, str, str | None]]:
    """``sentra_append``, in one transaction: turn the session's locks into the transaction's
    (``gate``: ``shared`` with the agents' lock ``keys``, ``every``, or ``none``), write the
    agents' ``states`` and append the ``records`` (each with the review ticket it makes or
    settles, or ``None``); each record's seq, hash and prev, once committed."""
    return _appended(_run(connection, b"sentra_append",
                          _append_values(gate, keys, states, records), timeout))


def _append_values(gate: str, keys: str, states: Mapping[str, tuple[Any, ...]],
                   records: list[tuple[dict[str, Any], review.Ticket | None]]
                   ) -> tuple[str, str, str | None, str]:
    """What ``sentra_append`` takes (see :func:`_append`). The states and records go as two
    JSON arrays (one parameter each: cheaper to send than arrays): a state ``[agent's id in
    hex, risk, blocked attempts, shut down, decay anchor, windows
    (:func:`~sentra_runtime.stores.schema.windows_text`)]``, a record ``[kind, agent's id in
    hex, label, its body around prev and seq (three texts), ticket or null]``."""
    rows = []
    for record, ticket in records:
        agent = record.get("agent")
        decision = record.get("decision")
        rows.append([record["kind"], None if agent is None else _key(agent).hex(),
                     decision.get("label") if isinstance(decision, dict) else None,
                     *audit.seal_parts(record),
                     None if ticket is None else _ticket_argument(ticket)])
    written = None if not states else _encode([
        [_key(agent).hex(), state[0], state[1], bool(state[2]),
         state[3] if len(state) > 3 else None, windows_text(state)]
        for agent, state in sorted(states.items())])
    return gate, keys, written, _encode(rows)


def _appended(rows: list[tuple[Any, ...]]) -> list[tuple[int, str, str | None]]:
    """The rows ``sentra_append`` returned: each record's seq, hash and prev."""
    return [(int(seq), digest, prev) for seq, digest, prev in rows]


def _run(connection: Any, statement: bytes, values: tuple[str | None, ...], timeout: float
         ) -> list[tuple[Any, ...]]:
    """Run a statement of :data:`STATEMENTS` on a connection of the store: through libpq itself
    (psycopg's ``pgconn``; the wait for the answer does not hold the GIL), text in and out, so
    that a call costs the client a few microseconds instead of a cursor's adaptation; its rows
    as text (``None`` for NULL). A failure raises the error psycopg would; no answer within
    ``timeout`` seconds closes the connection and raises (:class:`_Answer`)."""
    answer = _Answer(connection, timeout)
    try:
        connection.pgconn.send_query_prepared(statement, _encoded(values))
        answer.flush()
        result = answer.next_result()
        while answer.next_result() is not None:   # the end of the statement's results
            pass
    except BaseException:
        connection.close()   # an answer may be on its way: of no further use
        raise
    return _rows(result)


def _pipeline(connection: Any, timeout: float, *statements: tuple[bytes, tuple[str | None, ...]]
              ) -> list[list[tuple[Any, ...]] | BaseException]:
    """Run statements of :data:`STATEMENTS` in one round trip (libpq's pipeline mode), each
    its own transaction (a sync after each: one that fails does not stop the next); each one's
    rows, or the error it raised. A failure of the connection itself raises, and so does no
    answer within ``timeout`` seconds (:class:`_Answer`)."""
    from psycopg import Error

    pgconn = connection.pgconn
    answer = _Answer(connection, timeout)
    pgconn.enter_pipeline_mode()
    try:
        for statement, values in statements:
            pgconn.send_query_prepared(statement, _encoded(values))
            pgconn.pipeline_sync()
        answer.flush()
        outcomes: list[list[tuple[Any, ...]] | BaseException] = []
        for _ in statements:
            result = answer.next_result()
            while answer.next_result() is not None:   # the end of the statement's results
                pass
            answer.next_result()   # its sync
            try:
                outcomes.append(_rows(result))
            except Error as error:
                outcomes.append(error)
        pgconn.exit_pipeline_mode()
    except BaseException:
        connection.close()   # in the middle of a pipeline: of no further use
        raise
    return outcomes


class _Answer:
    """The wait for an answer on a connection, bounded: a database that stops answering (its
    process frozen, its machine gone, the network dropping packets without a reset) fails the
    statement after ``timeout`` seconds, and its connection is closed (an answer may still be
    on its way: the connection is of no further use), instead of holding the caller (on an
    event loop, the store's commit thread, which every decision of the process waits for; for
    a read, a pooled connection and a server request) until the operating system gives up on
    the connection, if ever. One rule for every wait of the store: its own statements
    (:func:`_run`, :func:`_pipeline`) and everything psycopg runs for it (:meth:`consume`:
    reads, a connection's setup, a transaction's end, each batch a server-side cursor fetches,
    so that a long read is bounded per answer, not as a whole)."""

    def __init__(self, connection: Any, timeout: float) -> None:
        self.connection = connection
        self.pgconn = connection.pgconn
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout

    def flush(self) -> None:
        """Send what libpq holds."""
        while self.pgconn.flush():
            self._ready(_WRITE)

    def next_result(self) -> Any:
        """The next result, once it arrived (waiting on the socket without holding the
        GIL)."""
        pgconn = self.pgconn
        while pgconn.is_busy():   # what libpq read so far does not finish a result
            self._ready(_READ)
            pgconn.consume_input()
        return pgconn.get_result()

    def consume(self, operation: Any) -> Any:
        """Run one of psycopg's operations on the connection (a generator that yields what it
        waits for, reading or writing, and is sent what is ready: what the connection's
        ``wait`` runs); its result."""
        try:
            waiting = next(operation)
            while True:
                waiting = operation.send(self._ready(waiting))
        except StopIteration as done:
            return done.value

    def _ready(self, waiting: int) -> int:
        """Wait until the socket is ready for what ``waiting`` asks (:data:`_READ`,
        :data:`_WRITE` or both) within the deadline; what is ready."""
        remaining = self.deadline - time.monotonic()
        socket = [self.pgconn.socket]
        readable, writable = ([], []) if remaining <= 0 else select.select(
            socket if waiting & _READ else [], socket if waiting & _WRITE else [], [],
            remaining)[:2]
        if not (readable or writable):
            from psycopg import OperationalError

            self.connection.close()
            raise OperationalError(f"no answer from the database within {self.timeout:g} s")
        return (_READ if readable else 0) | (_WRITE if writable else 0)


_READ, _WRITE = 1, 2
"""What a wait is for (psycopg's ``Wait.R`` and ``Wait.W``) and what is ready (``Ready.R``,
``Ready.W``): the same values in every psycopg 3."""


def _raising(rows: list[tuple[Any, ...]] | BaseException) -> list[tuple[Any, ...]]:
    if isinstance(rows, BaseException):
        raise rows
    return rows


def _encoded(values: tuple[str | None, ...]) -> list[bytes | None]:
    return [None if value is None else value.encode() for value in values]


def _rows(result: Any) -> list[tuple[Any, ...]]:
    """A statement's rows as text (``None`` for NULL); a failure raises the error psycopg
    would."""
    if result.status != _TUPLES_OK:
        from psycopg.errors import error_from_result

        raise error_from_result(result, encoding="utf-8")
    width = result.nfields
    return [tuple(None if value is None else value.decode() for value in
                  (result.get_value(row, column) for column in range(width)))
            for row in range(result.ntuples)]


_TUPLES_OK = 2
"""libpq's ``PGRES_TUPLES_OK`` (``psycopg.pq.ExecStatus.TUPLES_OK``): a statement returned
rows."""
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""JSON for the database's parameters (compact; any text as it is: the parameters are UTF-8)."""


def _ticket_argument(ticket: review.Ticket) -> dict[str, Any]:
    return {"ticket": ticket.ticket, "status": ticket.status, "created": ticket.created,
            "expires": ticket.expires, "body": canonical_json(ticket.to_row())}


def _ticket(body: str, seq: int | None) -> review.Ticket:
    """A stored ticket (its ``seq`` is the column's: known only once its record is
    appended)."""
    return review.Ticket.from_body(body, seq=seq)


def _lock_key(agent: bytes) -> int:
    """An agent's advisory lock key: the first 32 bits of the MD5 of its id's bytes, signed
    (what ``sentra_keys`` computes, ``('x' || left(md5(id), 8))::bit(32)::integer``, so that
    processes of older runtimes on the same database take the same locks)."""
    return int.from_bytes(hashlib.md5(agent, usedforsecurity=False).digest()[:4], "big",
                          signed=True)


def _key(agent_id: str) -> bytes:
    """An agent id as the database keeps it: its UTF-8 bytes (any text, NUL included; ordered
    by code point, as Python orders strings)."""
    return agent_id.encode("utf-8")


def _storable(pending: Pending) -> bool:
    """Whether the pending decision's agent id can be stored (text that is UTF-8); if not, it
    fails alone."""
    try:
        _key(pending.agent_id)
    except UnicodeEncodeError as error:
        pending.fail(error)
        return False
    return True


_raw = stored_state
"""A stored row as the decider's state (:func:`~sentra_runtime.stores.schema.stored_state`)."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


__all__ = ["PostgresStore", "redacted"]
