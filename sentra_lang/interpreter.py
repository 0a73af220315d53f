"""A straightforward reference interpreter of the checked AST.

It decides which rule matches an input by walking the conditions as written (no DNF, no
generated code), so the compiled table and the runtime's fast evaluator can be checked
against it on generated policies and inputs.
"""

from __future__ import annotations

from typing import Any

from sentra_runtime.inputs import MISSING, InputSchema, Problem, normalize
from sentra_runtime.policy import COMPARISONS, InputSpec

from sentra_lang import ast
from sentra_lang.checker import FieldInfo, Model, RuleInfo


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


class Interpreter:
    def __init__(self, model: Model) -> None:
        self.model = model
        self.schema = input_schema(model)

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

        Raises InvalidInput when the input does not fit the declared types.
        """
        values = self.values(fields)
        rules = self.rules_for(action)
        if rules is None:
            return self.model.otherwise
        for rule in rules:
            if rule.when is None or self.holds(rule.when, values):
                return rule
        return self.model.otherwise

    def holds(self, cond: ast.Condition, values: dict[str, Any]) -> bool:
        if isinstance(cond, ast.And):
            return all(self.holds(c, values) for c in cond.operands)
        if isinstance(cond, ast.Or):
            return any(self.holds(c, values) for c in cond.operands)
        if isinstance(cond, ast.Not):
            return not self.holds(cond.operand, values)
        if isinstance(cond, ast.Ref):
            let = self.model.lets.get(cond.path.dotted)
            if let is not None:
                return self.holds(let.value, values)  # type: ignore[arg-type]
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
