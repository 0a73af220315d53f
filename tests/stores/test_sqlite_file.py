"""What only the SQLite store has: the durability setting and WAL checkpoints in a thread."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sentra_runtime import Engine, SQLiteStore

from tests.runtime.helpers import SENTRA_TABLE


def test_bad_synchronous_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteStore(tmp_path / "x.db", synchronous="OFF")


def test_background_checkpoints_keep_the_wal_small(tmp_path: Path) -> None:
    """With ``checkpoint_interval`` no commit checkpoints; a thread does, and the WAL is
    reused instead of growing with the log."""
    path = tmp_path / "store.db"
    store = SQLiteStore(path, checkpoint_interval=0.02)
    engine = Engine(SENTRA_TABLE, store)
    assert store._connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    sizes = []
    for _ in range(6):
        for number in range(400):
            engine.evaluate(f"agent-{number % 20}", "FILE_READ", {"target": "x" * 200})
        deadline = time.monotonic() + 5
        checkpoints = store._checkpointer.checkpoints   # type: ignore[union-attr]
        while store._checkpointer.checkpoints < checkpoints + 2:   # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        sizes.append(os.path.getsize(f"{path}-wal"))
    assert max(sizes[2:]) <= 2 * sizes[1]   # bounded, not growing with 2,400 decisions
    engine.close()
    assert not store._checkpointer.is_alive()   # type: ignore[union-attr]
    reopened = SQLiteStore(path)
    assert reopened.last_seq() == 1 + 2400 and reopened.verify_audit().ok
    reopened.close()
    with pytest.raises(ValueError, match="checkpoint_interval"):
        SQLiteStore(path, checkpoint_interval=0)
