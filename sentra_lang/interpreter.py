"""A straightforward reference interpreter of the checked AST.

It decides which rule matches an input by walking the conditions as written (no DNF, no
generated code), so the compiled table and the runtime's fast evaluator can be checked
against it on generated policies and inputs.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from sentra_runtime.inputs import MISSING, InputSchema, Problem, normalize
from sentra_runtime.policy import COMPARISONS, InputSpec

from sentra_lang import ast
from sentra_lang.checker import FieldInfo, Model, RuleInfo, expression_paths


class InvalidInput(Exception):
    """Input the runtime refuses (sentra_runtime.inputs); `field` names the culprit and
    `problem` says what is wrong."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.reason)
        self.problem = problem
        self.field = problem.field


def input_schema(model: Model) -> InputSchema:
    """The model's declared input as the runtime reads it (fields in the table's order)."""
    return InputSchema([_spec(info) for _, info in sorted(model.fields.items())],
                       model.undeclared_fields)


def _spec(info: FieldInfo) -> InputSpec:
    return InputSpec(name=info.name, type=info.type, optional=info.optional,
                     has_default=info.has_default, default=info.default,
                     normalize=tuple(info.normalize),
                     values=tuple(info.values) if info.values is not None else None)


class ArithmeticFailed(Exception):
    """The deciding rule's condition is undetermined: a computation it needs failed
    (`ARITHMETIC_ERROR`). `rule` is that rule."""

    def __init__(self, rule: RuleInfo) -> None:
        super().__init__(rule.id)
        self.rule = rule


UNKNOWN = None
"""The third truth value: a condition whose arithmetic could not be computed."""


class Interpreter:
    def __init__(self, model: Model) -> None:
        self.model = model
        self.schema = input_schema(model)
        self.numbers = frozenset(name for name, info in model.fields.items()
                                 if info.type == "number")

    def values(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The declared fields' values (MISSING when absent), read as the runtime reads them;
        InvalidInput when the runtime refuses the input."""
        values = self.schema.read(fields)
        if isinstance(values, Problem):
            raise InvalidInput(values)
        return {spec.name: MISSING if value is None else value
                for spec, value in zip(self.schema.specs, values)}

    def rules_for(self, action: str) -> list[RuleInfo] | None:
        normalized = normalize(action, self.model.action_normalize)
        for block in self.model.blocks:
            if normalized in block.names:
                return block.rules
        return None

    def match(self, action: str, fields: dict[str, Any]) -> RuleInfo | None:
        """The deciding rule (the `otherwise` rule for unknown actions), or None (fail closed).

        Raises InvalidInput when the input does not fit the declared types, ArithmeticFailed
        when the first rule whose condition is not false is undetermined.
        """
        values = self.values(fields)
        rules = self.rules_for(action)
        if rules is None:
            return self.model.otherwise
        for rule in rules:
            truth = True if rule.when is None else self.truth(rule.when, values)
            if truth is UNKNOWN:
                raise ArithmeticFailed(rule)
            if truth:
                return rule
        return self.model.otherwise

    def holds(self, cond: ast.Condition, values: dict[str, Any]) -> bool:
        """Whether `cond` holds (an undetermined condition does not)."""
        return self.truth(cond, values) is True

    def truth(self, cond: ast.Condition, values: dict[str, Any]) -> bool | None:
        """Three-valued (strong Kleene): true, false, or UNKNOWN when a computation failed and
        the rest of the condition does not decide it."""
        if isinstance(cond, ast.And):
            results = [self.truth(c, values) for c in cond.operands]
            return False if False in results else UNKNOWN if UNKNOWN in results else True
        if isinstance(cond, ast.Or):
            results = [self.truth(c, values) for c in cond.operands]
            return True if True in results else UNKNOWN if UNKNOWN in results else False
        if isinstance(cond, ast.Not):
            inner = self.truth(cond.operand, values)
            return UNKNOWN if inner is UNKNOWN else not inner
        if isinstance(cond, ast.ArithCompare):
            return _arith_compare(cond, values, self.numbers)
        if isinstance(cond, ast.Ref):
            let = self.model.lets.get(cond.path.dotted)
            if let is not None:
                return self.truth(let.value, values)  # type: ignore[arg-type]
            return values[cond.path.dotted] is True
        if isinstance(cond, ast.Exists):
            return values[cond.path.dotted] is not MISSING
        if isinstance(cond, ast.Compare):
            return self._compare(cond, values)
        value = values[cond.path.dotted]
        if isinstance(cond, ast.Membership):
            items = (cond.set.items if isinstance(cond.set, ast.SetLit)
                     else self.model.lets[cond.set.value].value.items)  # type: ignore[union-attr]
            inside = value is not MISSING and value in {i.value for i in items}
            return inside != cond.negated
        assert isinstance(cond, ast.StringTest)
        if value is MISSING:
            return False
        needle = cond.value.value
        if cond.op == "starts_with":
            return bool(value.startswith(needle))
        if cond.op == "ends_with":
            return bool(value.endswith(needle))
        return needle in value

    def _compare(self, cond: ast.Compare, values: dict[str, Any]) -> bool:
        left = values[cond.left.dotted]
        right = values[cond.right.dotted] if isinstance(cond.right, ast.Path) else cond.right.value
        if cond.op == "!=":
            return not (left is not MISSING and right is not MISSING and left == right)
        if left is MISSING or right is MISSING:
            return False
        return bool(COMPARISONS[cond.op](left, right))


def _arith_compare(cond: ast.ArithCompare, values: dict[str, Any],
                   numbers: frozenset[str]) -> bool | None:
    """A comparison with arithmetic, computed here independently of `sentra_runtime.arith`
    (docs/language.md, "Arithmetic"): false when an operand is missing (`!=`: true), UNKNOWN
    when a side divides by zero or is not a finite number. In a comparison that computes (a
    side with an operator and a field), a `number` field (in `numbers`) is a float, however it
    was sent; one whose constants alone fold is a test of the values as sent."""
    assert not isinstance(cond.right, (ast.Str, ast.Bool))
    if any(values[path.dotted] is MISSING for side in (cond.left, cond.right)
           for path in expression_paths(side)):
        return cond.op == "!="  # the negation of `==`, false for a missing operand
    if not _computes(cond):
        numbers = frozenset()
    try:
        left = _value(cond.left, values, numbers)
        right = _value(cond.right, values, numbers)
    except (ZeroDivisionError, OverflowError, _NotFinite):
        return UNKNOWN
    if cond.op == "!=":
        return bool(left != right)
    return bool(COMPARISONS[cond.op](left, right))


def _computes(cond: ast.ArithCompare) -> bool:
    """Whether a side has an operator and a field: otherwise the compiler folds the constants
    and the comparison is an ordinary test."""
    return any(isinstance(side, (ast.BinOp, ast.Neg))
               and any(True for _ in expression_paths(side)) for side in (cond.left, cond.right))


class _NotFinite(Exception):
    pass


def _value(expr: ast.Expr, values: dict[str, Any], numbers: frozenset[str]) -> Any:
    if isinstance(expr, ast.Path):
        value = values[expr.dotted]
        return float(value) if expr.dotted in numbers else value
    if isinstance(expr, ast.Num):
        return expr.value
    if isinstance(expr, ast.Neg):
        return -_value(expr.operand, values, numbers)
    left, right = _value(expr.left, values, numbers), _value(expr.right, values, numbers)
    result = {"+": operator.add, "-": operator.sub, "*": operator.mul,
              "/": operator.truediv}[expr.op](left, right)
    if isinstance(result, float) and not math.isfinite(result):
        raise _NotFinite
    return result
