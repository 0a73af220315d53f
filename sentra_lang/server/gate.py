"""The gate behind every endpoint: one policy (swappable), one store, and who to tell.

Decisions are serialised by the store (one transaction per decision under its lock). A reload
compiles the policy file again and swaps in a new :class:`Engine` over the same store, so agent
state is kept; a policy that does not compile is refused and the old engine keeps serving.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentra_runtime import Engine, Policy, SQLiteStore
from sentra_runtime.decision import Decision
from sentra_runtime.policy import InputSpec, normalizer

from sentra_lang.server.store import AuditReader

CHECKPOINT_SECONDS = 0.25
"""WAL checkpoints run in a background thread this often, never inside a decision's commit
(a checkpoint there costs that request several milliseconds: the p99)."""

Listener = Callable[[dict[str, Any], float], None]
"""Told of every audit record this server writes, with the decision's duration (0 for others)."""


class PolicyRefused(Exception):
    """The policy file does not compile, or cannot be read (``unreadable``: missing, not a
    regular file, too large, not text); ``problems`` are rendered diagnostics."""

    def __init__(self, path: Path, problems: list[str], *, unreadable: bool = False) -> None:
        super().__init__(f"{path}: the policy does not compile")
        self.path = path
        self.problems = problems
        self.unreadable = unreadable


@dataclass(frozen=True)
class FieldError:
    """One input value that does not fit its declared type, located in the request body."""

    loc: tuple[str | int, ...]
    type: str
    msg: str
    input: Any

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "loc": list(self.loc), "msg": self.msg, "input": self.input}


def load_table(path: Path) -> dict[str, Any]:
    """The decision table of a policy file: a compiled ``.json`` table or ``.sentra`` source."""
    from sentra_lang.loader import FileUnreadable
    from sentra_lang.policy_file import load_policy_file

    try:
        loaded = load_policy_file(path)
    except FileUnreadable as error:
        raise PolicyRefused(path, [str(error)], unreadable=True) from error
    if loaded.table is None:
        raise PolicyRefused(path, loaded.problems)
    return loaded.table


class Gate:
    """Evaluate, reset and reload for the server; tells listeners about every audit record."""

    def __init__(self, policy_path: str | os.PathLike[str], db_path: str | os.PathLike[str]) -> None:
        self.policy_path = Path(policy_path)
        self.db_path = Path(db_path)
        table = load_table(self.policy_path)
        self.store = SQLiteStore(self.db_path, checkpoint_interval=CHECKPOINT_SECONDS)
        self.reader = AuditReader(self.store)
        self.listeners: list[Listener] = []
        self._reload_lock = threading.Lock()
        self._engine = Engine(table, self.store)
        self.table = table
        self.loaded_at = time.time()

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def policy(self) -> Policy:
        return self._engine.policy

    def decide(self, agent_id: str, action: str, fields: Mapping[str, Any],
               annotate: Callable[[Policy, Decision], dict[str, Any]] | None = None,
               ) -> tuple[Decision, dict[str, Any]]:
        """Decide, and return the decision with its sealed audit record.

        ``annotate(policy, decision)`` gives extra keys for the audit record; it runs inside the
        decision's transaction, with the policy that decided.
        """
        engine = self._engine
        policy = engine.policy
        started = time.perf_counter()
        decision = engine.evaluate(
            agent_id, action, fields,
            annotations=None if annotate is None else lambda made: annotate(policy, made))
        record = self._written(decision.seq, "decision")
        self._tell(record, time.perf_counter() - started)
        return decision, record

    def reset(self, agent_id: str | None, operator: str) -> dict[str, Any]:
        """Reset one agent (or all, for ``None``); return the reset's audit record."""
        with self._reload_lock:
            reset = self._engine.reset(agent_id, operator=operator)
        record = self._written(reset.seq, "reset")
        self._tell(record)
        return record

    def _written(self, seq: int | None, kind: str) -> dict[str, Any]:
        """The audit record the runtime just reported writing at ``seq``."""
        record = self.reader.record(seq)
        if record is None or record.get("kind") != kind:
            raise RuntimeError(f"the store wrote no {kind} record at seq {seq}")
        return record

    def reload(self) -> tuple[Policy, Policy]:
        """Compile the policy file again and swap it in; ``(old, new)``. Raises
        :class:`PolicyRefused` and keeps the old policy when the file does not compile."""
        with self._reload_lock:
            table = load_table(self.policy_path)
            old = self._engine.policy
            engine = Engine(table, self.store)
            record = self._written(engine.policy_load_seq, "policy_load")
            self.table = table
            self.loaded_at = time.time()
            self._engine = engine
        self._tell(record)
        return old, engine.policy

    def _tell(self, record: dict[str, Any], seconds: float = 0.0) -> None:
        for listener in self.listeners:
            listener(record, seconds)

    def close(self) -> None:
        self.store.close()


def field_errors(policy: Policy, fields: Mapping[str, Any],
                 locate: Callable[[str], tuple[str | int, ...]]) -> list[FieldError]:
    """The declared fields whose present value does not fit the declared type (docs/table.md).

    The engine would block such input as ``INVALID_INPUT`` (a strike); the server refuses the
    request with a 422 instead, so a client bug neither shuts an agent down nor writes anything.
    """
    errors = []
    parents: set[str] = set()
    for spec in policy.inputs:
        parent = non_object_parent(fields, spec.name)
        if parent is not None:
            path, value = parent
            if path not in parents:
                parents.add(path)
                errors.append(FieldError(locate(path), "dict_type",
                                         f"Input should be an object, not {_describe(value)}",
                                         value))
            continue
        value = lookup(fields, spec.name)
        if value is None:
            continue
        problem = type_problem(spec, value)
        if problem is not None:
            errors.append(FieldError(locate(spec.name), problem[0], problem[1], value))
    return errors


def lookup(fields: Mapping[str, Any], name: str) -> Any:
    """A dotted field as the runtime reads it: a path through objects, then a flat key."""
    current: Any = fields
    for part in name.split("."):
        if not isinstance(current, Mapping) or part not in current:
            current = None
            break
        current = current[part]
    if current is None and "." in name:
        return fields.get(name)
    return current


def non_object_parent(fields: Mapping[str, Any], name: str) -> tuple[str, Any] | None:
    """``(path, value)`` of the first parent of dotted field ``name`` that is present, not
    null and not an object; the runtime blocks such input as ``INVALID_INPUT`` rather than read
    it as an empty object."""
    current: Any = fields
    parts = name.split(".")
    for depth, part in enumerate(parts[:-1]):
        current = current.get(part)
        if current is None:
            return None
        if not isinstance(current, Mapping):
            return ".".join(parts[:depth + 1]), current
    return None


def type_problem(spec: InputSpec, value: Any) -> tuple[str, str] | None:
    """``(error type, message)`` when ``value`` does not fit ``spec``; ``None`` when it does."""
    kind = spec.type
    if kind == "bool":
        if isinstance(value, bool):
            return None
        return "bool_type", f"Input should be a boolean (true or false), not {_describe(value)}"
    if kind in ("int", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            whole = "whole " if kind == "int" else ""
            return f"{kind}_type", f"Input should be a {whole}number, not {_describe(value)}"
        if kind == "int" and not isinstance(value, int):
            return "int_type", "Input should be a whole number"
        if isinstance(value, float) and not math.isfinite(value):
            return "finite_number", "Input should be a finite number"
        return None
    if kind in ("string", "enum"):
        if not isinstance(value, str):
            return "string_type", f"Input should be a string, not {_describe(value)}"
        if kind == "enum" and normalizer(spec.normalize)(value) not in (spec.values or ()):
            allowed = ", ".join(f"'{item}'" for item in spec.values or ())
            return "enum", f"Input should be one of {allowed}"
        return None
    if kind == "set":
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return None
        return "set_type", "Input should be an array of strings"
    return None


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
