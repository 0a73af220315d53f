"""The SQLite store: agent state and audit log in one file, shared by threads and processes.

Every decision is made inside a ``BEGIN IMMEDIATE`` transaction: read the agent's state, decide,
write the state, append the hash-chained audit record; the decision is returned only after the
transaction commits. ``BEGIN IMMEDIATE`` takes the database's write lock first, so concurrent
decisions (of any agent, from any thread or process) are serialised and none is lost.

Group commit (``group_commit=True``): decisions that arrive while a transaction is committing
share the next transaction instead of taking one each. The first thread to arrive commits
every decision queued by then, in arrival order (so each agent's decisions keep their order),
and wakes the others only after the commit; it hands the next batch to the oldest waiting
thread. A lone decision commits at once, as without group commit; under load, one commit (and,
with ``synchronous="FULL"``, one fsync) serves many decisions. A decision that fails on its own
(an annotation that raises) fails alone, with nothing written for it; a database error fails
every decision of the transaction, and none of them is recorded.

Callers on an asyncio event loop (a server) use :meth:`SQLiteStore.apply_async` instead: the
same decisions and transactions, with the loop deciding the queued batch and a commit thread
committing it, so the loop never waits for a commit (``group_commit.LoopCommit``).

Durability (WAL mode): with ``synchronous="NORMAL"`` (the default) a committed decision survives a
crash of the process, because the commit is in the WAL file before ``evaluate`` returns; a power
loss or OS crash can lose the decisions committed since the last WAL sync (checkpoint), never
corrupt the file. ``synchronous="FULL"`` syncs the WAL at every commit, so nothing acknowledged
is lost even on power loss, at the cost of one fsync per commit (per decision without group
commit, per batch with it).

Checkpoints (copying the WAL back into the database file, with an fsync) normally run inside the
commit that crosses SQLite's threshold of 1000 WAL pages, so that one decision waits several
milliseconds. With ``checkpoint_interval=SECONDS`` the store turns that off for its connection
and checkpoints from a background thread every ``SECONDS`` instead (``PASSIVE``: it never blocks
a decision); the WAL is then synced at least that often (a power loss loses at most the last
interval's decisions under ``synchronous="NORMAL"``; nothing under ``"FULL"``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

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
    LoopCommits,
    Pending,
    fail_batch,
)
from sentra_runtime.stores.schema import (
    SCHEMA_VERSION,
    UNVERSIONED,
    SchemaError,
    checked_version,
    saved_table,
    stored_state,
    windows_text,
)

VERSION_1 = (
    "CREATE TABLE agents (agent_id TEXT PRIMARY KEY, cumulative_risk INTEGER NOT NULL, "
    "blocked_attempts INTEGER NOT NULL, shut_down INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE audit (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, body TEXT NOT NULL)",
)
"""The layout before versions were recorded (version 1)."""
UPGRADE_TO_2 = (
    # the head: the seq and hash of the last record, kept by SQLite itself with every insert
    "CREATE TABLE head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT)",
    "INSERT INTO head (id, seq, hash) VALUES (1, (SELECT coalesce(max(seq), 0) FROM audit), "
    "(SELECT hash FROM audit ORDER BY seq DESC LIMIT 1))",
    "CREATE TRIGGER audit_head AFTER INSERT ON audit "
    "BEGIN UPDATE head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1; END",
    "CREATE TABLE policies (hash TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID",
)
"""Version 1 to 2: the head beside the state, and the compiled tables of loaded policies."""
UPGRADE_TO_3 = (
    "ALTER TABLE agents ADD COLUMN decay_anchor INTEGER",
)
"""Version 2 to 3: each agent's risk-decay anchor (whole microseconds since the epoch; NULL
when it has none)."""
UPGRADE_TO_4_LIMITS = (
    "ALTER TABLE agents ADD COLUMN limit_windows TEXT",
)
"""Version 3 to 4, rate limits: each agent's limit windows (JSON; NULL when it has none)."""
UPGRADE_TO_4_GROUPS = (
    "ALTER TABLE agents ADD COLUMN assigned_group TEXT",
)
"""Version 3 to 4, operator-assigned groups: the group an operator assigned the agent to (NULL
for none)."""
UPGRADE_TO_4_TICKETS = (
    # review tickets: one row per ticket, the ticket itself as JSON (sentra_runtime.review)
    "CREATE TABLE tickets (ticket TEXT PRIMARY KEY, agent_id TEXT NOT NULL, "
    "status TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL, "
    "body TEXT NOT NULL) WITHOUT ROWID",
    "CREATE INDEX tickets_by_status ON tickets (status, agent_id, created)",
)
"""Version 3 to 4, review tickets (times in whole microseconds since the epoch)."""
UPGRADE_TO_4 = (*UPGRADE_TO_4_LIMITS, *UPGRADE_TO_4_GROUPS, *UPGRADE_TO_4_TICKETS)
"""Version 3 to 4."""
_INSERT_TICKET = ("INSERT INTO tickets (ticket, agent_id, status, created, expires, body) "
                  "VALUES (?, ?, ?, ?, ?, ?)")
_UPDATE_TICKET = "UPDATE tickets SET status = ?, body = ? WHERE ticket = ?"
_SELECT_STATE = ("SELECT cumulative_risk, blocked_attempts, shut_down, decay_anchor, "
                 "limit_windows, assigned_group FROM agents WHERE agent_id = ?")
_UPSERT_STATE = (
    "INSERT INTO agents (agent_id, cumulative_risk, blocked_attempts, shut_down, decay_anchor, "
    "limit_windows) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET "
    "cumulative_risk = excluded.cumulative_risk, blocked_attempts = excluded.blocked_attempts, "
    "shut_down = excluded.shut_down, decay_anchor = excluded.decay_anchor, "
    "limit_windows = excluded.limit_windows"
)
_ASSIGN_GROUP = (
    "INSERT INTO agents (agent_id, cumulative_risk, blocked_attempts, shut_down, assigned_group) "
    "VALUES (?, 0, 0, 0, ?) ON CONFLICT (agent_id) DO UPDATE SET "
    "assigned_group = excluded.assigned_group"
)
_LAST_AUDIT = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
_STATE_AND_LAST_AUDIT = (
    "SELECT a.cumulative_risk, a.blocked_attempts, a.shut_down, a.decay_anchor, "
    "a.limit_windows, a.assigned_group, "
    "(SELECT seq FROM audit ORDER BY seq DESC LIMIT 1), "
    "(SELECT hash FROM audit ORDER BY seq DESC LIMIT 1) "
    "FROM (SELECT 1) LEFT JOIN agents a ON a.agent_id = ?"
)
_INSERT_AUDIT = "INSERT INTO audit (seq, hash, body) VALUES (?, ?, ?)"
LOG = logging.getLogger(__name__)
KEPT_RECORDS = 1024
"""How many records of committed :meth:`SQLiteStore.apply_async` decisions the store keeps for
:meth:`SQLiteStore.committed_record` (the oldest go first)."""


class SQLiteStore(BatchedStore):
    """State and audit log in a SQLite file (WAL). Open one store per process; threads share it."""

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL",
                 busy_timeout: float = 60.0, checkpoint_interval: float | None = None,
                 group_commit: bool = False, upgrade: bool = True) -> None:
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}")
        if checkpoint_interval is not None and not checkpoint_interval > 0:
            raise ValueError("checkpoint_interval must be a positive number of seconds")
        self.path = os.fspath(path)
        self.synchronous = mode
        self._lock = threading.Lock()
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._connection = sqlite3.connect(self.path, timeout=busy_timeout,
                                           isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute(f"PRAGMA synchronous={mode}")
        with self._transaction() as connection:
            prepare_schema(connection, self.path, upgrade=upgrade)
        self._checkpointer: _Checkpointer | None = None
        if checkpoint_interval is not None:
            self._connection.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = _Checkpointer(self.path, checkpoint_interval)
        self._group = GroupCommit(self._commit_batch) if group_commit else None
        self._loop_commits = LoopCommits(f"sqlite-commit {self.path}", self._prepare_batch,
                                         MAX_BATCH if group_commit else 1)
        self._kept: OrderedDict[int, tuple[str, str]] = OrderedDict()
        self._kept_lock = threading.Lock()
        self.commits = 0
        """How many decision transactions committed (fewer than decisions with group commit)."""

    def _transaction(self) -> _Transaction:
        return _Transaction(self._lock, self._connection, self._busy_timeout)

    async def apply_async(self, decide: Decide, agent_id: str, action: str, fields: Any,
                          code: int, payload: Any, now: float | None = None, *,
                          annotations: audit.Annotations | None = None) -> Decision:
        """:meth:`apply` for a caller on an asyncio event loop, which it never blocks on a
        commit or on another writer: decisions queue on the loop, and while no commit is under
        way the queue is decided on the loop in one transaction (one per decision without
        group commit) when the database is free at once, and committed in the store's commit
        thread (see :class:`~sentra_runtime.stores.group_commit.LoopCommit`). The decision is
        returned after its commit."""
        pending = Pending.of(decide, agent_id, action, fields, code, payload, now, annotations)
        decision = await self._loop_commits.for_running_loop().submit(pending)
        if pending.sealed is not None:
            self._keep(*pending.sealed)
        return decision

    def _keep(self, seq: int, digest: str, body: str) -> None:
        """Keep a committed record for :meth:`committed_record` (at most
        :data:`KEPT_RECORDS`)."""
        with self._kept_lock:
            kept = self._kept
            kept[seq] = digest, body
            if len(kept) > KEPT_RECORDS:
                kept.popitem(last=False)

    def committed_record(self, seq: int) -> dict[str, Any] | None:
        """The audit record of a decision :meth:`apply_async` returned lately, at ``seq``, as
        :meth:`read_records` would read it back (``None``: not kept, or taken already). Each
        is given once: the caller that awaited the decision reads its record without a query."""
        with self._kept_lock:
            found = self._kept.pop(seq, None)
        return None if found is None else _record(seq, *found)

    def _prepare_batch(self, batch: list[Pending]) -> Callable[[], None]:
        """On the loop: when the store and the database are free at once, decide ``batch``
        here in one transaction (microseconds per decision; nothing waits) and leave only its
        commit (with ``synchronous="FULL"``, an fsync) to the commit thread; otherwise (another
        thread or process is writing) deciding and committing both run there, waiting their
        turn."""
        transaction = self._transaction()
        if transaction.begin_now():
            return functools.partial(self._end_batch, transaction, batch,
                                     self._decide_batch(batch))
        return functools.partial(self._commit_batch, batch)

    def _commit_batch(self, batch: list[Pending]) -> None:
        """Decide every pending decision of ``batch`` in one transaction, in order, waiting for
        the database; record each one's decision or error on it. Raises nothing a decision did
        not cause."""
        transaction = self._transaction()
        try:
            transaction.begin()
        except BaseException as error:
            fail_batch(batch, error)
            return
        self._end_batch(transaction, batch, self._decide_batch(batch))

    def _decide_batch(self, batch: list[Pending]) -> BaseException | None:
        """Decide ``batch`` in the open transaction, in order; the database error that stopped
        it (then nothing of it may be committed), if any."""
        connection = self._connection
        try:
            if len(batch) == 1:
                self._decide_one(connection, batch[0])
            else:
                self._decide_many(connection, batch)
        except BaseException as error:
            return error
        return None

    def _end_batch(self, transaction: _Transaction, batch: list[Pending],
                   error: BaseException | None) -> None:
        """Commit the batch's transaction, or roll it back after ``error`` (or a failed commit)
        and fail every decision of it."""
        try:
            transaction.end(error)
            if error is None:
                self.commits += 1
        except BaseException as failed:
            error = failed
        if error is not None:
            fail_batch(batch, error)

    def _decide_one(self, connection: sqlite3.Connection, pending: Pending) -> None:
        """One decision in its own transaction: the state and the log's head in one query."""
        risk, blocked, down, anchor, windows, group, last, prev = connection.execute(
            _STATE_AND_LAST_AUDIT, (pending.agent_id,)).fetchone()
        state = FRESH if risk is None else _raw(risk, blocked, down, anchor, windows, group)
        made = self._made(connection, pending, state, None if last is None else (last, prev))
        if made is not None:
            if risk is None or made != state:
                connection.execute(_UPSERT_STATE, _row(pending.agent_id, made))
            assert pending.sealed is not None
            connection.execute(_INSERT_AUDIT, pending.sealed)

    def _decide_many(self, connection: sqlite3.Connection, batch: list[Pending]) -> None:
        """The decisions of a batch, in order, each on the state the one before it left: each
        agent's state is read once, and the states and records are written together at the end
        (each agent's last state, every record in order)."""
        head = connection.execute(_LAST_AUDIT).fetchone()
        states: dict[str, _BatchState] = {}
        for pending in batch:
            known = states.get(pending.agent_id)
            if known is None:
                row = connection.execute(_SELECT_STATE, (pending.agent_id,)).fetchone()
                known = states[pending.agent_id] = _BatchState(
                    FRESH if row is None else _raw(*row), row is None)
            made = self._made(connection, pending, known.state, head)
            if made is not None:
                known.changed = known.changed or known.new or made != known.state
                known.state = made
                assert pending.sealed is not None
                head = pending.sealed[:2]
        connection.executemany(_UPSERT_STATE, [_row(agent, known.state)
                                               for agent, known in states.items()
                                               if known.changed])
        connection.executemany(_INSERT_AUDIT, [pending.sealed for pending in batch
                                               if pending.sealed is not None])

    def _made(self, connection: sqlite3.Connection, pending: Pending, state: RawState,
              head: tuple[int, str] | None) -> RawState | None:
        """Decide and seal the record (``pending.sealed``); write its review ticket, if any;
        the agent's new state. A decision (or annotation) that raises fails this pending
        decision alone, before anything of it is written (``None``)."""
        seq = 1 if head is None else head[0] + 1
        try:
            decision, new_state = pending.decide(state, pending.agent_id, pending.action,
                                                 pending.fields, pending.code, pending.payload,
                                                 seq, pending.now)
            record = audit.decision_record(pending.now, decision)
            if pending.annotations is not None:
                record.update(audit.annotation(pending.annotations, decision, encodable=False))
            body, digest = audit.seal_text(record, seq, None if head is None else head[1])
            ticket = (None if decision.ticket is None
                      else review.held(decision, pending.now, seq))
        except Exception as error:
            pending.fail(error)
            return None
        if ticket is not None:
            _insert_ticket(connection, ticket)
        pending.decided(decision)
        pending.sealed = seq, digest, body
        return new_state

    def reset(self, agent_id: str | None, operator: str, policy_hash: str | None, *,
              now: float | None = None) -> Reset:
        with self._transaction() as connection:
            if agent_id is None:
                agents = [row[0] for row in connection.execute("SELECT agent_id FROM agents")]
                connection.execute("UPDATE agents SET cumulative_risk = 0, blocked_attempts = 0, "
                                   "shut_down = 0, decay_anchor = NULL, limit_windows = NULL")
            else:
                agents = [agent_id]
                connection.execute(_UPSERT_STATE, _row(agent_id, FRESH))
            now = time.time() if now is None else now
            seq = self._append(connection, audit.reset_record(now, policy_hash, agent_id,
                                                              operator, agents))
            pending = connection.execute(
                "SELECT body FROM tickets WHERE status = ? ORDER BY created, ticket"
                if agent_id is None else
                "SELECT body FROM tickets WHERE status = ? AND agent_id = ? "
                "ORDER BY created, ticket",
                (review.PENDING,) if agent_id is None else (review.PENDING, agent_id))
            for (body,) in pending.fetchall():
                self._settled(connection, review.cancellation(_ticket(body), now, operator))
        return Reset(sorted(agents), seq)

    def assign_group(self, agent_id: str, group: str | None, operator: str,
                     policy_hash: str | None, *, now: float | None = None) -> int:
        """Keep an operator's group assignment in the agent's row (``None`` clears it) and
        audit it, in one transaction; the seq of its record."""
        with self._transaction() as connection:
            connection.execute(_ASSIGN_GROUP, (agent_id, group))
            return self._append(connection, audit.group_record(
                time.time() if now is None else now, policy_hash, agent_id, group, operator))

    # -- review tickets ---------------------------------------------------------------------

    def ticket(self, ticket_id: str) -> review.Ticket | None:
        """The ticket with this id, as stored (``None``: no such ticket)."""
        row = self._reader().execute("SELECT body FROM tickets WHERE ticket = ?",
                                     (ticket_id,)).fetchone()
        return None if row is None else _ticket(row[0])

    def tickets(self, status: str | None = None,
                agent_id: str | None = None) -> list[review.Ticket]:
        """The tickets with this status of this agent (``None``: any), oldest first."""
        clauses, values = ["1"], []
        for column, value in (("status", status), ("agent_id", agent_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        rows = self._reader().execute(f"SELECT body FROM tickets WHERE {' AND '.join(clauses)} "
                                      "ORDER BY created, ticket", values)
        return [_ticket(body) for (body,) in rows]

    def settle(self, ticket_id: str, step: review.Step,
               now: float) -> tuple[review.Ticket, Decision | None]:
        """Run ``step`` on the ticket and its agent's state in one transaction; write what it
        settles (the ticket, the agent's state, the audit record). ``UnknownTicket`` when
        there is no such ticket."""
        with self._transaction() as connection:
            row = connection.execute("SELECT body FROM tickets WHERE ticket = ?",
                                     (ticket_id,)).fetchone()
            if row is None:
                raise review.UnknownTicket(ticket_id)
            ticket = _ticket(row[0])
            state_row = connection.execute(_SELECT_STATE, (ticket.agent_id,)).fetchone()
            last = connection.execute(_LAST_AUDIT).fetchone()
            settlement = step(ticket, FRESH if state_row is None else _raw(*state_row),
                              1 if last is None else last[0] + 1)
            if settlement is None:
                return ticket, None
            self._settled(connection, settlement)
            return settlement.ticket, settlement.decision

    def _settled(self, connection: sqlite3.Connection, settlement: review.Settlement) -> None:
        """Write a ticket's step (in the caller's transaction)."""
        ticket = settlement.ticket
        connection.execute(_UPDATE_TICKET, (ticket.status, canonical_json(ticket.to_row()),
                                            ticket.ticket))
        state = settlement.state
        if state is not None:
            connection.execute(_UPSERT_STATE, _row(ticket.agent_id, cast(RawState, state)))
        self._append(connection, settlement.record)

    def state(self, agent_id: str) -> AgentState:
        return AgentState.from_raw(self.raw_state(agent_id))

    def raw_state(self, agent_id: str) -> RawState:
        with self._lock:
            row = self._connection.execute(_SELECT_STATE, (agent_id,)).fetchone()
        return FRESH if row is None else _raw(*row)

    def agents(self) -> list[str]:
        with self._lock:
            rows = self._connection.execute("SELECT agent_id FROM agents ORDER BY agent_id")
            return [row[0] for row in rows]

    def record_policy_load(self, policy: Policy, *, now: float | None = None) -> int:
        with self._transaction() as connection:
            return self._append(connection, audit.policy_load_record(
                time.time() if now is None else now, policy.hash, policy.name, policy.version, policy.schema_version))

    @staticmethod
    def _append(connection: sqlite3.Connection, record: dict[str, Any]) -> int:
        last = connection.execute(_LAST_AUDIT).fetchone()
        seq, prev = (1, None) if last is None else (last[0] + 1, last[1])
        body, digest = audit.seal_text(record, seq, prev)
        connection.execute(_INSERT_AUDIT, (seq, digest, body))
        return seq

    def audit_records(self) -> Iterator[dict[str, Any]]:
        return read_audit(self.path)

    def _reader(self) -> sqlite3.Connection:
        """The calling thread's read-only connection: reads never wait for the write lock."""
        connection: sqlite3.Connection | None = getattr(self._local, "reader", None)
        if connection is None:
            connection = sqlite3.connect(Path(self.path).resolve().as_uri() + "?mode=ro",
                                         uri=True, check_same_thread=False)
            self._local.reader = connection
            with self._lock:
                self._readers.append(connection)
        return connection

    def read_records(self, after_seq: int = 0, limit: int = 100, *, agent: str | None = None,
                     label: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        clauses = ["seq > ?"]
        values: list[Any] = [after_seq]
        for path, value in (("$.agent", agent), ("$.decision.label", label), ("$.kind", kind)):
            if value is not None:
                # a body that is not JSON (a damaged record) matches no filter; unfiltered it
                # is listed as unparsable, and verification reports it
                clauses.append(f"CASE WHEN json_valid(body) THEN json_extract(body, '{path}') "
                               "END = ?")
                values.append(value)
        values.append(limit)
        rows = self._reader().execute(
            f"SELECT seq, hash, body FROM audit WHERE {' AND '.join(clauses)} "
            "ORDER BY seq LIMIT ?", values)
        return [_record(*row) for row in rows]

    def last_seq(self) -> int:
        row = self._reader().execute("SELECT max(seq) FROM audit").fetchone()
        return int(row[0] or 0)

    def verify_audit(self, *, expected_head: str | None = None) -> VerifyResult:
        return verify_file(self.path, expected_head=expected_head)

    def export_audit(self, out: IO[str]) -> int:
        return export_file(self.path, out)

    def save_policy_table(self, table: dict[str, Any]) -> None:
        """Keep a compiled table by its hash, for the processes sharing this file."""
        with self._transaction() as connection:
            connection.execute("INSERT OR IGNORE INTO policies (hash, body) VALUES (?, ?)",
                               (table["hash"], canonical_json(table)))

    def policy_table(self, policy_hash: str) -> dict[str, Any] | None:
        """The compiled table with this hash, if a process saved it."""
        row = self._reader().execute("SELECT body FROM policies WHERE hash = ?",
                                     (policy_hash,)).fetchone()
        return None if row is None else saved_table(row[0], policy_hash)

    def count_agents(self) -> tuple[int, int]:
        """How many agents are active and how many shut down."""
        active, down = self._reader().execute(
            "SELECT count(*) - coalesce(sum(shut_down != 0), 0), "
            "coalesce(sum(shut_down != 0), 0) FROM agents").fetchone()
        return int(active), int(down)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self._loop_commits.close()
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            self._connection.close()


@dataclass(eq=False)
class _BatchState:
    """An agent's state within a batch: as its last decision left it, whether the agent was
    new, and whether its row must be written."""

    state: RawState
    new: bool
    changed: bool = False


class _Checkpointer(threading.Thread):
    """Checkpoints the WAL every ``interval`` seconds (``PASSIVE``), on its own connection."""

    def __init__(self, path: str, interval: float) -> None:
        super().__init__(name=f"sqlite-checkpoint {path}", daemon=True)
        self.path = path
        self.interval = interval
        self.stopping = threading.Event()
        self.checkpoints = 0
        self.failing: str | None = None
        """The error of the failing checkpoints (``None``: the last one succeeded)."""
        self.start()

    def run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=0.1, isolation_level=None,
                                     check_same_thread=False)
        try:
            while not self.stopping.wait(self.interval):
                self.checkpoint(connection)
            self.checkpoint(connection)
        finally:
            connection.close()

    def checkpoint(self, connection: sqlite3.Connection) -> None:
        """One checkpoint. One that fails is tried again at the next interval: busy (another
        process checkpoints) quietly; anything else (a full disk, an I/O error) is logged at
        its first failure, and the recovery once it succeeds again. Meanwhile the decisions
        stay in the WAL, which grows."""
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as error:
            if getattr(error, "sqlite_errorcode", 0) & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) \
                    and self.failing is None:
                self.failing = str(error)
                LOG.error("cannot checkpoint %s (the decisions stay in its WAL; trying again "
                          "every %g s): %s", self.path, self.interval, error)
            return
        if self.failing is not None:
            LOG.warning("checkpointing %s again (it failed: %s)", self.path, self.failing)
            self.failing = None
        self.checkpoints += 1

    def stop(self) -> None:
        self.stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=10)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` under the store's thread lock; rollback on error.

    :meth:`begin` and :meth:`end` may run in different threads (the lock is released by the
    thread that ends the transaction)."""

    def __init__(self, lock: threading.Lock, connection: sqlite3.Connection,
                 busy_timeout: float) -> None:
        self.lock = lock
        self.connection = connection
        self.busy_timeout = busy_timeout

    def begin(self) -> None:
        """Take the store's lock and the database's write lock, waiting for both."""
        self.lock.acquire()
        try:
            self.connection.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise

    def begin_now(self) -> bool:
        """:meth:`begin` without waiting: ``False``, with nothing taken, when the store or the
        database is busy (another thread, or another process writing) or cannot begin."""
        if not self.lock.acquire(blocking=False):
            return False
        connection = self.connection
        try:
            connection.execute("PRAGMA busy_timeout = 0")
            try:
                connection.execute("BEGIN IMMEDIATE")
            finally:
                connection.execute(f"PRAGMA busy_timeout = {round(self.busy_timeout * 1000)}")
        except sqlite3.Error:
            self.lock.release()
            return False
        except BaseException:
            self.lock.release()
            raise
        return True

    def end(self, error: BaseException | None = None) -> None:
        """Commit; roll back instead after ``error``, or when the commit fails (then raise its
        error). Releases the store's lock."""
        try:
            if error is None:
                try:
                    self.connection.execute("COMMIT")
                except BaseException:
                    self._roll_back()
                    raise
            else:
                self._roll_back()
        finally:
            self.lock.release()

    def _roll_back(self) -> None:
        """Roll back the transaction, unless SQLite already did: after a full disk or an I/O
        error it may have, and a ``ROLLBACK`` would then raise "no transaction is active" in
        place of the error that says what happened."""
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")

    def __enter__(self) -> sqlite3.Connection:
        self.begin()
        return self.connection

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        self.end(None if kind is None else error)


def prepare_schema(connection: sqlite3.Connection, path: str, *, upgrade: bool) -> None:
    """Create the schema in an empty file; check the version of an existing one and upgrade an
    older one (inside the caller's write transaction)."""
    found = schema_version(connection)
    upgrades = {0: (*VERSION_1, *UPGRADE_TO_2, *UPGRADE_TO_3, *UPGRADE_TO_4),
                UNVERSIONED: (*UPGRADE_TO_2, *UPGRADE_TO_3, *UPGRADE_TO_4),
                2: (*UPGRADE_TO_3, *UPGRADE_TO_4), 3: UPGRADE_TO_4}
    if found != 0:
        checked_version(found, path, upgrade=upgrade)
    for statement in upgrades.get(found, ()):
        connection.execute(statement)
    if found != SCHEMA_VERSION:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def schema_version(connection: sqlite3.Connection) -> int:
    """The file's store schema version: recorded (``PRAGMA user_version``), 1 for a store
    written before versions were recorded, 0 for an empty file. :class:`SchemaError` for a
    database that is something else."""
    recorded = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if recorded:
        return recorded
    tables = {row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return 0
    if {"agents", "audit"} <= tables:
        return UNVERSIONED
    raise SchemaError("not a sentra audit store: the SQLite database holds other tables; give "
                      "a new file or a store written by sentra-lang")


def file_schema_version(path: str | os.PathLike[str]) -> int:
    """The store schema version of a file, read only (0: an empty database)."""
    with contextlib.closing(_read_only(path)) as connection:
        return schema_version(connection)


def upgrade_file(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Create or upgrade the schema of a store file, in one transaction; ``(before, after)``
    versions. :class:`SchemaError` for a newer schema or a database that is not a store."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        before = schema_version(connection)
        prepare_schema(connection, os.fspath(path), upgrade=True)
        connection.execute("COMMIT")
        return before, SCHEMA_VERSION
    finally:
        connection.close()


def verify_file(path: str | os.PathLike[str], *, expected_head: str | None = None,
                anchor: audit.Head | None = None) -> VerifyResult:
    """Verify a store file in one read snapshot: the chain, its end against the stored head
    (version 2 and later), and every agent's stored state against the log (``anchor``: see
    :class:`~sentra_runtime.audit.LogVerifier`)."""
    with _snapshot(path) as connection:
        verifier = audit.LogVerifier(anchor=anchor)
        for seq, digest, text in connection.execute("SELECT seq, hash, body FROM audit "
                                                    "ORDER BY seq"):
            if not verifier.add(_record(seq, digest, text), text):
                break
        return verifier.result(head=_stored_head(connection), expected_head=expected_head,
                               states=_stored_states(connection),
                               tickets=_stored_tickets(connection))


def file_head(path: str | os.PathLike[str]) -> audit.Head:
    """The store file's head: the seq and hash of its last record (as the store keeps it; for a
    version-1 file, its log's end)."""
    with _snapshot(path) as connection:
        return _stored_head(connection) or _log_end(connection)


def export_file(path: str | os.PathLike[str], out: IO[str]) -> int:
    """Write a store file's log as JSON Lines, then its agents' states and its head, from one
    read snapshot (:func:`sentra_runtime.audit.write_export`); return the number of records."""
    with _snapshot(path) as connection:
        head = _stored_head(connection) or _log_end(connection)
        rows = connection.execute("SELECT seq, hash, body FROM audit ORDER BY seq")
        return audit.write_export((_record(*row) for row in rows), _stored_states(connection),
                                  head, out)


@contextlib.contextmanager
def _snapshot(path: str | os.PathLike[str]) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a store file, inside one read transaction."""
    connection = _read_only(path)
    try:
        connection.execute("BEGIN")
        checked_version(schema_version(connection), os.fspath(path), upgrade=True)
        yield connection
    finally:
        connection.close()


def _read_only(path: str | os.PathLike[str]) -> sqlite3.Connection:
    return sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)


def _stored_head(connection: sqlite3.Connection) -> audit.Head | None:
    """The head the store keeps (``None`` for a version-1 file, which keeps none)."""
    if schema_version(connection) < 2:
        return None
    row = connection.execute("SELECT seq, hash FROM head WHERE id = 1").fetchone()
    return (-1, None) if row is None else (int(row[0]), row[1])


def _log_end(connection: sqlite3.Connection) -> audit.Head:
    row = connection.execute(_LAST_AUDIT).fetchone()
    return (0, None) if row is None else (int(row[0]), row[1])


def _stored_states(connection: sqlite3.Connection) -> Iterator[tuple[str, RawState]]:
    version = schema_version(connection)
    anchor = "decay_anchor" if version >= 3 else "NULL"
    windows, group = ("limit_windows", "assigned_group") if version >= 4 else ("NULL", "NULL")
    for agent, risk, blocked, down, decay_anchor, limit_windows, assigned in connection.execute(
            f"SELECT agent_id, cumulative_risk, blocked_attempts, shut_down, {anchor}, {windows}, "
            f"{group} FROM agents ORDER BY agent_id"):
        yield agent, _raw(risk, blocked, down, decay_anchor, limit_windows, assigned)


_raw = stored_state
"""A stored row as the decider's state (:func:`~sentra_runtime.stores.schema.stored_state`)."""


def _row(agent_id: str, state: RawState) -> tuple[Any, ...]:
    """The parameters of :data:`_UPSERT_STATE` for an agent's state."""
    anchor = state[3] if len(state) > 3 else None
    return (agent_id, state[0], state[1], state[2], anchor, windows_text(state))


def _stored_tickets(connection: sqlite3.Connection,
                    ) -> list[tuple[str, str, dict[str, Any] | str]] | None:
    """Every stored review ticket as verification compares it (:func:`review.stored_view`:
    its body with its columns' values; ``None`` before version 4: no tickets)."""
    if schema_version(connection) < 4:
        return None
    return [review.stored_view(ticket, status, body, agent_id=agent, created=created,
                               expires=expires)
            for ticket, agent, status, created, expires, body in connection.execute(
                "SELECT ticket, agent_id, status, created, expires, body FROM tickets "
                "ORDER BY ticket")]



def _insert_ticket(connection: sqlite3.Connection, ticket: review.Ticket) -> None:
    connection.execute(_INSERT_TICKET, (ticket.ticket, ticket.agent_id, ticket.status,
                                        ticket.created, ticket.expires,
                                        canonical_json(ticket.to_row())))


def _ticket(text: str) -> review.Ticket:
    return review.Ticket.from_body(text)


def read_audit(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The audit records of a store file, in seq order, read in one snapshot.

    The ``body`` column holds the canonical JSON of the record without its hash (the exact text
    that was hashed), the ``hash`` column its hash. A body whose JSON no longer parses is
    yielded as a non-record, which the verifier reports.
    """
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    connection = sqlite3.connect(uri, uri=True)
    try:
        connection.execute("BEGIN")
        for row in connection.execute("SELECT seq, hash, body FROM audit ORDER BY seq"):
            yield _record(*row)
    finally:
        connection.close()


_record = audit.stored_record


def is_sqlite_file(path: str | os.PathLike[str]) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False
