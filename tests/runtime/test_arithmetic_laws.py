"""Arithmetic through the whole pipeline against the independent oracle (tests/arith_oracle.py):
the runtime's generated code, its definition (`first_match`) and the reference interpreter all
decide generated policies as the documentation says, on inputs that divide by zero, overflow,
and leave fields out."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sentra_runtime import Decider
from sentra_runtime.codegen import ARITHMETIC_ERROR, compile_matcher

from sentra_lang.compiler import compile_source
from sentra_lang.diagnostics import Severity
from sentra_lang.formatter import format_source
from sentra_lang.interpreter import ArithmeticFailed, Interpreter
from tests import arith_oracle as oracle

LAWS = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _compiled(rules: list[tuple[str, oracle.Node]]) -> Any:
    """The compilation of the generated policy; skips an example whose constants alone fail
    (SL221: the checker's, tested on its own)."""
    comp = compile_source(oracle.policy_source(rules), "gen.sentra", analyse=False)
    errors = [d for d in comp.diagnostics if d.severity is Severity.ERROR]
    assume(not any(d.code == "SL221" for d in errors))
    assert not errors, [(d.code, d.message) for d in errors]
    return comp


def _fields(env: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in env.items() if value is not None}


@LAWS
@given(oracle.rule_lists, st.lists(oracle.environments, min_size=1, max_size=6))
def test_runtime_decides_as_the_documentation_says(rules: list[tuple[str, oracle.Node]],
                                                   envs: list[dict[str, Any]]) -> None:
    comp = _compiled(rules)
    decider = Decider(comp.table.model_dump(mode="json"))
    interpreter = Interpreter(comp.model)
    for env in envs:
        expected = oracle.decide(rules, env)
        decision, _ = decider.decide("X", _fields(env), agent_id="a1")
        assert decision.rule_id == expected, (oracle.policy_source(rules), env)
        try:
            rule = interpreter.match("X", _fields(env))
            interpreted = rule.id if rule is not None else None
        except ArithmeticFailed:
            interpreted = "ARITHMETIC_ERROR"
        assert interpreted == expected


@LAWS
@given(oracle.rule_lists, st.lists(oracle.environments, min_size=1, max_size=6))
def test_a_number_field_decides_alike_sent_as_an_integer_or_a_number(
        rules: list[tuple[str, oracle.Node]], envs: list[dict[str, Any]]) -> None:
    """`10` and `10.0` are one value of a `number` field (docs/language.md, "Arithmetic"):
    whichever way the number fields are sent, the decision is the same, whenever the integer is
    a number exactly."""
    decider = Decider(_compiled(rules).table.model_dump(mode="json"))
    numbers = [name for name, kind in oracle.FIELDS.items() if kind.startswith("number")]
    for env in envs:
        as_ints = dict(env)
        for name in numbers:
            value = env[name]
            if isinstance(value, float) and value.is_integer():
                as_ints[name] = int(value)
            elif isinstance(value, int) and abs(value) <= 2**53:
                env = {**env, name: float(value)}
        first, _ = decider.decide("X", _fields(env), agent_id="a1")
        second, _ = decider.decide("X", _fields(as_ints), agent_id="a1")
        assert (first.rule_id, first.label) == (second.rule_id, second.label), (env, as_ints)


@LAWS
@given(oracle.rule_lists, st.lists(oracle.environments, min_size=1, max_size=6),
       st.integers(1, 4))
def test_generated_code_equals_the_definition(rules: list[tuple[str, oracle.Node]],
                                              envs: list[dict[str, Any]], min_run: int) -> None:
    """The generated matcher (any run length) and the block decided row by row by
    `policy.first_match` give the same code, the arithmetic error included."""
    comp = _compiled(rules)
    decider = Decider(comp.table.model_dump(mode="json"))
    matcher = compile_matcher(decider.policy, min_run=min_run)
    for env in envs:
        fast = matcher.match("X", _fields(env))
        slow = matcher.match_by_definition("X", _fields(env))
        assert fast[0] == slow[0]
        by_rows = matcher.match("X", _fields(env))[0]
        assert (by_rows == ARITHMETIC_ERROR) == (oracle.decide(rules, env) == "ARITHMETIC_ERROR")


@LAWS
@given(oracle.rule_lists, st.lists(oracle.environments, min_size=1, max_size=4))
def test_formatting_keeps_the_meaning(rules: list[tuple[str, oracle.Node]],
                                      envs: list[dict[str, Any]]) -> None:
    """The formatter drops the oracle's parentheses; the formatted policy compiles to the same
    table, and formatting it again changes nothing."""
    comp = _compiled(rules)
    text, _ = format_source(oracle.policy_source(rules))
    assert text is not None
    assert format_source(text)[0] == text
    again = compile_source(text, "gen.sentra", analyse=False)
    assert again.table is not None
    assert again.table.actions == comp.table.actions
    decider = Decider(again.table.model_dump(mode="json"))
    for env in envs:
        assert decider.decide("X", _fields(env))[0].rule_id == oracle.decide(rules, env)


@LAWS
@given(oracle.expressions, oracle.environments)
def test_folding_equals_evaluation(expr: oracle.Node, env: dict[str, Any]) -> None:
    """A comparison whose constant parts the compiler folds decides as the unfolded expression
    computes it: `E > 0` with `E` built around constants."""
    wrapped = ("+", ("f", "a"), ("*", expr, ("c", 1)))  # a field, and constant parts to fold
    rules = [("R0", ("cmp", ">", wrapped, ("c", 0)))]
    comp = _compiled(rules)
    decision, _ = Decider(comp.table.model_dump(mode="json")).decide("X", _fields(env))
    assert decision.rule_id == oracle.decide(rules, env)


_LINEAR = st.recursive(
    st.one_of(st.just(("f", "b")), st.sampled_from([("c", c) for c in (0, 1, 2, -3, 5, 10)])),
    lambda inner: st.one_of(st.tuples(st.sampled_from(["+", "-", "*"]), inner, inner),
                            st.tuples(st.just("neg"), inner)),
    max_leaves=5).filter(lambda e: oracle.names(e) == ["b"])


@LAWS
@given(_LINEAR, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
       st.sampled_from([0, 1, -4, 9, 100]), st.lists(st.integers(-60, 60), max_size=30))
def test_rewritten_threshold_decides_like_the_computation(
        expr: oracle.Node, op: str, bound: int, values: list[int]) -> None:
    """The analysis's exact rewrite of one `int` field with `int` constants: on every integer
    the rewritten plain test holds exactly when the computation does."""
    from sentra_runtime.policy import test_holds

    from sentra_lang.arithmetic import threshold

    rules = [("R0", ("cmp", op, expr, ("c", bound)))]
    comp = _compiled(rules)
    types = {field.name: field.type for field in comp.table.input}
    for test in comp.table.actions[0].rows[0].tests if comp.table.actions[0].rows[0].tests else []:
        plain = threshold(test, types) if test.left is not None else test
        if plain is None:
            continue  # no threshold: the analysis says SL408 instead
        assert plain.left is None
        for number in values + [plain.value - 1, plain.value, plain.value + 1] \
                if isinstance(plain.value, int) else values:
            env = {"a": 0, "b": number}
            expected = oracle.comparison(op, expr, ("c", bound), env)
            assert test_holds(plain, env) == expected, (test, plain, number)


_BEYOND_FLOATS = 9007199254740993   # 2^53 + 1: no 64-bit float is this integer


@pytest.mark.parametrize(("condition", "sent", "expected"), [
    # constants alone fold: an ordinary test of the value as sent, compared exactly
    ("amount > 9007199254740992 * 1", _BEYOND_FLOATS, "HIT"),
    ("9007199254740992 < amount", _BEYOND_FLOATS, "HIT"),
    ("amount > 100 * 2", 10**400, "HIT"),
    # a side with an operator and a field computes: the number field is a float
    ("amount * 1 > 9007199254740992", _BEYOND_FLOATS, "NO"),
    ("-amount < -9007199254740992", _BEYOND_FLOATS, "NO"),
    ("amount * 1 > 200", 10**400, "ARITHMETIC_ERROR"),
], ids=["folded", "folded, flipped", "folded, 400 digits", "computed", "negated",
        "computed, 400 digits"])
def test_the_interpreter_computes_only_where_the_comparison_computes(
        condition: str, sent: int, expected: str) -> None:
    """docs/language.md, "Arithmetic": a `number` field is a float only in a comparison that
    computes; one whose constants fold is an ordinary test of the value as sent. The reference
    interpreter and the runtime both give the documented answer."""
    source = (f'policy p version "1" {{}}\ninput {{ amount: number }}\n'
              f"action X {{\n  when {condition} allow as HIT\n}}\notherwise block as NO\n")
    comp = compile_source(source, "p.sentra", analyse=False)
    assert comp.table is not None, comp.diagnostics
    decision, _ = Decider(comp.table.model_dump(mode="json")).decide("X", {"amount": sent})
    try:
        rule = Interpreter(comp.model).match("X", {"amount": sent})
        interpreted = rule.id if rule is not None else "NO"
    except ArithmeticFailed:
        interpreted = "ARITHMETIC_ERROR"
    assert (decision.rule_id, interpreted) == (expected, expected)
