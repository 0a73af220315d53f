"""The server's reads of the audit log and of agent state, on the runtime store's API.

:class:`AuditReader` pages through the log by sequence number, fetches one record by its seq
(a decision's, a reset's or a policy load's, as the runtime reports them), and keeps track of
the last reset of all agents (where the Sentra-compatible event list starts).

:class:`Reads` runs the blocking part of every read endpoint in worker threads of its own,
at most :data:`READ_THREADS` at a time: however many reads arrive, they neither hold the event
loop nor take the threads that decisions run in, and they queue rather than crowd out the
decisions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sentra_runtime import Store

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
        """The record with this seq (``None`` when there is none)."""
        if seq is None or seq < 1:
            return None
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
