"""The server's reads of the audit log and of agent state, on the runtime store's API.

:class:`LogFollower` follows the log for what other processes sharing the store write (the
workers of ``serve --workers N``, other instances on one PostgreSQL database): it tells the live
stream that the log moved, and keeps this process on the newest policy load.

:class:`AuditReader` pages through the log by sequence number, fetches one record by its seq
(a decision's, a reset's or a policy load's, as the runtime reports them), and keeps track of
the last reset of all agents (where the Sentra-compatible event list starts).

:class:`Reads` runs the blocking part of every read endpoint in worker threads of its own,
at most :data:`READ_THREADS` at a time: however many reads arrive, they neither hold the event
loop nor take the threads that decisions run in, and they queue rather than crowd out the
decisions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sentra_runtime import Store
from sentra_runtime.stores.sqlite import SQLiteStore

if TYPE_CHECKING:
    from sentra_lang.server.gate import Gate

LOG = logging.getLogger("sentra_lang.server")
FOLLOW_SECONDS = 0.2
"""How often each server process reads the log's head, for what other processes wrote."""
_RESET_PAGE = 1000
READ_THREADS = 1
"""Reads that run at once; more wait their turn (decisions never do). One: a read is Python
work that holds the interpreter lock, so more threads add little reading speed and take more
of it from the decisions (docs/benchmarks.md, "Reading the log")."""

T = TypeVar("T")


class AuditReader:
    """Read-only access to the audit log of a store, by sequence number."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._reset_lock = threading.Lock()
        self._reset_scanned = 0
        self._last_global_reset = 0

    def head(self) -> int:
        """The last sequence number (0 for an empty log)."""
        return self.store.last_seq()

    def records(self, *, after: int = 0, limit: int = 100, agent: str | None = None,
                label: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        """Records with ``seq > after``, oldest first, filtered, at most ``limit``."""
        return self.store.read_records(after, limit, agent=agent, label=label, kind=kind)

    def record(self, seq: int | None) -> dict[str, Any] | None:
        """The record with this seq (``None`` when there is none). A decision the SQLite store
        just committed for this process comes from memory (the store's
        ``committed_record``), without a query."""
        if seq is None or seq < 1:
            return None
        if isinstance(self.store, SQLiteStore):
            kept = self.store.committed_record(seq)
            if kept is not None:
                return kept
        found = self.store.read_records(seq - 1, 1)
        return found[0] if found and found[0].get("seq") == seq else None

    def last_global_reset(self) -> int:
        """The seq of the last reset of all agents (0 when there was none); scans only the
        records written since the last call."""
        with self._reset_lock:
            while True:
                head = self.store.last_seq()
                resets = self.store.read_records(self._reset_scanned, _RESET_PAGE, kind="reset")
                for reset in resets:
                    if reset.get("agent") is None:
                        self._last_global_reset = reset["seq"]
                if len(resets) < _RESET_PAGE:
                    # the scan read a snapshot taken after `head`: nothing up to it is unseen
                    self._reset_scanned = max([head, *(reset["seq"] for reset in resets[-1:])])
                    return self._last_global_reset
                self._reset_scanned = resets[-1]["seq"]


class Reads:
    """Worker threads for reads, apart from the ones decisions and operator actions use."""

    def __init__(self, threads: int = READ_THREADS) -> None:
        self.threads = threads
        self._limiter: Any = None

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in a read thread."""
        import anyio.to_thread

        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.threads)
        return await anyio.to_thread.run_sync(work, *args, limiter=self._limiter)


class LogFollower:
    """Follows the shared log for records other processes write.

    Every :data:`FOLLOW_SECONDS` it reads the log's head; when the head moved, it tells the
    ``moved`` listeners (the live stream, which then reads the new records), and when a policy
    load newer than this process's names another policy, the gate adopts that policy (the
    newest policy load in the log is what every process serves: a reload through any instance,
    or an instance started with another policy, reaches all of them).
    """

    def __init__(self, gate: Gate, interval: float = FOLLOW_SECONDS) -> None:
        self.gate = gate
        self.interval = interval
        self.moved: list[Callable[[int], None]] = []
        self.seen = 0
        """The head up to which the log has been followed."""
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> None:
        self.seen = self.gate.reader.head()
        self._thread = threading.Thread(target=self._run, name="sentra log follower",
                                         daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.step()
            except Exception as error:   # the store is down: say so once, and try again
                if not self._failing:
                    LOG.warning("cannot follow the audit log: %s", error)
                self._failing = True
            else:
                self._failing = False

    def step(self) -> None:
        """Follow the log from :attr:`seen` to its head."""
        head = self.gate.reader.head()
        if head <= self.seen:
            return
        newest = self._newest_policy_load()
        self.seen = max(head, self.seen)
        for listener in self.moved:
            listener(head)
        if newest is not None and self.gate.adopt(newest["policy_hash"], newest["seq"]):
            LOG.warning("now serving the policy %s, which another process loaded (audit seq "
                        "%s)", newest["policy_hash"], newest["seq"])

    def _newest_policy_load(self) -> dict[str, Any] | None:
        newest, after = None, self.seen
        while True:
            loads = self.gate.reader.records(after=after, limit=_RESET_PAGE, kind="policy_load")
            if loads:
                newest, after = loads[-1], loads[-1]["seq"]
            if len(loads) < _RESET_PAGE:
                return newest
