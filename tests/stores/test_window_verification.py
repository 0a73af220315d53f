"""Audit verification of rate-limit windows (docs/runtime.md, "Verification"; docs/threat-model.md,
"Audit log and state"): the log alone determines every agent's windows, and `audit verify`,
`engine.verify_audit()` and the verification of an export compare them with the stored ones, in
every store.

Known answers written from the docs: an untouched log with limits, resets, a reload that drops
a limit, a clock that went back, review verdicts and groups verifies clean; a window emptied, a
time removed or moved, a window added or deleted in the store (or in an export's state line) is
an "edited windows" problem naming the agent. Logs written before records kept their windows
(a fixture file written by that runtime, and a chain that an older and a newer runtime append
to) verify clean: an agent's windows are checked from its last reset on.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sentra_runtime import Decider, Engine, MemoryStore, Store
from sentra_runtime.audit import verify_export
from sentra_runtime.decision import Decision
from sentra_runtime.review import TicketError
from sentra_runtime.stores import open_store
from sentra_runtime.stores.sqlite import verify_file
from sentra_runtime.windows import COUNTED_LIMITS, DROPPED_KEYS

from sentra_lang.cli import main
from tests.pg_fixtures import STORE_KINDS, store_factory, store_target
from tests.runtime.helpers import SENTRA_TABLE, T0, Clock, assert_decision, compiled_table

LIMITED = '''policy refunds version "1" {
  risk_threshold 1000
  strikes 3
  review_timeout 1h
}

input {
  amount: number
}

group trusted {
  agents "ops-*"
  limit 4 per 1h
  limit ISSUE_REFUND 3 per 1h
}

action ISSUE_REFUND, REFUND_PART {
  limit 6 per 1d
  when amount > 1000 block as BIG_REFUND threat "Financial Overreach" "Too big."
  when amount > 500 review risk 10 as REVIEW_REFUND "Refund of {amount} needs a human."
  when amount > 50 allow risk 30 as LARGE_REFUND limit 2 per 1h
  allow as SMALL_REFUND limit 5 per 1h
}

otherwise allow as OTHER
'''
RELOADED = LIMITED.replace('as SMALL_REFUND limit 5 per 1h', 'as SMALL_REFUND')
"""The policy without its rule limit on `SMALL_REFUND`: a reload that drops that window."""
TABLE = compiled_table(LIMITED)
RELOADED_TABLE = compiled_table(RELOADED)
SMALL = "rule SMALL_REFUND per 3600"
BLOCK = "action ISSUE_REFUND,REFUND_PART per 86400"
FIXTURE = Path(__file__).parents[1] / "fixtures" / "stores" / "legacy-v4-windows.db"


def refund(engine: Engine, agent: str, amount: int = 10,
           action: str = "ISSUE_REFUND") -> Decision:
    return engine.evaluate(agent, action, {"amount": amount})


def history(store: Store, clock: Clock) -> Engine:
    """Every way a window changes, and the ways it does not: counting decisions whose windows
    slide, blocks, a reset, a clock that went back, a review approved (it counts), denied and
    expired, a group assignment, and a reload that drops a limit. Returns the reloaded engine
    (still open)."""
    engine = Engine(TABLE, store, clock=clock)
    for amount in (10, 60, 10, 60):
        clock.now += 900.5
        refund(engine, "alice", amount)
        refund(engine, "ops-1", amount, "REFUND_PART")
    assert_decision(refund(engine, "alice", 60), "Blocked", "RATE_LIMIT_EXCEEDED", blocked=1)
    assert_decision(refund(engine, "bob", 2000), "Blocked", "BIG_REFUND", blocked=1)
    refund(engine, "carol")
    engine.reset("carol", operator="ops")
    refund(engine, "carol")
    clock.now -= 7200.25   # a clock that went back: its time counts in its place
    refund(engine, "alice")
    clock.now += 7300
    held = [refund(engine, "dave", 600).ticket for _ in range(3)]
    assert all(held)
    assert engine.review(held[0], True, operator="op").allowed   # an approval counts
    engine.review(held[1], False, operator="op")                  # a denial does not
    clock.now += 3601
    assert engine.ticket(held[2]).status == "expired"
    engine.assign_group("erin", "trusted", operator="op")
    refund(engine, "erin")
    engine.evaluate("frank", "ANYTHING", {"amount": 1})   # allowed, counts in nothing
    reloaded = Engine(RELOADED_TABLE, store, clock=clock)
    clock.now += 1.000001
    refund(reloaded, "alice")   # drops the SMALL_REFUND window
    refund(reloaded, "ops-1")
    return reloaded


@pytest.fixture(params=STORE_KINDS)
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """An engine of each store kind after :func:`history`."""
    target = store_target(request.param, request, tmp_path)
    engine = history(store_factory(request.param, target)(), Clock())
    yield request.param, engine
    engine.close()


def windows_of(engine: Engine, agent: str) -> dict[str, tuple[int, ...]]:
    state = engine.store.raw_state(agent)
    return dict(state[4] or {}) if len(state) > 4 else {}


def set_windows(engine: Engine, kind: str, agent: str,
                windows: dict[str, tuple[int, ...]]) -> None:
    """Write an agent's stored windows as someone with write access to the store would."""
    text = json.dumps(windows, sort_keys=True, separators=(",", ":")) if windows else None
    if kind == "memory":
        store: Any = engine.store
        state = store._states[agent]
        store._states[agent] = (*state[:4], *(None,) * (4 - len(state)), windows or None,
                                *state[5:])
    elif kind == "sqlite":
        with sqlite3.connect(engine.store.path) as connection:  # type: ignore[attr-defined]
            connection.execute("UPDATE agents SET limit_windows = ? WHERE agent_id = ?",
                               (text, agent))
    else:
        import psycopg

        with psycopg.connect(engine.store.url, autocommit=True) as connection:  # type: ignore[attr-defined]
            connection.execute("UPDATE sentra_agents SET limit_windows = %s WHERE agent_id = %s",
                               (text, agent.encode()))


def assert_clean(engine: Engine) -> None:
    result = engine.verify_audit()
    assert result.ok, str(result)
    out = io.StringIO()
    engine.export_audit(out)
    exported = verify_export(json.loads(line) for line in out.getvalue().splitlines())
    assert exported.ok, str(exported)


def assert_edited_windows(engine: Engine, agent: str, *details: str) -> None:
    result = engine.verify_audit()
    assert not result.ok
    assert result.problem.startswith(f"agent `{agent}`: the stored rate-limit windows are not "
                                     "the ones the log leaves it with: "), result.problem
    assert result.problem.endswith(": edited windows")
    for detail in details:
        assert detail in result.problem, result.problem


# -- an untouched log verifies clean ------------------------------------------------------------

def test_an_untouched_history_verifies_clean_and_its_windows_are_checked(
        filled: tuple[str, Engine]) -> None:
    _, engine = filled
    assert_clean(engine)
    assert SMALL not in windows_of(engine, "alice") and windows_of(engine, "alice")[BLOCK]
    assert windows_of(engine, "bob") == {} and windows_of(engine, "frank") == {}
    assert len(windows_of(engine, "dave")[BLOCK]) == 1   # the approval counted, once


def test_the_records_say_what_counted_and_what_was_dropped(filled: tuple[str, Engine]) -> None:
    """A counting decision's record lists the windows it counted in, in the order they were
    checked; an allowed decision counted in nothing lists none; the decision that dropped the
    reloaded policy's window says so; blocks, reviews held and policies without limits add
    nothing."""
    _, engine = filled
    records = [record for record in engine.audit_records() if record.get("decision")]
    outcomes = {(record["agent"], record.get("verdict", "decision"),
                 record["decision"]["rule_id"]): record["decision"] for record in records}
    assert outcomes["ops-1", "decision", "SMALL_REFUND"]["counted"] == [   # reloaded: no
        BLOCK, "group trusted ISSUE_REFUND per 3600", "group trusted * per 3600"]   # rule limit
    assert outcomes["frank", "decision", "OTHER"]["counted"] == []
    assert outcomes["dave", "approved", "REVIEW_REFUND"]["counted"] == [BLOCK]
    assert "counted" not in outcomes["dave", "denied", "REVIEW_REFUND"]
    dropped = [record["decision"].get("dropped") for record in records
               if record["agent"] == "alice"]
    assert dropped[-1] == [SMALL] and dropped[:-1] == [None] * (len(dropped) - 1)
    for record in records:
        decision = record["decision"]
        if not decision["allowed"]:
            assert "counted" not in decision and "dropped" not in decision


def test_a_policy_without_limits_writes_the_records_it_wrote_before(tmp_path: Path) -> None:
    """The Sentra-compatible policy's records have exactly the keys they had before records
    kept windows, and its agents' (empty) windows are checked."""
    engine = Engine(SENTRA_TABLE, open_store(str(tmp_path / "sentra.db")))
    engine.evaluate("a", "FILE_READ")
    engine.evaluate("a", "CHANGE_PERMISSION")
    for record in engine.audit_records():
        if record["kind"] == "decision":
            assert set(record["decision"]) == {
                "outcome", "label", "allowed", "rule_id", "threat", "reason", "attempted_risk",
                "applied_risk", "projected_risk", "cumulative_risk", "blocked_attempts",
                "status"}
    assert_clean(engine)
    with sqlite3.connect(tmp_path / "sentra.db") as connection:
        connection.execute("UPDATE agents SET limit_windows = ?",
                           (json.dumps({SMALL: [round(T0 * 1e6)]}),))
    assert_edited_windows(engine, "a", f"the window `{SMALL}` (1 time, the newest "
                                       "2023-11-14T22:13:20.000000Z) is stored, but not in the log")
    engine.close()


# -- every edit of a stored window is found ------------------------------------------------------

def _emptied(windows: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    return {}


def _time_removed(windows: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    return {**windows, BLOCK: windows[BLOCK][1:]}


def _time_moved(windows: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    times = windows[BLOCK]
    return {**windows, BLOCK: (times[0] - 3_600_000_000, *times[1:])}   # an hour earlier


def _key_added(windows: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    return {**windows, "rule OTHER per 60": (round(T0 * 1e6),)}


def _key_deleted(windows: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    return {key: times for key, times in windows.items() if key != BLOCK}


EDITS: dict[str, tuple[Callable[[dict[str, tuple[int, ...]]], dict[str, tuple[int, ...]]],
                       str]] = {
    "window emptied": (_emptied, f"the window `{BLOCK}` ("),
    "time removed": (_time_removed, f"the window `{BLOCK}` holds "),
    "time moved": (_time_moved, f"the window `{BLOCK}` holds the time "),
    "key added": (_key_added, "the window `rule OTHER per 60` (1 time, the newest "
                              "2023-11-14T22:13:20.000000Z) is stored, but not in the log"),
    "key deleted": (_key_deleted, f"the window `{BLOCK}` ("),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_window_is_found(filled: tuple[str, Engine], edit: str) -> None:
    kind, engine = filled
    change, detail = EDITS[edit]
    windows = windows_of(engine, "alice")
    assert len(windows[BLOCK]) >= 2
    set_windows(engine, kind, "alice", change(windows))
    assert_edited_windows(engine, "alice", detail)
    set_windows(engine, kind, "alice", windows)
    assert engine.verify_audit().ok


def test_audit_verify_reports_edited_windows_escaped(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`sentra-lang audit verify` of the file and of its export: exit 1, the problem naming
    the agent, its id escaped (an agent chose it)."""
    path = tmp_path / "store.db"
    clock = Clock()
    engine = Engine(TABLE, open_store(str(path)), clock=clock)
    agent = "evil\n\x1b[2Jagent"
    refund(engine, agent)
    engine.close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE agents SET limit_windows = NULL")
    assert main(["audit", "verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "\x1b" not in out
    assert "agent `evil\\x0a\\x1b[2Jagent`: the stored rate-limit windows are not" in out
    assert out.rstrip().endswith("is not stored: edited windows")
    export = tmp_path / "log.jsonl"
    assert main(["audit", "export", str(path), "-o", str(export)]) == 0
    capsys.readouterr()
    assert main(["audit", "verify", str(export)]) == 1
    assert "edited windows" in capsys.readouterr().out


def test_windows_edited_in_an_export_are_found(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    engine = history(open_store(str(path)), Clock())
    engine.close()
    out = io.StringIO()
    open_store(str(path)).export_audit(out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert verify_export(lines).ok
    for line in lines:
        if line["kind"] == "state" and line["agent"] == "alice":
            line["limit_windows"][BLOCK].pop(0)
    result = verify_export(lines)
    assert not result.ok and "agent `alice`" in result.problem and "edited windows" in \
        result.problem
    for line in lines:
        if line["kind"] == "state" and line["agent"] == "alice":
            line["limit_windows"] = {BLOCK: ["not a time"]}
    assert "edited state" in verify_export(lines).problem


def test_an_export_keeps_the_assigned_groups_and_an_edit_of_one_is_found(tmp_path: Path) -> None:
    """An export's state line holds the agent's assigned group (without it, a store with an
    assignment exported and verified would be reported edited)."""
    path = tmp_path / "store.db"
    engine = history(open_store(str(path)), Clock())
    out = io.StringIO()
    engine.export_audit(out)
    engine.close()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    [erin] = [line for line in lines if line["kind"] == "state" and line["agent"] == "erin"]
    assert erin["assigned_group"] == "trusted" and verify_export(lines).ok
    del erin["assigned_group"]
    assert verify_export(lines).problem.endswith("has the group assignment none in the store, "
                                                 "but the log leaves it `trusted`: edited "
                                                 "assignment")


def test_a_record_whose_counted_windows_were_edited_is_found_by_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    engine = Engine(TABLE, open_store(str(path)), clock=Clock())
    seq = refund(engine, "a").seq
    engine.close()
    with sqlite3.connect(path) as connection:
        [(body,)] = connection.execute("SELECT body FROM audit WHERE seq = ?", (seq,))
        record = json.loads(body)
        record["decision"]["counted"] = []
        connection.execute("UPDATE audit SET body = ? WHERE seq = ?",
                           (json.dumps(record, sort_keys=True, separators=(",", ":")), seq))
    result = verify_file(path)
    assert (result.ok, result.seq, result.problem) == (
        False, seq, f"record seq {seq} does not match its hash: edited")


# -- logs written before records kept their windows -------------------------------------------

class OlderDecider(Decider):
    """The state step of the runtime before records kept their windows: the same decisions and
    states, and records without `counted` (what that runtime wrote)."""

    def transition(self, *args: Any, **kwargs: Any) -> Any:
        decision, state = super().transition(*args, **kwargs)
        decision.__dict__.pop(COUNTED_LIMITS, None)
        decision.__dict__.pop(DROPPED_KEYS, None)
        return decision, state

    def grouped_transition(self, *args: Any, **kwargs: Any) -> Any:
        decision, state = super().grouped_transition(*args, **kwargs)
        decision.__dict__.pop(COUNTED_LIMITS, None)
        decision.__dict__.pop(DROPPED_KEYS, None)
        return decision, state


def test_the_older_step_writes_the_records_of_before() -> None:
    """The stand-in for the older runtime writes what that runtime wrote: the same record as
    this one's but for `counted` (and so the hash)."""
    records = []
    for decider in (OlderDecider(TABLE), Decider(TABLE)):
        engine = Engine(decider, MemoryStore(), clock=Clock())
        refund(engine, "a")
        records.append(next(r for r in engine.audit_records() if r["kind"] == "decision"))
    older, newer = records
    assert "counted" not in older["decision"] and newer["decision"]["counted"]
    del newer["decision"]["counted"], newer["hash"], older["hash"]
    assert older == newer


def test_a_log_written_before_records_kept_windows_verifies_and_is_checked_from_a_reset(
        tmp_path: Path) -> None:
    """A store file the older runtime wrote (with counting decisions, a reset and a reload that
    dropped a limit) verifies clean; the newer runtime goes on on it, and an agent's windows
    are checked from its first reset in the newer runtime's records on."""
    path = tmp_path / "legacy.db"
    shutil.copy(FIXTURE, path)
    assert verify_file(path).ok
    clock = Clock(T0 + 100_000)
    engine = Engine(TABLE, open_store(str(path)), clock=clock)
    refund(engine, "alice")
    refund(engine, "carol")
    assert_clean(engine)
    set_windows(engine, "sqlite", "alice", {})   # not found: the log does not determine them
    assert engine.verify_audit().ok
    engine.reset("alice", operator="ops")
    refund(engine, "alice")
    clock.now += 1
    refund(engine, "alice", 60)
    assert_clean(engine)
    set_windows(engine, "sqlite", "alice", _time_removed(windows_of(engine, "alice")))
    assert_edited_windows(engine, "alice", f"the window `{BLOCK}` holds 1 time")
    engine.close()


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_chain_an_older_and_a_newer_runtime_append_to_verifies_clean(
        kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Two engines on one store, one with the older step (records without `counted`), taking
    turns on the same agents: no false alarm; an agent the older one never decided for (since
    its reset) is still checked."""
    make = store_factory(kind, store_target(kind, request, tmp_path))
    store = make()
    clock = Clock()
    older = Engine(OlderDecider(TABLE), store, clock=clock)
    newer = Engine(TABLE, store if kind == "memory" else make(), clock=clock)
    for step in range(12):
        clock.now += 301
        refund(older if step % 3 == 0 else newer, "shared", 10 + 50 * (step % 2))
        refund(newer, "ops-9", 10, "REFUND_PART")
        if step == 6:
            newer.reset("shared", operator="ops")
            refund(older, "ops-9")   # the older runtime also decides for ops-9
            newer.reset("ops-9", operator="ops")
    for engine in (older, newer):
        assert_clean(engine)
    windows = windows_of(newer, "ops-9")
    set_windows(newer, kind, "ops-9", _key_deleted(windows))
    assert_edited_windows(newer, "ops-9", f"the window `{BLOCK}` (")
    set_windows(newer, kind, "ops-9", windows)
    refund(newer, "only-newer")
    set_windows(newer, kind, "only-newer", {})
    assert_edited_windows(newer, "only-newer", f"the window `{BLOCK}` (1 time")
    older.close()
    newer.close()


def test_a_bounded_memory_log_checks_the_agents_reset_since_its_oldest_record() -> None:
    """When the in-memory log no longer holds an agent's first records, its windows are not
    known (nothing is reported); after a reset they are checked again."""
    store = MemoryStore(audit_limit=5)
    clock = Clock()
    engine = Engine(TABLE, store, clock=clock)
    for _ in range(6):
        clock.now += 1
        refund(engine, "a")
    assert store.dropped and engine.verify_audit().ok
    set_windows(engine, "memory", "a", {})
    assert engine.verify_audit().ok
    engine.reset("a", operator="ops")
    refund(engine, "a")
    set_windows(engine, "memory", "a", {})
    assert_edited_windows(engine, "a")


# -- the law --------------------------------------------------------------------------------------

STEP = st.one_of(
    st.tuples(st.just("decide"), st.sampled_from(["a", "b", "ops-1", "ops-2"]),
              st.sampled_from(["ISSUE_REFUND", "REFUND_PART", "OTHER"]),
              st.sampled_from([10, 60, 600, 2000]),
              st.integers(min_value=-5_000_000_000, max_value=4_000_000_000)),
    st.tuples(st.just("reset"), st.sampled_from(["a", "ops-1", None])),
    st.tuples(st.just("reload"), st.booleans()),
    st.tuples(st.just("review"), st.booleans()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=40), edit=st.integers(0, 10_000))
def test_any_history_verifies_clean_and_any_single_window_edit_is_found(
        steps: list[tuple[Any, ...]], edit: int) -> None:
    """For random decisions under a policy with limits (random times, a clock that goes back,
    resets, reloads that drop and bring back a limit, reviews), verification is clean; then
    one edit of one stored window (a time removed, moved or added, a window added or
    deleted, the windows emptied) is found."""
    store = MemoryStore(audit_limit=None)
    clock = Clock()
    engine = Engine(TABLE, store, clock=clock)
    for step in steps:
        if step[0] == "decide":
            _, agent, action, amount, micros = step
            clock.now += micros / 1e6
            refund(engine, agent, amount, action)
        elif step[0] == "reset":
            engine.reset(step[1], operator="ops")
        elif step[0] == "reload":
            engine = Engine(RELOADED_TABLE if step[1] else TABLE, store, clock=clock)
        else:
            pending = engine.tickets(status="pending")
            if pending:
                with contextlib.suppress(TicketError):   # expired meanwhile
                    engine.review(pending[0].ticket, step[1], operator="op")
    assert engine.verify_audit().ok, str(engine.verify_audit())
    held = sorted((agent, windows_of(engine, agent)) for agent in store.agents())
    if not held:
        return
    agent, windows = held[edit % len(held)]
    edited = _one_edit(windows, edit)
    set_windows(engine, "memory", agent, edited)
    assert_edited_windows(engine, agent)


def _one_edit(windows: dict[str, tuple[int, ...]], choice: int) -> dict[str, tuple[int, ...]]:
    """One edit of an agent's windows, picked by ``choice``; never the windows themselves."""
    keys = sorted(windows)
    if not keys or choice % 6 == 0:
        return {**windows, "rule OTHER per 60": (choice,)}
    key = keys[choice // 6 % len(keys)]
    times = windows[key]
    kind = choice % 6
    if kind == 1:
        return {**windows, key: times[1:]} if len(times) > 1 else _without(windows, key)
    if kind == 2:
        return {**windows, key: tuple(sorted((times[0] + 1 + choice, *times[1:])))}
    if kind == 3:
        return {**windows, key: tuple(sorted((*times, times[-1] + choice)))}
    if kind == 4:
        return _without(windows, key)
    return {}


def _without(windows: dict[str, tuple[int, ...]], key: str) -> dict[str, tuple[int, ...]]:
    return {name: times for name, times in windows.items() if name != key}
