"""Arithmetic in comparisons: the one definition of what ``a * 0.5 > b`` means.

docs/language.md ("Arithmetic") and docs/table.md ("Arithmetic tests") describe it; this module
is the code every evaluator uses (the generated matcher, explanations, the compiler's constant
folding and its analysis), so they cannot disagree:

- ``+ - *`` on two ints give an int (exact, Python integers); ``/`` always gives a number (true
  division); an int meeting a number is converted to a number first.
- A ``number`` field is a number (a float) in a computation even when it was sent as a JSON
  integer (:attr:`Field.number`): ``amount`` sent as ``10`` computes as ``10.0``, so a value
  decides alike however it was written; one too large to be a float cannot be computed.
- Dividing by zero, and a result or intermediate result that is not a finite number (an
  overflow to infinity; an int too large to become a number), is an
  :class:`ArithmeticFailure`: the decision is Blocked as ``ARITHMETIC_ERROR``, never a test that
  silently comes out true or false.
- A comparison with a missing field among its operands is false (before anything is computed),
  as every test on a missing field is; ``negate`` then flips it.

Expressions are trees of :class:`Field`, :class:`Const`, :class:`BinOp` and :class:`Neg`; in a
table they are JSON (:func:`from_json`, :func:`to_json`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

BINARY_OPERATORS = ("+", "-", "*", "/")
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
"""Binding strength of the binary operators; unary minus binds tighter than all of them."""
DIVIDES_BY_ZERO = "divides by zero"
NOT_FINITE = "is not a finite number"
MAX_EXPRESSION_DEPTH = 100
"""The deepest an expression tree in a table nests (the language's nesting limit)."""


@dataclass(frozen=True)
class Field:
    name: str
    number: bool = field(default=False, compare=False)
    """Whether the field is declared ``number``: its value is then a float in a computation
    (:func:`operand`). Set when a table is loaded (:func:`from_json`'s ``numbers``); the same
    field with or without it is the same expression."""


@dataclass(frozen=True)
class Const:
    value: int | float


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Neg:
    operand: Expr


Expr = Field | Const | BinOp | Neg
Number = int | float


class ArithmeticFailure(Exception):
    """A computation with no finite number as its result: ``expr`` (the operation that failed)
    ``kind`` (:data:`DIVIDES_BY_ZERO` or :data:`NOT_FINITE`)."""

    def __init__(self, kind: str, expr: Expr) -> None:
        super().__init__(f"`{expression_text(expr)}` {kind}")
        self.kind = kind
        self.expr = expr


def apply(op: str, left: Number, right: Number) -> Number:
    """One binary operation; :class:`ArithmeticFailure` (``kind`` only, ``expr`` a
    placeholder) when it divides by zero or its result is not finite."""
    try:
        if op == "+":
            result = left + right
        elif op == "-":
            result = left - right
        elif op == "*":
            result = left * right
        elif right == 0:
            raise ArithmeticFailure(DIVIDES_BY_ZERO, Const(0))
        else:
            result = left / right
    except OverflowError:
        raise ArithmeticFailure(NOT_FINITE, Const(0)) from None
    if result.__class__ is float and not math.isfinite(result):
        raise ArithmeticFailure(NOT_FINITE, Const(0))
    return result


def operand(node: Field, value: Number) -> Number:
    """A field's value as a computation uses it: a ``number`` field's int as a float
    (:class:`ArithmeticFailure` when it is too large to be one), any other value as it is."""
    if node.number and value.__class__ is int:
        try:
            return float(value)
        except OverflowError:
            raise ArithmeticFailure(NOT_FINITE, node) from None
    return value


def evaluate(expr: Expr, values: Mapping[str, Any]) -> Number:
    """The value of ``expr`` with every field it reads present in ``values``.

    Raises :class:`ArithmeticFailure` naming the operation that failed. Iterative (a post-order
    walk), so the depth of an expression costs no Python recursion.
    """
    stack: list[tuple[Expr, bool]] = [(expr, False)]
    results: list[Number] = []
    while stack:
        node, ready = stack.pop()
        if isinstance(node, Field):
            results.append(operand(node, values[node.name]))
        elif isinstance(node, Const):
            results.append(node.value)
        elif isinstance(node, Neg):
            if ready:
                results.append(-results.pop())
            else:
                stack += [(node, True), (node.operand, False)]
        elif ready:
            right = results.pop()
            left = results.pop()
            try:
                results.append(apply(node.op, left, right))
            except ArithmeticFailure as failure:
                raise ArithmeticFailure(failure.kind, node) from None
        else:
            stack += [(node, True), (node.right, False), (node.left, False)]
    return results[0]


def fields(expr: Expr) -> Iterator[str]:
    """The fields ``expr`` reads, left to right (repeats included)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Field):
            yield node.name
        elif isinstance(node, Neg):
            stack.append(node.operand)
        elif isinstance(node, BinOp):
            stack += [node.right, node.left]


def compare(op: str, left: Expr, right: Expr, values: Mapping[str, Any]) -> bool:
    """``left op right`` on ``values`` (``None`` or absent: missing): false when an operand's
    field is missing; :class:`ArithmeticFailure` when a side cannot be computed."""
    for name in (*fields(left), *fields(right)):
        if values.get(name) is None:
            return False
    a = evaluate(left, values)
    b = evaluate(right, values)
    return bool(COMPARE[op](a, b))


COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


# -- text ----------------------------------------------------------------------------------------

def expression_text(expr: Expr) -> str:
    """``expr`` in the language's notation, with only the parentheses its tree needs
    (the formatter's rule: docs/language.md, "Arithmetic")."""
    if isinstance(expr, Field):
        return expr.name
    if isinstance(expr, Const):
        return number_text(expr.value)
    if isinstance(expr, Neg):
        inner = expression_text(expr.operand)
        return f"-({inner})" if isinstance(expr.operand, BinOp) else f"-{inner}"
    strength = PRECEDENCE[expr.op]
    left = expression_text(expr.left)
    right = expression_text(expr.right)
    if isinstance(expr.left, BinOp) and PRECEDENCE[expr.left.op] < strength:
        left = f"({left})"
    if isinstance(expr.right, BinOp) and PRECEDENCE[expr.right.op] <= strength:
        right = f"({right})"
    return f"{left} {expr.op} {right}"


def number_text(value: Number) -> str:
    """A number as the language writes it: an int as is, a number in plain decimals with a
    point (``0.0000001``, never an exponent), read back as the same value."""
    if isinstance(value, int):
        return str(value)
    text = format(Decimal(repr(value)), "f")
    return text if "." in text else text + ".0"


# -- JSON ----------------------------------------------------------------------------------------

class ExpressionError(ValueError):
    """An expression tree in a table that does not follow the schema (``path: message``)."""


def to_json(expr: Expr) -> dict[str, Any]:
    """The table's form of an expression (docs/table.md, "Arithmetic tests")."""
    if isinstance(expr, Field):
        return {"field": expr.name}
    if isinstance(expr, Const):
        return {"const": expr.value}
    if isinstance(expr, Neg):
        return {"op": "neg", "args": [to_json(expr.operand)]}
    return {"op": expr.op, "args": [to_json(expr.left), to_json(expr.right)]}


def from_json(data: Any, path: str, depth: int = 0,
              numbers: frozenset[str] = frozenset()) -> Expr:
    """An expression read from a table, checked; :class:`ExpressionError` names the path.
    ``numbers``: the fields declared ``number`` (:attr:`Field.number`)."""
    if depth > MAX_EXPRESSION_DEPTH:
        raise ExpressionError(f"{path}: expression nests more than {MAX_EXPRESSION_DEPTH} "
                              "levels deep")
    if not isinstance(data, Mapping):
        raise ExpressionError(f"{path}: expected object, got {type(data).__name__}")
    keys = set(data)
    if keys == {"field"}:
        if not isinstance(data["field"], str):
            raise ExpressionError(f"{path}.field: expected string")
        return Field(data["field"], number=data["field"] in numbers)
    if keys == {"const"}:
        value = data["const"]
        if value.__class__ not in (int, float) or (isinstance(value, float)
                                                   and not math.isfinite(value)):
            raise ExpressionError(f"{path}.const: expected a finite number")
        return Const(value)
    if keys != {"op", "args"} or not isinstance(data["args"], list):
        raise ExpressionError(f"{path}: expected {{\"field\"}}, {{\"const\"}} or "
                              "{\"op\", \"args\"}")
    op, args = data["op"], data["args"]
    arity = 1 if op == "neg" else 2 if op in BINARY_OPERATORS else None
    if arity is None:
        raise ExpressionError(f"{path}.op: unknown operator `{op}` (expected one of `+`, `-`, "
                              "`*`, `/`, `neg`)")
    if len(args) != arity:
        raise ExpressionError(f"{path}.args: `{op}` takes {arity} argument"
                              f"{'s' if arity > 1 else ''}, got {len(args)}")
    parts = [from_json(arg, f"{path}.args[{i}]", depth + 1, numbers)
             for i, arg in enumerate(args)]
    return Neg(parts[0]) if op == "neg" else BinOp(op, parts[0], parts[1])


def as_expr(expr: Any) -> Expr:
    """An expression, given as one or as its table JSON (the compiler's table model keeps
    JSON)."""
    if isinstance(expr, (Field, Const, BinOp, Neg)):
        return expr
    return from_json(expr, "expression")


def result_type(expr: Expr, types: Mapping[str, str]) -> str:
    """``int`` or ``number``: what ``expr`` computes, given its fields' types."""
    if isinstance(expr, Field):
        return "int" if types.get(expr.name) == "int" else "number"
    if isinstance(expr, Const):
        return "int" if isinstance(expr.value, int) else "number"
    if isinstance(expr, Neg):
        return result_type(expr.operand, types)
    if expr.op == "/":
        return "number"
    both = {result_type(expr.left, types), result_type(expr.right, types)}
    return "int" if both == {"int"} else "number"
