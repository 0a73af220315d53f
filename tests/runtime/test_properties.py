"""Laws, checked with Hypothesis: the state invariants of docs/runtime.md, and the generated matcher
agrees with a plain reference interpreter of the table (written here from docs/table.md)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sentra_runtime import Engine, MemoryStore
from sentra_runtime.codegen import INVALID_INPUT, NO_MATCH, UNKNOWN_ACTION

from tests.runtime.helpers import ApplyingMemoryStore, sentra_table
from tests.runtime.tables import KINDS, NESTED_FIELDS, generate_table, nested_input_table

SENTRA = Engine(sentra_table()).policy

ACTIONS = ["FILE_READ", "SEND_NOTIFICATION", "APPROVE_TRANSACTION", "EXPORT_DATA",
           "ACCESS_EXTERNAL_SERVICE", "MODIFY_RECORD", "DELETE_RECORD", "CHANGE_PERMISSION",
           "SOMETHING_ELSE", ""]
FIELDS = st.fixed_dictionaries({}, optional={
    "destination_type": st.sampled_from(["external", "internal", " External "]),
    "data_classification": st.sampled_from(["sensitive", "internal", "RESTRICTED"]),
    "notification_type": st.sampled_from(["approval", "rejection", "other"]),
    "amount": st.one_of(st.integers(0, 10_000), st.just("12")),
    "context": st.fixed_dictionaries({}, optional={
        "approval_requires_verified_eligibility": st.booleans(),
        "eligibility_verified": st.booleans(),
        "max_approval_amount": st.integers(0, 10_000),
    }),
})
STEP = st.one_of(
    st.tuples(st.sampled_from(["a", "b", "A", ""]), st.sampled_from(ACTIONS), FIELDS),
    st.tuples(st.sampled_from(["a", "b"]), st.just("<reset>"), st.just({})),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(STEP, max_size=40))
def test_state_invariants(steps: list[tuple[str, str, dict[str, Any]]]) -> None:
    engine = Engine(SENTRA)
    strikes: dict[str, int] = {}
    for agent, action, fields in steps:
        if action == "<reset>":
            engine.reset(agent, operator="prop")
            strikes[agent] = 0
            continue
        was_down = engine.state(agent).status == "shut_down"
        decision = engine.evaluate(agent, action, fields)
        state = engine.state(agent)
        assert state.cumulative_risk <= SENTRA.risk_threshold
        assert state.blocked_attempts >= strikes.get(agent, 0)
        strikes[agent] = state.blocked_attempts
        assert (decision.cumulative_risk, decision.blocked_attempts, decision.status) == state
        if was_down:
            assert not decision.allowed and decision.rule_id == "AGENT_ALREADY_SHUT_DOWN"
        assert decision.allowed == (decision.label == "Allowed")
        assert (state.status == "shut_down") == (state.blocked_attempts >= SENTRA.strikes)
    assert engine.verify_audit().ok


# -- the generated matcher against a reference interpreter ----------------------------------------

_NOT_AN_OBJECT: Any = object()


def _lookup(fields: dict[str, Any], name: str) -> Any:
    """A path through objects, then a flat key; a parent that is neither an object nor null
    makes the input invalid (``_NOT_AN_OBJECT``)."""
    node: Any = fields
    for part in name.split("."):
        if node is None:
            break
        if not isinstance(node, dict):
            return _NOT_AN_OBJECT
        node = node.get(part)
    return node if node is not None else fields.get(name)


def _normalise(text: str, steps: list[str]) -> str:
    for step in steps:
        text = {"trim": text.strip, "lower": text.lower, "upper": text.upper}[step]()
    return text


def _read(spec: dict[str, Any], raw: Any) -> tuple[bool, Any]:
    """(valid, value) per docs/table.md: strict types, null is missing, defaults, normalisation."""
    if raw is None:
        if spec["has_default"]:
            raw = spec["default"]
        else:
            return spec["optional"], None
    kind = spec["type"]
    if kind == "bool":
        return isinstance(raw, bool), raw
    if kind == "int":
        return isinstance(raw, int) and not isinstance(raw, bool), raw
    if kind == "number":
        ok = isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw)
        return ok, raw
    if kind == "set":
        ok = isinstance(raw, list) and all(isinstance(item, str) for item in raw)
        return ok, {_normalise(item, spec["normalize"]) for item in raw} if ok else raw
    if not isinstance(raw, str):
        return False, raw
    return True, _normalise(raw, spec["normalize"])


def _holds(test: dict[str, Any], values: dict[str, Any]) -> bool:
    left = values.get(test["field"])
    op, value = test["op"], test["value"]
    right = values.get(test["other"]) if test["other"] else value
    if op == "exists":
        result = left is not None
    elif left is None or right is None:
        result = False
    elif op == "==":
        result = left == right and type(left) is not bool or left is right
    elif op == "!=":
        result = not (left == right and type(left) is not bool or left is right)
    elif op in ("<", "<=", ">", ">="):
        result = {"<": left < right, "<=": left <= right, ">": left > right,
                  ">=": left >= right}[op]
    elif op == "in":
        result = left in right
    elif op == "starts_with":
        result = left.startswith(right)
    elif op == "ends_with":
        result = left.endswith(right)
    else:
        result = right in left
    return result != test["negate"]


def reference(table: dict[str, Any], action: str,
              fields: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The rule that matches (or what went wrong), and the values the policy read."""
    action = _normalise(action, table["settings"]["action_normalize"])
    block = next((b for b in table["actions"] if action in b["names"]), None)
    if block is None and table["otherwise"] is None:
        return "UNKNOWN", None
    values = {}
    for spec in table["input"]:
        raw = _lookup(fields, spec["name"])
        ok, value = (False, None) if raw is _NOT_AN_OBJECT else _read(spec, raw)
        if not ok:
            return f"INVALID {spec['name']}", None
        values[spec["name"]] = value
    if block is None:
        return table["otherwise"], values
    for row in block["rows"]:
        if all(_holds(test, values) for test in row["tests"]):
            return row["rule"], values
    return table["otherwise"] or "NO_MATCH", values


def compiled(engine: Engine, action: str,
             fields: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    code, payload, _ = engine.matcher.match(action, fields)
    if code == UNKNOWN_ACTION:
        return "UNKNOWN", None
    if code == INVALID_INPUT:
        return f"INVALID {engine.matcher.fields[payload[0]].name}", None
    values = {spec.name: value for spec, value in zip(engine.matcher.fields, payload)}
    if code == NO_MATCH:
        return "NO_MATCH", values
    return engine.matcher.rows[code].rule, values


KIND_TEXT = st.sampled_from(KINDS).flatmap(
    lambda kind: st.sampled_from([kind, kind.upper(), f" {kind} "]))
GENERATED_FIELDS = st.fixed_dictionaries({}, optional={
    "amount": st.one_of(st.none(), st.integers(-5, 120), st.sampled_from([10.0, 99.5, 50]),
                        st.just("7"), st.just(True), st.just(float("inf"))),
    "count": st.one_of(st.none(), st.integers(0, 4), st.just(1.5), st.just(False)),
    "kind": st.one_of(st.none(), KIND_TEXT, st.just(5)),
    "flag": st.one_of(st.none(), st.booleans(), st.just(1)),
    "limits": st.one_of(st.fixed_dictionaries({}, optional={"max": st.integers(0, 100)}),
                        st.just("not an object")),
    "limits.max": st.integers(0, 100),
    "tags": st.one_of(st.none(), st.lists(KIND_TEXT, max_size=3), st.just([1])),
})


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), rules=st.integers(1, 40), otherwise=st.booleans(),
       required=st.sampled_from([None, "count", "limits.max"]),
       cases=st.lists(st.tuples(st.integers(0, 6), GENERATED_FIELDS), min_size=1, max_size=25))
def test_generated_matcher_agrees_with_reference(seed: int, rules: int, otherwise: bool,
                                                 required: str | None,
                                                 cases: list[tuple[int, dict[str, Any]]]) -> None:
    """Same rule and same values read, including the shortcuts for empty input and absent
    objects, which apply only when no field under them is required."""
    table = generate_table(rules, seed=seed, actions=4, otherwise=otherwise, required=required)
    engine = Engine(table)
    for action_index, fields in cases:
        action = f" action_{action_index} "
        assert compiled(engine, action, fields) == reference(table, action, fields), fields


NESTED_VALUE = st.one_of(st.none(), st.booleans(), st.integers(0, 9),
                        st.sampled_from([" Ab ", "ab", "x"]))


def _object(**members: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """An object with any of ``members``, or null, or something that is not an object."""
    return st.one_of(st.none(), st.sampled_from([5, "text", [1]]),
                     st.fixed_dictionaries({}, optional=members))


NESTED_INPUT = st.fixed_dictionaries({}, optional={
    "ctx": _object(a=NESTED_VALUE, b=NESTED_VALUE,
                   sub=_object(z=NESTED_VALUE, w=NESTED_VALUE)),
    "d": _object(x=NESTED_VALUE), "e": _object(y=NESTED_VALUE), "ctxA": _object(q=NESTED_VALUE),
    "top": NESTED_VALUE, "ctx_x": NESTED_VALUE,
    "ctx.a": NESTED_VALUE, "ctx.sub.z": NESTED_VALUE, "d.x": NESTED_VALUE,
})
NESTED_DECLARATIONS = st.lists(
    st.tuples(st.sampled_from(sorted(NESTED_FIELDS)),
              st.sampled_from(["required", "optional", "default"])),
    min_size=1, max_size=len(NESTED_FIELDS), unique_by=lambda field: field[0])


@settings(max_examples=150, deadline=None)
@given(declared=NESTED_DECLARATIONS, cases=st.lists(NESTED_INPUT, min_size=1, max_size=12))
def test_nested_input_declared_in_any_order_reads_as_the_reference(
        declared: list[tuple[str, str]], cases: list[dict[str, Any]]) -> None:
    """Objects shared by several fields, nested objects, names sharing a prefix, fields of one
    object declared apart, required ones among them, flat dotted keys, null and non-object
    parents: the matcher reads what the reference reads and reports the same bad field."""
    table = nested_input_table(declared)
    engine = Engine(table)
    for fields in [*_every_field_set(declared), *cases]:
        assert compiled(engine, "A", fields) == reference(table, "A", fields), fields


def test_a_field_beside_a_nested_object_is_read_from_its_own_object() -> None:
    """Regression: ``ctx.sub.z`` declared before ``ctx.a`` (the compiler's sorted order) once
    gave ``ctx`` and ``ctx.sub`` one variable, so ``ctx.a`` was read from ``ctx.sub``."""
    table = nested_input_table([("ctx.sub.z", "optional"), ("ctx.a", "optional")])
    rule, values = compiled(Engine(table), "A", {"ctx": {"a": True, "sub": {"z": "no"}}})
    assert (rule, values) == ("RULE_1", {"ctx.sub.z": "no", "ctx.a": True})


def _every_field_set(declared: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Inputs giving every declared field a distinct valid value (nested, then as flat dotted
    keys, then nested without each top-level object in turn), so that a field read from the
    wrong place shows."""
    values = {"bool": [True, False], "int": [5, 6, 8, 9], "string": [" AB ", "b", "c"]}
    nested: dict[str, Any] = {}
    flat: dict[str, Any] = {}
    for name, _ in declared:
        value = values[NESTED_FIELDS[name]].pop(0) if values[NESTED_FIELDS[name]] else None
        node = nested
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = flat[name] = value
    return [nested, flat, *({key: value for key, value in nested.items() if key != absent}
                            for absent in nested)]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000),
       steps=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5), GENERATED_FIELDS),
                      max_size=30))
def test_invariants_hold_for_generated_policies(seed: int,
                                                steps: list[tuple[int, int, dict[str, Any]]]
                                                ) -> None:
    engine = Engine(generate_table(30, seed=seed, actions=5, threshold=60, strikes=2))
    for agent, action_index, fields in steps:
        before = engine.state(str(agent))
        decision = engine.evaluate(str(agent), f"ACTION_{action_index}", fields)
        after = engine.state(str(agent))
        assert after.cumulative_risk <= 60 and after.blocked_attempts >= before.blocked_attempts
        if before.status == "shut_down":
            assert not decision.allowed and after == before
        assert decision.explanation.steps  # every decision can explain itself


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), otherwise=st.booleans(),
       steps=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6), GENERATED_FIELDS),
                      max_size=30))
def test_matched_rule_is_the_explanations(seed: int, otherwise: bool,
                                          steps: list[tuple[int, int, dict[str, Any]]]) -> None:
    """``Decision.matched_rule`` (cheap, for servers) equals ``explanation.matched_rule``."""
    engine = Engine(generate_table(30, seed=seed, actions=5, threshold=60, strikes=2,
                                   otherwise=otherwise))
    for agent, action_index, fields in steps:
        decision = engine.evaluate(str(agent), f"ACTION_{action_index}", fields)
        cheap = decision.matched_rule
        assert cheap == decision.explanation.matched_rule
        assert decision.matched_rule == cheap   # also once the explanation is cached


def _fields_of(trace: Any) -> list[Any]:
    return [getattr(trace, item.name) for item in dataclasses.fields(trace)]


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    """An audit record without what depends on the clock (its time, and so its hashes)."""
    return {key: value for key, value in record.items() if key not in ("time", "prev", "hash")}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), audit=st.booleans(), otherwise=st.booleans(),
       steps=st.lists(st.tuples(st.integers(0, 3), st.integers(-2, 6), GENERATED_FIELDS),
                      max_size=40))
def test_the_inline_path_decides_as_store_apply(seed: int, audit: bool, otherwise: bool,
                                                steps: list[tuple[int, int, dict[str, Any]]]
                                                ) -> None:
    """The engine's fast path for a MemoryStore makes the same decisions, states, seqs and audit
    records as the ordinary path through ``Store.apply`` (action -1 is an operator reset of
    the agent, -2 of every agent)."""
    table = generate_table(30, seed=seed, actions=5, threshold=60, strikes=2, otherwise=otherwise)
    inline = Engine(table, MemoryStore(audit=audit))
    applying = Engine(table, ApplyingMemoryStore(audit=audit))
    assert inline.evaluate.__doc__ == Engine.evaluate.__doc__
    for agent, action_index, fields in steps:
        if action_index < 0:
            target = str(agent) if action_index == -1 else None
            assert (inline.reset(target, operator="op")
                    == applying.reset(target, operator="op"))
            continue
        fast, slow = (engine.evaluate(str(agent), f"ACTION_{action_index}", fields)
                      for engine in (inline, applying))
        assert fast == slow and fast.seq == slow.seq
        assert str(fast.explanation) == str(slow.explanation)
        assert _fields_of(fast.trace) == _fields_of(slow.trace)
        assert inline.state(str(agent)) == applying.state(str(agent))
    assert inline.agents() == applying.agents()
    assert ([_comparable(record) for record in inline.audit_records()]
            == [_comparable(record) for record in applying.audit_records()])
    assert inline.verify_audit().ok
