"""What the adversarial probes share: the real `sentra-lang` command in a process of its own,
and the replay round trip every recorded log must pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `sentra-lang` command, in a process of its own (``env``: added variables)."""
    return subprocess.run([sys.executable, "-m", "sentra_lang", *args], capture_output=True,
                          text=True, timeout=120, check=False,
                          env=None if env is None else {**os.environ, **env})


def replay_round_trip(tmp_path: Path, source: str, log: Path) -> None:
    """`replay` with the recording's own policy changes nothing, and the suite it writes
    passes `sentra-lang test`."""
    policy = tmp_path / "policy.sentra"
    policy.write_text(source, "utf-8")
    suite = tmp_path / "replayed.sentra-test"
    replayed = cli("replay", str(log), "--policy", str(policy), "--to-suite", str(suite))
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    tested = cli("test", str(suite))
    assert tested.returncode == 0, tested.stdout + tested.stderr + suite.read_text("utf-8")


GROUPS = """policy refunds version "1" {
  risk_threshold 100
  strikes 3
}

group trusted {
  agents "ops-7", "senior-*"   # an exact id; a trailing * is a prefix
  risk_threshold 200
  strikes 5
  risk_decay 50 per 1h
}

group new {
  agents "new-*"
  strikes 1
}

input {
  amount: int
}

action ISSUE_REFUND {
  when amount > 1000 block as REFUND_TOO_LARGE "Refund of {amount} is too large."
  allow risk 60 as REFUND_OK "Refund of {amount} issued."
}

otherwise block as UNKNOWN "Not covered."
"""
"""docs/language.md's "Agent groups" example, as the probes decide it."""
