"""The in-process disk-full probes of tests/stores/test_disk_full.py, each given a
:class:`~tests.diskfull_fixtures.Disk` to fill and free.

A probe runs in the test's process on a tmpfs disk, and in a subprocess of its own on an
``fsize`` disk (whose limit is a process's): ``python -m tests.stores.disk_full_probes PROBE
FOLDER`` exits 0 when every check held (an assertion's traceback otherwise).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentra_runtime import Engine, MemoryStore, SQLiteStore
from sentra_runtime.review import TicketClosed
from sentra_runtime.stores.sqlite import read_audit, verify_file

from tests.diskfull_fixtures import Disk
from tests.runtime.helpers import SENTRA_TABLE, Clock, compiled_table
from tests.stores.store_worker import ACTIONS

DISK_ERRORS = {"tmpfs": "database or disk is full", "fsize": "disk I/O error"}
"""What SQLite says when a write fails: no space left (``ENOSPC``), or a file that may not grow
(``EFBIG``, which SQLite reports as an I/O error)."""
AGENTS = [f"disk-{index}" for index in range(6)]
FAILURES_WANTED = 12
"""Each writer stops after this many failed decisions on the full disk (or ``MAX_TRIES``)."""
MAX_TRIES = 3000
REVIEWS = """policy refunds version "1" {
  risk_threshold 100
  review_timeout 1h
}

input {
  amount: number
}

action ISSUE_REFUND {
  when amount > 100 review risk 30 as REVIEW_REFUND "Refund of {amount} needs a human."
  allow risk 5 as SMALL_REFUND "Small refund."
}

otherwise block as UNKNOWN "Not covered."
"""


@dataclass
class Ledger:
    """The test's own account of what happened: every acknowledged decision (by the attempt
    number its audit record carries as an annotation) and every error raised."""

    acknowledged: dict[int, tuple[str, str, dict[str, Any], int]] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)
    first_error_at: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    attempts: itertools.count[int] = field(default_factory=itertools.count)

    def decide(self, engine: Engine, agent: str, action: str, fields: dict[str, Any]) -> bool:
        """One decision, noted; whether it was acknowledged."""
        attempt = next(self.attempts)
        try:
            decision = engine.evaluate(agent, action, fields, annotations={"attempt": attempt})
        except sqlite3.Error as error:
            self.failed(error, attempt)
            return False
        self.acked(attempt, agent, action, fields, decision.seq)
        return True

    def acked(self, attempt: int, agent: str, action: str, fields: dict[str, Any],
              seq: int | None) -> None:
        assert seq is not None
        with self.lock:
            self.acknowledged[attempt] = agent, action, fields, seq

    def failed(self, error: BaseException, attempt: int) -> None:
        with self.lock:
            self.errors.append(error)
            if self.first_error_at is None:
                self.first_error_at = attempt


def assert_disk_errors(ledger: Ledger, disk: Disk) -> None:
    """Every failure is the documented ``sqlite3.Error`` and says what happened (not, say,
    "cannot rollback - no transaction is active", which hid the full disk)."""
    assert ledger.errors, "the full disk failed no decision"
    wanted = DISK_ERRORS[disk.kind]
    said = {f"{type(error).__name__}: {error}" for error in ledger.errors}
    assert said == {f"OperationalError: {wanted}"}, said


def assert_log_is_the_ledger(path: Path, ledger: Ledger) -> None:
    """The log verifies, its seqs are 1..N without a gap or a repeat, its decision records are
    exactly the acknowledged decisions (each at the seq its caller got), and every agent's
    stored state is what deciding them in that order from scratch leaves."""
    result = verify_file(path)
    assert result.ok, str(result)
    records = list(read_audit(path))
    assert [record["seq"] for record in records] == list(range(1, len(records) + 1))
    logged = {record["attempt"]: record for record in records if record["kind"] == "decision"}
    assert set(logged) == set(ledger.acknowledged), (
        f"recorded but failed: {sorted(set(logged) - set(ledger.acknowledged))}; "
        f"acknowledged but lost: {sorted(set(ledger.acknowledged) - set(logged))}")
    model = Engine(SENTRA_TABLE, MemoryStore(audit=False))
    for attempt, (agent, action, fields, seq) in sorted(ledger.acknowledged.items(),
                                                        key=lambda item: item[1][3]):
        record = logged[attempt]
        assert (record["seq"], record["agent"], record["action"]) == (seq, agent, action)
        expected = model.evaluate(agent, action, fields)
        assert record["decision"]["rule_id"] == expected.rule_id, record
    store = SQLiteStore(path)
    try:
        for agent in AGENTS:
            assert store.state(agent) == model.state(agent), agent
    finally:
        store.close()


def verify_with_the_cli(path: Path) -> None:
    """``sentra-lang audit verify FILE`` passes."""
    verified = subprocess.run([sys.executable, "-m", "sentra_lang", "audit", "verify", str(path)],
                              capture_output=True, text=True, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def decide_until_full(engine: Engine, ledger: Ledger, seed: int) -> None:
    """Random decisions until ``FAILURES_WANTED`` of them failed (or ``MAX_TRIES``)."""
    rng = random.Random(seed)
    failures = 0
    for _ in range(MAX_TRIES):
        action, fields = rng.choice(ACTIONS)
        if not ledger.decide(engine, rng.choice(AGENTS), action, fields):
            failures += 1
            if failures == FAILURES_WANTED:
                return


def probe_engine(disk: Disk, threads: int) -> None:
    """An engine on a SQLite store (group commit with more than one thread) decides until the
    disk is full, then again once it has room: see the module docstring of test_disk_full."""
    path = disk.path / "store.db"
    engine = Engine(SENTRA_TABLE, SQLiteStore(path, group_commit=threads > 1))
    ledger = Ledger()
    for number in range(30):
        ledger.decide(engine, AGENTS[number % len(AGENTS)], *ACTIONS[number % len(ACTIONS)])
    disk.fill()
    workers = [threading.Thread(target=decide_until_full, args=(engine, ledger, seed))
               for seed in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert_disk_errors(ledger, disk)
    disk.free()
    for number in range(30):
        assert ledger.decide(engine, AGENTS[number % len(AGENTS)],
                             *ACTIONS[number % len(ACTIONS)])
    engine.close()
    assert_log_is_the_ledger(path, ledger)
    verify_with_the_cli(path)


def probe_async(disk: Disk) -> None:
    """The same with decisions from many tasks of one event loop (``apply_async``: the loop
    decides a batch, the store's commit thread commits it)."""
    path = disk.path / "store.db"
    engine = Engine(SENTRA_TABLE, SQLiteStore(path, group_commit=True, synchronous="FULL"))
    ledger = Ledger()

    async def one(rng: random.Random) -> bool:
        agent = rng.choice(AGENTS)
        action, fields = rng.choice(ACTIONS)
        attempt = next(ledger.attempts)
        try:
            decision = await engine.evaluate_async(agent, action, fields,
                                                   annotations={"attempt": attempt})
        except sqlite3.Error as error:
            ledger.failed(error, attempt)
            return False
        ledger.acked(attempt, agent, action, fields, decision.seq)
        return True

    async def rounds(count: int, seed: int) -> list[bool]:
        rng = random.Random(seed)
        answers: list[bool] = []
        for _ in range(count):
            answers += await asyncio.gather(*(one(rng) for _ in range(16)))
        return answers

    assert all(asyncio.run(rounds(2, 0)))
    disk.fill()
    for seed in range(1, 60):
        asyncio.run(rounds(1, seed))
        if len(ledger.errors) >= 4 * FAILURES_WANTED:
            break
    assert_disk_errors(ledger, disk)
    disk.free()
    assert all(asyncio.run(rounds(2, 99)))
    engine.close()
    assert_log_is_the_ledger(path, ledger)


def probe_guard(disk: Disk) -> None:
    """A guarded function whose decision cannot be recorded does not run; the store's error
    reaches the caller."""
    path = disk.path / "store.db"
    engine = Engine(SENTRA_TABLE, SQLiteStore(path))
    ran: list[int] = []
    allowed = 0

    @engine.guard("guarded", "FILE_READ")
    def read(number: int) -> int:
        ran.append(number)
        return number

    assert read(-1) == -1
    disk.fill()
    failed = 0
    for number in range(MAX_TRIES):
        try:
            read(number)
            allowed += 1
        except sqlite3.OperationalError as error:
            assert str(error) == DISK_ERRORS[disk.kind], error
            failed += 1
            if failed == FAILURES_WANTED:
                break
    assert failed == FAILURES_WANTED
    assert len(ran) == 1 + allowed, "the body ran for a call whose decision was not recorded"
    decisions = [record for record in read_audit(path) if record["kind"] == "decision"]
    assert len(decisions) == len(ran)
    disk.free()
    assert read(10**6) == 10**6
    engine.close()


def probe_review(disk: Disk) -> None:
    """Review tickets across a full disk: a held decision, an approval, a denial that cannot be
    written leave no ticket and change no ticket; every ticket stays whole and pending until a
    verdict is written; after space is freed the verdicts go through and the log verifies."""
    path = disk.path / "store.db"
    engine = Engine(compiled_table(REVIEWS), SQLiteStore(path), clock=Clock())
    held = [engine.evaluate(f"buyer-{number}", "ISSUE_REFUND", {"amount": 200}).ticket
            for number in range(4)]
    assert all(held)
    engine.review(str(held[0]), True, operator="ops")
    before = {ticket.ticket: ticket.to_dict() for ticket in engine.tickets()}
    disk.fill()
    failures = 0
    made: list[str] = []
    for number in range(MAX_TRIES):
        try:
            ticket = engine.evaluate(f"late-{number}", "ISSUE_REFUND", {"amount": 300}).ticket
            made.append(str(ticket))
        except sqlite3.OperationalError as error:
            assert str(error) == DISK_ERRORS[disk.kind], error
            failures += 1
            if failures == FAILURES_WANTED:
                break
    verdicts_failed = 0
    for ticket_id, approve in ((held[1], True), (held[2], False), (held[0], False)):
        try:
            engine.review(str(ticket_id), approve, operator="ops", note="on a full disk")
        except sqlite3.OperationalError as error:
            assert str(error) == DISK_ERRORS[disk.kind], error
            verdicts_failed += 1
        except TicketClosed:
            assert ticket_id == held[0]
    assert verdicts_failed >= 1, "no verdict met the full disk"
    now = {ticket.ticket: ticket.to_dict() for ticket in engine.tickets()}
    assert set(now) == set(before) | set(made)
    for ticket_id in before:
        if now[ticket_id] != before[ticket_id]:   # a verdict that was written, whole
            assert now[ticket_id]["status"] != "pending", now[ticket_id]
    disk.free()
    for ticket_id in held[1:3]:
        if engine.ticket(str(ticket_id)).status == "pending":
            engine.review(str(ticket_id), ticket_id == held[1], operator="ops")
    assert [engine.ticket(str(ticket)).status for ticket in held[1:3]] == ["approved", "denied"]
    engine.close()
    result = verify_file(path)
    assert result.ok, str(result)
    verify_with_the_cli(path)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def probe_checkpoint(disk: Disk) -> None:
    """The background checkpoint (the server's) meets a full disk: nothing is lost, the failure
    is logged, the thread lives on and checkpoints once there is room."""
    path = disk.path / "store.db"
    records = _Records()
    logger = logging.getLogger("sentra_runtime.stores.sqlite")
    logger.addHandler(records)
    store = SQLiteStore(path, checkpoint_interval=0.3, synchronous="FULL")
    try:
        engine = Engine(SENTRA_TABLE, store)
        ledger = Ledger()
        checkpointer = store._checkpointer
        assert checkpointer is not None
        _wait(lambda: checkpointer.checkpoints > 0)
        for number in range(60):   # new agents: the database file must grow to take them
            ledger.decide(engine, f"disk-new-{number}", "FILE_READ", {})
        disk.fill(edge=path)   # (fsize: the database file may not grow; the WAL has room)
        _wait(lambda: any("cannot checkpoint" in message for message in records.messages))
        stalled = checkpointer.checkpoints
        time.sleep(0.2)
        assert checkpointer.is_alive(), "the checkpoint thread died"
        assert checkpointer.checkpoints == stalled, "a checkpoint succeeded on the full disk"
        disk.free()
        _wait(lambda: checkpointer.checkpoints > stalled)
        assert any(message.startswith("checkpointing") and "again" in message
                   for message in records.messages), records.messages
        engine.close()
    finally:
        logger.removeHandler(records)
    assert sum(record["kind"] == "decision" for record in read_audit(path)) == 60
    assert verify_file(path).ok


def _wait(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


PROBES: dict[str, Callable[[Disk], None]] = {
    "engine": lambda disk: probe_engine(disk, 1),
    "group": lambda disk: probe_engine(disk, 8),
    "async": probe_async,
    "guard": probe_guard,
    "review": probe_review,
    "checkpoint": probe_checkpoint,
}


if __name__ == "__main__":
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # (Python ignores it already; say so)
    PROBES[sys.argv[1]](Disk("fsize", Path(sys.argv[2]), pid=0))
