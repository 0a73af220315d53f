"""Exact static analysis of a compiled table, without a solver.

Every field an action reads has its domain split at the constants the policy compares it with
(plus the values between and beyond them, and "missing" for optional fields), so the action's
input space is a finite set of cells, one representative input each. Evaluating the rows on
every cell answers exactly which rules can never decide (shadowed), which conditions are
always true or false, which conditional rules overlap with different outcomes, and which
inputs fall through every rule; each finding carries a concrete witness input.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations, product
from typing import Any

from sentra_lang.checker import BlockInfo, Model, RuleInfo, first_line, normalize_text
from sentra_lang.diagnostics import Diagnostic, Related, diagnostic
from sentra_lang.table import InputField, Table, Test

MAX_CELLS = 2_000_000
MISSING: Any = object()
_FRESH = "zz-other"


@dataclass(frozen=True)
class Cell:
    fields: tuple[str, ...]
    values: tuple[Any, ...]

    def witness(self) -> dict[str, Any]:
        return {f: _jsonable(v) for f, v in zip(self.fields, self.values) if v is not MISSING}


def _jsonable(value: Any) -> Any:
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def evaluate_test(test: Test, values: dict[str, Any]) -> bool:
    """The table's test semantics (docs/table.md) on normalised values; MISSING means absent."""
    value = values.get(test.field, MISSING)
    if test.op == "exists":
        result = value is not MISSING
    elif value is MISSING:
        result = False
    else:
        if test.other is not None:
            operand = values.get(test.other, MISSING)
            if operand is MISSING:
                return test.negate
        else:
            operand = test.value
        result = _apply(test.op, value, operand)
    return result != test.negate


COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
"""The comparison operators of the table (docs/table.md), shared with the AST interpreter."""


def _apply(op: str, value: Any, operand: Any) -> bool:
    if op in COMPARISONS:
        return bool(COMPARISONS[op](value, operand))
    if op == "in":
        return value in operand
    if op == "starts_with":
        return bool(value.startswith(operand))
    if op == "ends_with":
        return bool(value.endswith(operand))
    if op == "contains":
        return operand in value
    raise AssertionError(f"unknown operator {op}")


# ----------------------------------------------------------------------------- domains

def _linked_groups(tests: list[Test]) -> dict[str, set[str]]:
    """Fields compared with each other share one pool of constants."""
    group: dict[str, set[str]] = {}
    for test in tests:
        for name in (test.field, test.other):
            if name is not None:
                group.setdefault(name, {name})
    for test in tests:
        if test.other is not None:
            merged = group[test.field] | group[test.other]
            for name in merged:
                group[name] = merged
    return group


def candidates(info: InputField, tests: list[Test], pool: set[str]) -> list[Any]:
    """Representative values of one field: one per region its tests can tell apart.

    Fields compared with each other share a pool of constants, and every open region gets as
    many distinct points as the pool has fields, so any order among them can be witnessed.
    """
    own = [t for t in tests if t.field in pool and t.value is not None]
    width = len(pool)
    if info.type == "bool":
        values: list[Any] = [True, False]
    elif info.type == "enum":
        values = list(info.values or [])
    elif info.type in ("int", "number"):
        values = _numeric_candidates([t.value for t in own if isinstance(t.value, (int, float))
                                      and not isinstance(t.value, bool)],
                                     info.type == "int", width)
    elif info.type == "string":
        values = _string_candidates(own, info.normalize, width)
    else:
        values = _set_candidates(own)
    if info.optional and not info.has_default:
        values.append(MISSING)
    return values


def _numeric_candidates(constants: list[float], integral: bool, width: int) -> list[Any]:
    points = sorted(set(constants))
    if not points:
        return list(range(width + 1))
    values: set[float] = set(points)
    values |= {points[0] - k for k in range(1, width + 1)}
    values |= {points[-1] + k for k in range(1, width + 1)}
    for low, high in zip(points, points[1:]):
        if integral:
            start = math.floor(low) + 1
            values |= {v for v in range(start, start + width) if v < high}
        else:
            values |= {low + (high - low) * k / (width + 1) for k in range(1, width + 1)}
    if integral:
        values = {v for v in values if float(v).is_integer()}
        values |= {math.floor(p) for p in points} | {math.ceil(p) for p in points}
        return sorted(int(v) for v in values)
    return sorted(values)


def _string_candidates(tests: list[Test], normalize: Sequence[str], width: int) -> list[str]:
    exact: set[str] = set()
    affixes: set[str] = set()
    for test in tests:
        if isinstance(test.value, list):
            exact.update(test.value)
        elif test.op == "==":
            exact.add(str(test.value))
        else:
            affixes.add(str(test.value))
    values = set(exact) | {f"{_FRESH}-{k}" if k else _FRESH for k in range(width)}
    for affix in affixes:
        values |= {affix, affix + "-x", "x-" + affix}
    for first, second in product(sorted(affixes), repeat=2):
        values.add(first + second)
    return sorted({normalize_text(v, [s for s in normalize if s != "trim"]) for v in values})


def _set_candidates(tests: list[Test]) -> list[frozenset[str]]:
    members = sorted({str(t.value) for t in tests})
    if len(members) <= 4:
        return [frozenset(c) for size in range(len(members) + 1) for c in combinations(members, size)]
    return [frozenset()] + [frozenset([m]) for m in members] + [frozenset(members)]


def cells(table: Table, tests: list[Test]) -> tuple[list[str], list[list[Any]]]:
    inputs = {f.name: f for f in table.input}
    groups = _linked_groups(tests)
    names = sorted(groups)
    domains = [candidates(inputs[name], tests, groups[name]) for name in names]
    return names, domains


# ---------------------------------------------------------------------------- findings

class _Space:
    """The cells of one action as bit positions: a set of cells is a Python integer mask.

    Cell indices are mixed-radix numbers over the fields' candidate lists, the first field
    most significant, so set operations on whole regions are single big-integer operations.
    """

    def __init__(self, names: list[str], domains: list[list[Any]]) -> None:
        self.names = names
        self.domains = domains
        self.sizes = [len(d) for d in domains]
        self.strides = [math.prod(self.sizes[j + 1:]) for j in range(len(names))]
        self.total = math.prod(self.sizes)
        self.all = (1 << self.total) - 1
        self.index = {name: j for j, name in enumerate(names)}
        self._masks: dict[tuple[Any, ...], int] = {}

    def value_mask(self, j: int, k: int) -> int:
        stride = self.strides[j]
        period = stride * self.sizes[j]
        block = ((1 << stride) - 1) << (k * stride)
        repeats = self.total // period
        return block * (((1 << (period * repeats)) - 1) // ((1 << period) - 1))

    def test_mask(self, test: Test) -> int:
        key = (test.field, test.op, repr(test.value), test.other, test.negate)
        if key not in self._masks:
            self._masks[key] = self._compute(test)
        return self._masks[key]

    def _compute(self, test: Test) -> int:
        j = self.index[test.field]
        mask = 0
        if test.other is None:
            for k, value in enumerate(self.domains[j]):
                if evaluate_test(test, {test.field: value}):
                    mask |= self.value_mask(j, k)
            return mask
        i = self.index[test.other]
        for k, value in enumerate(self.domains[j]):
            for m, other in enumerate(self.domains[i]):
                if evaluate_test(test, {test.field: value, test.other: other}):
                    mask |= self.value_mask(j, k) & self.value_mask(i, m)
        return mask

    def row_mask(self, tests: list[Test]) -> int:
        mask = self.all
        for test in tests:
            mask &= self.test_mask(test)
            if not mask:
                break
        return mask

    def first_cell(self, mask: int) -> Cell:
        index = (mask & -mask).bit_length() - 1
        values = tuple(self.domains[j][(index // self.strides[j]) % self.sizes[j]]
                       for j in range(len(self.names)))
        return Cell(tuple(self.names), values)


@dataclass
class _RuleStats:
    info: RuleInfo
    rows: list[list[Test]]
    mask: int = 0
    decided: int = 0
    matched: Cell | None = None
    always: bool = False
    shadowed_by: tuple[RuleInfo, Cell] | None = None


def analyse(table: Table, model: Model) -> list[Diagnostic]:
    findings: list[Diagnostic] = []
    blocks = [b for b in model.blocks if b.names]
    for block_info, block in zip(blocks, table.actions):
        findings.extend(_analyse_block(table, model, block_info, block.rows))
    return findings


def _analyse_block(table: Table, model: Model, info: BlockInfo, rows: list[Any]) -> list[Diagnostic]:
    stats = {rule.id: _RuleStats(rule, []) for rule in info.rules}
    for row in rows:
        stats[row.rule].rows.append(row.tests)
    tests = [t for row in rows for t in row.tests]
    names, domains = cells(table, tests)
    size = math.prod(len(d) for d in domains)
    action = ", ".join(info.names)
    if size > MAX_CELLS:
        return [diagnostic("SL406", f"analysis of `{action}` skipped: {size:,} cells", info.span)]
    space = _Space(names, domains)
    order = list(stats.values())
    remaining = space.all
    for s in order:
        for row in s.rows:
            s.mask |= space.row_mask(row)
        s.decided = s.mask & remaining
        s.always = s.mask == space.all
        if s.mask:
            s.matched = space.first_cell(s.mask)
        if s.mask and not s.decided:
            cell_mask = s.mask & -s.mask
            winner = next(o for o in order if o.mask & cell_mask)
            s.shadowed_by = (winner.info, space.first_cell(cell_mask))
        remaining &= ~s.mask
    overlaps: dict[tuple[str, str], Cell] = {}
    conditional = [s for s in order if s.info.when is not None and s.mask]
    for a, b in combinations(conditional, 2):
        both = a.mask & b.mask
        if both and (a.info.outcome, a.info.risk) != (b.info.outcome, b.info.risk):
            overlaps[(a.info.id, b.info.id)] = space.first_cell(both)
    gap = space.first_cell(remaining) if remaining else None
    return _report(info, order, overlaps, gap, model, action)


def _report(info: BlockInfo, order: list[_RuleStats], overlaps: dict[tuple[str, str], Cell],
            gap: Cell | None, model: Model, action: str) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    by_id = {s.info.id: s for s in order}
    for s in order:
        rule = s.info
        head = first_line(rule.span)
        if s.matched is None and rule.when is not None:
            out.append(diagnostic("SL402", f"rule `{rule.id}` never matches: no input satisfies "
                                  "its condition", rule.when.span))
        elif not s.decided and s.shadowed_by is not None:
            winner, cell = s.shadowed_by
            out.append(diagnostic(
                "SL401", f"rule `{rule.id}` is shadowed: every input it matches is decided earlier",
                head, witness=cell.witness(),
                related=[Related(first_line(winner.span), f"`{winner.id}` decides the witness")],
                help="move the rule above the rules that shadow it, or remove it"))
        elif rule.when is not None and s.always:
            out.append(diagnostic("SL403", f"the condition of `{rule.id}` is always true",
                                  rule.when.span, help="drop the `when`, or fix the condition"))
    for (first_id, second_id), cell in overlaps.items():
        second = by_id[second_id]
        if not (second.decided and by_id[first_id].decided):
            continue
        first = by_id[first_id].info
        out.append(diagnostic(
            "SL404", f"`{first_id}` and `{second_id}` overlap and decide differently; "
            f"`{first_id}` wins", first_line(second.info.span), witness=cell.witness(),
            related=[Related(first_line(first.span), f"`{first_id}` matches the witness first")]))
    if gap is not None:
        fallback = (f"the `otherwise` rule `{model.otherwise.id}`" if model.otherwise
                    else "a fail-closed block")
        out.append(diagnostic("SL405", f"some inputs of `{action}` match no rule and fall to "
                              f"{fallback}", info.span, witness=gap.witness()))
    return out


def iter_cells(table: Table, tests: list[Test]) -> Iterator[dict[str, Any]]:
    """Every representative input of a set of tests (used by property checks and tests)."""
    names, domains = cells(table, tests)
    for values in product(*domains):
        yield {n: v for n, v in zip(names, values) if v is not MISSING}

