"""Laws, checked with Hypothesis: the state invariants of docs/runtime.md; the generated matcher
agrees with a plain reference interpreter of the table (written here from docs/table.md), with
the definition of input semantics, and with trying the rows in order; every store decides as
the pure decider replayed serially."""

from __future__ import annotations

import math
import tempfile
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sentra_runtime import (
    FRESH,
    AgentState,
    Decider,
    Engine,
    MemoryStore,
    SQLiteStore,
    State,
    Store,
)
from sentra_runtime.codegen import (
    INVALID_INPUT,
    NO_MATCH,
    UNKNOWN_ACTION,
    Matcher,
    compile_matcher,
)

from tests.runtime.helpers import CountingMemoryStore, sentra_table
from tests.runtime.tables import (
    KINDS,
    NESTED_FIELDS,
    dispatch_table,
    generate_table,
    nested_input_table,
    reseal,
)

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

def _lookup(fields: dict[str, Any], name: str) -> tuple[str | None, Any]:
    """``(problem, raw value)`` per docs/table.md: a path through objects, else the flat key;
    null is absent; an object on the path that is neither an object nor null, or a field
    given both ways, is a problem."""
    parts = name.split(".")
    node: Any = fields
    for depth, part in enumerate(parts[:-1]):
        node = node.get(part)
        if node is None:
            break
        if not isinstance(node, dict):
            return f"INVALID {'.'.join(parts[:depth + 1])}", None
    nested = node.get(parts[-1]) if isinstance(node, dict) else None
    flat = fields.get(name) if len(parts) > 1 else None
    if nested is not None and flat is not None:
        return f"TWICE {name}", None
    return None, nested if nested is not None else flat


def _undeclared(names: set[str], node: dict[Any, Any], path: str = "") -> list[str]:
    """The undeclared keys of the input, by docs/table.md: declared are the fields, the
    objects holding them (looked into) and, at the top, the flat keys of fields."""
    found = []
    for key, value in node.items():
        inner = f"{path}.{key}" if path else str(key)
        if value is None or (path == "" and key in names):
            continue
        if isinstance(key, str) and "." not in key and inner in names:
            continue
        if isinstance(key, str) and "." not in key and any(
                name.startswith(inner + ".") for name in names):
            if isinstance(value, dict):
                found += _undeclared(names, value, inner)
            continue
        found.append(inner)
    return found


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
        ok = isinstance(raw, (int, float)) and not isinstance(raw, bool) and (
            isinstance(raw, int) or math.isfinite(raw))
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
    refuse = table["schema_version"] >= 2 and \
        table["settings"].get("undeclared_fields", "refuse") == "refuse"
    stray = sorted(_undeclared({spec["name"] for spec in table["input"]}, fields))
    if refuse and stray:
        return f"UNDECLARED {stray[0]}", None
    values = {}
    for spec in table["input"]:
        problem, raw = _lookup(fields, spec["name"])
        if problem is not None:
            return problem, None
        ok, value = _read(spec, raw)
        if not ok:
            return f"INVALID {spec['name']}", None
        values[spec["name"]] = value
    if block is None:
        return table["otherwise"], values
    for row in block["rows"]:
        if all(_holds(test, values) for test in row["tests"]):
            return row["rule"], values
    return table["otherwise"] or "NO_MATCH", values


_PROBLEM_NAMES = {"undeclared": "UNDECLARED", "given_twice": "TWICE"}


def compiled(engine: Engine, action: str, fields: dict[str, Any], *,
             by_definition: bool = False) -> tuple[str, dict[str, Any] | None]:
    matcher = engine.matcher
    match = matcher.match_by_definition if by_definition else matcher.match
    return outcome(matcher, match(action, fields))


def outcome(matcher: Matcher, result: tuple[int, Any, str]) -> tuple[str, dict[str, Any] | None]:
    """A matcher's result as :func:`reference` gives it."""
    code, payload, _ = result
    if code == UNKNOWN_ACTION:
        return "UNKNOWN", None
    if code == INVALID_INPUT:
        return f"{_PROBLEM_NAMES.get(payload.kind, 'INVALID')} {payload.field}", None
    values = {spec.name: value for spec, value in zip(matcher.fields, payload)}
    if code == NO_MATCH:
        return "NO_MATCH", values
    return matcher.rows[code].rule, values


KIND_TEXT = st.sampled_from(KINDS).flatmap(
    lambda kind: st.sampled_from([kind, kind.upper(), f" {kind} "]))
GENERATED_FIELDS = st.fixed_dictionaries({}, optional={
    "amount": st.one_of(st.none(), st.integers(-5, 120), st.sampled_from([10.0, 99.5, 50]),
                        st.just("7"), st.just(True), st.just(float("inf")), st.just(10**30)),
    "count": st.one_of(st.none(), st.integers(0, 4), st.just(1.5), st.just(False)),
    "kind": st.one_of(st.none(), KIND_TEXT, st.just(5)),
    "flag": st.one_of(st.none(), st.booleans(), st.just(1)),
    "limits": st.one_of(st.none(), st.fixed_dictionaries({}, optional={
        "max": st.one_of(st.none(), st.integers(0, 100)),
        "mx": st.integers(0, 100)}), st.just("not an object")),
    "limits.max": st.one_of(st.none(), st.integers(0, 100)),
    "tags": st.one_of(st.none(), st.lists(KIND_TEXT, max_size=3), st.just([1])),
    "amout": st.one_of(st.none(), st.integers(0, 9)),
    "limits.mx": st.integers(0, 9),
})
"""Values of every declared type and of wrong types, nested and flat dotted keys together
(`limits` and `limits.max`, null in one of them), and undeclared keys (a typo `amout`, a key
`mx` inside `limits`, a flat key `limits.mx` that names no field)."""
UNDECLARED_MODES = st.sampled_from([None, "refuse", "ignore"])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), rules=st.integers(1, 40), otherwise=st.booleans(),
       required=st.sampled_from([None, "count", "limits.max"]), undeclared=UNDECLARED_MODES,
       cases=st.lists(st.tuples(st.integers(0, 6), GENERATED_FIELDS), min_size=1, max_size=25))
def test_generated_matcher_agrees_with_reference(seed: int, rules: int, otherwise: bool,
                                                 required: str | None, undeclared: str | None,
                                                 cases: list[tuple[int, dict[str, Any]]]) -> None:
    """Same rule and same values read, including the shortcuts for empty input and absent
    objects, which apply only when no field under them is required; and the same answer from
    the matcher's straight-line reading and from the definition (sentra_runtime.inputs)."""
    table = generate_table(rules, seed=seed, actions=4, otherwise=otherwise, required=required,
                           undeclared=undeclared)
    engine = Engine(table)
    for action_index, fields in cases:
        action = f" action_{action_index} "
        expected = reference(table, action, fields)
        assert compiled(engine, action, fields) == expected, fields
        assert compiled(engine, action, fields, by_definition=True) == expected, fields


NESTED_VALUE = st.one_of(st.none(), st.booleans(), st.integers(0, 9),
                        st.sampled_from([" Ab ", "ab", "x"]))


def _object(**members: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """An object with any of ``members``, or null, or something that is not an object."""
    return st.one_of(st.none(), st.sampled_from([5, "text", [1]]),
                     st.fixed_dictionaries({}, optional=members))


NESTED_INPUT = st.fixed_dictionaries({}, optional={
    "ctx": _object(a=NESTED_VALUE, b=NESTED_VALUE, c=NESTED_VALUE,
                   sub=_object(z=NESTED_VALUE, w=NESTED_VALUE), **{"sub.z": NESTED_VALUE}),
    "d": _object(x=NESTED_VALUE), "e": _object(y=NESTED_VALUE), "ctxA": _object(q=NESTED_VALUE),
    "top": NESTED_VALUE, "ctx_x": NESTED_VALUE, "tpo": NESTED_VALUE,
    "ctx.a": NESTED_VALUE, "ctx.sub.z": NESTED_VALUE, "d.x": NESTED_VALUE,
    "ctx.sub": _object(z=NESTED_VALUE),
})
NESTED_DECLARATIONS = st.lists(
    st.tuples(st.sampled_from(sorted(NESTED_FIELDS)),
              st.sampled_from(["required", "optional", "default"])),
    min_size=1, max_size=len(NESTED_FIELDS), unique_by=lambda field: field[0])


@settings(max_examples=150, deadline=None)
@given(declared=NESTED_DECLARATIONS, undeclared=UNDECLARED_MODES,
       cases=st.lists(NESTED_INPUT, min_size=1, max_size=12))
def test_nested_input_declared_in_any_order_reads_as_the_reference(
        declared: list[tuple[str, str]], undeclared: str | None,
        cases: list[dict[str, Any]]) -> None:
    """Objects shared by several fields, nested objects, names sharing a prefix, fields of one
    object declared apart, required ones among them, nested and flat dotted keys mixed (and a
    half-flat `ctx.sub` / `sub.z` that names no field), null and non-object parents, undeclared
    keys: the matcher reads what the reference reads and reports the same problem, and so does
    the definition."""
    table = nested_input_table(declared, undeclared)
    engine = Engine(table)
    for fields in [*_every_field_set(declared), *cases]:
        expected = reference(table, "A", fields)
        assert compiled(engine, "A", fields) == expected, fields
        assert compiled(engine, "A", fields, by_definition=True) == expected, fields


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


STORES = st.sampled_from(["memory", "subclass", "sqlite", "sqlite-group"])


def _store(kind: str, folder: str) -> Store:
    if kind == "memory":
        return MemoryStore()
    if kind == "subclass":
        return CountingMemoryStore(audit_limit=None)
    return SQLiteStore(f"{folder}/store.db", group_commit=kind == "sqlite-group")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), otherwise=st.booleans(), kind=STORES,
       undeclared=UNDECLARED_MODES,
       steps=st.lists(st.tuples(st.integers(0, 3), st.integers(-2, 6), GENERATED_FIELDS),
                      max_size=40))
def test_every_store_decides_as_the_pure_decider_replayed_serially(
        seed: int, otherwise: bool, kind: str, undeclared: str | None,
        steps: list[tuple[int, int, dict[str, Any]]]) -> None:
    """``Decider.decide`` with the states kept here, and an engine on any store, make the same
    decisions and states; the store's audit log records them in order (action -1 is an operator
    reset of the agent, -2 of every agent)."""
    table = generate_table(30, seed=seed, actions=5, threshold=60, strikes=2, otherwise=otherwise,
                           undeclared=undeclared)
    decider = Decider(table)
    states: dict[str, State] = {}
    with tempfile.TemporaryDirectory() as folder:
        engine = Engine(table, _store(kind, folder))
        for agent_number, action_index, fields in steps:
            agent = str(agent_number)
            if action_index < 0:
                target = agent if action_index == -1 else None
                engine.reset(target, operator="op")
                states.update((name, FRESH) for name in ([agent] if target else list(states)))
                continue
            action = f"ACTION_{action_index}"
            expected, states[agent] = decider.decide(action, fields, states.get(agent, FRESH),
                                                     agent_id=agent)
            decision = engine.evaluate(agent, action, fields)
            assert decision == expected
            assert str(decision.explanation) == str(expected.explanation)
            assert engine.state(agent) == AgentState.from_raw(states[agent])
        records = [record for record in engine.audit_records() if record["kind"] == "decision"]
        assert len(records) == sum(1 for _, action_index, _ in steps if action_index >= 0)
        assert engine.verify_audit().ok
        engine.close()


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 100_000), rows=st.integers(1, 60), otherwise=st.booleans(),
       min_run=st.sampled_from([1, 2, 4]),
       cases=st.lists(GENERATED_FIELDS, min_size=1, max_size=30))
def test_compiled_dispatch_is_first_match_in_row_order(seed: int, rows: int, otherwise: bool,
                                                       min_run: int,
                                                       cases: list[dict[str, Any]]) -> None:
    """Runs of rows compiled to a dict lookup or a bisection give the row, and the values, that
    trying the rows in order gives: the same matcher without compiled runs, and the reference."""
    table = dispatch_table(seed, rows, otherwise=otherwise)
    policy = Engine(table).policy
    compiled_runs = compile_matcher(policy, min_run=min_run)
    in_order = compile_matcher(policy, min_run=10**9)
    for fields in [*cases, *_boundary_inputs(table)]:
        got = compiled_runs.match("A", fields)
        assert got == in_order.match("A", fields), fields
        assert outcome(compiled_runs, got) == reference(table, "A", fields), fields


def test_the_dispatch_tables_exercise_both_compiled_forms() -> None:
    """The law above is not vacuous: its tables do compile to dicts (with and without residual
    tests) and bisections."""
    sources = "".join(compile_matcher(Engine(dispatch_table(seed, 40)).policy, min_run=2).source
                      for seed in range(20))
    assert "_bisect_left(_BOUNDS" in sources
    assert "found = _B" in sources and "for row, holds in found:" in sources


def _boundary_inputs(table: dict[str, Any]) -> list[dict[str, Any]]:
    """Every constant the rows compare ``amount``, ``count`` and ``kind`` with, and values just
    beside the numeric ones: the edges of the cells."""
    inputs: list[dict[str, Any]] = [{}]
    for row in table["actions"][0]["rows"]:
        for test in row["tests"]:
            value = test["value"]
            if test["field"] == "amount" and value is not None:
                inputs += [{"amount": value}, {"amount": value - 0.5}, {"amount": value + 1}]
            elif test["field"] == "count" and isinstance(value, int):
                inputs += [{"count": value}, {"count": value + 1}]
            elif test["field"] == "kind" and value is not None:
                inputs += [{"kind": item} for item in ([value] if isinstance(value, str)
                                                       else value)]
    return inputs


def test_compiled_dispatch_of_ten_thousand_rules_is_a_dict_lookup() -> None:
    """10,000 rules each testing one field for equality: one dict, and the first row wins."""
    rules = [{"id": f"R{index}", "outcome": "allow", "risk": 0, "threat": None,
              "reason": "r", "description": None, "condition": None, "generated_id": False,
              "span": {"file": "t", "line": 1, "column": 1, "end_line": 1, "end_column": 2}}
             for index in range(10_000)]
    rows = [{"rule": f"R{index}", "tests": [{"field": "kind", "op": "==",
                                             "value": f"k{index % 9_000}", "other": None,
                                             "negate": False}]} for index in range(10_000)]
    table = generate_table(1)
    table.update(rules=rules, actions=[{"names": ["A"], "rows": rows}], otherwise=None)
    engine = Engine(reseal(table))
    assert engine.matcher.source.count("found = _B") == 1 and "if (" not in engine.matcher.source
    assert engine.evaluate("x", "A", {"kind": "k8999"}).rule_id == "R8999"
    assert engine.evaluate("x", "A", {"kind": "K17 "}).rule_id == "R17"   # not R9017
    assert engine.evaluate("x", "A", {"kind": "nope"}).rule_id == "NO_RULE_MATCHED"
