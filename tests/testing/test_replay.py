"""Replay of a recorded audit log with a changed policy: a known set of changes."""

from __future__ import annotations

from pathlib import Path

from sentra_runtime import Engine, SQLiteStore

from sentra_lang.cli import main
from sentra_lang.testing.policies import load
from sentra_lang.testing.replay import read_records, replay

OLD = '''policy p version "1" {}
input { amount: number = 0 }
action PAY {
  when amount > 100 allow risk 40 as RISKY_PAY "Risky."
  allow as ALLOW_PAY "Ok."
}
otherwise allow risk 10 as OTHER "Other."
'''
NEW = OLD.replace("when amount > 100 allow risk 40", "when amount > 100 block risk 40") \
         .replace("otherwise allow risk 10", "otherwise allow risk 20")


def _record(tmp_path: Path) -> Path:
    (tmp_path / "old.sentra").write_text(OLD)
    (tmp_path / "new.sentra").write_text(NEW)
    db = tmp_path / "audit.db"
    engine = Engine(load(tmp_path / "old.sentra").policy, SQLiteStore(db))
    for amount in (10, 500, 20, 700):
        engine.evaluate("a", "PAY", {"amount": amount})
    engine.evaluate("b", "PING", {})
    engine.reset("a", operator="ops")
    engine.evaluate("a", "PAY", {"amount": 900})
    with open(tmp_path / "audit.jsonl", "w") as out:
        engine.store.export_audit(out)
    engine.close()
    return db


def test_replay_groups_changes(tmp_path: Path) -> None:
    db = _record(tmp_path)
    new = load(tmp_path / "new.sentra").policy
    for source in (db, tmp_path / "audit.jsonl"):
        result = replay(read_records(source), new)
        assert (result.decisions, result.resets, result.changed) == (6, 1, 4)
        counts = {key: group.count for key, group in result.groups.items()}
        assert counts == {
            ("decision", "Allowed", "RISKY_PAY", "Blocked", "RISKY_PAY"): 3,
            ("risk", "Allowed", "OTHER", "Allowed", "OTHER"): 1,
        }


def test_replay_cli_and_suite(tmp_path: Path, capsys) -> None:
    db = _record(tmp_path)
    suite = tmp_path / "replayed.sentra-test"
    assert main(["replay", str(db), "--policy", str(tmp_path / "new.sentra"),
                 "--to-suite", str(suite)]) == 1
    out = capsys.readouterr().out
    assert "replayed 6 decisions and 1 resets: 4 changed" in out
    assert "3 x decision: Allowed (RISKY_PAY) -> Blocked (RISKY_PAY)" in out
    assert main(["test", str(suite)]) == 0
    assert main(["replay", str(db), "--policy", str(tmp_path / "old.sentra")]) == 0
