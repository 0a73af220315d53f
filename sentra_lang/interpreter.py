"""A straightforward reference interpreter of the checked AST.

It decides which rule matches an input by walking the conditions as written (no DNF, no
generated code), so the compiled table and the runtime's fast evaluator can be checked
against it on generated policies and inputs.
"""

from __future__ import annotations

import math
from typing import Any

from sentra_lang import ast
from sentra_lang.analysis import COMPARISONS, MISSING
from sentra_lang.checker import FieldInfo, Model, RuleInfo, normalize_text


class InvalidInput(Exception):
    """Input that does not fit the declared types; `field` names the culprit."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def lookup(fields: dict[str, Any], name: str) -> Any:
    """The raw value of field `name`: a path through nested objects, then a flat key.

    A parent that is absent or null makes the field missing; a parent that is present but not
    an object makes the input invalid (InvalidInput naming the parent), never an empty object.
    """
    from collections.abc import Mapping

    node: Any = fields
    path: list[str] = []
    for part in name.split("."):
        if node is None:
            node = MISSING
            break
        if not isinstance(node, Mapping):
            raise InvalidInput(".".join(path))
        if part not in node:
            node = MISSING
            break
        node = node[part]
        path.append(part)
    if node is MISSING and name in fields:
        node = fields[name]
    return MISSING if node is None else node


def coerce(info: FieldInfo, raw: Any) -> Any:
    """The field's normalised value, its default, MISSING, or InvalidInput."""
    if raw is MISSING:
        if info.has_default:
            return set(info.default) if info.type == "set" else info.default
        if info.optional:
            return MISSING
        raise InvalidInput(info.name)
    kind = info.type
    if kind == "bool":
        ok = isinstance(raw, bool)
    elif kind == "int":
        ok = isinstance(raw, int) and not isinstance(raw, bool)
    elif kind == "number":
        ok = (isinstance(raw, (int, float)) and not isinstance(raw, bool)
              and math.isfinite(raw))
    elif kind in ("string", "enum"):
        ok = isinstance(raw, str)
    else:
        ok = isinstance(raw, (list, tuple, set, frozenset)) and all(isinstance(x, str) for x in raw)
    if not ok:
        raise InvalidInput(info.name)
    if kind in ("string", "enum"):
        raw = normalize_text(raw, info.normalize)
        if kind == "enum" and raw not in (info.values or []):
            raise InvalidInput(info.name)
    if kind == "set":
        raw = {normalize_text(x, info.normalize) for x in raw}
    return raw


class Interpreter:
    def __init__(self, model: Model) -> None:
        self.model = model

    def values(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {name: coerce(info, lookup(fields, name)) for name, info in self.model.fields.items()}

    def rules_for(self, action: str) -> list[RuleInfo] | None:
        normalized = normalize_text(action, self.model.action_normalize)
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
