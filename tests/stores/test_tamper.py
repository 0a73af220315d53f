"""The tamper table (docs/threat-model.md, "Audit log and state"): every case is detected, by
`audit verify` and the stores' `verify_audit`, for a SQLite file, a JSON Lines export and a
PostgreSQL database, without an anchored head where the store keeps one itself.

Each case is written once, as an edit of the log's records and states, and applied to each
backend by an adapter that reads and writes the backend's own storage directly, as someone with
write access to it would.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from sentra_runtime import Engine, VerifyResult
from sentra_runtime.audit import (
    canonical_json,
    decision_state,
    read_jsonl,
    state_line,
    text_hash,
    verify_export,
)
from sentra_runtime.stores import open_store
from sentra_runtime.stores.postgres import verify_database
from sentra_runtime.stores.sqlite import verify_file

from tests.runtime.helpers import SENTRA_TABLE

OTHER_POLICY = "sha256:" + "0" * 64

Records = list[dict[str, Any]]


class Backend(Protocol):
    def records(self) -> Records: ...

    def write(self, records: Records, *, move_head: bool) -> None:
        """Replace the log with ``records`` in this order (``move_head``: the stored head
        follows, as a careful forger would make it)."""

    def set_state(self, agent: str, state: tuple[int, int, bool] | None) -> None: ...

    def verify(self, expected_head: str | None = None,
               anchor: tuple[int, str] | None = None) -> VerifyResult: ...


def fill(engine: Engine) -> None:
    """Eight records: a policy load; mallory shut down (seqs 2-4); bob at 80, reset, at 30;
    carol allowed."""
    for _ in range(3):
        engine.evaluate("mallory", "CHANGE_PERMISSION")
    engine.evaluate("bob", "EXPORT_DATA", {"destination_type": "external",
                                           "data_classification": "sensitive"})
    engine.reset("bob", operator="ops")
    engine.evaluate("bob", "DELETE_RECORD")
    engine.evaluate("carol", "FILE_READ")
    engine.close()


class SQLiteBackend:
    def __init__(self, path: Path) -> None:
        self.path = path
        fill(Engine(SENTRA_TABLE, open_store(str(path))))

    def records(self) -> Records:
        with sqlite3.connect(self.path) as connection:
            return [dict(json.loads(body), hash=digest) for digest, body in
                    connection.execute("SELECT hash, body FROM audit ORDER BY seq")]

    def write(self, records: Records, *, move_head: bool) -> None:
        with sqlite3.connect(self.path) as connection:
            head = connection.execute("SELECT seq, hash FROM head").fetchone()
            connection.execute("DELETE FROM audit")
            for position, record in enumerate(records, start=1):
                connection.execute("INSERT INTO audit (seq, hash, body) VALUES (?, ?, ?)",
                                   (position, record["hash"], body_text(record)))
            if not move_head:   # the insert trigger moved it
                connection.execute("UPDATE head SET seq = ?, hash = ?", head)

    def set_state(self, agent: str, state: tuple[int, int, bool] | None) -> None:
        with sqlite3.connect(self.path) as connection:
            connection.execute("DELETE FROM agents WHERE agent_id = ?", (agent,))
            if state is not None:
                connection.execute("INSERT INTO agents (agent_id, cumulative_risk, blocked_attempts, "
                                   "shut_down) VALUES (?, ?, ?, ?)", (agent, *state))

    def verify(self, expected_head: str | None = None,
               anchor: tuple[int, str] | None = None) -> VerifyResult:
        """`audit verify`'s check of the file, which the open store's must equal."""
        result = verify_file(self.path, expected_head=expected_head, anchor=anchor)
        if anchor is None:
            with _closing(open_store(str(self.path))) as store:
                assert str(store.verify_audit(expected_head=expected_head)) == str(result)
        return result


class ExportBackend:
    """A JSON Lines export: records, then a state line per agent, then the head line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        database = str(path.with_suffix(".db"))
        fill(Engine(SENTRA_TABLE, open_store(database)))
        with _closing(open_store(database)) as store, path.open("w", encoding="utf-8") as out:
            store.export_audit(out)

    def lines(self) -> Records:
        return list(read_jsonl(self.path))

    def records(self) -> Records:
        return [line for line in self.lines() if line["kind"] not in ("state", "head")]

    def write(self, records: Records, *, move_head: bool) -> None:
        ending = [line for line in self.lines() if line["kind"] in ("state", "head")]
        if move_head:
            ending[-1] = {"kind": "head", "seq": records[-1]["seq"], "hash": records[-1]["hash"]}
        self._write([*records, *ending])

    def _write(self, lines: Records) -> None:
        self.path.write_text("".join(canonical_json(line) + "\n" for line in lines))

    def set_state(self, agent: str, state: tuple[int, int, bool] | None) -> None:
        lines = [line for line in self.lines()
                 if not (line["kind"] == "state" and line["agent"] == agent)]
        if state is not None:
            lines.insert(-1, state_line(agent, state))
        self._write(lines)

    def verify(self, expected_head: str | None = None,
               anchor: tuple[int, str] | None = None) -> VerifyResult:
        return verify_export(read_jsonl(self.path), expected_head=expected_head, anchor=anchor)


class PostgresBackend:
    def __init__(self, url: str) -> None:
        self.url = url
        fill(Engine(SENTRA_TABLE, open_store(url)))

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def records(self) -> Records:
        with self._connect() as connection:
            return [dict(json.loads(body), hash=digest) for digest, body in connection.execute(
                "SELECT hash, body FROM sentra_audit ORDER BY seq")]

    def write(self, records: Records, *, move_head: bool) -> None:
        with self._connect() as connection:
            connection.execute("DELETE FROM sentra_audit")
            for position, record in enumerate(records, start=1):
                connection.execute(
                    "INSERT INTO sentra_audit (seq, hash, body, kind) VALUES (%s, %s, %s, %s)",
                    (position, record["hash"], body_text(record), record["kind"]))
            if move_head:
                connection.execute("UPDATE sentra_head SET seq = %s, hash = %s",
                                   (records[-1]["seq"], records[-1]["hash"]))

    def set_state(self, agent: str, state: tuple[int, int, bool] | None) -> None:
        with self._connect() as connection:
            connection.execute("DELETE FROM sentra_agents WHERE agent_id = %s", (agent.encode(),))
            if state is not None:
                connection.execute("INSERT INTO sentra_agents VALUES (%s, %s, %s, %s)",
                                   (agent.encode(), *state))

    def verify(self, expected_head: str | None = None,
               anchor: tuple[int, str] | None = None) -> VerifyResult:
        """`audit verify`'s check of the database, which the open store's must equal."""
        result = verify_database(self.url, expected_head=expected_head, anchor=anchor)
        if anchor is None:
            with _closing(open_store(self.url)) as store:
                assert str(store.verify_audit(expected_head=expected_head)) == str(result)
        return result


class _closing:  # noqa: N801
    def __init__(self, store: Any) -> None:
        self.store = store

    def __enter__(self) -> Any:
        return self.store

    def __exit__(self, *exc: Any) -> None:
        self.store.close()


def body_text(record: dict[str, Any]) -> str:
    return canonical_json({key: value for key, value in record.items() if key != "hash"})


def rehash(records: Records, start: int, *, chain: bool) -> None:
    """Give ``records[start]`` a hash matching its body again; with ``chain``, also every
    record after it, each linked to the one before: what a forger with write access does."""
    stop = len(records) if chain else start + 1
    for index in range(start, stop):
        if chain and index > 0:
            records[index]["prev"] = records[index - 1]["hash"]
        records[index]["hash"] = text_hash(body_text(records[index]))


@pytest.fixture(params=["sqlite", "export", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return SQLiteBackend(tmp_path / "store.db")
    if request.param == "export":
        return ExportBackend(tmp_path / "audit.jsonl")
    return PostgresBackend(request.getfixturevalue("postgres_url"))


@dataclass
class Case:
    """One row of the tamper table: the edit, and where and how verification reports it."""

    edit: Callable[[Backend], None]
    seq: int | None
    problem: str


def edit(change: Callable[[Records], None], *, move_head: bool = False
         ) -> Callable[[Backend], None]:
    def apply(backend: Backend) -> None:
        records = backend.records()
        change(records)
        backend.write(records, move_head=move_head)
    return apply


def set_label(index: int, label: str) -> Callable[[Records], None]:
    def change(records: Records) -> None:
        records[index]["decision"]["label"] = label
    return change


def then(*changes: Callable[[Records], None]) -> Callable[[Records], None]:
    def change(records: Records) -> None:
        for step in changes:
            step(records)
    return change


def set_policy(index: int) -> Callable[[Records], None]:
    def change(records: Records) -> None:
        records[index]["policy_hash"] = OTHER_POLICY
    return change


def delete(*indexes: int) -> Callable[[Records], None]:
    def change(records: Records) -> None:
        for index in sorted(indexes, reverse=True):
            del records[index]
    return change


def swap(first: int, second: int) -> Callable[[Records], None]:
    def change(records: Records) -> None:
        records[first], records[second] = records[second], records[first]
    return change


def rehashed(index: int, *, chain: bool = False) -> Callable[[Records], None]:
    return lambda records: rehash(records, index, chain=chain)


def revive(backend: Backend) -> None:
    """`UPDATE agents SET shut_down=0, blocked_attempts=0, cumulative_risk=0`: mallory lives."""
    backend.set_state("mallory", (0, 0, False))


CASES = {
    "edited record": Case(edit(set_label(2, "Allowed")), 3, "does not match its hash: edited"),
    "edited and re-hashed record": Case(
        edit(then(set_label(2, "Allowed"), rehashed(2))), 4,
        "does not follow the previous record's hash"),
    "edited and re-hashed last record": Case(
        edit(then(set_label(7, "Blocked"), rehashed(7))), 8,
        "is not the one the store's head names"),
    "deleted middle record": Case(edit(delete(4)), 6, "seq 5 missing before seq 6: record "
                                                      "deleted"),
    "deleted tail": Case(edit(delete(6, 7)), 7, "seqs 7-8 deleted from the end"),
    "reordered records": Case(edit(swap(4, 5)), 6, "record seq 6 appears before seq 5: "
                                                   "reordered"),
    "edited state (a shut-down agent revived)": Case(
        revive, 4, "agent `mallory`: the stored state (cumulative risk 0, blocked attempts 0, "
                   "active) is not the one the log leaves it in (cumulative risk 0, blocked "
                   "attempts 3, shut down): edited state"),
    "deleted state": Case(lambda backend: backend.set_state("mallory", None), 4,
                          "agent `mallory` has no stored state"),
    "inserted state": Case(lambda backend: backend.set_state("eve", (0, 0, False)), None,
                           "agent `eve` has a stored state"),
    "changed policy hash": Case(edit(set_policy(4)), 5, "does not match its hash: edited"),
    "changed policy hash, log re-chained from there": Case(
        edit(then(set_policy(4), rehashed(4, chain=True)), move_head=True), 5,
        "names the policy sha256:000", ),
    "changed policy load, log re-chained": Case(
        edit(then(set_policy(0), rehashed(0, chain=True)), move_head=True), 2,
        "which the log never loaded: edited policy hash"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_every_tamper_case_is_detected(backend: Backend, case: Case) -> None:
    assert backend.verify().ok, str(backend.verify())
    case.edit(backend)
    result = backend.verify()
    assert not result.ok
    assert (result.seq, case.problem in result.problem) == (case.seq, True), str(result)


def test_a_full_re_chain_needs_an_anchor(backend: Backend) -> None:
    """Someone with write access who rewrites a record, re-chains everything after it and moves
    the stored head too is found only by a record anchored elsewhere (`audit head`, then
    `verify --anchor` or `--expected-head`); so is one who then deletes the log's end."""
    records = backend.records()
    anchor = (records[5]["seq"], records[5]["hash"])   # noted when the log had 6 records
    assert backend.verify(anchor=anchor).anchored == 6
    edit(then(set_label(2, "Allowed"), rehashed(2, chain=True)), move_head=True)(backend)
    assert backend.verify().ok
    result = backend.verify(expected_head=records[-1]["hash"])
    assert not result.ok and "not at the expected head" in result.problem
    result = backend.verify(anchor=anchor)
    assert (result.ok, result.seq) == (False, 6) and "the log was rewritten" in result.problem
    edit(delete(5, 6, 7), move_head=True)(backend)
    result = backend.verify(anchor=anchor)
    assert not result.ok and "before the anchored record seq 6" in result.problem


def test_the_states_the_log_leaves_are_the_stored_states(backend: Backend) -> None:
    """The reference the state check compares with: each agent's last record's state."""
    last: dict[str, Any] = {}
    for record in backend.records():
        if record["kind"] == "decision":
            last[record["agent"]] = decision_state(record["decision"])
        elif record["kind"] == "reset":
            last.update(dict.fromkeys(record["agents"], (0, 0, False)))
    assert last == {"mallory": (0, 3, True), "bob": (30, 0, False), "carol": (0, 0, False)}
    assert backend.verify().agents == 3


def test_an_export_cut_short_is_detected(tmp_path: Path) -> None:
    backend = ExportBackend(tmp_path / "audit.jsonl")
    lines = backend.path.read_text().splitlines()
    last_hash = json.loads(lines[7])["hash"]
    for kept in (lines[:-1], lines[:8], lines[:6]):   # no head line; no end lines; fewer records
        backend.path.write_text("\n".join(kept) + "\n")
        result = backend.verify()
        assert not result.ok and "does not end with its `head` line" in result.problem
    backend.path.write_text("\n".join(lines[:8]) + "\n")   # as exports were before head lines
    assert backend.verify(expected_head=last_hash).ok
    backend.path.write_text("\n".join(lines[:6]) + "\n")
    assert "not at the expected head" in backend.verify(expected_head=last_hash).problem


def test_an_export_reports_a_state_line_deleted(tmp_path: Path) -> None:
    backend = ExportBackend(tmp_path / "audit.jsonl")
    lines = backend.path.read_text().splitlines()
    del lines[-2]   # mallory's state line (shut down): without it, mallory would look fresh
    backend.path.write_text("\n".join(lines) + "\n")
    assert "agent `mallory` has no stored state" in backend.verify().problem


def test_an_export_re_encoded_with_other_spacing_still_verifies(tmp_path: Path) -> None:
    """The verifier hashes an export's lines as written when it can, and the records as
    canonical JSON otherwise: spacing is not tampering, an edited value still is."""
    backend = ExportBackend(tmp_path / "audit.jsonl")
    lines = [json.loads(line) for line in backend.path.read_text().splitlines()]
    backend.path.write_text("".join(json.dumps(line, indent=None) + "\n" for line in lines))
    assert ", " in backend.path.read_text() and backend.verify().ok
    lines[3]["decision"]["label"] = "Allowed"
    backend.path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert "seq 4 does not match its hash" in backend.verify().problem


def test_the_documented_tamper_table_is_this_table() -> None:
    """docs/threat-model.md's tamper table cites these cases, each of them, and no other."""
    document = (Path(__file__).resolve().parents[2] / "docs" / "threat-model.md").read_text()
    section = document[document.index("## Audit log and state"):
                       document.index("## Policy files")]
    cited = set(re.findall(r"`\[([^`\]]+)-\*\]`", section))
    assert cited == set(CASES)
