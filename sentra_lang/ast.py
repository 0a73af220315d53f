"""The abstract syntax tree: frozen dataclasses, each with a span that equality ignores.

The Lark tree is the concrete syntax tree and never leaves the parser; everything after the
parser works on these nodes, so tests can compare trees without positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sentra_lang.source import NO_SPAN, Span


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Name:
    value: str
    span: Span = _span()


@dataclass(frozen=True)
class Path:
    """A dotted field path such as `context.eligibility_verified`."""

    parts: tuple[str, ...]
    span: Span = _span()

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


# ------------------------------------------------------------------------------ literals

@dataclass(frozen=True)
class Str:
    value: str
    span: Span = _span()


@dataclass(frozen=True)
class Num:
    value: int | float
    span: Span = _span()


@dataclass(frozen=True)
class Bool:
    value: bool
    span: Span = _span()


Literal = Str | Num | Bool


@dataclass(frozen=True)
class SetLit:
    items: tuple[Str, ...]
    span: Span = _span()


# ---------------------------------------------------------------------------- conditions

@dataclass(frozen=True)
class Compare:
    left: Path
    op: str  # == != < <= > >=
    right: Path | Str | Num | Bool
    span: Span = _span()


@dataclass(frozen=True)
class Membership:
    path: Path
    set: Name | SetLit
    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True)
class StringTest:
    path: Path
    op: str  # starts_with ends_with contains
    value: Str
    span: Span = _span()


@dataclass(frozen=True)
class Exists:
    path: Path
    span: Span = _span()


@dataclass(frozen=True)
class Ref:
    """A bare name in a condition: a bool field, or a named condition from `let`."""

    path: Path
    span: Span = _span()


@dataclass(frozen=True)
class Not:
    operand: Condition
    span: Span = _span()


@dataclass(frozen=True)
class And:
    operands: tuple[Condition, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Or:
    operands: tuple[Condition, ...]
    span: Span = _span()


@dataclass(frozen=True)
class BinOp:
    """`left op right` on numbers: `+ - * /` (docs/language.md, "Arithmetic")."""

    op: str
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True)
class Neg:
    """Unary minus: `-x`."""

    operand: Expr
    span: Span = _span()


Expr = Path | Num | BinOp | Neg
"""A number expression: a field, a number literal, or arithmetic on them."""


@dataclass(frozen=True)
class ArithCompare:
    """A comparison with arithmetic on a side (or a number on the left): `a * 2 > b - 1`.

    A comparison of a field with a field or a literal is a `Compare`; `right` is a string or
    `true`/`false` only in a comparison the checker rejects."""

    left: Expr
    op: str  # == != < <= > >=
    right: Expr | Str | Bool
    span: Span = _span()


Condition = Compare | ArithCompare | Membership | StringTest | Exists | Ref | Not | And | Or


# --------------------------------------------------------------------------- declarations

@dataclass(frozen=True)
class Import:
    path: Str
    span: Span = _span()


@dataclass(frozen=True)
class Normalize:
    steps: tuple[Name, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Duration:
    """A duration as written (`30m`, `1h`, `7d`); the checker reads its unit."""

    text: str
    span: Span = _span()


@dataclass(frozen=True)
class Rate:
    """`AMOUNT per DURATION` (`risk_decay 10 per 1h`)."""

    amount: Num
    period: Duration
    span: Span = _span()


SettingValue = Str | Num | Bool | Normalize | Name | Rate | Duration
"""A setting's value: a literal, `normalize ...`, a word (`undeclared_fields refuse`), or a
rate (`risk_decay 10 per 1h`), or a duration (`review_timeout 1h`)."""


@dataclass(frozen=True)
class Setting:
    name: Name
    value: SettingValue
    span: Span = _span()


@dataclass(frozen=True)
class PolicyDecl:
    name: Name
    version: Str | None
    settings: tuple[Setting, ...]
    span: Span = _span()


@dataclass(frozen=True)
class GroupAgents:
    """`agents "ops-7", "senior-*"`: exact agent ids; a trailing `*` makes a prefix."""

    patterns: tuple[Str, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Limit:
    """`limit N per DURATION`: a rate limit, in an action block (the block's actions
    together) or a group (every action of each agent in it); in a group, `limit ACTION N per
    DURATION` limits one action. A rule's limit is its `limit` clause."""

    rate: Rate
    action: ActionName | None = None
    span: Span = _span()


@dataclass(frozen=True)
class GroupDecl:
    """`group NAME { agents ...  risk_threshold 200 ... }`: the agents it holds and the
    settings it overrides, in source order."""

    name: Name
    lines: tuple[GroupAgents | Setting | Limit, ...]
    span: Span = _span()

    @property
    def patterns(self) -> tuple[Str, ...]:
        return tuple(p for line in self.lines if isinstance(line, GroupAgents)
                     for p in line.patterns)

    @property
    def settings(self) -> tuple[Setting, ...]:
        return tuple(line for line in self.lines if isinstance(line, Setting))

    @property
    def limits(self) -> tuple[Limit, ...]:
        return tuple(line for line in self.lines if isinstance(line, Limit))


@dataclass(frozen=True)
class TypeRef:
    """`bool`, `int`, `number`, `string`; `enum {...}` with values; `set<string>`."""

    kind: str  # simple | enum | set
    name: Name
    values: tuple[Str, ...] = ()
    span: Span = _span()


@dataclass(frozen=True)
class FieldDecl:
    path: Path
    type: TypeRef
    optional: bool = False
    normalize: Normalize | None = None
    default: Str | Num | Bool | SetLit | None = None
    span: Span = _span()


@dataclass(frozen=True)
class InputBlock:
    fields: tuple[FieldDecl, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Let:
    name: Name
    value: SetLit | Condition
    span: Span = _span()


@dataclass(frozen=True)
class Clause:
    """One clause of an outcome: `risk N`, `as ID`, `threat "T"`, a reason, `description "D"`,
    `limit N per DURATION`."""

    kind: str  # risk | id | threat | reason | description | limit | expires
    value: Num | Name | Str | Rate | Duration
    span: Span = _span()


@dataclass(frozen=True)
class Outcome:
    kind: str  # allow | block | shutdown | review
    clauses: tuple[Clause, ...]
    span: Span = _span()

    def clause(self, kind: str) -> Clause | None:
        return next((c for c in self.clauses if c.kind == kind), None)


@dataclass(frozen=True)
class Rule:
    when: Condition | None
    outcome: Outcome
    span: Span = _span()


@dataclass(frozen=True)
class ActionName:
    value: str
    quoted: bool = False
    span: Span = _span()


@dataclass(frozen=True)
class ActionBlock:
    names: tuple[ActionName, ...]
    rules: tuple[Rule, ...]
    limits: tuple[Limit, ...] = ()
    """`limit N per DURATION` lines before the rules: the block's actions, counted together."""
    span: Span = _span()


@dataclass(frozen=True)
class Otherwise:
    outcome: Outcome
    span: Span = _span()


Item = Import | PolicyDecl | InputBlock | Let | ActionBlock | Otherwise | GroupDecl


@dataclass(frozen=True)
class Comment:
    text: str
    span: Span = _span()


@dataclass(frozen=True)
class Module:
    """One parsed file: its items in source order, and its comments (for the formatter)."""

    items: tuple[Item, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False)
    span: Span = _span()

    def of_type(self, kind: type) -> list:  # type: ignore[type-arg]
        return [item for item in self.items if isinstance(item, kind)]
