"""The compiler: an ordered list of named passes from source files to a sealed decision table.

    load (parse + imports) -> check (names, types) -> lower (DNF rows) -> seal -> analyse

Each pass takes the `Compilation` and adds to it; a pass that needs a clean input stops the
pipeline when an earlier pass reported errors, so the diagnostics stay about the source.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from sentra_runtime import arith

from sentra_lang import ast
from sentra_lang.arithmetic import BUILT_IN_PLACEHOLDERS, FLIPPED, fold, from_ast
from sentra_lang.checker import (
    STATE_PREFIX,
    GroupInfo,
    Model,
    RuleInfo,
    check,
    interpolated_fields,
)
from sentra_lang.diagnostics import Diagnostic, diagnostic, has_errors, sort_diagnostics
from sentra_lang.formatter import format_condition
from sentra_lang.loader import Program, load_file, load_text
from sentra_lang.table import (
    ARITHMETIC_SCHEMA_VERSION,
    LIMITS_SCHEMA_VERSION,
    PLAIN_SCHEMA_VERSION,
    REVIEW_SCHEMA_VERSION,
    ActionBlock,
    Group,
    GroupLimit,
    InputField,
    Limit,
    PolicyInfo,
    RiskDecay,
    Row,
    Rule,
    Settings,
    SourceSpan,
    Table,
    Test,
    seal,
)

MAX_ROWS_PER_RULE = 512


@dataclass(frozen=True)
class Atom:
    """One atomic test, as the table stores it (hashable, cheap to compare)."""

    field: str
    op: str
    value: Any = None
    other: str | None = None
    negate: bool = False
    left: arith.Expr | None = None
    """An arithmetic test's sides (`field` is then "")."""
    right: arith.Expr | None = None

    def negated(self) -> Atom:
        return Atom(self.field, self.op, self.value, self.other, not self.negate, self.left,
                    self.right)

    def to_test(self) -> Test:
        if self.left is not None and self.right is not None:
            return Test(op=self.op, negate=self.negate, left=arith.to_json(self.left),  # type: ignore[arg-type]
                        right=arith.to_json(self.right))
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return Test(field=self.field, op=self.op, value=value, other=self.other,  # type: ignore[arg-type]
                    negate=self.negate)


class TooComplex(Exception):
    pass


@dataclass
class Compilation:
    program: Program
    model: Model | None = None
    rows: dict[str, list[list[Atom]]] = field(default_factory=dict)
    table: Table | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    analyse: bool = True
    analysis: Any = None
    """`analysis.AnalysisOptions` for the analyse pass (None: the defaults)."""

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)

    def sorted_diagnostics(self) -> list[Diagnostic]:
        return sort_diagnostics(self.diagnostics)


def pass_check(comp: Compilation) -> None:
    comp.model, diagnostics = check(comp.program)
    comp.diagnostics.extend(diagnostics)


def pass_lower(comp: Compilation) -> None:
    assert comp.model is not None
    lowerer = Lowerer(comp.model)
    for rule in _all_rules(comp.model):
        try:
            comp.rows[rule.id] = lowerer.rows(rule.when)
        except TooComplex:
            assert rule.when is not None
            comp.diagnostics.append(diagnostic(
                "SL304", f"condition expands to more than {MAX_ROWS_PER_RULE} rows", rule.when.span,
                help="split the rule, or name parts of the condition with `let`"))


def pass_table(comp: Compilation) -> None:
    assert comp.model is not None
    comp.table = build_table(comp.model, comp.rows)


def pass_analyse(comp: Compilation) -> None:
    if not comp.analyse:
        return
    from sentra_lang.analysis import analyse

    assert comp.table is not None and comp.model is not None
    comp.diagnostics.extend(analyse(comp.table, comp.model, comp.analysis))


Pass = Callable[[Compilation], None]
# (name, function, needs an error-free input)
PASSES: tuple[tuple[str, Pass, bool], ...] = (
    ("check", pass_check, True),
    ("lower", pass_lower, True),
    ("table", pass_table, True),
    ("analyse", pass_analyse, True),
)


def run_passes(comp: Compilation) -> Compilation:
    if comp.program.main.module is None:
        return comp
    for _name, run, needs_clean in PASSES:
        if needs_clean and not comp.ok:
            break
        run(comp)
    if comp.model is not None and not comp.model.is_policy:
        comp.table = None
    return comp


def compile_program(program: Program, *, analyse: bool = True, analysis: Any = None) -> Compilation:
    comp = Compilation(program, diagnostics=list(program.diagnostics), analyse=analyse,
                       analysis=analysis)
    return run_passes(comp)


def compile_file(path: str | os.PathLike[str], *, analyse: bool = True,
                 root: str | os.PathLike[str] | None = None,
                 analysis: Any = None) -> Compilation:
    """Compile a file; its imports stay inside `root` (by default the file's folder).

    Raises `loader.FileUnreadable` when the file cannot be read.
    """
    return compile_program(load_file(path, root=root), analyse=analyse, analysis=analysis)


def compile_source(text: str, path: str = "<string>", *, analyse: bool = True,
                   root: str | os.PathLike[str] | None = None,
                   analysis: Any = None) -> Compilation:
    return compile_program(load_text(text, path, root=root), analyse=analyse, analysis=analysis)


# ----------------------------------------------------------------------------- lowering

def _all_rules(model: Model) -> list[RuleInfo]:
    rules = [rule for block in model.blocks for rule in block.rules]
    return rules + ([model.otherwise] if model.otherwise else [])


class Lowerer:
    """Lowers a condition to disjunctive normal form: rows of atoms, `not` pushed to atoms."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def rows(self, cond: ast.Condition | None) -> list[list[Atom]]:
        if cond is None:
            return [[]]
        rows = self.dnf(cond, False)
        return [list(dict.fromkeys(row)) for row in rows]

    def dnf(self, cond: ast.Condition, negate: bool) -> list[tuple[Atom, ...]]:
        if isinstance(cond, ast.Not):
            return self.dnf(cond.operand, not negate)
        if isinstance(cond, (ast.And, ast.Or)):
            parts = [self.dnf(operand, negate) for operand in cond.operands]
            conjunctive = isinstance(cond, ast.And) != negate
            if not conjunctive:
                return [row for part in parts for row in part]
            total = 1
            for part in parts:
                total *= len(part)
            if total > MAX_ROWS_PER_RULE:
                raise TooComplex
            return [tuple(atom for row in combo for atom in row) for combo in product(*parts)]
        if isinstance(cond, ast.Ref):
            let = self.model.lets.get(cond.path.dotted)
            if let is not None:
                return self.dnf(let.value, negate)  # type: ignore[arg-type]
            return [(Atom(cond.path.dotted, "==", True, negate=negate),)]
        return [(self.atom(cond, negate),)]

    def atom(self, cond: ast.Condition, negate: bool) -> Atom:
        if isinstance(cond, ast.Compare):
            op, flip = ("==", True) if cond.op == "!=" else (cond.op, False)
            if isinstance(cond.right, ast.Path):
                return Atom(cond.left.dotted, op, None, cond.right.dotted, negate != flip)
            return Atom(cond.left.dotted, op, cond.right.value, None, negate != flip)
        if isinstance(cond, ast.ArithCompare):
            return arithmetic_atom(cond, negate)
        if isinstance(cond, ast.Membership):
            items = (cond.set.items if isinstance(cond.set, ast.SetLit)
                     else self.model.lets[cond.set.value].value.items)  # type: ignore[union-attr]
            values = tuple(sorted({item.value for item in items}))
            return Atom(cond.path.dotted, "in", values, None, negate != cond.negated)
        if isinstance(cond, ast.StringTest):
            return Atom(cond.path.dotted, cond.op, cond.value.value, None, negate)
        if isinstance(cond, ast.Exists):
            return Atom(cond.path.dotted, "exists", None, None, negate)
        raise AssertionError(f"not an atom: {cond!r}")


def arithmetic_atom(cond: ast.ArithCompare, negate: bool) -> Atom:
    """A checked arithmetic comparison as a test, its constants folded: a field compared with a
    field or a constant is an ordinary test (`100 * 2 < amount` is `amount > 200`); `!=` is a
    negated `==`, as for every comparison (a missing operand makes `==` false)."""
    op, flip = ("==", True) if cond.op == "!=" else (cond.op, False)
    negate = negate != flip
    assert not isinstance(cond.right, (ast.Str, ast.Bool)), "the checker rejects these"
    left, right = fold(from_ast(cond.left)), fold(from_ast(cond.right))
    if isinstance(left, arith.Const) and isinstance(right, arith.Field):
        left, right, op = right, left, FLIPPED[op]
    if isinstance(left, arith.Field) and isinstance(right, arith.Const):
        return Atom(left.name, op, right.value, None, negate)
    if isinstance(left, arith.Field) and isinstance(right, arith.Field):
        return Atom(left.name, op, None, right.name, negate)
    return Atom("", op, None, None, negate, left, right)


# -------------------------------------------------------------------------------- table

def _span(rule: RuleInfo) -> SourceSpan:
    span = rule.span
    return SourceSpan(file=rule.file.name, line=span.line, column=span.column,
                      end_line=span.end_line, end_column=span.end_column)


def _condition_text(rule: RuleInfo) -> str | None:
    """The rule's condition as `fmt` prints it: on one line, without the comments written
    inside it, its strings exactly as they are (escaped where a terminal would act on them)."""
    return None if rule.when is None else format_condition(rule.when)


def _table_rule(rule: RuleInfo) -> Rule:
    return Rule(id=rule.id, outcome=rule.outcome, risk=rule.risk, threat=rule.threat,  # type: ignore[arg-type]
                reason=rule.reason, description=rule.description,
                condition=_condition_text(rule), generated_id=rule.generated_id, span=_span(rule),
                limit=None if rule.limit is None else Limit(count=rule.limit[0],
                                                            period=rule.limit[1]),
                expires=rule.expires)


def build_table(model: Model, rows: dict[str, list[list[Atom]]]) -> Table:
    inputs = [
        InputField(name=f.name, type=f.type, optional=f.optional, default=f.default,  # type: ignore[arg-type]
                   has_default=f.has_default, normalize=f.normalize, values=f.values)  # type: ignore[arg-type]
        for f in sorted(model.fields.values(), key=lambda f: f.name)
    ]
    blocks = [
        ActionBlock(
            names=block.names,
            rows=[Row(rule=rule.id, tests=[a.to_test() for a in row])
                  for rule in block.rules for row in rows[rule.id]],
            limits=[Limit(count=count, period=period) for count, period in block.limits],
        )
        for block in model.blocks
        if block.names
    ]
    decay = None if model.risk_decay is None else RiskDecay(amount=model.risk_decay[0],
                                                            period=model.risk_decay[1])
    table = Table(
        schema_version=_schema_version(model, rows),
        policy=PolicyInfo(name=model.name, version=model.version, description=model.description),
        settings=Settings(risk_threshold=model.risk_threshold, strikes=model.strikes,
                          action_normalize=model.action_normalize,  # type: ignore[arg-type]
                          undeclared_fields=model.undeclared_fields,  # type: ignore[arg-type]
                          risk_decay=decay, review_timeout=model.review_timeout),
        input=inputs,
        rules=[_table_rule(rule) for rule in _all_rules(model)],
        actions=blocks,
        otherwise=model.otherwise.id if model.otherwise else None,
        groups=[_table_group(group) for group in model.groups],
    )
    return seal(table)


def _table_group(group: GroupInfo) -> Group:
    decay = group.risk_decay
    return Group(name=group.name, agents=group.patterns, risk_threshold=group.risk_threshold,
                 strikes=group.strikes,
                 risk_decay=None if decay is None else RiskDecay(amount=decay[0],
                                                                 period=decay[1]),
                 limits=[GroupLimit(action=action, count=count, period=period)
                         for action, count, period in group.limits])


def reads_state(rows: dict[str, list[list[Atom]]]) -> bool:
    """Whether a test reads the agent's state (`agent.*`)."""
    return any(name.startswith(STATE_PREFIX + ".")
               for table_rows in rows.values() for row in table_rows for atom in row
               for name in atom_fields(atom))


def atom_fields(atom: Atom) -> list[str]:
    """The fields an atom reads."""
    if atom.left is not None and atom.right is not None:
        return [*arith.fields(atom.left), *arith.fields(atom.right)]
    return [atom.field] if atom.other is None else [atom.field, atom.other]


def _schema_version(model: Model, rows: dict[str, list[list[Atom]]]) -> int:
    """4 for a table with rate limits; 3 for a table that computes, interpolates `{action}`/`{agent_id}`, has groups or decays risk (an
    older runtime refuses it rather than decide it otherwise), else 2, which every runtime since
    2 reads."""
    computes = any(atom.left is not None for table_rows in rows.values()
                   for row in table_rows for atom in row)
    names = {name for rule in _all_rules(model)
             for name, _start, _end in interpolated_fields(rule.reason)}
    uses_version_3 = (computes or bool(names & set(BUILT_IN_PLACEHOLDERS))
                      or model.risk_decay is not None or bool(model.groups)
                      or reads_state(rows))
    if has_limits(model):
        return LIMITS_SCHEMA_VERSION
    if uses_review(model):
        return REVIEW_SCHEMA_VERSION
    return ARITHMETIC_SCHEMA_VERSION if uses_version_3 else PLAIN_SCHEMA_VERSION


def has_limits(model: Model) -> bool:
    """Whether the policy has a rate limit (on a rule, a block or a group)."""
    return (any(rule.limit is not None for rule in _all_rules(model))
            or any(block.limits for block in model.blocks)
            or any(group.limits for group in model.groups))


def uses_review(model: Model) -> bool:
    """Whether the policy holds decisions for an operator (a `review` rule or
    `review_timeout`): its table has schema version 4."""
    return (model.review_timeout is not None
            or any(rule.outcome == "review" for rule in _all_rules(model)))
