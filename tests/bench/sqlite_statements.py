"""Where a SQLite decision's database time goes: `python tests/bench/sqlite_statements.py`.

A plain `sqlite3` loop with the statements the SQLite store runs per decision (no engine, no
JSON, no hashing), timing each statement, with SQLite's automatic checkpoint on (the store's
default) and off (what `checkpoint_interval` does: checkpoints move to a background thread).
See docs/benchmarks.md, "Runtime".
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

SCHEMA = [
    "CREATE TABLE agents (agent_id TEXT PRIMARY KEY, cumulative_risk INTEGER NOT NULL, "
    "blocked_attempts INTEGER NOT NULL, shut_down INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE audit (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, body TEXT NOT NULL)",
]
STATE_AND_LAST_AUDIT = (
    "SELECT a.cumulative_risk, a.blocked_attempts, a.shut_down, "
    "(SELECT seq FROM audit ORDER BY seq DESC LIMIT 1), "
    "(SELECT hash FROM audit ORDER BY seq DESC LIMIT 1) "
    "FROM (SELECT 1) LEFT JOIN agents a ON a.agent_id = ?"
)
BODY = "x" * 900   # about the size of a decision record's canonical JSON
COUNT = 20_000


def measure(autocheckpoint: int) -> dict[str, float]:
    """Microseconds per decision for each statement."""
    with tempfile.TemporaryDirectory() as folder:
        connection = sqlite3.connect(Path(folder) / "bench.db", isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint}")
        for statement in SCHEMA:
            connection.execute(statement)
        spent = dict.fromkeys(("BEGIN IMMEDIATE", "SELECT", "INSERT", "COMMIT"), 0.0)
        clock = time.perf_counter
        for number in range(COUNT):
            start = clock()
            connection.execute("BEGIN IMMEDIATE")
            begun = clock()
            row = connection.execute(STATE_AND_LAST_AUDIT, (f"agent-{number % 200}",)).fetchone()
            selected = clock()
            connection.execute("INSERT INTO audit (seq, hash, body) VALUES (?, ?, ?)",
                               ((row[3] or 0) + 1, "sha256:" + "0" * 64, BODY))
            inserted = clock()
            connection.execute("COMMIT")
            committed = clock()
            spent["BEGIN IMMEDIATE"] += begun - start
            spent["SELECT"] += selected - begun
            spent["INSERT"] += inserted - selected
            spent["COMMIT"] += committed - inserted
        connection.close()
    return {name: seconds / COUNT * 1e6 for name, seconds in spent.items()}


def main() -> None:
    print(f"{'statement':18} {'us, autocheckpoint':>19} {'us, no checkpoint':>18}")
    on, off = measure(1000), measure(0)
    for name in on:
        print(f"{name:18} {on[name]:19.1f} {off[name]:18.1f}")
    total_on, total_off = sum(on.values()), sum(off.values())
    print(f"{'total':18} {total_on:19.1f} {total_off:18.1f}")
    print(f"decisions/s (database only): {1e6 / total_on:,.0f} with autocheckpoint, "
          f"{1e6 / total_off:,.0f} without")


if __name__ == "__main__":
    main()
