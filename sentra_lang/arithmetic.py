"""Arithmetic in the compiler: the AST's number expressions as `sentra_runtime.arith` trees,
with constant sub-expressions folded (docs/language.md, "Arithmetic").

Folding computes with `sentra_runtime.arith.apply`, the runtime's own operations, so a folded
constant is exactly what the runtime would have computed; a constant that cannot be computed
(`1 / 0`) is reported by the checker (SL221) rather than folded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction

from sentra_runtime import arith
from sentra_runtime.policy import STATE_FIELDS

from sentra_lang import ast
from sentra_lang.table import Row, Table, Test

BUILT_IN_PLACEHOLDERS = ("action", "agent_id")
"""Names a reason interpolates without a field: the normalised action type and the agent's id
(docs/language.md, "Reasons"). No field may be declared with one of these names."""


STATE_TYPES = {spec.name: spec.type for spec in STATE_FIELDS}
"""The types of the agent's state as conditions read it (`agent.cumulative_risk` is an `int`)."""
FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
"""Each comparison with its sides swapped: `a < b` is `b > a`."""


def from_ast(expr: ast.Expr) -> arith.Expr:
    """The runtime tree of a number expression (spans dropped, nothing folded)."""
    if isinstance(expr, ast.Path):
        return arith.Field(expr.dotted)
    if isinstance(expr, ast.Num):
        return arith.Const(expr.value)
    if isinstance(expr, ast.Neg):
        return arith.Neg(from_ast(expr.operand))
    return arith.BinOp(expr.op, from_ast(expr.left), from_ast(expr.right))


def fold(expr: arith.Expr) -> arith.Expr:
    """``expr`` with every sub-expression that reads no field replaced by its value.

    Raises `arith.ArithmeticFailure` (naming the operation) when such a sub-expression cannot be
    computed. Only whole constant sub-trees fold: ``a + 1 + 2`` is ``(a + 1) + 2`` and stays as
    it is, since number addition is not associative.
    """
    if isinstance(expr, (arith.Field, arith.Const)):
        return expr
    if isinstance(expr, arith.Neg):
        operand = fold(expr.operand)
        return arith.Const(-operand.value) if isinstance(operand, arith.Const) else arith.Neg(operand)
    left, right = fold(expr.left), fold(expr.right)
    if isinstance(left, arith.Const) and isinstance(right, arith.Const):
        return arith.Const(arith.evaluate(arith.BinOp(expr.op, left, right), {}))
    return arith.BinOp(expr.op, left, right)


# ------------------------------------------------------------------- exact analysis

def threshold(test: Test, types: Mapping[str, str]) -> Test | None:
    """An arithmetic test as an ordinary test on one field that holds for exactly the same
    inputs, or None when there is none this rewrites to.

    Exact for one `int` field read once, with `int` constants and `+ - *` (and always found
    for those): both sides are then `a * x + b` with integers (no rounding, no overflow, no
    division), so `L op R` is `(a_L - a_R) * x op b_R - b_L`, a threshold on the integer `x`
    (rounded the right way); with no `x` left (`x * 0`) it is `exists x` or a test no integer
    passes (`x == 0.5`), and so is `==` with a bound that is no integer. A missing `x` makes both
    tests false, and `negate` is kept.
    """
    if test.left is None or test.right is None:
        return None
    left, right = arith.as_expr(test.left), arith.as_expr(test.right)
    names = [*arith.fields(left), *arith.fields(right)]
    if len(names) != 1 or types.get(names[0]) != "int":
        return None
    left_line, right_line = _linear(left), _linear(right)
    if left_line is None or right_line is None:
        return None
    slope = left_line[0] - right_line[0]
    offset = right_line[1] - left_line[1]  # L op R is `slope * x op offset`
    name = names[0]
    if slope == 0:  # the same truth for every present x
        holds = bool(arith.COMPARE[test.op](0, offset))
        return Test(field=name, op="exists", negate=test.negate) if holds else \
            _never(name, test.negate)
    op = test.op if slope > 0 else FLIPPED[test.op]
    value = _integer_bound(op, Fraction(offset, slope))
    if value is None:  # `x == 2/3`: no integer x
        return _never(name, test.negate) if op == "==" else \
            Test(field=name, op="exists", negate=test.negate)
    return Test(field=name, op=op, value=value, negate=test.negate)  # type: ignore[arg-type]


def _never(name: str, negate: bool) -> Test:
    """A test false for every value of the `int` field `name`, as a plain test: `name == 0.5`."""
    return Test(field=name, op="==", value=0.5, negate=negate)


def _linear(expr: arith.Expr) -> tuple[int, int] | None:
    """``(a, b)`` with ``expr == a * x + b`` for the one field ``x``, when ``expr`` is integer
    arithmetic with `+ - *` (``None`` otherwise)."""
    if isinstance(expr, arith.Field):
        return (1, 0)
    if isinstance(expr, arith.Const):
        return (0, expr.value) if isinstance(expr.value, int) else None
    if isinstance(expr, arith.Neg):
        inner = _linear(expr.operand)
        return None if inner is None else (-inner[0], -inner[1])
    left, right = _linear(expr.left), _linear(expr.right)
    if left is None or right is None or expr.op == "/":
        return None
    if expr.op == "+":
        return (left[0] + right[0], left[1] + right[1])
    if expr.op == "-":
        return (left[0] - right[0], left[1] - right[1])
    if left[0] and right[0]:
        return None  # x * x: the field is read once, so never
    return (left[0] * right[1] + right[0] * left[1], left[1] * right[1])


def _integer_bound(op: str, bound: Fraction) -> int | None:
    """The integer ``k`` with ``x op k`` equivalent to ``x op bound`` for every integer ``x``
    (``None`` for `==`/`!=` with a bound that is not an integer: no such plain test)."""
    if op in (">", "<="):
        return math.floor(bound)
    if op in (">=", "<"):
        return math.ceil(bound)
    return int(bound) if bound.denominator == 1 else None


def exact_view(table: Table) -> Table:
    """The table with every arithmetic test that `threshold` rewrites rewritten: what the
    analysis and `diff` reason about (the runtime runs the table as compiled)."""
    types = {**STATE_TYPES, **{spec.name: spec.type for spec in table.input}}
    if not any(test.left is not None for block in table.actions for row in block.rows
               for test in row.tests):
        return table
    actions = [block.model_copy(update={"rows": [
        row.model_copy(update={"tests": [threshold(test, types) or test for test in row.tests]})
        for row in block.rows]}) for block in table.actions]
    return table.model_copy(update={"actions": actions})


def computed_rule(rows: Sequence[Row]) -> str | None:
    """The rule of the first row with an arithmetic test left (one the analysis cannot take)."""
    return next((row.rule for row in rows if any(test.left is not None for test in row.tests)),
                None)
