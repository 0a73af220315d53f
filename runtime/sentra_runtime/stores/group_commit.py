"""Group commit, shared by the SQL stores: decisions that wait together share one transaction.

A :class:`Pending` is one decision waiting for its transaction. With :class:`GroupCommit`, the
thread that finds no commit under way leads: it commits the queue (at most ``MAX_BATCH``
decisions) with the store's ``commit(batch)`` and wakes every decision of the batch, and the
oldest decision still waiting leads the next one. :class:`LoopCommit` does the same for callers
on an asyncio event loop (a store's ``apply_async``), with the transactions in a commit thread
of the store's own. Each decision is answered only after its own commit, and each caller's
decisions keep their order.
"""

from __future__ import annotations

import _thread
import asyncio
import collections
import contextlib
import queue
import threading
import time
from collections.abc import Callable
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
    sealed: tuple[int, str, str] | None = None
    """The seq, hash and body text of the audit record the store wrote for the decision."""
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

    @classmethod
    def of(cls, decide: Decide, agent_id: str, action: str, fields: Any, code: int,
           payload: Any, now: float | None, annotations: audit.Annotations | None) -> Pending:
        """A store's ``apply`` arguments as a pending decision (``now``: the current time when
        ``None``)."""
        return cls(decide, agent_id, action, fields, code, payload, annotations,
                   time.time() if now is None else now)

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


class BatchedStore:
    """What the SQL stores share: a decision is a :class:`Pending` that their
    ``_commit_batch`` decides and commits in a transaction of its own, or, with group commit,
    in the batch of the decisions waiting together (:class:`GroupCommit`)."""

    _group: GroupCommit | None

    def _commit_batch(self, batch: list[Pending]) -> None:
        raise NotImplementedError

    @property
    def group_commit(self) -> bool:
        return self._group is not None

    def apply(self, decide: Decide, agent_id: str, action: str, fields: Any, code: int,
              payload: Any, now: float | None = None, *,
              annotations: audit.Annotations | None = None) -> Decision:
        pending = Pending.of(decide, agent_id, action, fields, code, payload, now, annotations)
        if self._group is not None:
            return self._group.submit(pending)
        self._commit_batch([pending])
        return pending.outcome()


Prepare = Callable[..., Callable[[], None]]
"""Called on the loop with a batch: does what may be done there and returns the work left for
the commit thread (which records each decision's outcome or error on its :class:`Pending`);
with ``follow=True`` it is also given the :class:`LoopCommit`."""


class LoopCommit:
    """Group commit for callers on one asyncio event loop.

    Decisions queue on the loop. While no batch is under way, the queue (up to ``limit``
    decisions) is taken once the loop has run the callbacks that were ready (so decisions that
    become ready together share it) and handed to ``prepare``, whose work runs in the commit
    thread, where the loop does not wait for it. The batch's decisions are answered when that
    work ended (one wake-up of the loop per batch), and the decisions that queued meanwhile are
    taken next, in arrival order.

    With ``follow=True``, ``prepare`` is also given this LoopCommit, and its work may go on with
    the decisions that queued meanwhile itself (:meth:`more`), answering each batch as it is
    committed (:meth:`answered`): a store that sends the next batch's first statement with the
    last statement of a batch (the PostgreSQL store) saves a round trip per batch.
    """

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop, prepare: Prepare,
                 limit: int, *, follow: bool = False) -> None:
        self.loop = loop
        self.prepare = prepare
        self.limit = limit
        self.follow = follow
        self.queue: list[tuple[Pending, asyncio.Future[Decision]]] = []
        self._queue_lock = threading.Lock()
        """The queue, which :meth:`more` takes from the commit thread."""
        self.busy = False
        self._batches: collections.deque[list[tuple[Pending, asyncio.Future[Decision]]]] = \
            collections.deque()
        """The batches of the work under way not answered yet, oldest first."""
        self.thread = _CommitThread(name, loop)

    async def submit(self, pending: Pending) -> Decision:
        answer: asyncio.Future[Decision] = self.loop.create_future()
        with self._queue_lock:
            self.queue.append((pending, answer))
        if not self.busy:
            self._take_soon()
        return await answer

    def more(self) -> list[Pending]:
        """(In the commit thread, from the work under way, ``follow=True``.) The decisions
        queued since the work's last batch was taken (up to ``limit``; none: ``[]``), as its
        next batch."""
        with self._queue_lock:
            taken, self.queue = self.queue[:self.limit], self.queue[self.limit:]
        if taken:
            self._batches.append(taken)
        return [pending for pending, _ in taken]

    def answered(self) -> None:
        """(In the commit thread, from the work under way.) The oldest batch of the work is
        committed (or failed): answer its decisions now."""
        batch = self._batches.popleft()
        with contextlib.suppress(RuntimeError):   # a closed loop: no one is waiting any more
            self.loop.call_soon_threadsafe(self._settle, batch)

    def _take_soon(self) -> None:
        """Take the queue once the loop has run what is ready now: decisions that become
        ready together (tasks the last batch woke) then share the next one."""
        self.busy = True
        self.loop.call_soon(self._take)

    def _take(self) -> None:
        with self._queue_lock:
            waiting, self.queue = self.queue[:self.limit], self.queue[self.limit:]
        batch = [pending for pending, _ in waiting]
        try:
            work = self.prepare(batch, self) if self.follow else self.prepare(batch)
        except BaseException as error:   # an interrupt: nothing of the batch was written
            self.busy = False
            fail_batch(batch, error)
            raise   # (not reached: fail_batch re-raised it)
        self._batches.append(waiting)
        self.thread.jobs.put((work, self._answer))

    def _answer(self) -> None:
        """The work ended: answer its batches not answered yet, and take the queue."""
        while self._batches:
            self._settle(self._batches.popleft())
        self.busy = False
        if self.queue:
            self._take_soon()

    @staticmethod
    def _settle(batch: list[tuple[Pending, asyncio.Future[Decision]]]) -> None:
        for pending, answer in batch:
            if answer.done():   # its caller stopped waiting (the decision stands)
                continue
            try:
                answer.set_result(pending.outcome())
            except BaseException as error:
                answer.set_exception(error)

    def close(self) -> None:
        self.thread.stop()


class LoopCommits:
    """A store's :class:`LoopCommit`, one per event loop that decides on it: loops running at
    the same time (one per thread) each have their own queue and commit thread, and the commit
    thread of a loop that was closed finishes what it was handed, then ends (when another loop
    first decides, or at :meth:`close`). A single slot for the latest loop once retired the
    commit thread of a loop still deciding, whose next batch then waited forever."""

    def __init__(self, name: str, prepare: Prepare, limit: int, *, follow: bool = False) -> None:
        self.name = name
        self.prepare = prepare
        self.limit = limit
        self.follow = follow
        self._by_loop: dict[asyncio.AbstractEventLoop, LoopCommit] = {}
        self._lock = threading.Lock()

    def for_running_loop(self) -> LoopCommit:
        """The running loop's LoopCommit (made at its first decision)."""
        loop = asyncio.get_running_loop()
        committer = self._by_loop.get(loop)
        if committer is not None:
            return committer
        with self._lock:
            for closed in [other for other in self._by_loop if other.is_closed()]:
                self._by_loop.pop(closed).thread.jobs.put(None)
            committer = self._by_loop[loop] = LoopCommit(self.name, loop, self.prepare,
                                                         self.limit, follow=self.follow)
        return committer

    def close(self) -> None:
        """Finish the work handed to every commit thread, then end them."""
        with self._lock:
            committers, self._by_loop = list(self._by_loop.values()), {}
        for committer in committers:
            committer.close()


class _CommitThread(threading.Thread):
    """Runs the work a :class:`LoopCommit` hands it, one batch after the other, and after each
    has the loop call its answer."""

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(name=name, daemon=True)
        self.loop = loop
        self.jobs: queue.SimpleQueue[tuple[Callable[[], None], Callable[[], None]] | None] = \
            queue.SimpleQueue()
        self.start()

    def run(self) -> None:
        while (job := self.jobs.get()) is not None:
            work, answer = job
            try:
                work()
            finally:
                # a closed loop raises RuntimeError: no one is waiting any more
                with contextlib.suppress(RuntimeError):
                    self.loop.call_soon_threadsafe(answer)

    def stop(self) -> None:
        """Finish the work handed over, then end."""
        self.jobs.put(None)
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=60)
