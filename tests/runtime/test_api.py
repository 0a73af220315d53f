"""The supported APIs for tools built on the runtime: decision seq, annotations, trace, paged
audit reads, and the seq of resets and policy loads."""

from __future__ import annotations

from typing import Any

import pytest
from sentra_runtime import (
    FRESH,
    AgentState,
    Decider,
    Decision,
    Engine,
    MemoryStore,
    Store,
)
from sentra_runtime.codegen import NO_MATCH

SENSITIVE_EXPORT = {"destination_type": "external", "data_classification": " Sensitive "}



def record_at(store: Store, seq: int | None) -> dict[str, Any]:
    assert seq is not None
    [record] = store.read_records(seq - 1, 1)
    assert record["seq"] == seq
    return record


def test_the_decision_carries_its_audit_record_seq(sentra_table: dict[str, Any],
                                                   store: Store) -> None:
    engine = Engine(sentra_table, store)
    assert engine.policy_load_seq == 1
    first = engine.evaluate("a", "FILE_READ")
    second = engine.evaluate("b", "CHANGE_PERMISSION")
    assert (first.seq, second.seq) == (2, 3)
    assert record_at(store, second.seq)["decision"]["rule_id"] == "BLOCK_PERMISSION_CHANGE"
    assert store.last_seq() == 3


def test_a_store_without_a_log_gives_no_seq(sentra_table: dict[str, Any]) -> None:
    engine = Engine(sentra_table, MemoryStore(audit=False))
    assert engine.policy_load_seq is None
    assert engine.evaluate("a", "FILE_READ").seq is None
    assert engine.reset("a", operator="op").seq is None


def test_annotations_are_kept_inside_the_hash_chain(sentra_table: dict[str, Any],
                                                    store: Store) -> None:
    engine = Engine(sentra_table, store)
    plain = engine.evaluate("a", "FILE_READ", annotations={"request": {"target": "x.txt"}})
    computed = engine.evaluate("a", "EXPORT_DATA", SENSITIVE_EXPORT,
                               annotations=lambda decision: {"seen": decision.rule_id})
    assert record_at(store, plain.seq)["request"] == {"target": "x.txt"}
    assert record_at(store, computed.seq)["seen"] == "RISKY_SENSITIVE_EXTERNAL_EXPORT"
    assert store.verify_audit().ok


def test_annotations_may_not_replace_record_keys(sentra_table: dict[str, Any],
                                                 store: Store) -> None:
    engine = Engine(sentra_table, store)
    with pytest.raises(ValueError, match="decision, seq"):
        engine.evaluate("a", "DELETE_RECORD", annotations={"seq": 9, "decision": "Allowed"})
    with pytest.raises(TypeError):
        engine.evaluate("a", "DELETE_RECORD", annotations={"value": object()})
    assert engine.state("a") == AgentState(0, 0, "active")
    assert store.last_seq() == 1
    assert store.verify_audit().ok


def test_read_records_pages_and_filters(sentra_table: dict[str, Any], store: Store) -> None:
    engine = Engine(sentra_table, store)
    for agent in ("a", "b", "a"):
        engine.evaluate(agent, "CHANGE_PERMISSION")
    engine.evaluate("b", "FILE_READ")
    engine.reset(operator="op")
    assert [r["seq"] for r in store.read_records()] == [1, 2, 3, 4, 5, 6]
    assert [r["seq"] for r in store.read_records(2, 2)] == [3, 4]
    assert [r["seq"] for r in store.read_records(agent="a")] == [2, 4]
    assert [r["seq"] for r in store.read_records(agent="b", label="Blocked")] == [3]
    assert [r["kind"] for r in store.read_records(1, kind="reset")] == ["reset"]
    assert store.read_records(6) == []
    assert store.read_records() == list(store.audit_records())


def test_reset_returns_the_agents_and_the_record_seq(sentra_table: dict[str, Any],
                                                     store: Store) -> None:
    engine = Engine(sentra_table, store)
    engine.evaluate("b", "FILE_READ")
    engine.evaluate("a", "FILE_READ")
    reset = engine.reset(operator="op")
    assert reset == ["a", "b"]
    assert reset.seq == 4
    assert record_at(store, reset.seq)["operator"] == "op"


def test_trace_names_the_row_the_values_and_the_state_before(engine: Engine) -> None:
    engine.evaluate("a", "DELETE_RECORD")
    decision = engine.evaluate("a", " export_data ", SENSITIVE_EXPORT)
    trace = decision.trace
    assert trace is not None
    assert trace.evaluated
    assert trace.action == "EXPORT_DATA"
    assert trace.state_before == AgentState(30, 0, "active")
    assert trace.matched_rule == "RISKY_SENSITIVE_EXTERNAL_EXPORT"
    assert trace.matched_row == 0
    assert trace.values["data_classification"] == "sensitive"
    assert trace.values["amount"] is None
    [row] = trace.rows
    assert row.matched and all(condition.holds for condition in row.conditions)
    assert decision.rule_id == "RISK_THRESHOLD_EXCEEDED"  # the row matched; the threshold blocked


def test_trace_lists_the_failed_rows_with_every_condition(engine: Engine) -> None:
    trace = engine.evaluate("a", "EXPORT_DATA", {"destination_type": "external"}).trace
    assert trace is not None
    assert trace.matched_rule == "ALLOW_INTERNAL_EXPORT"
    failed = trace.rows[0]
    assert not failed.matched
    assert [condition.holds for condition in failed.conditions] == [True, False]
    assert failed.conditions[1].test.startswith("data_classification in")


def test_trace_of_decisions_made_without_the_rules(engine: Engine) -> None:
    invalid = engine.evaluate("a", "APPROVE_TRANSACTION", {"amount": "12"}).trace
    assert invalid is not None and not invalid.evaluated and invalid.values == {}
    for _ in range(3):
        engine.evaluate("a", "CHANGE_PERMISSION")
    down = engine.evaluate("a", "FILE_READ").trace
    assert down is not None and not down.evaluated
    assert down.state_before.status == "shut_down"


def test_a_rebuilt_decision_keeps_its_seq_but_no_trace(engine: Engine) -> None:
    import pickle

    decision = engine.evaluate("a", "FILE_READ")
    copy: Decision = pickle.loads(pickle.dumps(decision))
    assert copy == decision
    assert copy.seq == decision.seq
    assert copy.trace is None


def test_decisions_are_frozen_and_only_a_decider_makes_them(engine: Engine) -> None:
    from dataclasses import FrozenInstanceError

    decision = engine.evaluate("a", "DELETE_RECORD")
    with pytest.raises(FrozenInstanceError):
        decision.allowed = False  # type: ignore[misc]
    with pytest.raises(TypeError, match="made by a Decider"):
        type(decision)(("a", "DELETE_RECORD", 0, 0, 0, None, None, None, 0, (), FRESH))
    assert (decision.allowed, decision.cumulative_risk, decision.rule_id) == (
        True, 30, "RISKY_DELETE_RECORD")


class CountingEngine(Engine):
    """A subclass that wraps ``evaluate``, as tools built on the runtime do."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def evaluate(self, agent_id: str, action: str, fields: Any = None, *,
                 annotations: Any = None) -> Decision:
        self.calls.append(action)
        return super().evaluate(agent_id, action, fields, annotations=annotations)


class StrictDecider(Decider):
    """A subclass that overrides the state step: nothing is ever allowed."""

    def transition(self, state: Any, agent_id: str, action: str, fields: Any, code: int,
                   payload: Any, seq: int | None = None, now: float = 0.0) -> Any:
        return super().transition(state, agent_id, action, fields, NO_MATCH, payload, seq, now)


def test_a_subclass_overriding_evaluate_gets_every_call(sentra_table: dict[str, Any]) -> None:
    """The in-memory fast path is not installed over a subclass's own ``evaluate``."""
    engine = CountingEngine(sentra_table)

    @engine.guard("a", "FILE_READ")
    def tool() -> str:
        return "ran"

    assert engine.evaluate("a", "FILE_READ").allowed and tool() == "ran"
    assert engine.calls == ["FILE_READ", "FILE_READ"]


def test_a_subclass_overriding_the_transition_is_used(sentra_table: dict[str, Any]) -> None:
    """Every store runs the decider's ``transition``, a subclass's too."""
    for store in (MemoryStore(), MemoryStore(audit=False)):
        decision = Engine(StrictDecider(sentra_table), store).evaluate("a", "FILE_READ")
        assert (decision.allowed, decision.rule_id) == (False, "NO_RULE_MATCHED")


def test_the_pure_decider_keeps_nothing_and_returns_the_new_state(
        sentra_table: dict[str, Any]) -> None:
    """docs/runtime.md, "Decide without a store": the caller keeps the state."""
    decider = Decider(sentra_table)
    state = FRESH
    for expected in ((80, 0, False), (80, 1, False)):
        decision, state = decider.decide("EXPORT_DATA", SENSITIVE_EXPORT, state, agent_id="a7")
        assert state == expected
    assert (decision.rule_id, decision.agent_id, decision.seq) == (
        "RISK_THRESHOLD_EXCEEDED", "a7", None)
    again, same = decider.decide("EXPORT_DATA", SENSITIVE_EXPORT, (80, 0, False), agent_id="a7")
    assert same == (80, 1, False) and again.rule_id == decision.rule_id   # deterministic
    down, kept = decider.decide("FILE_READ", None, AgentState(0, 3, "shut_down"))
    assert (down.rule_id, kept) == ("AGENT_ALREADY_SHUT_DOWN", (0, 3, True))
    assert decider.decide("FILE_READ")[1] == FRESH
    for bad in ((5, "FILE_READ", None), ("a", 5, None), ("a", "FILE_READ", [1])):
        with pytest.raises(TypeError):
            decider.decide(bad[1], bad[2], FRESH, agent_id=bad[0])  # type: ignore[arg-type]
