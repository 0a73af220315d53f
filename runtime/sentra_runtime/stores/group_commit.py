"""Group commit, shared by the SQL stores: decisions that wait together share one transaction.

A :class:`Pending` is one decision waiting for its transaction. With :class:`GroupCommit`, the
thread that finds no commit under way leads: it commits the queue (at most ``MAX_BATCH``
decisions) with the store's ``commit(batch)`` and wakes every decision of the batch, and the
oldest decision still waiting leads the next one. Each decision is answered only after its own
commit, and each thread's decisions keep their order.
"""

from __future__ import annotations

import _thread
import threading
from dataclasses import dataclass, field
from typing import Any

from sentra_runtime import audit
from sentra_runtime.decision import Decision
from sentra_runtime.stores import Decide

SYNCHRONOUS_MODES = ("NORMAL", "FULL")
"""The durability settings both SQL stores take (their docstrings say what each means)."""
MAX_BATCH = 256
"""At most this many decisions share one transaction."""


@dataclass(eq=False)
class Pending:
    """One decision waiting for its transaction, and then its outcome."""

    decide: Decide
    agent_id: str
    action: str
    fields: Any
    code: int
    payload: Any
    annotations: audit.Annotations | None
    now: float
    """The decision's time (the engine's clock)."""
    decision: Decision | None = None
    error: BaseException | None = None
    wake: Any = field(default_factory=_thread.allocate_lock)
    """Held until the decision's transaction ended, or until this thread is to lead the next
    group commit (then ``finished`` is false)."""

    def __post_init__(self) -> None:
        self.wake.acquire()

    @property
    def finished(self) -> bool:
        return self.decision is not None or self.error is not None

    def decided(self, decision: Decision) -> None:
        self.decision = decision

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.decision, self.error = None, error

    def outcome(self) -> Decision:
        """The decision, once its transaction committed; or the error that stopped it."""
        if self.error is not None:
            raise self.error
        assert self.decision is not None
        return self.decision


def fail_batch(batch: list[Pending], error: BaseException) -> None:
    """Fail every decision of ``batch`` with ``error``; re-raise an error that is not an
    ``Exception`` (an interrupt) once they are failed."""
    for pending in batch:
        pending.fail(error)
    if not isinstance(error, Exception):
        raise error


class GroupCommit:
    """Leader and followers: the thread that finds no commit under way commits the queue."""

    def __init__(self, commit: Any) -> None:
        self._commit = commit
        self._mutex = threading.Lock()
        self._queue: list[Pending] = []
        self._leading = False

    def submit(self, pending: Pending) -> Decision:
        with self._mutex:
            self._queue.append(pending)
            lead = not self._leading
            self._leading = True
        if not lead:
            pending.wake.acquire()  # woken when decided, or to lead the next batch
        if not pending.finished:
            self._lead()
        return pending.outcome()

    def _lead(self) -> None:
        """Commit the queue (up to MAX_BATCH), wake its decisions, and hand the next batch to
        the oldest waiting decision's thread."""
        with self._mutex:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        try:
            self._commit(batch)
        finally:
            with self._mutex:
                successor = self._queue[0] if self._queue else None
                self._leading = successor is not None
            for pending in batch:
                if not pending.finished:  # only if the commit itself was interrupted
                    pending.fail(RuntimeError("the group commit was interrupted"))
                if pending.wake.locked():
                    pending.wake.release()
            if successor is not None:
                successor.wake.release()
