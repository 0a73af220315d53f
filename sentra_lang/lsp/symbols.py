"""What the names in a file mean: the declarations of a policy program, and the references
(spans in one file that name a field, a `let`, a rule, an action or a file).

Built from the parsed AST of every file of a program, so hover and go-to-definition work as
soon as the file parses, even when the checker reports errors; the checked `Model`, when there
is one, only adds what the checker decides (generated rule ids, action-name normalisation).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sentra_runtime.inputs import normalize

from sentra_lang import ast
from sentra_lang.arithmetic import BUILT_IN_PLACEHOLDERS
from sentra_lang.checker import Model, expression_paths, interpolated_fields
from sentra_lang.files import real_path
from sentra_lang.loader import Program
from sentra_lang.source import Span
from sentra_lang.testing import suite_ast as s

# References nest at most a few deep (a clause holding a name); looking back this many from the
# last one starting at or before the cursor finds every one that holds it.
_OVERLAP = 8
FIELD, LET, RULE, ACTION, IMPORT, POLICY_FILE = "field", "let", "rule", "action", "import", "policy"


@dataclass(frozen=True)
class Reference:
    """A span of the document (code-point offsets) that names something of kind `kind`."""

    start: int
    end: int
    kind: str
    name: str


@dataclass(frozen=True)
class RuleDef:
    """A rule as declared: its id (as written, or the one the checker generated)."""

    id: str | None
    generated: bool
    outcome: ast.Outcome
    when: ast.Condition | None
    actions: tuple[str, ...]
    """The action names of its block as written; empty for `otherwise`."""
    span: Span
    id_span: Span | None

    @property
    def key(self) -> str:
        """How references name the rule: its id, or its offset when it has none yet."""
        return self.id if self.id is not None else f"@{self.span.start}"

    @property
    def target(self) -> Span:
        return self.id_span or Span.of_offsets(self.outcome.span.source, self.outcome.span.start,
                                               self.outcome.span.start + len(self.outcome.kind))


@dataclass(frozen=True)
class ActionDef:
    name: str
    span: Span
    block: ast.ActionBlock


@dataclass
class PolicyIndex:
    """The declarations of a program (every file) and the references of its main file."""

    fields: dict[str, ast.FieldDecl] = field(default_factory=dict)
    lets: dict[str, ast.Let] = field(default_factory=dict)
    rules: list[RuleDef] = field(default_factory=list)
    actions: dict[str, ActionDef] = field(default_factory=dict)
    """By the action name as the policy matches it (after `action_type normalize`)."""
    imports: dict[str, Path] = field(default_factory=dict)
    """The main file's import strings, resolved to the files they name."""
    action_normalize: tuple[str, ...] = ()
    references: References = field(default_factory=lambda: References(()))

    def rule(self, key: str) -> RuleDef | None:
        """The rule with this id (or `RuleDef.key`); the first one when an id is used twice."""
        return next((rule for rule in self.rules if rule.key == key), None)

    def action(self, name: str) -> ActionDef | None:
        return self.actions.get(normalize(name, self.action_normalize))



class References:
    """The references of one file, sorted, found by offset."""

    def __init__(self, items: Iterable[Reference]) -> None:
        self.items = sorted(items, key=lambda r: (r.start, -r.end))
        self._starts = [r.start for r in self.items]

    def at(self, offset: int) -> Reference | None:
        """The shortest reference holding `offset`; a cursor just after a name is on it."""
        index = bisect_right(self._starts, offset)
        best: Reference | None = None
        for reference in self.items[max(0, index - _OVERLAP):index]:
            if reference.start <= offset <= reference.end and (
                    best is None or reference.end - reference.start < best.end - best.start):
                best = reference
        return best


def index_program(program: Program, model: Model | None) -> PolicyIndex:
    """Index a loaded program: declarations from every file, references of the main file."""
    index = PolicyIndex(action_normalize=tuple(model.action_normalize) if model else ())
    for _loaded, module in program.modules():
        for decl in _fields(module):
            index.fields.setdefault(decl.path.dotted, decl)
        for let in module.of_type(ast.Let):
            index.lets.setdefault(let.name.value, let)
    main = program.main
    if main.module is None:
        return index
    generated = _generated_ids(model)
    for item in main.module.items:
        if isinstance(item, ast.Import):
            index.imports[item.path.value] = real_path(main.real.parent / item.path.value)
        elif isinstance(item, ast.ActionBlock):
            names = tuple(action.value for action in item.names)
            for action in item.names:
                key = normalize(action.value, index.action_normalize)
                index.actions.setdefault(key, ActionDef(action.value, action.span, item))
            for rule in item.rules:
                index.rules.append(_rule_def(rule.outcome, rule.when, names, rule.span, generated))
        elif isinstance(item, ast.Otherwise):
            index.rules.append(_rule_def(item.outcome, None, (), item.span, generated))
    index.references = References(module_references(main.module, index))
    return index


def field_type(decl: ast.FieldDecl) -> str:
    """A field's type as a reader names it: `number`, `enum`, `set<string>`, ..."""
    if decl.type.kind == "set":
        return "set<string>"
    return "enum" if decl.type.kind == "enum" else decl.type.name.value


def _fields(module: ast.Module) -> Iterator[ast.FieldDecl]:
    for block in module.of_type(ast.InputBlock):
        yield from block.fields


def _generated_ids(model: Model | None) -> dict[int, str]:
    """Rule ids by the start offset of their rule, from the checker (which names rules)."""
    if model is None:
        return {}
    rules = [rule for block in model.blocks for rule in block.rules]
    rules += [model.otherwise] if model.otherwise else []
    return {rule.span.start: rule.id for rule in rules}


def _rule_def(outcome: ast.Outcome, when: ast.Condition | None, actions: tuple[str, ...],
              span: Span, generated: dict[int, str]) -> RuleDef:
    clause = outcome.clause("id")
    if clause is not None and isinstance(clause.value, ast.Name):
        return RuleDef(clause.value.value, False, outcome, when, actions, span, clause.value.span)
    return RuleDef(generated.get(span.start), True, outcome, when, actions, span, None)


# ----------------------------------------------------------------------------- references

def module_references(module: ast.Module, index: PolicyIndex) -> Iterator[Reference]:
    """Every reference in a policy file, declarations included (hovering one explains it)."""
    rules = {rule.span.start: rule.key for rule in index.rules}
    for item in module.items:
        if isinstance(item, ast.Import):
            yield _ref(item.path.span, IMPORT, item.path.value)
        elif isinstance(item, ast.InputBlock):
            for decl in item.fields:
                yield _ref(decl.path.span, FIELD, decl.path.dotted)
        elif isinstance(item, ast.Let):
            yield _ref(item.name.span, LET, item.name.value)
            if not isinstance(item.value, ast.SetLit):
                yield from condition_references(item.value, index)
        elif isinstance(item, ast.ActionBlock):
            for action in item.names:
                yield _ref(action.span, ACTION, action.value)
            for rule in item.rules:
                if rule.when is not None:
                    yield from condition_references(rule.when, index)
                yield from _outcome_references(rule.outcome, rules.get(rule.span.start))
        elif isinstance(item, ast.Otherwise):
            yield from _outcome_references(item.outcome, rules.get(item.span.start))


def _outcome_references(outcome: ast.Outcome, name: str | None) -> Iterator[Reference]:
    """The outcome word and `as NAME` name the rule; a reason's `{field}`s name fields."""
    name = name or f"@{outcome.span.start}"
    start = outcome.span.start
    yield Reference(start, start + len(outcome.kind), RULE, name)
    for clause in outcome.clauses:
        if clause.kind == "id":
            yield _ref(clause.span, RULE, name)
        elif clause.kind == "reason" and isinstance(clause.value, ast.Str):
            yield from _interpolations(clause.value)


def _interpolations(string: ast.Str) -> Iterator[Reference]:
    raw = string.span.text
    cursor = 0
    for name, _start, _end in interpolated_fields(string.value):
        if name is None or name in BUILT_IN_PLACEHOLDERS:  # `{action}`, `{agent_id}`: no field
            continue
        at = raw.find("{" + name + "}", cursor)
        if at < 0:
            continue
        cursor = at + len(name) + 2
        start = string.span.start + at + 1
        yield Reference(start, start + len(name), FIELD, name)


def condition_references(cond: ast.Condition, index: PolicyIndex) -> Iterator[Reference]:
    """The fields and `let`s a condition names."""
    if isinstance(cond, (ast.And, ast.Or)):
        for operand in cond.operands:
            yield from condition_references(operand, index)
    elif isinstance(cond, ast.Not):
        yield from condition_references(cond.operand, index)
    elif isinstance(cond, ast.Ref):
        name = cond.path.dotted
        yield _ref(cond.path.span, LET if name in index.lets else FIELD, name)
    elif isinstance(cond, ast.Compare):
        yield _ref(cond.left.span, FIELD, cond.left.dotted)
        if isinstance(cond.right, ast.Path):
            yield _ref(cond.right.span, FIELD, cond.right.dotted)
    elif isinstance(cond, ast.ArithCompare):
        for side in (cond.left, cond.right):
            if not isinstance(side, (ast.Str, ast.Bool)):
                for path in expression_paths(side):
                    yield _ref(path.span, FIELD, path.dotted)
    elif isinstance(cond, ast.Membership):
        yield _ref(cond.path.span, FIELD, cond.path.dotted)
        if isinstance(cond.set, ast.Name):
            yield _ref(cond.set.span, LET, cond.set.value)
    elif isinstance(cond, (ast.StringTest, ast.Exists)):
        yield _ref(cond.path.span, FIELD, cond.path.dotted)


def _ref(span: Span, kind: str, name: str) -> Reference:
    return Reference(span.start, span.end, kind, name)


# --------------------------------------------------------------------------------- suites

def suite_references(suite: s.Suite, index: PolicyIndex) -> References:
    """Every reference in a suite: its policy file, fields, actions and expected rule ids."""
    references = [_ref(suite.policy_span, POLICY_FILE, suite.policy)]
    references.extend(_field_values(suite.defaults))
    for item in suite.items:
        references.extend(_suite_item_references(item, index))
    return References(references)


def _suite_item_references(item: s.Item, index: PolicyIndex) -> Iterator[Reference]:
    if isinstance(item, s.Scenario):
        yield from _field_values(item.defaults)
        for step in item.steps:
            if isinstance(step, s.ActionStep):
                yield _ref(step.action_span, ACTION, step.action)
                yield from _field_values(step.fields)
            expect = (step.expect if isinstance(step, (s.ActionStep, s.StateStep, s.VerdictStep))
                      else None)   # a verdict's expectation is optional
            if expect is not None:
                yield from _expectation_references(expect)
    elif isinstance(item, s.Cases):
        yield _ref(item.action_span, ACTION, item.action)
        yield from _field_values(item.defaults)
        for column, span in item.columns:
            yield _ref(span, FIELD, column)
        for row in item.rows:
            yield from _expectation_references(row.expect)
    else:
        for action, span, _quoted in item.actions:
            yield _ref(span, ACTION, action)
        if item.where is not None:
            yield from condition_references(item.where, index)
        yield from _expectation_references(s.Expectation((item.target,), item.target.span))


def _field_values(values: tuple[s.FieldValue, ...]) -> Iterator[Reference]:
    for value in values:
        yield _ref(value.path_span, FIELD, value.path)


def _expectation_references(expect: s.Expectation) -> Iterator[Reference]:
    for clause in expect.clauses:
        if clause.kind == "rule":
            yield _ref(clause.span, RULE, str(clause.value))

