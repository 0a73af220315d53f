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
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime import Engine, SQLiteStore
from sentra_runtime.stores.sqlite import read_audit

from sentra_lang.docgen.build import MARKER, MARKER_TEXT
from tests.diskfull_fixtures import Disk, disk
from tests.helpers import serve_process
from tests.pg_cluster import free_port
from tests.runtime.helpers import SENTRA_TABLE
from tests.stores.disk_full_probes import PROBES, verify_with_the_cli
from tests.stores.helpers import replay
from tests.stores.store_worker import ACTIONS

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "disk-full-operator"
DETAIL = ("the state database is unavailable, so nothing was decided or recorded (fail "
          "closed); retry later")

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


def writers(tmp_path: Path, disk: Disk) -> dict[str, tuple[Path, list[str | Path]]]:
    """Each writer: the output it replaces on the disk, and its command."""
    store = store_with(tmp_path / "sentra.db", 60)
    out = disk.path
    return {
        "audit export": (out / "log.jsonl", ["audit", "export", store, "-o", out / "log.jsonl"]),
        "compile": (out / "table.json", ["compile", POLICY, "-o", out / "table.json"]),
        "docs": (out / "site", ["docs", POLICY, "--markdown-only", "-o", out / "site"]),
        "replay --to-suite": (out / "replayed.sentra-test",
                              ["replay", store, "--policy", POLICY, "--to-suite",
                               out / "replayed.sentra-test"]),
    }


def earlier_output(path: Path) -> None:
    """A small good output at ``path``, as an earlier run left it (a site: with its marker)."""
    if path.name == "site":
        path.mkdir()
        (path / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
        path = path / "index.md"
    path.write_text("the earlier output\n", encoding="utf-8")


def assert_failed_cleanly(done: subprocess.CompletedProcess[str], disk: Disk,
                          named: str) -> None:
    """Exit 2 with one line that names the file and says the disk is full; no traceback."""
    problem = os.strerror(errno.ENOSPC if disk.kind == "tmpfs" else errno.EFBIG)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and named in lines[0] and problem in lines[0], done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("writer", ["audit export", "compile", "docs", "replay --to-suite"])
def test_a_writer_on_a_full_disk_fails_cleanly_and_keeps_the_old_output(
        disk: Disk, tmp_path: Path, writer: str) -> None:
    output, command = writers(tmp_path, disk)[writer]
    earlier_output(output)
    before = disk.files()
    disk.fill()
    assert_failed_cleanly(cli(disk, *command), disk, output.name)
    assert disk.files() == before


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


# -- the server --------------------------------------------------------------------------------

def serve(disk: Disk, port: int) -> subprocess.Popen[str]:
    """``sentra-lang serve`` of the reference policy on a store on ``disk``, as it ships."""
    return serve_process([str(POLICY), "--db", str(disk.path / "sentra.db")], port,
                         stderr=subprocess.PIPE, text=True, preexec_fn=disk.preexec,
                         env={**os.environ, "SENTRA_OPERATOR_TOKEN": TOKEN})


def ask(connection: http.client.HTTPConnection, method: str, path: str,
        body: dict[str, Any] | None = None) -> tuple[int, str]:
    connection.request(method, path, None if body is None else json.dumps(body),
                       {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    reply = connection.getresponse()
    return reply.status, reply.read().decode()


@pytest.mark.slow
def test_the_server_fails_closed_on_a_full_disk_and_recovers(disk: Disk, tmp_path: Path) -> None:
    port = free_port()
    server = serve(disk, port)
    disk.pid = server.pid
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    answered: list[str] = []
    refused: list[tuple[int, str]] = []

    def decide(agent: str) -> int:
        status, text = ask(connection, "POST", "/agent-action",
                           {"agent_id": agent, "action_type": "DELETE_RECORD"})
        if status == 200:
            answered.append(agent)
        else:
            refused.append((status, text))
        return status

    try:
        for number in range(20):
            assert decide(f"before-{number}") == 200
        disk.fill()
        deadline = time.monotonic() + 30
        number = 0
        while len(refused) < 20:
            assert time.monotonic() < deadline, "the full disk refused no decision"
            decide(f"during-{number}")
            number += 1
        assert {status for status, _ in refused} == {503}, refused[:3]
        assert {json.loads(text)["detail"] for _, text in refused} == {DETAIL}
        for path in ("/health", "/v1/events?limit=5", "/v1/agents", "/metrics"):
            assert ask(connection, "GET", path)[0] == 200, path
        disk.free()
        deadline = time.monotonic() + 10
        while decide(f"after-{number}") != 200:
            assert time.monotonic() < deadline, "the server did not decide again"
            number += 1
        for after in range(20):
            assert decide(f"after-more-{after}") == 200
    finally:
        server.terminate()
        _, log = server.communicate(timeout=30)
    assert "Traceback" not in log, log
    assert "disk" in log, log   # the outage is logged, saying why
    database = disk.path / "sentra.db"
    verify_with_the_cli(database)
    records = list(read_audit(database))
    decided = [record["agent"] for record in records if record["kind"] == "decision"]
    assert sorted(decided) == sorted(answered)   # nothing answered is lost, nothing refused is kept
    assert [record["seq"] for record in records] == list(range(1, len(records) + 1))
    store = SQLiteStore(database)
    try:
        replayed = replay(records)
        assert all(store.state(agent) == replayed.state(agent) for agent in answered)
    finally:
        store.close()


@pytest.mark.parametrize("command", [["audit", "verify"], ["audit", "head"], ["db", "status"]])
def test_reading_a_store_on_a_full_disk_says_it_cannot_be_read(
        disk: Disk, command: list[str]) -> None:
    """A WAL store whose reader has no room for its ``-shm`` file is a store that cannot be
    read now, not "not a sentra store"."""
    if disk.kind == "fsize":
        pytest.skip("a file-size limit cannot stop a file from being created empty")
    store_with(disk.path / "sentra.db", 3)
    with contextlib.closing(sqlite3.connect(disk.path / "sentra.db")) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    disk.fill()
    done = cli(disk, *command, disk.path / "sentra.db")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"cannot read {disk.path / 'sentra.db'}: " in done.stderr, done.stderr
    assert "not a sentra" not in done.stderr
    disk.free()
    assert cli(disk, *command, disk.path / "sentra.db").returncode == 0
