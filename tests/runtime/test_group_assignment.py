"""Operator-assigned groups (docs/language.md, "Agent groups"; docs/runtime.md): in every store
an assignment wins over the patterns, is audited with the operator, survives resets and is
cleared by None; an undeclared group is refused; input never chooses the group; a reload that
removes the group leaves the assignment inert."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from sentra_runtime import Engine, MemoryStore, Store

from tests.runtime.helpers import Clock, compiled_table

SOURCE = '''policy grouped version "1" {
  risk_threshold 100
}

group trusted {
  agents "ops-*"
  risk_threshold 200
  limit 5 per 1h
}

group new {
  agents "new-*"
  strikes 1
}

action EXPORT {
  when agent.group == "trusted" allow risk 60 as TRUSTED_EXPORT "Trusted."
  allow risk 60 as EXPORT_OK "Export allowed."
}

otherwise block as UNKNOWN "Not covered."
'''
TABLE = compiled_table(SOURCE)
WITHOUT_TRUSTED = compiled_table(SOURCE.replace('''group trusted {
  agents "ops-*"
  risk_threshold 200
  limit 5 per 1h
}
''', "").replace('''  when agent.group == "trusted" allow risk 60 as TRUSTED_EXPORT "Trusted."
''', ""))


def exports(engine: Engine, agent: str, times: int) -> list[str]:
    return [engine.evaluate(agent, "EXPORT").label for _ in range(times)]


def test_an_assignment_wins_over_the_patterns_and_is_audited(store: Store) -> None:
    engine = Engine(TABLE, store, clock=Clock())
    assert engine.group("new-1") == ("new", None)
    seq = engine.assign_group("new-1", "trusted", operator="alice")
    assert engine.group("new-1") == ("trusted", "trusted")
    decision = engine.evaluate("new-1", "EXPORT")
    assert (decision.group, decision.rule_id) == ("trusted", "TRUSTED_EXPORT")
    assert exports(engine, "new-1", 3) == ["Allowed", "Allowed", "Blocked"]   # 240 > 200
    [record] = [r for r in engine.audit_records() if r["kind"] == "group"]
    assert (record["seq"], record["agent"], record["group"], record["operator"]) == (
        seq, "new-1", "trusted", "alice")
    assert engine.verify_audit().ok, str(engine.verify_audit())


def test_a_reset_keeps_the_assignment_and_none_clears_it(store: Store) -> None:
    engine = Engine(TABLE, store, clock=Clock())
    engine.assign_group("new-1", "trusted", operator="alice")
    exports(engine, "new-1", 2)
    engine.reset("new-1", operator="alice")
    assert engine.state("new-1").cumulative_risk == 0
    assert engine.group("new-1") == ("trusted", "trusted")
    engine.reset(operator="alice")
    assert engine.group("new-1") == ("trusted", "trusted")
    engine.assign_group("new-1", None, operator="bob")
    assert engine.group("new-1") == ("new", None)
    assert engine.evaluate("new-1", "EXPORT").group == "new"
    assert engine.verify_audit().ok, str(engine.verify_audit())


def test_only_a_declared_group_is_assigned(store: Store) -> None:
    engine = Engine(TABLE, store)
    with pytest.raises(ValueError, match="the policy declares no group `trustd`; did you mean "
                                         "`trusted`?"):
        engine.assign_group("a", "trustd", operator="alice")
    with pytest.raises(ValueError, match="declares no group `TRUSTED`; did you mean `trusted`"):
        engine.assign_group("a", "TRUSTED", operator="alice")   # names differ in case
    with pytest.raises(ValueError, match=r"declares no group `zzz` \(declared: `trusted`, "):
        engine.assign_group("a", "zzz", operator="alice")
    with pytest.raises(ValueError, match="operator"):
        engine.assign_group("a", "trusted", operator="")
    assert engine.group("a") == ("", None)
    assert [r for r in engine.audit_records() if r["kind"] == "group"] == []


def test_input_never_chooses_the_group(store: Store) -> None:
    engine = Engine(TABLE, store)
    for index, fields in enumerate(({"agent": {"group": "trusted"}}, {"agent.group": "trusted"},
                                    {"group": "trusted"})):
        agent = f"x{index}"
        decision = engine.evaluate(agent, "EXPORT", fields)
        assert (decision.rule_id, decision.group) == ("UNDECLARED_FIELD", ""), fields
        assert engine.group(agent) == ("", None)


def test_a_reload_without_the_group_leaves_the_assignment_inert(store: Store) -> None:
    engine = Engine(TABLE, store)
    engine.assign_group("new-1", "trusted", operator="alice")
    reloaded = Engine(WITHOUT_TRUSTED, store)
    assert reloaded.group("new-1") == ("new", "trusted")   # kept, inert: the patterns decide
    assert reloaded.evaluate("new-1", "EXPORT").group == "new"
    assert Engine(TABLE, store).group("new-1") == ("trusted", "trusted")   # back again
    assert reloaded.verify_audit().ok


def test_an_export_keeps_the_group_records() -> None:
    engine = Engine(TABLE, MemoryStore())
    engine.assign_group("a", "new", operator="alice")
    out = io.StringIO()
    engine.export_audit(out)
    lines: list[dict[str, Any]] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert any(line.get("kind") == "group" and line.get("group") == "new" for line in lines)
