"""Replay of a recorded audit log with a changed policy: a known set of changes."""

from __future__ import annotations

from pathlib import Path

import pytest
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


# -- files that are not (whole) audit logs: exit 2 with where, never a traceback

def _replay(tmp_path: Path, capsys: pytest.CaptureFixture[str], audit: Path) -> tuple[int, str]:
    (tmp_path / "new.sentra").write_text(NEW)
    code = main(["replay", str(audit), "--policy", str(tmp_path / "new.sentra")])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out + err


def test_lines_that_are_not_records_are_named(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _record(tmp_path)
    good = (tmp_path / "audit.jsonl").read_text().splitlines()
    cases = {
        "5\n": "five.jsonl:1: not an audit record",
        "\n".join(good[:3] + ['["a list"]']) + "\n": ":4: not an audit record",
        "\n".join(good[:2] + [good[2][:25]]) + "\n": ":3: not a JSON audit record",
        "\n".join(good[:2] + ['{"kind": "decision", "agent": "a"}']): ":3: decision record "
                                                                       "without action, decision",
        '{"kind": "decision", "agent": "a", "action": "PAY", "decision": {}}\n':
            ":1: decision record whose decision lacks",
        "garbage\n": ":1: not a JSON audit record",
    }
    for text, message in cases.items():
        audit = tmp_path / "five.jsonl"
        audit.write_text(text)
        code, output = _replay(tmp_path, capsys, audit)
        assert code == 2 and message in output, (text, output)
        assert "replayed" not in output
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    code, output = _replay(tmp_path, capsys, binary)
    assert code == 2 and "not UTF-8" in output


def test_sqlite_without_an_audit_table(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    db = tmp_path / "other.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE t (a)")
    connection.close()
    code, output = _replay(tmp_path, capsys, db)
    assert code == 2 and "no `audit` table" in output


def test_a_log_without_decisions_is_not_a_passing_replay(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _record(tmp_path)
    resets = [line for line in (tmp_path / "audit.jsonl").read_text().splitlines()
              if '"kind":"reset"' in line]
    assert resets
    for text in ("", "\n\n", "\n".join(resets) + "\n"):
        audit = tmp_path / "empty.jsonl"
        audit.write_text(text)
        code, output = _replay(tmp_path, capsys, audit)
        assert code == 2 and "no decisions recorded in" in output


def test_unwritable_suite_is_a_usage_error(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    db = _record(tmp_path)
    (tmp_path / "a_file").write_text("mine")
    code = main(["replay", str(db), "--policy", str(tmp_path / "new.sentra"),
                 "--to-suite", str(tmp_path / "a_file" / "s.sentra-test")])
    assert code == 2 and "cannot write the suite" in capsys.readouterr().err
    assert (tmp_path / "a_file").read_text() == "mine"


DECAYING = '''policy d version "1" {
  risk_threshold 100
  risk_decay 10 per 1h
}
action EXPORT {
  allow risk 60 as EXPORT_OK "Export allowed."
}
otherwise block as UNKNOWN "Not covered."
'''


def test_replay_re_decides_with_the_recorded_times(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Recorded hours apart, the second export is allowed because the risk decayed: replayed
    with the recorded times it still is (at the replay's own time it would be blocked), and
    the suite written from it moves its clock as the log did."""
    (tmp_path / "d.sentra").write_text(DECAYING)
    now = [1_700_000_000.0]
    engine = Engine(load(tmp_path / "d.sentra").policy, SQLiteStore(tmp_path / "audit.db"),
                    clock=lambda: now[0])
    engine.evaluate("a", "EXPORT")
    now[0] += 3 * 3600 + 0.5
    assert engine.evaluate("a", "EXPORT").decayed == 30
    engine.close()
    result = replay(read_records(tmp_path / "audit.db"), load(tmp_path / "d.sentra").policy,
                    keep_steps=True)
    assert (result.decisions, result.changed) == (2, 0)
    assert [new.decayed for _, new in result.steps] == [0, 30]
    suite = tmp_path / "replayed.sentra-test"
    code = main(["replay", str(tmp_path / "audit.db"), "--policy", str(tmp_path / "d.sentra"),
                 "--to-suite", str(suite)])
    assert code == 0, capsys.readouterr()
    assert "\n  after 3h\n" in suite.read_text()
    assert main(["test", str(suite)]) == 0, capsys.readouterr().out


ASSIGNED = '''policy assigned version "1" {
  risk_threshold 100
}
group trusted {
  agents "ops-*"
  risk_threshold 200
}
action EXPORT {
  allow risk 60 as EXPORT_OK "Export allowed." limit 3 per 1h
}
otherwise block as UNKNOWN "Not covered."
'''


def test_replay_applies_recorded_group_assignments_and_limit_windows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An operator's assignment is a record: replayed, the agent decides in its group again
    (without it, the second export would be blocked at 120/100), and the rate limit counts at
    the recorded times; the suite written from it assigns the group and passes."""
    (tmp_path / "g.sentra").write_text(ASSIGNED)
    now = [1_700_000_000.0]
    engine = Engine(load(tmp_path / "g.sentra").policy, SQLiteStore(tmp_path / "audit.db"),
                    clock=lambda: now[0])
    engine.assign_group("new-1", "trusted", operator="alice")
    labels = []
    for _ in range(4):
        labels.append(engine.evaluate("new-1", "EXPORT").rule_id)
        now[0] += 60
    now[0] += 3600
    labels.append(engine.evaluate("new-1", "EXPORT").rule_id)
    engine.close()
    assert labels == ["EXPORT_OK"] * 3 + ["RATE_LIMIT_EXCEEDED", "RISK_THRESHOLD_EXCEEDED"]
    result = replay(read_records(tmp_path / "audit.db"), load(tmp_path / "g.sentra").policy,
                    keep_steps=True)
    assert (result.decisions, result.changed) == (5, 0)
    suite = tmp_path / "replayed.sentra-test"
    code = main(["replay", str(tmp_path / "audit.db"), "--policy", str(tmp_path / "g.sentra"),
                 "--to-suite", str(suite)])
    assert code == 0, capsys.readouterr()
    assert '\n  assign "new-1" group "trusted"\n' in suite.read_text()


REVIEWED = '''policy r version "1" {
  review_timeout 1h
}
input { amount: number = 0 }
action PAY {
  when amount > 500 review risk 60 as HOLD_BIG "Big."
  when amount > 100 review risk 30 as HOLD "Held."
  allow as SMALL "Ok."
}
otherwise block as OTHER "Other."
'''


def _record_reviews(tmp_path: Path) -> Path:
    """A log with an approval, a denial, an expiry and a cancelled ticket."""
    (tmp_path / "r.sentra").write_text(REVIEWED)
    now = [1_700_000_000.0]
    db = tmp_path / "audit.db"
    engine = Engine(load(tmp_path / "r.sentra").policy, SQLiteStore(db), clock=lambda: now[0])
    approved = engine.evaluate("a", "PAY", {"amount": 700}).ticket
    denied = engine.evaluate("a", "PAY", {"amount": 200}).ticket
    engine.evaluate("b", "PAY", {"amount": 200})                       # expires
    now[0] += 60
    engine.review(approved, True, operator="alice", note="fine")
    engine.review(denied, False, operator="bob")
    now[0] += 3600
    engine.tickets()
    engine.evaluate("c", "PAY", {"amount": 900})                       # cancelled
    engine.reset("c", operator="ops")
    engine.close()
    return db


def test_replay_re_decides_recorded_verdicts_on_the_new_tickets(tmp_path: Path) -> None:
    db = _record_reviews(tmp_path)
    same = replay(read_records(db), load(tmp_path / "r.sentra").policy, keep_steps=True)
    assert (same.decisions, same.verdicts, same.resets, same.changed, same.unreviewed) == (
        4, 2, 1, 0, 0)
    verdicts = [(new.label, new.rule_id, new.cumulative_risk, new.blocked_attempts)
                for record, new in same.steps if record["kind"] == "review"]
    assert verdicts == [("Allowed", "HOLD_BIG", 60, 0), ("Blocked", "HOLD", 60, 1)]
    # the big refund no longer waits for review: its verdict has nothing to judge
    changed = REVIEWED.replace("when amount > 500 review", "when amount > 500 allow")
    (tmp_path / "n.sentra").write_text(changed)
    result = replay(read_records(db), load(tmp_path / "n.sentra").policy)
    assert (result.verdicts, result.unreviewed) == (1, 1)
    counts = {key: group.count for key, group in result.groups.items()}
    assert counts == {("decision", "Review Required", "HOLD_BIG", "Allowed", "HOLD_BIG"): 2}


def test_replay_writes_review_steps_to_a_suite_that_passes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = _record_reviews(tmp_path)
    suite = tmp_path / "replayed.sentra-test"
    assert main(["replay", str(db), "--policy", str(tmp_path / "r.sentra"),
                 "--to-suite", str(suite)]) == 0
    out = capsys.readouterr().out
    assert "replayed 4 decisions, 2 operators' verdicts and 1 resets: 0 changed" in out
    text = suite.read_text()
    assert ' -> review rule HOLD_BIG cumulative 0 strikes 0 as t_rv_' in text
    assert '\n  approve t_rv_' in text and 'by "alice" note "fine" -> allowed rule HOLD_BIG' in text
    assert '\n  deny t_rv_' in text and '\n  after 1h\n' in text
    assert main(["test", str(suite)]) == 0, capsys.readouterr().out
