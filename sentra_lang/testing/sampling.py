"""Sampled property checks: inputs generated with Hypothesis from the declared input types.

Used only when a property cannot be proved on every cell (`sentra_lang.testing.properties`);
this module is imported then, so Hypothesis (the `properties` extra) is needed only then.
Strings and numbers are drawn mostly from the constants the policy compares them with (and
case/space variants of them), so generated inputs reach every row; a `where` clause pins the
fields it fixes and filters the rest. Runs are deterministic (derandomized, no database).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from sentra_runtime import arith
from sentra_runtime.policy import RowFailure, row_holds

from sentra_lang.compiler import Lowerer
from sentra_lang.testing import NothingToCheck
from sentra_lang.testing import suite_ast as s
from sentra_lang.testing.policies import PolicyUnderTest
from sentra_lang.testing.properties import (
    DEFAULT_EXAMPLES,
    MAX_SEQUENCE,
    Agents,
    PropertyAgent,
    PropertyFalsified,
    PropertyOutcome,
    target_holds,
)


def _normalize(text: str, steps: list[str]) -> str:
    for step in steps:
        text = text.strip() if step == "trim" else text.lower() if step == "lower" else text.upper()
    return text


def _variants(text: str, normalize: list[str]) -> list[str]:
    out = [text]
    if "lower" in normalize:
        out.append(text.upper())
    if "upper" in normalize:
        out.append(text.lower())
    if "trim" in normalize:
        out.append(f"  {text} ")
    return out


class _Generator:
    def __init__(self, put: PolicyUnderTest) -> None:
        self.put = put
        self.constants: dict[str, list[Any]] = {}
        for block in put.table["actions"]:
            for row in block["rows"]:
                for test in row["tests"]:
                    if "left" in test:
                        self._computed(test)
                        continue
                    value = test["value"]
                    values = value if isinstance(value, list) else [value]
                    self.constants.setdefault(test["field"], []).extend(
                        v for v in values if v is not None)
                    if test["other"]:
                        self.constants.setdefault(test["other"], [])

    def _computed(self, test: dict[str, Any]) -> None:
        """An arithmetic test: each field it reads gets the test's constants, and 0 (the
        divisor that fails)."""
        sides = [arith.from_json(test[side], side) for side in ("left", "right")]
        constants = [0] + [node.value for side in sides for node in _nodes(side)
                           if isinstance(node, arith.Const)]
        for name in {name for side in sides for name in arith.fields(side)}:
            self.constants.setdefault(name, []).extend(constants)

    def field(self, spec: Any, pinned: list[Any] | None = None) -> st.SearchStrategy[Any]:
        consts = self.constants.get(spec.name, [])
        if pinned is not None:
            return st.sampled_from([v for p in pinned for v in
                                    (_variants(p, spec.normalize) if isinstance(p, str) else [p])])
        kind = spec.type
        if kind == "bool":
            return st.booleans()
        if kind == "enum":
            return st.sampled_from([v for value in spec.values for v in
                                    _variants(value, spec.normalize)])
        if kind in ("int", "number"):
            numbers = sorted({n + d for n in consts if isinstance(n, (int, float))
                              and not isinstance(n, bool) for d in (-1, 0, 1)})
            base: st.SearchStrategy[float] = st.integers(-1000, 100_000)
            if kind == "number":
                base = base | st.floats(-1000, 100_000, allow_nan=False)
                numbers += [n + 0.5 for n in numbers]
            return st.sampled_from(numbers) | base if numbers else base
        strings = sorted({v for c in consts if isinstance(c, str)
                          for v in _variants(c, spec.normalize)})
        if kind == "set":
            return st.lists(st.sampled_from(strings) if strings else st.text(max_size=8),
                            max_size=4)
        text = st.text(max_size=12)
        if not strings:
            return text
        # prefixes/suffixes around constants reach starts_with / ends_with / contains tests
        around = st.builds(lambda a, c, b: a + c + b, st.sampled_from(["", "x", "/"]),
                           st.sampled_from(strings), st.sampled_from(["", "x", "/"]))
        return st.sampled_from(strings) | around | text

    def inputs(self, pins: dict[str, list[Any]]) -> st.SearchStrategy[dict[str, Any]]:
        required: dict[str, st.SearchStrategy[Any]] = {}
        optional: dict[str, st.SearchStrategy[Any]] = {}
        for name, spec in self.put.fields.items():
            strategy = self.field(spec, pins.get(name))
            if name in pins or (not spec.optional and not spec.has_default):
                required[name] = strategy
            else:
                optional[name] = strategy
        return st.fixed_dictionaries(required, optional=optional)

    def effective(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The input as the policy sees it: defaults filled in, strings normalised."""
        values: dict[str, Any] = {}
        for name, spec in self.put.fields.items():
            value = fields.get(name, spec.default if spec.has_default else None)
            if isinstance(value, str):
                value = _normalize(value, spec.normalize)
            elif isinstance(value, list):
                value = frozenset(_normalize(v, spec.normalize) for v in value)
            values[name] = value
        return values


def _nodes(expr: arith.Expr) -> list[arith.Expr]:
    """Every node of an expression."""
    if isinstance(expr, arith.Neg):
        return [expr, *_nodes(expr.operand)]
    if isinstance(expr, arith.BinOp):
        return [expr, *_nodes(expr.left), *_nodes(expr.right)]
    return [expr]


def _row_holds(row: list[Any], values: dict[str, Any]) -> bool:
    """Whether a row of a `where` holds; a row whose arithmetic fails does not (an input for
    which `where` cannot be computed is not one the property is about)."""
    try:
        return row_holds(row, values)
    except RowFailure:
        return False


def _pins(row: list[Any]) -> dict[str, list[Any]]:
    pins: dict[str, list[Any]] = {}
    for atom in row:
        if atom.negate or atom.other is not None or atom.left is not None:
            continue
        if atom.op == "==":
            pins[atom.field] = [atom.value]
        elif atom.op == "in":
            pins[atom.field] = list(atom.value)
    return pins


def sample_property(prop: s.Property, put: PolicyUnderTest, agents: Agents,
                    who: list[PropertyAgent], *, examples: int | None = None) -> PropertyOutcome:
    """Check one property on generated inputs, each example for one of `who` (an agent of
    each group, `prepare`d) on fresh state."""
    generator = _Generator(put)
    rows: list[list[Any]] = [[]]
    if prop.where is not None:
        assert put.compilation.model is not None
        rows = Lowerer(put.compilation.model).rows(prop.where)

    def where_holds(fields: dict[str, Any]) -> bool:
        if prop.where is None:
            return True
        values = generator.effective(fields)
        return any(_row_holds(row, values) for row in rows)

    inputs = st.one_of([generator.inputs(_pins(row)) for row in rows]).filter(where_holds)
    step = st.tuples(st.sampled_from([name for name, _, _ in prop.actions]), inputs)
    strategy = (st.lists(step, min_size=1, max_size=MAX_SEQUENCE) if prop.sequence
                else st.lists(step, min_size=1, max_size=1))
    count = examples or prop.examples or DEFAULT_EXAMPLES

    @settings(max_examples=count, derandomize=True, database=None, deadline=None,
              verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck),
              print_blob=False)
    @given(st.sampled_from(who), strategy)
    def check(agent: PropertyAgent, steps: list[tuple[str, dict[str, Any]]]) -> None:
        agents.fresh(agent.id)
        for index, (action, fields) in enumerate(steps):
            decision = agents.evaluate(agent.id, action, fields)
            if not target_holds(prop, decision):
                raise PropertyFalsified(steps[: index + 1], decision, agent)

    try:
        check()
    except PropertyFalsified as falsified:
        return PropertyOutcome(count, falsified, "sampled")
    except Unsatisfiable as error:
        raise NothingToCheck("no input drawn satisfies `where`: the property checks "
                             "nothing") from error
    return PropertyOutcome(count, None, "sampled")
