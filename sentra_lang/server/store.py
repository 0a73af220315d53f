"""The server's view of the SQLite store: decisions annotated with their request, and paged reads.

:class:`ServerStore` is the runtime's :class:`SQLiteStore` with two additions the server needs:
the audit record of a decision also keeps what the HTTP request said (the Sentra event carries
``target`` and the raw request values, which the policy does not declare), and the sealed record
of the calling thread's last write is handed back, so a response and ``GET /events`` are built
from the same record. :class:`AuditReader` reads the log by sequence number without loading it
whole.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sentra_runtime import SQLiteStore, audit
from sentra_runtime.decision import Decision
from sentra_runtime.stores import FRESH, Decide, RawState
from sentra_runtime.stores import sqlite as sqlite_store

Annotate = Callable[[Decision], dict[str, Any]]
"""Extra keys for a decision's audit record, computed from the decision inside its transaction."""


class ServerStore(SQLiteStore):
    """A :class:`SQLiteStore` whose decision records carry the request's annotation.

    Its ``apply`` is the runtime store's decision transaction (same statements, same sealing)
    with one step added: the calling thread's annotation is merged into the audit record before
    it is sealed, and the sealed record is kept for the caller. This stands in for a runtime API
    (``Engine.evaluate(..., annotations=...)`` returning the audit record) that does not exist
    yet.
    """

    def __init__(self, path: str | os.PathLike[str], **options: Any) -> None:
        self._local = threading.local()
        super().__init__(path, **options)

    def apply(self, decide: Decide, agent_id: str, action: str, fields: Any, code: int,
              payload: Any) -> Decision:
        annotate: Annotate | None = getattr(self._local, "annotate", None)
        with self._transaction() as connection:
            risk, blocked, down, seq, prev = connection.execute(
                sqlite_store._STATE_AND_LAST_AUDIT, (agent_id,)).fetchone()
            state: RawState = FRESH if risk is None else (risk, blocked, bool(down))
            decision, new_state = decide(state, agent_id, action, fields, code, payload)
            if risk is None or new_state != state:
                connection.execute(sqlite_store._UPSERT_STATE, (agent_id, *new_state))
            record = audit.decision_record(time.time(), decision)
            if annotate is not None:
                record.update(annotate(decision))
            body, digest = audit.seal_text(record, 1 if seq is None else seq + 1, prev)
            connection.execute(sqlite_store._INSERT_AUDIT, (record["seq"], digest, body))
        record["hash"] = digest
        self._local.record = record
        return decision

    def reset(self, agent_id: str | None, operator: str, policy_hash: str | None) -> list[str]:
        agents = super().reset(agent_id, operator, policy_hash)
        self._local.record = None
        return agents

    def annotating(self, annotate: Annotate | None) -> None:
        """Set (or clear) the annotation of the calling thread's next decisions."""
        self._local.annotate = annotate
        self._local.record = None

    def last_record(self) -> dict[str, Any] | None:
        """The sealed record of the calling thread's last decision (``None`` after a reset)."""
        record: dict[str, Any] | None = getattr(self._local, "record", None)
        return record


class AuditReader:
    """Read-only, paged access to the audit table of a store file (one connection per thread)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.uri = Path(path).resolve().as_uri() + "?mode=ro"
        self._local = threading.local()
        self._reset_lock = threading.Lock()
        self._reset_scanned = 0
        self._last_global_reset = 0

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.uri, uri=True, check_same_thread=False)
            self._local.connection = connection
        return connection

    def head(self) -> int:
        """The last sequence number (0 for an empty log)."""
        row = self._connection().execute("SELECT max(seq) FROM audit").fetchone()
        return int(row[0] or 0)

    def records(self, *, after: int = 0, limit: int = 100, agent: str | None = None,
                label: str | None = None, kind: str | None = None,
                before: int | None = None) -> list[dict[str, Any]]:
        """Records with ``seq > after`` (and ``< before``), oldest first, filtered, at most
        ``limit``."""
        clauses = ["seq > ?"]
        values: list[Any] = [after]
        if before is not None:
            clauses.append("seq < ?")
            values.append(before)
        if agent is not None:
            clauses.append("json_extract(body, '$.agent') = ?")
            values.append(agent)
        if label is not None:
            clauses.append("json_extract(body, '$.decision.label') = ?")
            values.append(label)
        if kind is not None:
            clauses.append("json_extract(body, '$.kind') = ?")
            values.append(kind)
        values.append(limit)
        query = (f"SELECT hash, body FROM audit WHERE {' AND '.join(clauses)} "
                 "ORDER BY seq LIMIT ?")
        return [_record(digest, body) for digest, body in self._connection().execute(query, values)]

    def last(self, kind: str) -> dict[str, Any] | None:
        """The newest record of ``kind``."""
        row = self._connection().execute(
            "SELECT hash, body FROM audit WHERE json_extract(body, '$.kind') = ? "
            "ORDER BY seq DESC LIMIT 1", (kind,)).fetchone()
        return None if row is None else _record(*row)

    def record(self, seq: int) -> dict[str, Any] | None:
        row = self._connection().execute("SELECT hash, body FROM audit WHERE seq = ?",
                                         (seq,)).fetchone()
        return None if row is None else _record(*row)

    def last_global_reset(self) -> int:
        """The seq of the last reset of all agents (0 when there was none); scans only new
        records."""
        with self._reset_lock:
            head = self.head()
            if head > self._reset_scanned:
                row = self._connection().execute(
                    "SELECT max(seq) FROM audit WHERE seq > ? AND seq <= ? "
                    "AND json_extract(body, '$.kind') = 'reset' "
                    "AND json_extract(body, '$.agent') IS NULL",
                    (self._reset_scanned, head)).fetchone()
                if row[0] is not None:
                    self._last_global_reset = int(row[0])
                self._reset_scanned = head
            return self._last_global_reset

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _record(digest: str, body: str) -> dict[str, Any]:
    """An audit row as a record: the hashed body plus its hash (as ``read_audit`` gives it)."""
    record: dict[str, Any] = json.loads(body)
    record["hash"] = digest
    return record
