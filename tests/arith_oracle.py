"""An independent oracle of the documented arithmetic (docs/language.md, "Arithmetic"), and a
Hypothesis strategy of small policies that compute.

Written from the documentation, not from `sentra_runtime.arith`: expressions are tuples, the
semantics are spelled out again here (missing operand: false; int op int exact except `/`;
division by zero or a non-finite value: undetermined; three-valued `and`/`or`/`not`; the first
rule that is not false decides, an undetermined one as `ARITHMETIC_ERROR`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

Node = tuple[Any, ...]
UNDETERMINED = "undetermined"

FIELDS = {"a": "number", "b": "int", "c": "int?", "d": "number?"}
"""The fields of every generated policy: name -> declared type."""
CONSTANTS = [0, 1, 2, 3, -3, 7, 0.5, 2.5, -0.25, 1000000, 10**30, 1e90]


class Undetermined(Exception):
    pass


def value(node: Node, env: Mapping[str, Any], computing: bool = True) -> Any:
    """A side's value; in a comparison that computes (``computing``), a `number` field is a
    number (64-bit float) however it was sent."""
    kind = node[0]
    if kind == "f":
        number = computing and FIELDS[node[1]].startswith("number")
        return float(env[node[1]]) if number else env[node[1]]
    if kind == "c":
        return node[1]
    if kind == "neg":
        return -value(node[1], env)
    left, right = value(node[1], env), value(node[2], env)
    try:
        if kind == "+":
            result = left + right
        elif kind == "-":
            result = left - right
        elif kind == "*":
            result = left * right
        else:
            if right == 0:
                raise Undetermined
            result = left / right
    except OverflowError:
        raise Undetermined from None
    if isinstance(result, float) and (math.isinf(result) or math.isnan(result)):
        raise Undetermined
    return result


def names(node: Node) -> list[str]:
    if node[0] == "f":
        return [node[1]]
    if node[0] == "c":
        return []
    return [name for child in node[1:] for name in names(child)]


def comparison(op: str, left: Node, right: Node, env: Mapping[str, Any]) -> bool | str:
    """A comparison's truth: False with a missing field (and `!=` its negation: True),
    UNDETERMINED when a side fails."""
    if any(env.get(name) is None for name in names(left) + names(right)):
        return op == "!="
    # a comparison computes when a side has an operator and a field (constants alone fold);
    # otherwise it is an ordinary test: the values as sent, compared exactly
    computing = any(side[0] not in ("f", "c") and names(side) for side in (left, right))
    try:
        a, b = value(left, env, computing), value(right, env, computing)
    except (Undetermined, OverflowError):
        return UNDETERMINED
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def truth(cond: Node, env: Mapping[str, Any]) -> bool | str:
    """Three-valued truth of ("cmp", op, l, r), ("and", x, y), ("or", x, y), ("not", x)."""
    kind = cond[0]
    if kind == "cmp":
        return comparison(cond[1], cond[2], cond[3], env)
    if kind == "not":
        inner = truth(cond[1], env)
        return inner if inner == UNDETERMINED else not inner
    parts = [truth(cond[1], env), truth(cond[2], env)]
    if kind == "and":
        return False if False in parts else UNDETERMINED if UNDETERMINED in parts else True
    return True if True in parts else UNDETERMINED if UNDETERMINED in parts else False


def decide(rules: list[tuple[str, Node]], env: Mapping[str, Any]) -> str:
    """The deciding rule id (the last rule of a generated policy has no condition)."""
    for rule_id, cond in rules:
        result = truth(cond, env)
        if result == UNDETERMINED:
            return "ARITHMETIC_ERROR"
        if result is True:
            return rule_id
    return "DEFAULT"


# -- source text ---------------------------------------------------------------------------------

def number_source(number: int | float) -> str:
    if isinstance(number, int):
        return str(number)
    text = f"{number:.400f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def source(node: Node) -> str:
    """Fully parenthesised, so the text does not lean on precedence."""
    kind = node[0]
    if kind == "f":
        return node[1]
    if kind == "c":
        return number_source(node[1])
    if kind == "neg":
        return f"-({source(node[1])})"
    return f"({source(node[1])} {kind} {source(node[2])})"


def condition_source(cond: Node) -> str:
    kind = cond[0]
    if kind == "cmp":
        return f"{source(cond[2])} {cond[1]} {source(cond[3])}"
    if kind == "not":
        return f"not ({condition_source(cond[1])})"
    return f"({condition_source(cond[1])}) {kind} ({condition_source(cond[2])})"


def policy_source(rules: list[tuple[str, Node]]) -> str:
    fields = "\n".join(f"  {name}: {kind}" for name, kind in FIELDS.items())
    body = "\n".join(f"  when {condition_source(cond)} block as {rule_id}"
                     for rule_id, cond in rules)
    return (f'policy gen version "1" {{}}\n\ninput {{\n{fields}\n}}\n\naction X {{\n{body}\n'
            "  allow as DEFAULT\n}\n\notherwise block as OTHER\n")


# -- strategies ----------------------------------------------------------------------------------

leaves = st.one_of(st.sampled_from([("f", name) for name in FIELDS]),
                   st.sampled_from([("c", c) for c in CONSTANTS]))
expressions = st.recursive(
    leaves,
    lambda inner: st.one_of(st.tuples(st.sampled_from(["+", "-", "*", "/"]), inner, inner),
                            st.tuples(st.just("neg"), inner)),
    max_leaves=5)
comparisons = st.tuples(st.just("cmp"), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
                        expressions, expressions).filter(
    lambda c: bool(names(c[2]) + names(c[3])))
conditions = st.recursive(
    comparisons,
    lambda inner: st.one_of(st.tuples(st.sampled_from(["and", "or"]), inner, inner),
                            st.tuples(st.just("not"), inner)),
    max_leaves=3)
rule_lists = st.lists(conditions, min_size=1, max_size=3).map(
    lambda conds: [(f"R{i}", cond) for i, cond in enumerate(conds)])

_INTS = st.one_of(st.sampled_from([0, 1, -1, 2, 3, 7, 10**30, 10**400]),
                  st.integers(-1000, 1000))
_NUMBERS = st.one_of(_INTS, st.sampled_from([0.0, -0.0, 0.5, 1e308, -1e308, 1e-300, 2.5]),
                     st.floats(-1e6, 1e6, allow_nan=False))
environments = st.fixed_dictionaries({
    "a": _NUMBERS, "b": _INTS,
    "c": st.one_of(st.none(), _INTS), "d": st.one_of(st.none(), _NUMBERS)})
