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

import os
import subprocess
import sys

import pytest

from tests.diskfull_fixtures import Disk, disk
from tests.stores.disk_full_probes import PROBES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
