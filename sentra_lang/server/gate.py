"""The gate behind every endpoint: one policy (swappable), one store, and who to tell.

Decisions are made on the event loop and serialised by the store. With a SQLite file, decisions
that arrive while a commit is under way share the next transaction (group commit), which commits
in the store's commit thread, so the loop never waits for a commit; with PostgreSQL the queue is
decided and committed in the store's commit thread. Each decision is answered only after its commit (SQLite:
``synchronous=FULL``, after its fsync). A reload compiles the policy file again and swaps in a
new :class:`Engine` over the same store, so agent state is kept; a policy that does not compile
is refused and the old engine keeps serving.

The store is a SQLite file or a PostgreSQL database (``--db postgresql://...``), which other
processes (workers, other instances) may share. Every policy load saves the compiled table in the
store, and :meth:`Gate.adopt` serves a policy another process loaded (the newest policy load in
the shared log wins: sentra_lang.server.store.LogFollower).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentra_runtime import Engine, Policy
from sentra_runtime.decision import Decision
from sentra_runtime.inputs import MISSING
from sentra_runtime.stores import SharedStore, Store, is_postgres_url, open_store

from sentra_lang.server.store import AuditReader

CHECKPOINT_SECONDS = 0.25
"""WAL checkpoints run in a background thread this often, never inside a decision's commit
(a checkpoint there costs that request several milliseconds: the p99)."""
GROUP_COMMIT = True
"""Decisions that arrive together share one SQLite transaction (sentra_runtime.stores.sqlite):
each is answered only after its commit, so nothing answered is lost, and one commit serves
every request waiting for it."""
SYNCHRONOUS = "FULL"
"""Every commit is synced to disk before its decisions are answered: nothing answered is lost,
even on a power loss or an OS crash (docs/server.md, "Durability"). Group commit makes that one
fsync per batch of concurrent decisions, in the store's commit thread, while the event loop goes
on deciding; ``NORMAL`` would survive a crash of the process but could lose the last moments on
a power loss."""

Listener = Callable[[dict[str, Any], float], None]
"""Told of every audit record this server writes, with the decision's duration (0 for others)."""


class PolicyRefused(Exception):
    """The policy file does not compile, or cannot be read (``unreadable``: missing, not a
    regular file, too large, not text); ``problems`` are rendered diagnostics."""

    def __init__(self, path: Path, problems: list[str], *, unreadable: bool = False) -> None:
        super().__init__(f"{path}: the policy does not compile")
        self.path = path
        self.problems = problems
        self.unreadable = unreadable


@dataclass(frozen=True)
class FieldError:
    """One input value that does not fit its declared type, located in the request body."""

    loc: tuple[str | int, ...]
    type: str
    msg: str
    input: Any

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "loc": list(self.loc), "msg": self.msg, "input": self.input}


def load_table(path: Path) -> dict[str, Any]:
    """The decision table of a policy file: a compiled ``.json`` table or ``.sentra`` source."""
    from sentra_lang.loader import FileUnreadable
    from sentra_lang.policy_file import load_policy_file

    try:
        loaded = load_policy_file(path)
    except FileUnreadable as error:
        raise PolicyRefused(path, [str(error)], unreadable=True) from error
    if loaded.table is None:
        raise PolicyRefused(path, loaded.problems)
    return loaded.table


def open_state(db: str | os.PathLike[str], answer_timeout: float | None = None) -> Store:
    """The server's store for ``--db``: a SQLite file (background checkpoints) or a PostgreSQL
    URL, both with the server's commit settings; on PostgreSQL, ``answer_timeout`` bounds each
    wait for the database's answer (``None``: the store's default), and the wait for an
    agent's lock is at most half of it (the store's rule: a statement may wait that long)."""
    options: dict[str, Any] = {"group_commit": GROUP_COMMIT, "synchronous": SYNCHRONOUS}
    if not is_postgres_url(db):
        options["checkpoint_interval"] = CHECKPOINT_SECONDS
    elif answer_timeout is not None:
        from sentra_runtime.stores.postgres import LOCK_SECONDS

        options.update(answer_timeout=answer_timeout,
                       lock_timeout=min(LOCK_SECONDS, answer_timeout / 2))
    return open_store(db, **options)


class Gate:
    """Evaluate, reset and reload for the server; tells listeners about every audit record."""

    def __init__(self, policy_path: str | os.PathLike[str], db: str | os.PathLike[str], *,
                 answer_timeout: float | None = None) -> None:
        self.policy_path = Path(policy_path)
        self.db = os.fspath(db)
        table = load_table(self.policy_path)
        self.store = open_state(self.db, answer_timeout)
        self.reader = AuditReader(self.store)
        self.listeners: list[Listener] = []
        self._reload_lock = threading.Lock()
        self.clock: Callable[[], float] = time.time
        """The time of decisions, resets and loads (tests set a clock they move)."""
        self._save(table)
        self._engine = Engine(table, self.store, clock=self._now)
        self.table = table
        self.loaded_at = time.time()
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        """This server process, as ``/v1/policy`` names it."""
        self.origin = "file"
        """Where the policy served came from: ``file`` (loaded here, at start or by a reload)
        or ``log`` (adopted: another process loaded it)."""

    def _now(self) -> float:
        """The gate's clock, read at each call (so a clock set later is used)."""
        return self.clock()

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def policy(self) -> Policy:
        return self._engine.policy

    async def decide(self, agent_id: str, action: str, fields: Mapping[str, Any],
                     annotate: Callable[[Policy, Decision], dict[str, Any]] | None = None,
                     ) -> tuple[Decision, dict[str, Any]]:
        """Decide (on the event loop; the commit runs in the store's commit thread), and return
        the decision with its sealed audit record once it is committed.

        ``annotate(policy, decision)`` gives extra keys for the audit record; it runs inside the
        decision's transaction, with the policy that decided.
        """
        engine = self._engine
        policy = engine.policy
        started = time.perf_counter()
        decision = await engine.evaluate_async(
            agent_id, action, fields,
            annotations=None if annotate is None else lambda made: annotate(policy, made))
        record = self._written(decision.seq, "decision")
        self._tell(record, time.perf_counter() - started)
        return decision, record

    def reset(self, agent_id: str | None, operator: str) -> dict[str, Any]:
        """Reset one agent (or all, for ``None``); return the reset's audit record."""
        with self._reload_lock:
            reset = self._engine.reset(agent_id, operator=operator)
        record = self._written(reset.seq, "reset")
        self._tell(record)
        return record

    def assign_group(self, agent_id: str, group: str | None, operator: str) -> dict[str, Any]:
        """An operator's group assignment (``None`` clears it); its audit record.
        ``ValueError`` for a group the policy does not declare."""
        with self._reload_lock:
            seq = self._engine.assign_group(agent_id, group, operator=operator)
        record = self._written(seq, "group")
        self._tell(record)
        return record
    def review(self, ticket: str, approve: bool, operator: str,
               note: str | None) -> tuple[Decision, dict[str, Any]]:
        """An operator's verdict on a review ticket (``Engine.review``: raises its
        ``TicketError``s); the decision and the verdict's audit record."""
        with self._reload_lock:
            decision = self._engine.review(ticket, approve, operator=operator, note=note)
        record = self._written(decision.seq, "review")
        self._tell(record)
        return decision, record

    def _written(self, seq: int | None, kind: str) -> dict[str, Any]:
        """The audit record the runtime just reported writing at ``seq``."""
        record = self.reader.record(seq)
        if record is None or record.get("kind") != kind:
            raise RuntimeError(f"the store wrote no {kind} record at seq {seq}")
        return record

    def reload(self) -> tuple[Policy, Policy]:
        """Compile the policy file again and swap it in; ``(old, new)``. Raises
        :class:`PolicyRefused` and keeps the old policy when the file does not compile."""
        with self._reload_lock:
            table = load_table(self.policy_path)
            old = self._engine.policy
            self._save(table)
            record = self._swap(table, "file")
        self._tell(record)
        return old, self._engine.policy

    def adopt(self, policy_hash: str, seq: int) -> bool:
        """Serve the policy with this hash, which another process sharing the store loaded
        (its load's record is at ``seq``); ``False`` when it is served already, this process
        loaded a policy after it, or the store does not have its table."""
        engine = self._engine
        if engine.policy.hash == policy_hash or (engine.policy_load_seq or 0) >= seq:
            return False
        table = self.store.policy_table(policy_hash) \
            if isinstance(self.store, SharedStore) else None
        if table is None:
            return False
        with self._reload_lock:
            engine = self._engine
            if engine.policy.hash == policy_hash or (engine.policy_load_seq or 0) >= seq:
                return False
            record = self._swap(table, "log")
        self._tell(record)
        return True

    def _save(self, table: dict[str, Any]) -> None:
        """Keep the compiled table in a shared store, for the processes that follow it."""
        if isinstance(self.store, SharedStore):
            self.store.save_policy_table(table)

    def _swap(self, table: dict[str, Any], origin: str) -> dict[str, Any]:
        """Serve ``table`` from now on (under the reload lock); its policy load's record."""
        engine = Engine(table, self.store, clock=self._now)
        record = self._written(engine.policy_load_seq, "policy_load")
        self.table = table
        self.loaded_at = time.time()
        self.origin = origin
        self._engine = engine
        return record

    def _tell(self, record: dict[str, Any], seconds: float = 0.0) -> None:
        for listener in self.listeners:
            listener(record, seconds)

    def close(self) -> None:
        self.store.close()


def field_errors(policy: Policy, fields: Mapping[str, Any],
                 locate: Callable[[str], tuple[str | int, ...]]) -> list[FieldError]:
    """Every problem the runtime would block the input for (sentra_runtime.inputs, the one
    definition): a value that does not fit its declared type, an object on a field's path
    that is not an object, a field given both nested and flat, a required field missing, and
    a key the policy does not declare when it refuses those.

    The engine would block such input as ``INVALID_INPUT`` or ``UNDECLARED_FIELD`` (a strike);
    the server refuses the request with a 422 instead, so a client bug neither shuts an agent
    down nor writes anything. ``locate`` turns a field's dotted name into the 422's ``loc``.
    """
    return [FieldError(locate(problem.field), *problem.error,
                       None if problem.value is MISSING else problem.value)
            for problem in policy.input_schema.problems(fields)]
