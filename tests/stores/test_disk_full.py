"""What a full disk does to everything that writes, probed on a real full filesystem.

Two real sources of a full disk (tests/diskfull_fixtures.py): a tiny tmpfs filled to its last
byte with a ballast file (root only; skipped elsewhere, saying why), and a file-size limit
(``RLIMIT_FSIZE``, no privileges) under which a file may not grow. Each probe fills the disk
under a real SQLite file, decides until the writes fail, frees the room and decides again,
checking the documented promises (docs/runtime.md, "Failure modes"; docs/server.md, "When the
database is unavailable"; docs/cli.md, exit codes) against the test's own ledger:

* every failed decision raises the documented ``sqlite3.Error`` saying what happened, and with
  group commit every decision of a failed transaction fails; none of them is recorded, every
  acknowledged one is, the states are those of the acknowledged decisions, the seqs run 1..N
  and ``audit verify`` passes; deciding resumes once there is room;
* ``guard`` runs no body whose decision was not recorded;
* review tickets are never lost or half-written across a full disk;
* the background checkpoint logs its failure, stays alive and checkpoints again;
* the server answers 503 (never a 200 it did not record, never a 500), reads still answer, and
  it decides again without a restart;
* the CLI's writers fail with one line naming the file and exit 2, leaving any earlier good
  output as it was.

The in-process probes live in tests/stores/disk_full_probes.py; on an ``fsize`` disk they run in
a subprocess of their own (the limit is a process's).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sentra_runtime import Engine, SQLiteStore

from tests.diskfull_fixtures import Disk, disk
from tests.runtime.helpers import SENTRA_TABLE
from tests.stores.disk_full_probes import PROBES
from tests.stores.store_worker import ACTIONS

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["disk"]


def run_probe(name: str, disk: Disk) -> None:
    """The probe ``name`` on ``disk``: here on a tmpfs, in a subprocess on an fsize disk."""
    if disk.kind == "tmpfs":
        PROBES[name](disk)
        return
    done = subprocess.run([sys.executable, "-m", "tests.stores.disk_full_probes", name,
                           str(disk.path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("probe", ["engine", "group", "async"])
def test_a_full_disk_fails_decisions_and_loses_none(disk: Disk, probe: str) -> None:
    run_probe(probe, disk)


def test_guard_runs_no_body_on_a_full_disk(disk: Disk) -> None:
    run_probe("guard", disk)


def test_review_tickets_survive_a_full_disk(disk: Disk) -> None:
    run_probe("review", disk)


def test_the_background_checkpoint_logs_a_full_disk_and_recovers(disk: Disk) -> None:
    run_probe("checkpoint", disk)


# -- the CLI's writers -------------------------------------------------------------------------

POLICY = Path(ROOT) / "policies" / "sentra.sentra"
SMALL_POLICY = """policy small version "1" {}

action A {
  allow as OK "Fine."
}

otherwise block as NO "No."
"""


def cli(disk: Disk, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``sentra-lang ARGS`` writing onto ``disk`` as it is now."""
    return subprocess.run([sys.executable, "-m", "sentra_lang", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False,
                          preexec_fn=disk.preexec)


def store_with(path: Path, decisions: int) -> Path:
    """A SQLite store of ``decisions`` decisions of the Sentra reference policy."""
    engine = Engine(SENTRA_TABLE, SQLiteStore(path))
    for number in range(decisions):
        engine.evaluate(f"agent-{number % 5}", *ACTIONS[number % len(ACTIONS)])
    engine.close()
    with contextlib.closing(sqlite3.connect(path)) as connection:
        # out of WAL mode: a reader then writes nothing (no -shm file), even under a
        # process's file-size limit
        connection.execute("PRAGMA journal_mode=DELETE")
    return path


def writers(tmp_path: Path, disk: Disk) -> dict[str, tuple[list[str | Path], list[str | Path]]]:
    """Each writer: the command that writes a small good output onto the disk first, and the
    command that then rewrites it, larger, on the full disk."""
    small, big = store_with(tmp_path / "small.db", 3), store_with(tmp_path / "big.db", 60)
    (tmp_path / "small.sentra").write_text(SMALL_POLICY, encoding="utf-8")
    out = disk.path
    return {
        "audit export": (["audit", "export", small, "-o", out / "log.jsonl"],
                         ["audit", "export", big, "-o", out / "log.jsonl"]),
        "compile": (["compile", tmp_path / "small.sentra", "-o", out / "table.json"],
                    ["compile", POLICY, "-o", out / "table.json"]),
        "docs": (["docs", tmp_path / "small.sentra", "--markdown-only", "-o", out / "site"],
                 ["docs", POLICY, "--markdown-only", "-o", out / "site"]),
        "replay --to-suite": (
            ["replay", small, "--policy", POLICY, "--to-suite", out / "replayed.sentra-test"],
            ["replay", big, "--policy", POLICY, "--to-suite", out / "replayed.sentra-test"]),
    }


def assert_failed_cleanly(done: subprocess.CompletedProcess[str], disk: Disk,
                          named: str) -> None:
    """Exit 2 with one line that names the file and says the disk is full; no traceback."""
    problem = os.strerror(errno.ENOSPC if disk.kind == "tmpfs" else errno.EFBIG)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and named in lines[0] and problem in lines[0], done.stderr


@pytest.mark.parametrize("writer", ["audit export", "compile", "docs", "replay --to-suite"])
def test_a_writer_on_a_full_disk_fails_cleanly_and_keeps_the_old_output(
        disk: Disk, tmp_path: Path, writer: str) -> None:
    first, again = writers(tmp_path, disk)[writer]
    written = cli(disk, *first)
    assert written.returncode == 0, written.stderr
    before = disk.files()
    disk.fill()
    assert_failed_cleanly(cli(disk, *again), disk, Path(str(again[-1])).name)
    assert disk.files() == before
    disk.free()
    assert cli(disk, *again).returncode == 0
    assert disk.files() != before


def test_fmt_on_a_full_disk_never_truncates_the_policy(disk: Disk) -> None:
    policy = disk.path / "policy.sentra"
    # every line unindented: the formatter puts the indentation back, so its output is longer
    flat = "".join(line.lstrip(" ") for line in POLICY.read_text().splitlines(keepends=True))
    policy.write_text(flat, encoding="utf-8")
    disk.fill()
    assert_failed_cleanly(cli(disk, "fmt", policy), disk, "policy.sentra")
    assert policy.read_text(encoding="utf-8") == flat
    assert disk.files() == {"policy.sentra": flat.encode()}
    disk.free()
    assert cli(disk, "fmt", policy).returncode == 0
    assert policy.read_text(encoding="utf-8") == POLICY.read_text(encoding="utf-8")
